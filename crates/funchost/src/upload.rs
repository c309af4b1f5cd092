//! The runner's connections to the handler, on which an answer given before the upload
//! ends still counts.
//!
//! A handler may answer before it has read the whole request body (the product answers 413
//! `payload_too_large` from the declared `Content-Length`) and then close the connection
//! with the body unread, which the kernel turns into a reset. The answer is already on its
//! way to the runner, but the runner's next write of the body fails, and hyper reports that
//! failure instead of the answer whenever the write loses the race with the read (2 to 5
//! tries in 10 for a 10 MB body). The Azure Functions host applies its own request size
//! limit (100 MB) and otherwise returns what the handler answered, so a write the handler
//! refused must not end the exchange: [`HandlerStream`] drops the rest of the body after
//! such a failure and lets the answer be read. When the handler gave no answer, the read
//! fails in turn and forwarding fails as before.
//! <https://learn.microsoft.com/azure/azure-functions/functions-bindings-http-webhook-trigger#limits>

use std::{
    future::Future,
    io,
    pin::Pin,
    task::{Context, Poll},
};

use hyper_util::{
    client::legacy::connect::{Connected, Connection, HttpConnector},
    rt::TokioIo,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tower_service::Service;
use warp::http::Uri;

/// [`HttpConnector`] whose connections are [`HandlerStream`]s.
#[derive(Clone)]
pub(crate) struct HandlerConnector(pub(crate) HttpConnector);

impl Service<Uri> for HandlerConnector {
    type Response = TokioIo<HandlerStream>;
    type Error = <HttpConnector as Service<Uri>>::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.0.call(uri);
        Box::pin(async move {
            let stream = connecting.await?.into_inner();
            Ok(TokioIo::new(HandlerStream {
                stream,
                refused: false,
            }))
        })
    }
}

/// A TCP connection to the handler that, once the handler has refused a write (reset or
/// closed its side), accepts and drops every further write, so the answer can be read.
pub(crate) struct HandlerStream {
    stream: TcpStream,
    /// The handler refused a write: nothing more reaches it; reads go on until they fail.
    refused: bool,
}

impl HandlerStream {
    /// `result` of a write, or `written` if the handler refused it (from now on, too).
    fn unless_refused<T>(&mut self, result: io::Result<T>, written: T) -> io::Result<T> {
        match result {
            Err(e) if is_refusal(&e) => {
                tracing::debug!(error = %e, "the handler stopped reading the request body");
                self.refused = true;
                Ok(written)
            }
            other => other,
        }
    }
}

/// The errors a write gets when the peer has closed or reset the connection.
fn is_refusal(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

impl AsyncRead for HandlerStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for HandlerStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.refused {
            return Poll::Ready(Ok(buf.len()));
        }
        let result = std::task::ready!(Pin::new(&mut self.stream).poll_write(cx, buf));
        Poll::Ready(self.unless_refused(result, buf.len()))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total = bufs.iter().map(|b| b.len()).sum();
        if self.refused {
            return Poll::Ready(Ok(total));
        }
        let result = std::task::ready!(Pin::new(&mut self.stream).poll_write_vectored(cx, bufs));
        Poll::Ready(self.unless_refused(result, total))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.refused {
            return Poll::Ready(Ok(()));
        }
        let result = std::task::ready!(Pin::new(&mut self.stream).poll_flush(cx));
        Poll::Ready(self.unless_refused(result, ()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = std::task::ready!(Pin::new(&mut self.stream).poll_shutdown(cx));
        Poll::Ready(self.unless_refused(result, ()))
    }
}

impl Connection for HandlerStream {
    fn connected(&self) -> Connected {
        self.stream.connected()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn writes_after_the_peer_resets_are_dropped_and_its_answer_stays_readable() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let peer = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut first = [0u8; 1];
            socket.read_exact(&mut first).await.unwrap();
            socket.write_all(b"answer").await.unwrap();
            // Dropped with data unread: a reset.
        });
        let mut stream = HandlerStream {
            stream: TcpStream::connect(address).await.unwrap(),
            refused: false,
        };

        let chunk = vec![0u8; 1024 * 1024];
        for _ in 0..32 {
            stream.write_all(&chunk).await.unwrap();
        }
        peer.await.unwrap();
        let mut answer = [0u8; 6];
        stream.read_exact(&mut answer).await.unwrap();

        assert!(stream.refused, "32 MB cannot all fit in the peer's buffers");
        assert_eq!(&answer, b"answer");
    }
}
