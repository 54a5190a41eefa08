//! Bodies across the boundary: actix's `MessageBody` as an `http_body::Body`
//! for the engine, and the engine's body back as a `MessageBody`.

use std::{
    error::Error as StdError,
    fmt,
    pin::Pin,
    task::{Context, Poll},
};

use actix_web::body::{BodySize, MessageBody};
use bytes::Bytes;
use cache_core::{BoxError, CacheBody};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// An actix body seen as an [`http_body::Body`].
    pub struct OriginBody<B> {
        #[pin]
        inner: B,
    }
}

impl<B> OriginBody<B> {
    pub(crate) fn new(inner: B) -> Self {
        OriginBody { inner }
    }
}

impl<B> fmt::Debug for OriginBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OriginBody").finish_non_exhaustive()
    }
}

/// A failure of the origin's body, carried as text: actix body errors are
/// not `Send`.
#[derive(Debug)]
pub struct OriginBodyError(String);

impl fmt::Display for OriginBodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "origin body failed: {}", self.0)
    }
}

impl StdError for OriginBodyError {}

impl<B: MessageBody> Body for OriginBody<B> {
    type Data = Bytes;
    type Error = OriginBodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.project().inner.poll_next(cx).map(|chunk| {
            chunk.map(|result| {
                result.map(Frame::data).map_err(|e| {
                    let e: Box<dyn StdError> = e.into();
                    OriginBodyError(e.to_string())
                })
            })
        })
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.inner.size(), BodySize::None | BodySize::Sized(0))
    }

    fn size_hint(&self) -> SizeHint {
        match self.inner.size() {
            BodySize::None => SizeHint::with_exact(0),
            BodySize::Sized(n) => SizeHint::with_exact(n),
            BodySize::Stream => SizeHint::default(),
        }
    }
}

pin_project! {
    /// The body of a response that went through the cache, as actix sends
    /// it.
    pub struct CachedBody<B> {
        #[pin]
        inner: CacheBody<OriginBody<B>>,
        // For a response to `HEAD`: the length of the body it stands for,
        // which actix writes as `Content-Length` (it sends no body for `HEAD`).
        head_length: Option<u64>,
    }
}

impl<B> CachedBody<B> {
    pub(crate) fn new(inner: CacheBody<OriginBody<B>>, head_length: Option<u64>) -> Self {
        CachedBody { inner, head_length }
    }
}

impl<B> fmt::Debug for CachedBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedBody").finish_non_exhaustive()
    }
}

/// A failure while sending a response that went through the cache: the
/// origin's body failed.
#[derive(Debug)]
pub struct CachedBodyError(BoxError);

impl fmt::Display for CachedBodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl StdError for CachedBodyError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.0)
    }
}

impl<B: MessageBody> MessageBody for CachedBody<B> {
    type Error = CachedBodyError;

    fn size(&self) -> BodySize {
        if let Some(len) = self.head_length {
            return BodySize::Sized(len);
        }
        let hint = self.inner.size_hint();
        match hint.exact() {
            Some(0) if self.inner.is_end_stream() => BodySize::Sized(0),
            Some(n) => BodySize::Sized(n),
            None => BodySize::Stream,
        }
    }

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let mut inner = self.project().inner;
        loop {
            return match inner.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => Poll::Ready(Some(Ok(data))),
                    // actix bodies carry no trailers: skip them.
                    Err(_) => continue,
                },
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(CachedBodyError(e)))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            };
        }
    }
}
