//! Where decoded exports go: the [`Sink`] trait, the gzip JSON-lines
//! [`FileSink`] and the [`ChannelSink`] behind [`crate::Collector::bind`].

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netflow::{Header, OwnedRecord};
use netflow_store::columns::Batch;
use netflow_store::{write_export, Export, Format};

use crate::gzip::{self, Compressor, CHUNK};
use crate::stats::Histogram;

/// Counters a sink keeps about itself (all zero for sinks that keep none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkCounters {
    /// Lines (or items) handed on for good: written to the file, sent on the channel.
    pub written: u64,
    /// Lines accepted but not yet written (waiting for the next flush).
    pub buffered: u64,
    /// Bytes written (after compression, for the file).
    pub bytes: u64,
    /// Gzip members appended (file) or flushes done.
    pub flushes: u64,
    /// Failed writes or flushes.
    pub errors: u64,
    /// Lines given up after errors (the in-memory buffer limit was reached).
    pub dropped: u64,
    /// Records in those lines (flow and options records; a line of the
    /// original layout holds a datagram's records).
    pub dropped_records: u64,
    /// Files closed and new ones opened ([`Rotation`]).
    pub rotations: u64,
    /// Time taken by each flush that wrote something (compress and write).
    pub flush_seconds: Histogram,
}

/// Storage of decoded exports. The receive path calls [`write`](Sink::write)
/// for every decoded datagram (and for every group of sets that waited for a
/// template), [`flush`](Sink::flush) at least every flush interval, and
/// [`close`](Sink::close) once at shutdown. It never knows where records go.
///
/// Errors are counted and logged by the caller, who goes on receiving: a sink
/// that cannot write should keep what it can (bounded) and try again at the
/// next flush.
pub trait Sink {
    fn write(&mut self, export: &Export<'_>) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
    fn close(&mut self) -> io::Result<()>;
    /// Counters for the status line and the summary.
    fn counters(&self) -> SinkCounters {
        SinkCounters::default()
    }
    /// For sinks that store [`write_export`] lines: their format. The
    /// collector's decode workers then format each export themselves, in
    /// parallel and without holding the sink's lock, and hand the lines
    /// over with [`write_lines`](Sink::write_lines) instead of calling
    /// [`write`](Sink::write). `None` (the default): `write` is called.
    fn line_format(&self) -> Option<Format> {
        None
    }
    /// Lines already formatted by [`write_export`] in the
    /// [`line_format`](Sink::line_format) (`lines` of them, each ending in
    /// `\n`, holding `records` flow and options records). Only called when
    /// `line_format` is `Some`.
    fn write_lines(&mut self, bytes: &[u8], lines: u64, records: u64) -> io::Result<()> {
        let _ = (bytes, lines, records);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this sink takes exports, not formatted lines",
        ))
    }
    /// For sinks that store column batches ([`netflow_store::columns`]):
    /// `true` makes the decode workers build the rows of each export
    /// themselves (in parallel, without the sink's lock) and hand them over
    /// with [`write_batch`](Sink::write_batch) instead of calling
    /// [`write`](Sink::write). Checked before [`line_format`](Sink::line_format).
    fn takes_batches(&self) -> bool {
        false
    }
    /// Rows built by a [`BatchBuilder`](netflow_store::columns::BatchBuilder)
    /// (one per flow or options record). Only called when
    /// [`takes_batches`](Sink::takes_batches) is `true`.
    fn write_batch(&mut self, batch: &Batch) -> io::Result<()> {
        let _ = batch;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this sink takes exports, not column batches",
        ))
    }
    /// [`write_batch`](Sink::write_batch) for a batch the caller gives
    /// up: the sink may keep its rows without copying them (by exchanging
    /// them for an empty batch of its own); `batch` is empty after.
    fn take_batch(&mut self, batch: &mut Batch) -> io::Result<()> {
        let result = self.write_batch(batch);
        batch.clear();
        result
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn write(&mut self, export: &Export<'_>) -> io::Result<()> {
        (**self).write(export)
    }
    fn flush(&mut self) -> io::Result<()> {
        (**self).flush()
    }
    fn close(&mut self) -> io::Result<()> {
        (**self).close()
    }
    fn counters(&self) -> SinkCounters {
        (**self).counters()
    }
    fn line_format(&self) -> Option<Format> {
        (**self).line_format()
    }
    fn write_lines(&mut self, bytes: &[u8], lines: u64, records: u64) -> io::Result<()> {
        (**self).write_lines(bytes, lines, records)
    }
    fn takes_batches(&self) -> bool {
        (**self).takes_batches()
    }
    fn write_batch(&mut self, batch: &Batch) -> io::Result<()> {
        (**self).write_batch(batch)
    }
    fn take_batch(&mut self, batch: &mut Batch) -> io::Result<()> {
        (**self).take_batch(batch)
    }
}

/// When a [`FileSink`] closes its file and starts a new one (both may be set;
/// the first reached wins). Checked at every flush, so at least every flush
/// interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Start a new file when the current one is this old.
    pub interval: Option<Duration>,
    /// Start a new file when the current one has reached this many bytes.
    pub size: Option<u64>,
}

impl Rotation {
    pub fn is_enabled(&self) -> bool {
        self.interval.is_some() || self.size.is_some()
    }
}

/// The name of a rotated file: `dir/flows.gz` gives `dir/flows.<secs>.gz`
/// (`dir/flows.nfcol`, a columns file, `dir/flows.<secs>.nfcol`; `dir/flows`
/// gives `dir/flows.<secs>`), and `n > 0` adds `-n` after the seconds
/// (several files in the same second).
pub fn rotated_path(base: &Path, secs: u64, n: u32) -> PathBuf {
    let name = base
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let suffix = if n > 0 {
        format!("{secs}-{n}")
    } else {
        secs.to_string()
    };
    let file = match (name.strip_suffix(".gz"), name.strip_suffix(".nfcol")) {
        (Some(stem), _) => format!("{stem}.{suffix}.gz"),
        (None, Some(stem)) => format!("{stem}.{suffix}.nfcol"),
        (None, None) => format!("{name}.{suffix}"),
    };
    base.with_file_name(file)
}

/// A strftime-like pattern for the names of rotated files (`%Y%m%d-%H%M%S.gz`,
/// UTC), checked when it is made: [`chrono::format::strftime`] specifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePattern(String);

impl NamePattern {
    /// Check `pattern`: it must expand to a file name (no `/`) and use only
    /// known specifiers.
    pub fn new(pattern: &str) -> Result<NamePattern, String> {
        use chrono::format::{Item, StrftimeItems};
        if pattern.is_empty() {
            return Err("an empty file name pattern".into());
        }
        if StrftimeItems::new(pattern).any(|i| matches!(i, Item::Error)) {
            return Err(format!(
                "{pattern}: not a valid strftime pattern (e.g. %Y%m%d-%H%M%S.gz)"
            ));
        }
        let sample = NamePattern(pattern.to_string()).expand(0);
        if sample.contains('/') || sample == "." || sample == ".." {
            return Err(format!(
                "{pattern}: must give a file name, not a path (the directory is the one of --file)"
            ));
        }
        Ok(NamePattern(pattern.to_string()))
    }

    /// The file name at `secs` (Unix seconds, UTC).
    pub fn expand(&self, secs: u64) -> String {
        let t = chrono::DateTime::from_timestamp(i64::try_from(secs).unwrap_or(0), 0)
            .unwrap_or_default();
        t.format(&self.0).to_string()
    }
}

/// The name of a patterned file: `dir/<pattern at secs>`, and `n > 0` adds
/// `-n` before a `.gz` ending (else at the end).
pub fn patterned_path(dir: &Path, pattern: &NamePattern, secs: u64, n: u32) -> PathBuf {
    let name = pattern.expand(secs);
    let name = match (n, name.strip_suffix(".gz")) {
        (0, _) => name,
        (n, Some(stem)) => format!("{stem}-{n}.gz"),
        (n, None) => format!("{name}-{n}"),
    };
    dir.join(name)
}

/// Gzip JSON lines ([`netflow_store::write_export`]) appended to a file.
///
/// Lines are buffered in memory and written at each [`flush`](Sink::flush) as
/// one complete gzip member with a single `write` call (the file is a
/// concatenation of members; read it with a multi-member reader such as
/// `flate2::read::MultiGzDecoder`, `zcat` or Python's `gzip`). So a crash
/// loses at most what was not flushed yet and never leaves a damaged member.
///
/// The compressing is done by a thread of the sink's own (`netflow-gzip`),
/// fed batches of 128 KiB of lines through a bounded queue while the lines
/// come, so that the caller (the collector's decode workers) goes on
/// decoding and formatting meanwhile; a flush waits only for the batches
/// still queued, then writes the member. [`FileSink::compression_level`]:
/// 1 by default (see its documentation for why), 0 stores uncompressed
/// (still gzip members).
///
/// Write errors (disk full, unwritable path, I/O error): the file is cut
/// back to its length before the member, the lines stay buffered and the
/// write is tried again after a backoff (1 s, doubling up to 30 s; flushes
/// before then do nothing), so the collector goes on receiving and resumes
/// writing when the disk has room again. Past [`FileSink::max_buffer`]
/// bytes the buffered lines are dropped and counted
/// ([`SinkCounters::dropped`], [`SinkCounters::dropped_records`]).
///
/// With a [`Rotation`] ([`FileSink::with_rotation`]) the files are named
/// after the given path by [`rotated_path`] (`flows.gz` → `flows.<unix
/// seconds at opening>.gz`), or by a [`NamePattern`]
/// ([`FileSink::with_name_pattern`]); at a flush where the rotation is due,
/// the buffer is written and the file synced and closed. The next file is
/// created only when there is something to write to it, so no empty file is
/// left behind (not even by a `kill -9` right after a rotation). A single
/// file (no rotation, no pattern) is created at once, as the original does.
/// [`FileSink::reopen_flag`] asks for a new file (or, without rotation, the
/// same path reopened, e.g. after logrotate moved it) at the next flush.
#[derive(Debug)]
pub struct FileSink {
    base: PathBuf,
    pattern: Option<NamePattern>,
    /// The file written now, or the next one (named, not created yet).
    path: PathBuf,
    /// `None` until the first write to `path`.
    file: Option<File>,
    /// `path` is to be named anew before it is opened (after a rotation).
    rename_next: bool,
    file_len: u64,
    opened: Instant,
    rotation: Rotation,
    reopen: Arc<AtomicBool>,
    format: Format,
    buf: Vec<u8>,
    buf_lines: u64,
    buf_records: u64,
    /// After a failed write: no new attempt before this.
    retry_at: Option<Instant>,
    backoff: Duration,
    /// Failed attempts in a row.
    failures: u64,
    /// Buffered bytes that trigger a flush from `write` (32 MiB). Large
    /// enough that at high rates the flushes are mostly the timed ones, done
    /// by the collector's sink thread: a flush from `write` is done by the
    /// decode worker writing, which waits meanwhile. The lines are kept
    /// until their member is written (to retry it after an error), so this
    /// also bounds that memory.
    pub flush_at: usize,
    /// Buffered bytes kept at most while writes fail.
    pub max_buffer: usize,
    /// Deflate level of the members, 0 (stored, no compression) to 9
    /// (smallest, slowest); higher values count as 9. The default, 1
    /// ([`DEFAULT_COMPRESSION_LEVEL`]), because the compressing bounds the
    /// rate the collector takes without loss. Measured on a v9 file in the
    /// original's layout (8 MiB members, zlib-rs, one core): level 1
    /// deflates ~375 MB/s to 1/4.6 of the size, 3 ~210 MB/s to 1/7.5, 6
    /// ~100 MB/s to 1/9.9 (so level-1 files are about twice as large as
    /// level-6 ones). The collector at 24,000 v9 datagrams/s formats about
    /// 190 MB/s of lines; on a 2-core machine its zero-loss rate was ~24,000
    /// datagrams/s at level 1 and ~16,000 at level 3.
    pub compression_level: u32,
    /// Bytes of lines handed to the compressor for the current member.
    sent: usize,
    /// `None` until the first batch (or after the thread was lost: then
    /// members are compressed in the calling thread).
    compressor: Option<Compressor>,
    compressor_failed: bool,
    /// Emptied buffers given back by the compressor, to be filled again.
    spare: Vec<Vec<u8>>,
    counters: SinkCounters,
}

/// Emptied line buffers kept for reuse at most.
const SPARE_MAX: usize = (8 << 20) / CHUNK;

/// [`FileSink::compression_level`] by default.
pub const DEFAULT_COMPRESSION_LEVEL: u32 = 1;

/// The first and the longest wait before a new write attempt.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

pub(crate) fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn open_append(path: &Path) -> io::Result<(File, u64)> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let len = file.metadata()?.len();
    Ok((file, len))
}

/// Rotated files are created at their first write, in the directory of
/// `base`: that directory must exist from the start.
pub(crate) fn check_directory_of(base: &Path) -> io::Result<()> {
    let dir = match base.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if dir.is_dir() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no directory {}", dir.display()),
        ))
    }
}

/// A rotated file name not taken yet.
pub(crate) fn next_rotated(base: &Path, pattern: Option<&NamePattern>) -> PathBuf {
    let secs = unix_secs();
    let dir = base.parent().unwrap_or(Path::new(""));
    let mut n = 0;
    loop {
        let p = match pattern {
            Some(pattern) => patterned_path(dir, pattern, secs, n),
            None => rotated_path(base, secs, n),
        };
        if !p.exists() {
            return p;
        }
        n += 1;
    }
}

impl FileSink {
    /// Open (create or append to) `path`.
    pub fn create(path: impl AsRef<Path>, format: Format) -> io::Result<FileSink> {
        FileSink::with_rotation(path, format, Rotation::default())
    }

    /// Like [`create`](Self::create); with rotation enabled, files named
    /// after `base` by [`rotated_path`] instead of `base` itself, each
    /// created at its first write.
    pub fn with_rotation(
        base: impl AsRef<Path>,
        format: Format,
        rotation: Rotation,
    ) -> io::Result<FileSink> {
        FileSink::build(base.as_ref(), format, rotation, None)
    }

    /// Like [`with_rotation`](Self::with_rotation), the files named by
    /// `pattern` in the directory of `base` (also without a rotation: then
    /// a new name only when [`reopen_flag`](Self::reopen_flag) is set).
    pub fn with_name_pattern(
        base: impl AsRef<Path>,
        format: Format,
        rotation: Rotation,
        pattern: NamePattern,
    ) -> io::Result<FileSink> {
        FileSink::build(base.as_ref(), format, rotation, Some(pattern))
    }

    fn build(
        base: &Path,
        format: Format,
        rotation: Rotation,
        pattern: Option<NamePattern>,
    ) -> io::Result<FileSink> {
        let base = base.to_path_buf();
        let named = rotation.is_enabled() || pattern.is_some();
        let (path, file, file_len) = if named {
            // Created lazily; its directory must be there now, though.
            check_directory_of(&base)?;
            (next_rotated(&base, pattern.as_ref()), None, 0)
        } else {
            let (file, len) = open_append(&base)?;
            (base.clone(), Some(file), len)
        };
        Ok(FileSink {
            base,
            pattern,
            path,
            file,
            rename_next: false,
            file_len,
            opened: Instant::now(),
            rotation,
            reopen: Arc::new(AtomicBool::new(false)),
            format,
            buf: Vec::with_capacity(1 << 16),
            buf_lines: 0,
            buf_records: 0,
            retry_at: None,
            backoff: Duration::ZERO,
            failures: 0,
            flush_at: 32 << 20,
            max_buffer: 64 << 20,
            compression_level: DEFAULT_COMPRESSION_LEVEL,
            sent: 0,
            compressor: None,
            compressor_failed: false,
            spare: Vec::new(),
            counters: SinkCounters::default(),
        })
    }

    /// Files get names of their own (rotation, pattern), not the base path.
    fn named(&self) -> bool {
        self.rotation.is_enabled() || self.pattern.is_some()
    }

    /// The file written now (or the next one, before anything is written to it).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Set it (e.g. from a SIGHUP handler) to have the next flush close the
    /// file and open a new one.
    pub fn reopen_flag(&self) -> Arc<AtomicBool> {
        self.reopen.clone()
    }

    /// Append already formatted lines (`count` of them, each ending in `\n`;
    /// counted as records too).
    pub fn append_lines(&mut self, lines: &[u8], count: u64) -> io::Result<()> {
        self.buf.extend_from_slice(lines);
        self.buffered(count, count)
    }

    /// Account for lines just added to the buffer; flush when it is big
    /// enough, or drop it when writes fail and it is too big.
    fn buffered(&mut self, lines: u64, records: u64) -> io::Result<()> {
        self.buf_lines += lines;
        self.buf_records += records;
        self.counters.buffered = self.buf_lines;
        if self.retry_at.is_some() {
            if self.buf.len() > self.max_buffer {
                log::error!(
                    "{}: still not writable; dropping {} buffered lines ({} records, {} bytes)",
                    self.path.display(),
                    self.buf_lines,
                    self.buf_records,
                    self.buf.len()
                );
                self.drop_buffer();
            }
            return Ok(());
        }
        if self.buf.len() >= CHUNK {
            self.send_batch();
        }
        if self.sent + self.buf.len() >= self.flush_at {
            return self.flush();
        }
        Ok(())
    }

    /// Hand the buffered lines to the compressor thread (started at the
    /// first batch); they stay buffered when there is no thread.
    fn send_batch(&mut self) {
        if self.compressor.is_none() && !self.compressor_failed {
            match Compressor::spawn() {
                Ok(c) => self.compressor = Some(c),
                Err(e) => {
                    log::warn!("no compressor thread ({e}); compressing at each flush");
                    self.compressor_failed = true;
                }
            }
        }
        let Some(compressor) = &self.compressor else {
            return;
        };
        let next = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(CHUNK + (CHUNK >> 2)));
        let lines = std::mem::replace(&mut self.buf, next);
        let len = lines.len();
        match compressor.send(lines, self.compression_level) {
            Ok(()) => self.sent += len,
            Err(lines) => {
                // The thread is gone (it panicked): compress here from now on.
                log::error!("the compressor thread ended; compressing at each flush");
                self.compressor = None;
                self.compressor_failed = true;
                let rest = std::mem::replace(&mut self.buf, lines);
                self.buf.extend_from_slice(&rest);
            }
        }
    }

    /// The gzip member of everything buffered and the lines in it (the
    /// buffer is empty after).
    fn take_member(&mut self) -> (io::Result<Vec<u8>>, Vec<Vec<u8>>) {
        if self.sent > 0 {
            if !self.buf.is_empty() {
                self.send_batch();
            }
            let member = self.compressor.as_ref().and_then(Compressor::finish);
            self.sent = 0;
            match member {
                Some(m) => {
                    let mut lines = m.lines;
                    if !self.buf.is_empty() {
                        // Only when the thread was lost at the last batch.
                        lines.push(std::mem::take(&mut self.buf));
                        return (gzip::member(&lines, self.compression_level), lines);
                    }
                    return (m.gzip, lines);
                }
                None => {
                    self.compressor = None;
                    self.compressor_failed = true;
                    let lines = vec![std::mem::take(&mut self.buf)];
                    return (
                        Err(io::Error::other(
                            "the compressor thread ended; the lines handed to it are lost",
                        )),
                        lines,
                    );
                }
            }
        }
        let lines = vec![std::mem::take(&mut self.buf)];
        (gzip::member(&lines, self.compression_level), lines)
    }

    fn drop_buffer(&mut self) {
        self.counters.dropped += self.buf_lines;
        self.counters.dropped_records += self.buf_records;
        self.buf.clear();
        self.buf_lines = 0;
        self.buf_records = 0;
        self.counters.buffered = 0;
    }

    /// The open file, created (and, after a rotation, named) now if needed.
    fn file(&mut self) -> io::Result<&mut File> {
        if self.file.is_none() {
            if self.rename_next {
                self.path = next_rotated(&self.base, self.pattern.as_ref());
                self.rename_next = false;
            }
            let (file, len) = open_append(&self.path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot open {}: {e}", self.path.display()),
                )
            })?;
            self.file_len = len;
            self.opened = Instant::now();
            self.file = Some(file);
        }
        Ok(self.file.as_mut().expect("opened above"))
    }

    fn write_member(&mut self) -> io::Result<u64> {
        let (member, lines) = self.take_member();
        let result = member.and_then(|member| self.append_member(&member));
        match &result {
            Ok(_) => {
                // Buffers to fill again (up to 8 MiB of them: the rest is
                // freed). Each is larger than malloc's mmap threshold: a new
                // one costs an mmap and page faults.
                for mut l in lines {
                    if self.spare.len() < SPARE_MAX && l.capacity() <= 2 * CHUNK {
                        l.clear();
                        self.spare.push(l);
                    }
                }
            }
            Err(_) => {
                // Kept for the next attempt, in order.
                let mut all = Vec::with_capacity(lines.iter().map(Vec::len).sum());
                for l in &lines {
                    all.extend_from_slice(l);
                }
                self.buf = all;
            }
        }
        result
    }

    fn append_member(&mut self, member: &[u8]) -> io::Result<u64> {
        let file = self.file()?;
        let before = file.metadata()?.len();
        if let Err(e) = file.write_all(member) {
            // Never leave half a member behind: later members would be unreadable.
            let _ = file.set_len(before);
            return Err(e);
        }
        self.file_len = before + member.len() as u64;
        Ok(member.len() as u64)
    }

    fn flush_buffer(&mut self) -> io::Result<()> {
        if self.buf.is_empty() && self.sent == 0 {
            return Ok(());
        }
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            // Still backing off after a failure: keep the lines.
            return Ok(());
        }
        let start = Instant::now();
        let result = self.write_member();
        self.counters.flush_seconds.observe(start.elapsed());
        match result {
            Ok(bytes) => {
                if self.failures > 0 {
                    log::warn!(
                        "{}: writing again after {} failed attempts",
                        self.path.display(),
                        self.failures
                    );
                }
                self.counters.written += self.buf_lines;
                self.counters.bytes += bytes;
                self.counters.flushes += 1;
                self.buf.clear();
                self.buf_lines = 0;
                self.buf_records = 0;
                self.counters.buffered = 0;
                self.retry_at = None;
                self.backoff = Duration::ZERO;
                self.failures = 0;
                Ok(())
            }
            Err(e) => {
                self.counters.errors += 1;
                self.failures += 1;
                self.backoff = (self.backoff * 2).clamp(BACKOFF_FIRST, BACKOFF_MAX);
                self.retry_at = Some(Instant::now() + self.backoff);
                let kept = if self.buf.len() > self.max_buffer {
                    let n = (self.buf_lines, self.buf_records);
                    self.drop_buffer();
                    format!(
                        "{} lines ({} records) dropped: more than {} bytes buffered",
                        n.0, n.1, self.max_buffer
                    )
                } else {
                    format!(
                        "{} lines ({} records, {} bytes) kept in memory",
                        self.buf_lines,
                        self.buf_records,
                        self.buf.len()
                    )
                };
                Err(io::Error::new(
                    e.kind(),
                    format!(
                        "cannot write {}: {e}; {kept}, trying again in {} s",
                        self.path.display(),
                        self.backoff.as_secs()
                    ),
                ))
            }
        }
    }

    fn rotation_due(&self) -> bool {
        self.file.is_some()
            && self.file_len > 0
            && (self
                .rotation
                .interval
                .is_some_and(|i| self.opened.elapsed() >= i)
                || self.rotation.size.is_some_and(|s| self.file_len >= s))
    }

    /// Sync and close the file; the next one is created at the next write.
    fn rotate(&mut self) -> io::Result<()> {
        if let Some(file) = &self.file {
            file.sync_all().map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot sync {}: {e}", self.path.display()),
                )
            })?;
            log::info!("closed {}", self.path.display());
            self.counters.rotations += 1;
        }
        self.file = None;
        self.file_len = 0;
        self.rename_next = self.named();
        if !self.rename_next {
            // Without rotation or pattern: the same path, reopened now (after
            // logrotate moved it, the file is expected back at once).
            self.file()?;
        }
        Ok(())
    }
}

impl Sink for FileSink {
    fn write(&mut self, export: &Export<'_>) -> io::Result<()> {
        let lines = write_export(self.format, &mut self.buf, export) as u64;
        let records = export.sets.iter().map(|s| s.record_count as u64).sum();
        self.buffered(lines, records)
    }

    fn line_format(&self) -> Option<Format> {
        Some(self.format)
    }

    fn write_lines(&mut self, bytes: &[u8], lines: u64, records: u64) -> io::Result<()> {
        self.buf.extend_from_slice(bytes);
        self.buffered(lines, records)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_buffer()?;
        if self.reopen.swap(false, Ordering::Relaxed) || self.rotation_due() {
            self.rotate()?;
        }
        Ok(())
    }

    fn close(&mut self) -> io::Result<()> {
        // A last attempt, backoff or not.
        self.retry_at = None;
        self.flush_buffer()?;
        if let Some(file) = &self.file {
            file.sync_all()?;
        }
        Ok(())
    }

    fn counters(&self) -> SinkCounters {
        self.counters
    }
}

/// One decoded export, owned: what [`crate::Collector::bind`] delivers.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportItem {
    /// Receive time, seconds since the Unix epoch.
    pub received: f64,
    /// The exporter's address (IPv4-mapped IPv6 addresses are given as IPv4).
    pub exporter: SocketAddr,
    /// The header of the datagram the records came in.
    pub header: Header,
    /// Flow and options records (see [`OwnedRecord::options`]), in wire order.
    pub records: Vec<OwnedRecord>,
}

impl ExportItem {
    /// An owned copy of what a [`Sink`] is handed.
    pub fn from_export(export: &Export<'_>) -> ExportItem {
        ExportItem {
            received: export.received,
            exporter: export.exporter,
            header: *export.header,
            records: export
                .sets
                .iter()
                .flat_map(|s| s.records().map(|r| r.to_owned_record()))
                .collect(),
        }
    }
}

/// A sink that sends [`ExportItem`]s on a bounded channel. A full channel
/// blocks the receive path (back-pressure) until there is room or the
/// receiver is gone (then items are dropped and counted).
#[derive(Debug)]
pub struct ChannelSink {
    tx: SyncSender<ExportItem>,
    counters: SinkCounters,
    /// Times `write` found the channel full.
    pub full: u64,
}

impl ChannelSink {
    pub fn new(tx: SyncSender<ExportItem>) -> ChannelSink {
        ChannelSink {
            tx,
            counters: SinkCounters::default(),
            full: 0,
        }
    }
}

impl Sink for ChannelSink {
    fn write(&mut self, export: &Export<'_>) -> io::Result<()> {
        let mut item = ExportItem::from_export(export);
        let mut waited = false;
        loop {
            match self.tx.try_send(item) {
                Ok(()) => {
                    self.counters.written += 1;
                    return Ok(());
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.counters.dropped += 1;
                    return Ok(());
                }
                Err(TrySendError::Full(back)) => {
                    if !waited {
                        self.full += 1;
                        waited = true;
                    }
                    item = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
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
