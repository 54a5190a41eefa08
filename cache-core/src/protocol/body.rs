//! The response body the cache hands back.

use std::{
    collections::VecDeque,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::error::BoxError;

pin_project! {
    /// A response body: bytes from the cache, or the origin's body passed
    /// through (possibly after frames the cache already read from it).
    ///
    /// Its error type is [`BoxError`]; errors of the origin's body are boxed
    /// and passed on unchanged.
    #[derive(Debug)]
    pub struct CacheBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<B> {
        Full { data: Option<Bytes> },
        Stream { #[pin] body: B },
        Resumed {
            prefix: VecDeque<Frame<Bytes>>,
            rest: Option<Pin<Box<B>>>,
            error: Option<BoxError>,
        },
    }
}

impl<B> CacheBody<B> {
    /// A complete body held in memory.
    pub fn full(data: Bytes) -> Self {
        let data = (!data.is_empty()).then_some(data);
        CacheBody { kind: Kind::Full { data } }
    }

    /// An empty body.
    pub fn empty() -> Self {
        CacheBody {
            kind: Kind::Full { data: None },
        }
    }

    /// The origin's body, untouched.
    pub fn stream(body: B) -> Self {
        CacheBody {
            kind: Kind::Stream { body },
        }
    }

    /// Frames already read from `rest`, then the remainder of `rest`.
    pub(crate) fn resume(prefix: VecDeque<Frame<Bytes>>, rest: Pin<Box<B>>) -> Self {
        CacheBody {
            kind: Kind::Resumed {
                prefix,
                rest: Some(rest),
                error: None,
            },
        }
    }

    /// Frames already read, then the error that stopped the reading.
    pub(crate) fn failed(prefix: VecDeque<Frame<Bytes>>, error: BoxError) -> Self {
        CacheBody {
            kind: Kind::Resumed {
                prefix,
                rest: None,
                error: Some(error),
            },
        }
    }
}

impl<B> Body for CacheBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().kind.project() {
            KindProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            KindProj::Stream { body } => body.poll_frame(cx).map_err(Into::into),
            KindProj::Resumed { prefix, rest, error } => {
                if let Some(frame) = prefix.pop_front() {
                    return Poll::Ready(Some(Ok(frame)));
                }
                if let Some(e) = error.take() {
                    return Poll::Ready(Some(Err(e)));
                }
                match rest {
                    Some(body) => body.as_mut().poll_frame(cx).map_err(Into::into),
                    None => Poll::Ready(None),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full { data } => data.is_none(),
            Kind::Stream { body } => body.is_end_stream(),
            Kind::Resumed { prefix, rest, error } => {
                prefix.is_empty() && error.is_none() && rest.as_ref().is_none_or(|b| b.is_end_stream())
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full { data } => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Kind::Stream { body } => body.size_hint(),
            Kind::Resumed { prefix, rest, .. } => {
                let buffered: u64 = prefix.iter().filter_map(Frame::data_ref).map(|d| d.len() as u64).sum();
                let rest = rest.as_ref().map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint());
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower() + buffered);
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper + buffered);
                }
                hint
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full, StreamBody};

    #[tokio::test]
    async fn resumes_after_buffered_frames() {
        let rest = Full::new(Bytes::from_static(b"world"));
        let body = CacheBody::resume(VecDeque::from([Frame::data(Bytes::from_static(b"hello "))]), Box::pin(rest));
        assert_eq!(body.size_hint().exact(), Some(11));
        assert_eq!(body.collect().await.unwrap().to_bytes(), "hello world");
    }

    #[tokio::test]
    async fn reports_the_error_after_buffered_frames() {
        let body: CacheBody<Full<Bytes>> = CacheBody::failed(VecDeque::from([Frame::data(Bytes::from_static(b"part"))]), "boom".into());
        let mut body = std::pin::pin!(body);
        assert_eq!(body.frame().await.unwrap().unwrap().into_data().unwrap(), "part");
        assert_eq!(body.frame().await.unwrap().unwrap_err().to_string(), "boom");
    }

    #[tokio::test]
    async fn full_and_stream() {
        let full: CacheBody<Full<Bytes>> = CacheBody::full(Bytes::from_static(b"abc"));
        assert_eq!(full.size_hint().exact(), Some(3));
        assert_eq!(full.collect().await.unwrap().to_bytes(), "abc");
        let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(b"a")))]);
        let body = CacheBody::stream(StreamBody::new(chunks));
        assert_eq!(body.collect().await.unwrap().to_bytes(), "a");
    }
}
