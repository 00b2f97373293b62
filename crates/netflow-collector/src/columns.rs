//! [`ColumnSink`]: records stored in the columns format
//! ([`netflow_store::columns`], `netflow collector --format columns`).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use netflow_store::columns::{
    footer, open_for_append, Batch, BatchBuilder, BlockEncoder, BlockInfo,
};
use netflow_store::Export;

use crate::sink::{check_directory_of, next_rotated, NamePattern, Rotation, Sink, SinkCounters};

/// Records in columns files: one block per flush (every flush interval, 1 s
/// in the collector, or when [`ColumnSink::flush_rows`] rows are buffered,
/// [`BLOCK_ROWS`] by default).
///
/// The decode workers build the rows ([`Sink::takes_batches`]); the sink
/// appends them to its batch under its lock, and at a flush hands the batch
/// to its own writer thread (`netflow-columns`), which encodes the block
/// (LZ4 per column), writes it with one `write` call and, at a rotation or
/// at [`close`](Sink::close), the footer. So the lock is never held while
/// compressing or writing.
///
/// Durability: a block is in the file a few milliseconds after its flush.
/// SIGTERM ([`close`](Sink::close)): every row is written, then the
/// footer, and the file is synced. `kill -9` or a crash: the rows not yet
/// flushed (at most one flush interval) are lost, and a block being written
/// at that moment may be torn; the file stays readable up to its last
/// complete block (readers walk the block headers and report the torn one),
/// and a collector started again on the same file cuts the torn block
/// before appending.
///
/// Write errors: the file is cut back to its length before the block, the
/// rows are kept (up to [`ColumnSink::max_buffer`] bytes, then the oldest
/// blocks are dropped and counted) and written again at the next flush; the
/// error is returned by the next [`flush`](Sink::flush).
///
/// Rotation and names as for [`crate::FileSink`]: [`Rotation`],
/// [`NamePattern`], [`crate::rotated_path`]; files are created at their first
/// block, except a single file (no rotation, no pattern), created at once.
#[derive(Debug)]
pub struct ColumnSink {
    batch: Batch,
    builder: BatchBuilder,
    tx: Option<SyncSender<Msg>>,
    spare: Receiver<Batch>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Mutex<Shared>>,
    reopen: Arc<AtomicBool>,
    path: PathBuf,
    /// Buffered rows that trigger a flush from [`Sink::write_batch`].
    pub flush_rows: usize,
}

#[derive(Debug, Default)]
struct Shared {
    counters: SinkCounters,
    /// Rows handed to the writer thread and not written yet.
    in_flight: u64,
    /// The error of the last failed write, for the next `flush` to return.
    error: Option<io::Error>,
    path: PathBuf,
}

enum Msg {
    /// Rows to write (maybe none), then rotate if due.
    Flush(Batch),
    /// Write what is pending, the footer, sync; answer.
    Close(SyncSender<io::Result<()>>),
}

/// The writer thread's state: the file and what is still to be written.
struct Writer {
    base: PathBuf,
    pattern: Option<NamePattern>,
    rotation: Rotation,
    named: bool,
    rename_next: bool,
    path: PathBuf,
    file: Option<File>,
    file_len: u64,
    opened: Instant,
    /// Blocks of the current file written by this writer (for its footer).
    index: Vec<BlockInfo>,
    /// Batches not written yet (after errors), oldest first.
    pending: Vec<Batch>,
    /// Its buffers kept from one block to the next (and a helper thread's).
    encoder: BlockEncoder,
    max_buffer: usize,
    reopen: Arc<AtomicBool>,
    shared: Arc<Mutex<Shared>>,
    spare: SyncSender<Batch>,
}

/// Rows that make a block by default ([`ColumnSink::flush_rows`]: a block
/// is written once this many are buffered, so it holds them and at most the
/// rest of the decode worker's hand-over that reached them). A block
/// of a whole second at 30,000 v9 datagrams/s held 545,000 rows (100 MiB of
/// columns before compression): the batch, the encoder's buffers and the
/// block were each allocated afresh by `mmap` and page-faulted in, one fault
/// per datagram received (a fifth of the collector's CPU time). At 65,536
/// rows every buffer is a few MiB, reused from block to block (with
/// [`crate::keep_freed_memory`]), and a reader's block still amortizes its
/// per-block costs over many rows; compression is the same (LZ4 finds the
/// repeats within a few KiB).
pub const BLOCK_ROWS: usize = 1 << 16;

/// A batch handed over by a decode worker ([`Sink::take_batch`]) with at
/// least this part of [`ColumnSink::flush_rows`] rows (8,192 by default)
/// is written as a block of its own rather than appended to the rows
/// buffered for the next flush. A worker that keeps up hands over what it
/// built every 20 ms (the worker's `HAND_OVER_DELAY`: 10,800 rows at 30,000
/// v9 datagrams/s): appending them, a copy of every row, was 7 % of its
/// thread (`perf`). Blocks that size compress as well (LZ4 finds its
/// matches within 64 KiB) and cost the reader a 724-byte header and
/// directory each.
const OWN_BLOCK_PART: usize = 8;

/// Bytes of rows kept at most while writes fail.
const MAX_BUFFER: usize = 256 << 20;

impl ColumnSink {
    /// Open (create, or append to after cutting a torn last block) `path`.
    pub fn create(path: impl AsRef<Path>) -> io::Result<ColumnSink> {
        ColumnSink::build(path.as_ref(), Rotation::default(), None)
    }

    /// With rotation: files named after `base` by [`crate::rotated_path`].
    pub fn with_rotation(base: impl AsRef<Path>, rotation: Rotation) -> io::Result<ColumnSink> {
        ColumnSink::build(base.as_ref(), rotation, None)
    }

    /// Files named by `pattern` in the directory of `base`.
    pub fn with_name_pattern(
        base: impl AsRef<Path>,
        rotation: Rotation,
        pattern: NamePattern,
    ) -> io::Result<ColumnSink> {
        ColumnSink::build(base.as_ref(), rotation, Some(pattern))
    }

    fn build(
        base: &Path,
        rotation: Rotation,
        pattern: Option<NamePattern>,
    ) -> io::Result<ColumnSink> {
        let named = rotation.is_enabled() || pattern.is_some();
        let (path, file, file_len) = if named {
            check_directory_of(base)?;
            (next_rotated(base, pattern.as_ref()), None, 0)
        } else {
            let (file, len, cut) = open_for_append(base)?;
            if let Some(cut) = cut {
                log::warn!("{cut}");
            }
            (base.to_path_buf(), Some(file), len)
        };
        let reopen = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Mutex::new(Shared {
            path: path.clone(),
            ..Default::default()
        }));
        let (tx, rx) = mpsc::sync_channel::<Msg>(2);
        let (spare_tx, spare) = mpsc::sync_channel::<Batch>(4);
        let mut writer = Writer {
            base: base.to_path_buf(),
            pattern,
            rotation,
            named,
            rename_next: false,
            path: path.clone(),
            file,
            file_len,
            opened: Instant::now(),
            index: Vec::new(),
            pending: Vec::new(),
            // Its encoding, the larger part of this thread's work, on
            // two threads where there is a second core.
            encoder: if std::thread::available_parallelism().is_ok_and(|n| n.get() > 1) {
                BlockEncoder::with_helper()
            } else {
                BlockEncoder::default()
            },
            max_buffer: MAX_BUFFER,
            reopen: reopen.clone(),
            shared: shared.clone(),
            spare: spare_tx,
        };
        let thread = std::thread::Builder::new()
            .name("netflow-columns".into())
            .spawn(move || writer.run(rx))?;
        Ok(ColumnSink {
            batch: Batch::new(),
            builder: BatchBuilder::new(),
            tx: Some(tx),
            spare,
            thread: Some(thread),
            shared,
            reopen,
            path,
            flush_rows: BLOCK_ROWS,
        })
    }

    /// The file written first (later ones: see the log and the summary).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Set it (SIGHUP) to have the next flush close the file and start a new one.
    pub fn reopen_flag(&self) -> Arc<AtomicBool> {
        self.reopen.clone()
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hand the batch to the writer thread (an empty one: only the rotation check).
    fn hand_over(&mut self) -> io::Result<()> {
        let next = self.next_batch(&self.batch);
        let batch = std::mem::replace(&mut self.batch, next);
        self.send(batch)
    }

    /// An empty batch to go on in after `full` is handed over: one the
    /// writer is done with, else a new one, either with room for `full`'s
    /// bytes and a quarter more (not one that grows again by
    /// reallocation, a copy of each column at each doubling).
    fn next_batch(&self, full: &Batch) -> Batch {
        match self.spare.try_recv() {
            Ok(mut spare) => {
                spare.make_room_of(full);
                spare
            }
            Err(_) => full.empty_with_room_of(),
        }
    }

    /// Send a batch to the writer thread.
    fn send(&mut self, batch: Batch) -> io::Result<()> {
        let rows = batch.rows() as u64;
        self.shared().in_flight += rows;
        let Some(tx) = &self.tx else {
            return Err(io::Error::other("the columns writer is closed"));
        };
        if tx.send(Msg::Flush(batch)).is_err() {
            let mut s = self.shared();
            s.in_flight -= rows;
            s.counters.dropped += rows;
            s.counters.dropped_records += rows;
            return Err(io::Error::other(
                "the columns writer thread ended; rows are lost",
            ));
        }
        Ok(())
    }
}

impl Sink for ColumnSink {
    fn write(&mut self, export: &Export<'_>) -> io::Result<()> {
        self.builder.clear();
        self.builder.add_export(export);
        let batch = self.builder.take();
        let r = self.write_batch(&batch);
        self.builder = BatchBuilder::new();
        r
    }

    fn takes_batches(&self) -> bool {
        true
    }

    fn write_batch(&mut self, batch: &Batch) -> io::Result<()> {
        self.batch.append(batch);
        if self.batch.rows() >= self.flush_rows {
            return self.hand_over();
        }
        Ok(())
    }

    /// A batch of an eighth of a block or more is kept whole, as a block of
    /// its own, by exchanging batches (a decode worker that is never idle
    /// hands over a block's worth at a time: copying them into the sink's
    /// batch, 43 columns, was a tenth of its instructions). Smaller ones
    /// are appended: exchanged too when none were buffered, the sink went
    /// on in the worker's small batch and grew it again by reallocation
    /// at every flush (1,450 `realloc`s in 7.5 s at 400 datagrams/s,
    /// callgrind), where its own keeps the size of the blocks before. Rows
    /// buffered that the new ones would take past
    /// [`flush_rows`](Self::flush_rows) are handed to the writer first,
    /// so a block holds at most one hand-over more than that.
    fn take_batch(&mut self, batch: &mut Batch) -> io::Result<()> {
        let mut result = Ok(());
        if batch.rows() >= self.flush_rows / OWN_BLOCK_PART {
            // Big enough to be a block of its own: kept whole (the rows
            // buffered before it first, in their own block).
            if !self.batch.is_empty() {
                result = self.hand_over();
            }
            // The worker goes on in a spare batch or one with this one's
            // room (the sink's own, for small hand-overs, may have less).
            let next = self.next_batch(batch);
            let full = std::mem::replace(batch, next);
            return result.and(self.send(full));
        }
        if !self.batch.is_empty() && self.batch.rows() + batch.rows() > self.flush_rows {
            result = self.hand_over();
        }
        self.batch.append(batch);
        batch.clear();
        if self.batch.rows() >= self.flush_rows {
            let handed = self.hand_over();
            result = result.and(handed);
        }
        result
    }

    fn flush(&mut self) -> io::Result<()> {
        self.hand_over()?;
        match self.shared().error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn close(&mut self) -> io::Result<()> {
        if !self.batch.is_empty() {
            self.hand_over()?;
        }
        let Some(tx) = self.tx.take() else {
            return Ok(());
        };
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        let result = match tx.send(Msg::Close(done_tx)) {
            Ok(()) => done_rx
                .recv()
                .unwrap_or_else(|_| Err(io::Error::other("the columns writer thread ended"))),
            Err(_) => Err(io::Error::other("the columns writer thread ended")),
        };
        drop(tx);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        result
    }

    fn counters(&self) -> SinkCounters {
        let s = self.shared();
        let mut c = s.counters;
        c.buffered = self.batch.rows() as u64 + s.in_flight;
        c
    }
}

impl Drop for ColumnSink {
    fn drop(&mut self) {
        if self.tx.is_some() {
            let _ = self.close();
        }
    }
}

impl Writer {
    fn run(&mut self, rx: Receiver<Msg>) {
        while let Ok(msg) = rx.recv() {
            match msg {
                Msg::Flush(batch) => {
                    if !batch.is_empty() {
                        self.pending.push(batch);
                    }
                    let r = self.write_pending();
                    let r = r.and_then(|()| {
                        if self.reopen.swap(false, Ordering::Relaxed) || self.rotation_due() {
                            self.rotate()
                        } else {
                            Ok(())
                        }
                    });
                    if let Err(e) = r {
                        self.shared().error = Some(e);
                    }
                }
                Msg::Close(done) => {
                    let r = self.write_pending().and_then(|()| self.finish_file());
                    let _ = done.send(r);
                    return;
                }
            }
        }
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn file(&mut self) -> io::Result<&mut File> {
        if self.file.is_none() {
            if self.rename_next {
                self.path = next_rotated(&self.base, self.pattern.as_ref());
                self.rename_next = false;
                self.shared().path = self.path.clone();
            }
            let (file, len, cut) = open_for_append(&self.path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot open {}: {e}", self.path.display()),
                )
            })?;
            if let Some(cut) = cut {
                log::warn!("{cut}");
            }
            self.file_len = len;
            self.opened = Instant::now();
            self.index.clear();
            self.file = Some(file);
        }
        Ok(self.file.as_mut().expect("opened above"))
    }

    fn write_pending(&mut self) -> io::Result<()> {
        while !self.pending.is_empty() {
            let start = Instant::now();
            let rows = self.pending[0].rows() as u64;
            // Taken out while the file is borrowed; put back below.
            let mut encoder = std::mem::take(&mut self.encoder);
            let (bytes, mut info) = encoder.encode(&self.pending[0]);
            let block_len = bytes.len();
            let at = self.file_len;
            let result = self.file().and_then(|f| {
                f.write_all(bytes).inspect_err(|_| {
                    // Never leave half a block behind.
                    let _ = f.set_len(at);
                })
            });
            self.encoder = encoder;
            match result {
                Ok(()) => {
                    info.offset = self.file_len;
                    self.file_len += block_len as u64;
                    self.index.push(info);
                    let mut done = self.pending.remove(0);
                    done.clear();
                    let _ = self.spare.try_send(done);
                    let mut s = self.shared();
                    s.in_flight -= rows;
                    s.counters.written += rows;
                    s.counters.bytes += block_len as u64;
                    s.counters.flushes += 1;
                    s.counters.flush_seconds.observe(start.elapsed());
                }
                Err(e) => {
                    let mut dropped = 0;
                    while self.pending.len() > 1
                        && self.pending.iter().map(Batch::byte_size).sum::<usize>()
                            > self.max_buffer
                    {
                        dropped += self.pending.remove(0).rows() as u64;
                    }
                    let mut s = self.shared();
                    s.counters.errors += 1;
                    s.in_flight -= dropped;
                    s.counters.dropped += dropped;
                    s.counters.dropped_records += dropped;
                    let kept: usize = self.pending.iter().map(Batch::rows).sum();
                    return Err(io::Error::new(
                        e.kind(),
                        format!(
                            "cannot write {}: {e}; {kept} records kept in memory{}, trying again at the next flush",
                            self.path.display(),
                            if dropped > 0 {
                                format!(", {dropped} dropped")
                            } else {
                                String::new()
                            }
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn rotation_due(&self) -> bool {
        self.file.is_some()
            && !self.index.is_empty()
            && (self
                .rotation
                .interval
                .is_some_and(|i| self.opened.elapsed() >= i)
                || self.rotation.size.is_some_and(|s| self.file_len >= s))
    }

    /// Footer and sync of the current file.
    fn finish_file(&mut self) -> io::Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let f = footer(&self.index);
        let at = self.file_len;
        file.write_all(&f).inspect_err(|_| {
            let _ = file.set_len(at);
        })?;
        self.file_len += f.len() as u64;
        file.sync_all().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot sync {}: {e}", self.path.display()),
            )
        })
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.file.is_some() {
            self.finish_file()?;
            log::info!("closed {}", self.path.display());
            self.shared().counters.rotations += 1;
        }
        self.file = None;
        self.file_len = 0;
        self.index.clear();
        self.rename_next = self.named;
        if !self.named {
            self.file()?;
        }
        Ok(())
    }
}
