use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use cache_core::CacheBody;
use http::Response;
use pin_project_lite::pin_project;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

pin_project! {
    /// The response future of [`CacheService`](crate::CacheService).
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        kind: Kind<F, B, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B, E> {
        Passthrough { #[pin] future: F },
        Ready { response: Option<Response<CacheBody<B>>> },
        Cached { future: BoxFuture<Result<Response<CacheBody<B>>, E>> },
    }
}

impl<F, B, E> ResponseFuture<F, B, E> {
    pub(crate) fn passthrough(future: F) -> Self {
        ResponseFuture {
            kind: Kind::Passthrough { future },
        }
    }

    pub(crate) fn ready(response: Response<CacheBody<B>>) -> Self {
        ResponseFuture {
            kind: Kind::Ready { response: Some(response) },
        }
    }

    pub(crate) fn cached(future: BoxFuture<Result<Response<CacheBody<B>>, E>>) -> Self {
        ResponseFuture {
            kind: Kind::Cached { future },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<CacheBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Passthrough { future } => future.poll(cx).map_ok(|response| {
                let (mut parts, body) = response.into_parts();
                parts.extensions.remove::<cache_core::CacheHints>();
                Response::from_parts(parts, CacheBody::stream(body))
            }),
            KindProj::Ready { response } => {
                Poll::Ready(Ok(response.take().expect("a ready response future is not polled after completion")))
            }
            KindProj::Cached { future } => future.as_mut().poll(cx),
        }
    }
}

impl<F, B, E> fmt::Debug for ResponseFuture<F, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
