//! The response body: a buffered one (JSON, HEAD) or the decrypted audio,
//! streamed as each batch of frames authenticates. An error sent down the
//! stream ends the body with an error, which aborts the response: a client
//! sees a broken transfer, never unverified bytes.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::sync::mpsc;

/// Why a streamed body ended early (its code; the log says more).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("playback aborted: {0}")]
pub struct StreamAborted(pub &'static str);

/// A response body.
pub struct PlaybackBody {
    ready: VecDeque<Bytes>,
    rest: Option<mpsc::Receiver<Result<Bytes, StreamAborted>>>,
    remaining: u64,
}

impl PlaybackBody {
    /// No body (HEAD, 304).
    pub fn empty() -> Self {
        Self { ready: VecDeque::new(), rest: None, remaining: 0 }
    }

    /// A body held in memory.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self { remaining: bytes.len() as u64, ready: VecDeque::from([bytes]), rest: None }
    }

    /// `len` bytes: `first` now, the rest as `rest` delivers them.
    pub fn streamed(len: u64, first: Vec<Bytes>, rest: mpsc::Receiver<Result<Bytes, StreamAborted>>) -> Self {
        Self { ready: first.into(), rest: Some(rest), remaining: len }
    }
}

impl http_body::Body for PlaybackBody {
    type Data = Bytes;
    type Error = StreamAborted;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(bytes) = self.ready.pop_front() {
            self.remaining = self.remaining.saturating_sub(bytes.len() as u64);
            return Poll::Ready(Some(Ok(Frame::data(bytes))));
        }
        let Some(rx) = self.rest.as_mut() else { return Poll::Ready(None) };
        match rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(bytes))) => {
                self.remaining = self.remaining.saturating_sub(bytes.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Poll::Ready(Some(Err(e))) => {
                self.rest = None;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.rest = None;
                if self.remaining > 0 {
                    // The producer stopped short without saying why.
                    return Poll::Ready(Some(Err(StreamAborted("incomplete"))));
                }
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ready.is_empty() && self.rest.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;

    async fn next(body: &mut PlaybackBody) -> Option<Result<Bytes, StreamAborted>> {
        std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx))
            .await
            .map(|r| r.map(|f| f.into_data().unwrap_or_default()))
    }

    #[tokio::test]
    async fn a_stream_that_stops_short_ends_with_an_error_not_silently() {
        let (tx, rx) = mpsc::channel(2);
        let mut body = PlaybackBody::streamed(10, vec![Bytes::from_static(b"abc")], rx);
        tx.send(Ok(Bytes::from_static(b"def"))).await.unwrap();
        drop(tx);
        assert_eq!(next(&mut body).await.unwrap().unwrap(), "abc");
        assert_eq!(next(&mut body).await.unwrap().unwrap(), "def");
        assert_eq!(next(&mut body).await.unwrap().unwrap_err(), StreamAborted("incomplete"));
        assert!(next(&mut body).await.is_none());
    }

    #[tokio::test]
    async fn an_error_sent_down_the_stream_ends_the_body() {
        let (tx, rx) = mpsc::channel(2);
        let mut body = PlaybackBody::streamed(6, vec![], rx);
        tx.send(Err(StreamAborted("integrity"))).await.unwrap();
        assert_eq!(next(&mut body).await.unwrap().unwrap_err(), StreamAborted("integrity"));
        assert!(next(&mut body).await.is_none());
        assert!(body.is_end_stream());
    }

    #[tokio::test]
    async fn a_complete_stream_ends_cleanly() {
        let (tx, rx) = mpsc::channel(2);
        let mut body = PlaybackBody::streamed(3, vec![], rx);
        tx.send(Ok(Bytes::from_static(b"xyz"))).await.unwrap();
        drop(tx);
        assert_eq!(next(&mut body).await.unwrap().unwrap(), "xyz");
        assert!(next(&mut body).await.is_none());
        assert_eq!(PlaybackBody::full("hi").size_hint().exact(), Some(2));
    }
}
