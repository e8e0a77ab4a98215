//! The [`WatchStream`](super::WatchStream) both backends hand out: a `Stream` over the
//! channel their watch producer feeds, ending after the first error (a compacted watch).

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::mpsc::UnboundedReceiver;

use super::{Result, WatchEvent};

/// Receives watch events; dropping it closes the channel, which stops the producer.
#[derive(Debug)]
pub(crate) struct ChannelStream {
    rx: UnboundedReceiver<Result<WatchEvent>>,
    done: bool,
}

impl ChannelStream {
    pub(crate) fn new(rx: UnboundedReceiver<Result<WatchEvent>>) -> Self {
        Self { rx, done: false }
    }
}

impl futures::Stream for ChannelStream {
    type Item = Result<WatchEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let item = self.rx.poll_recv(cx);
        if let Poll::Ready(Some(Err(_)) | None) = &item {
            self.done = true;
        }
        item
    }
}
