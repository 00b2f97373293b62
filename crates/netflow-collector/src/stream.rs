//! Decoded exports as an async stream for tokio programs (feature `tokio`):
//! the counterpart of the Python original's `get_export_packets(host, port)`
//! generator, with [`Collector::bind_stream`].
//!
//! The collector's threads stay plain OS threads (receive, decode, sink);
//! only the hand-over is async: a bounded [`tokio::sync::mpsc`] channel. A
//! consumer that does not keep up fills it and the decode worker waits
//! (back-pressure, measured in [`crate::GlobalStats::sink_wait`]); nothing is
//! dropped while the stream is alive.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use netflow_store::Export;
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::{BoundSocket, Collector, Config, ExportItem, Sink, SinkCounters, Stats};

/// Sends [`ExportItem`]s on a bounded tokio channel from the (non-async)
/// decode threads.
struct AsyncChannelSink {
    tx: mpsc::Sender<ExportItem>,
    counters: SinkCounters,
}

impl Sink for AsyncChannelSink {
    fn write(&mut self, export: &Export<'_>) -> io::Result<()> {
        let item = ExportItem::from_export(export);
        let sent = match self.tx.try_send(item) {
            Ok(()) => Ok(()),
            // Full: wait for room. `blocking_send` is right here: the decode
            // threads are not tokio tasks.
            Err(TrySendError::Full(item)) => self.tx.blocking_send(item).map_err(|_| ()),
            Err(TrySendError::Closed(_)) => Err(()),
        };
        match sent {
            Ok(()) => self.counters.written += 1,
            // The stream was dropped: nobody to deliver to.
            Err(()) => self.counters.dropped += 1,
        }
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn close(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn counters(&self) -> SinkCounters {
        self.counters
    }
}

/// A running collector delivering its decoded exports as a
/// [`futures_core::Stream`] of [`ExportItem`]s (also [`next_export`](Self::next_export)
/// without any stream extension trait). The stream ends once the collector
/// is stopped and what its sockets held is delivered.
///
/// Dropping it stops the collector and waits (briefly, blocking) for its
/// threads; from async code prefer [`shutdown`](Self::shutdown).
pub struct ExportStream {
    // Declared first so it is dropped first: a decode thread blocked on a
    // full channel is released before the collector joins its threads.
    rx: mpsc::Receiver<ExportItem>,
    collector: Collector,
}

impl std::fmt::Debug for ExportStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportStream")
            .field("collector", &self.collector)
            .finish_non_exhaustive()
    }
}

impl Collector {
    /// Bind `config.listen` and start; decoded exports come out of the
    /// returned [`ExportStream`] (at most [`Config::channel`] queued).
    /// Needs no runtime to call; the stream is read from any tokio runtime.
    pub fn bind_stream(config: Config) -> io::Result<ExportStream> {
        let (tx, rx) = mpsc::channel(config.channel.max(1));
        let sink = AsyncChannelSink {
            tx,
            counters: SinkCounters::default(),
        };
        let collector = Collector::start(config, sink)?;
        Ok(ExportStream { rx, collector })
    }
}

impl ExportStream {
    /// The next decoded export; `None` once stopped and drained.
    pub async fn next_export(&mut self) -> Option<ExportItem> {
        self.rx.recv().await
    }

    /// The sockets listened on.
    pub fn sockets(&self) -> &[BoundSocket] {
        self.collector.sockets()
    }

    /// The first socket's local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.collector.local_addr()
    }

    /// Where the Prometheus metrics are served, if [`Config::metrics`] was set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.collector.metrics_addr()
    }

    /// A copy of the counters now.
    pub fn stats(&self) -> Stats {
        self.collector.stats()
    }

    /// Ask the collector to stop (returns at once); the stream then yields
    /// what the sockets still held and ends.
    pub fn stop(&self) {
        self.collector.stop();
    }

    /// Stop, take the exports not read yet, wait for the threads without
    /// blocking the runtime, and return the final counters. Must run inside
    /// a tokio runtime (it uses [`tokio::task::spawn_blocking`]).
    pub async fn shutdown(self) -> (Stats, Vec<ExportItem>) {
        let ExportStream { mut rx, collector } = self;
        collector.stop();
        let mut rest = Vec::new();
        // Ends when every decode thread and the sink thread are done (they
        // hold the senders).
        while let Some(item) = rx.recv().await {
            rest.push(item);
        }
        // The threads are ending or ended: the last counters so far, in
        // case the runtime cancels the join below.
        let so_far = collector.stats();
        match tokio::task::spawn_blocking(move || collector.shutdown().0).await {
            Ok(stats) => (stats, rest),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => (so_far, rest),
        }
    }
}

impl futures_core::Stream for ExportStream {
    type Item = ExportItem;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ExportItem>> {
        self.rx.poll_recv(cx)
    }
}
