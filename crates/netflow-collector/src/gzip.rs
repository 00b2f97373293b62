//! The compressor thread of a [`crate::FileSink`]: gzip members (RFC 1952)
//! built from batches of JSON lines while the decode workers go on
//! decoding and formatting.
//!
//! The sink hands over a batch of lines as soon as it has gathered
//! [`CHUNK`] bytes ([`Compressor::send`]); the thread deflates it into the
//! member being built. At a flush the sink asks for the member
//! ([`Compressor::finish`]): only the batches still queued are left to
//! compress then, so the flush (and the sink's lock) is held for a short
//! time whatever the flush interval. The queue is bounded ([`QUEUE`]
//! batches): when compressing cannot keep up, `send` waits, and that wait
//! is the back-pressure the collector measures as `sink_wait`.
//!
//! The lines come back with the member, so that when the member cannot be
//! written (disk full) the sink keeps them, as it did before compressing
//! off the decode path, and retries with a new member later.

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use flate2::write::GzEncoder;
use flate2::Compression;

/// Bytes of lines gathered before they are handed to the compressor.
pub(crate) const CHUNK: usize = 128 << 10;
/// Batches queued for the compressor at most (so at most `QUEUE * CHUNK`
/// bytes are left to compress when a flush asks for the member).
const QUEUE: usize = 4;

enum Job {
    /// Lines for the current member, and the level to use if it starts one.
    Lines(Vec<u8>, u32),
    /// End the current member and send it back.
    Finish,
}

/// A finished gzip member and the lines it holds (in order).
pub(crate) struct Member {
    pub(crate) gzip: io::Result<Vec<u8>>,
    pub(crate) lines: Vec<Vec<u8>>,
}

/// The handle of a compressor thread; dropping it ends the thread.
pub(crate) struct Compressor {
    jobs: Option<SyncSender<Job>>,
    members: Receiver<Member>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor").finish_non_exhaustive()
    }
}

/// Compress `lines` into one gzip member at `level` (0: stored, 9: smallest).
pub(crate) fn member(lines: &[Vec<u8>], level: u32) -> io::Result<Vec<u8>> {
    let size: usize = lines.iter().map(Vec::len).sum();
    let mut gz = GzEncoder::new(
        Vec::with_capacity(size / 4 + 64),
        Compression::new(level.min(9)),
    );
    for l in lines {
        gz.write_all(l)?;
    }
    gz.finish()
}

fn run(jobs: Receiver<Job>, members: SyncSender<Member>) {
    let mut encoder: Option<GzEncoder<Vec<u8>>> = None;
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut failed: Option<io::Error> = None;
    for job in jobs {
        match job {
            Job::Lines(batch, level) => {
                let gz = encoder.get_or_insert_with(|| {
                    GzEncoder::new(Vec::with_capacity(CHUNK), Compression::new(level.min(9)))
                });
                if failed.is_none() {
                    if let Err(e) = gz.write_all(&batch) {
                        failed = Some(e);
                    }
                }
                lines.push(batch);
            }
            Job::Finish => {
                let gzip = match (encoder.take(), failed.take()) {
                    (_, Some(e)) => Err(e),
                    (Some(gz), None) => gz.finish(),
                    (None, None) => Ok(Vec::new()),
                };
                let m = Member {
                    gzip,
                    lines: std::mem::take(&mut lines),
                };
                if members.send(m).is_err() {
                    return;
                }
            }
        }
    }
}

impl Compressor {
    pub(crate) fn spawn() -> io::Result<Compressor> {
        let (jobs, rx) = mpsc::sync_channel(QUEUE);
        // One member at a time is asked for and taken at once.
        let (tx, members) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("netflow-gzip".into())
            .spawn(move || run(rx, tx))?;
        Ok(Compressor {
            jobs: Some(jobs),
            members,
            thread: Some(thread),
        })
    }

    /// Queue lines for the current member (waits while the queue is full).
    /// `Err` gives them back: the thread has ended.
    pub(crate) fn send(&self, lines: Vec<u8>, level: u32) -> Result<(), Vec<u8>> {
        let Some(jobs) = &self.jobs else {
            return Err(lines);
        };
        jobs.send(Job::Lines(lines, level)).map_err(|e| match e.0 {
            Job::Lines(l, _) => l,
            Job::Finish => Vec::new(),
        })
    }

    /// The member of everything sent since the last one. `None`: the
    /// thread has ended (its lines are lost with it; it only ends by a panic).
    pub(crate) fn finish(&self) -> Option<Member> {
        self.jobs.as_ref()?.send(Job::Finish).ok()?;
        self.members.recv().ok()
    }
}

impl Drop for Compressor {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
