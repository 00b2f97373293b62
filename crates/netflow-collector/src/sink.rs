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

use flate2::write::GzEncoder;
use flate2::Compression;
use netflow::{Header, OwnedRecord};
use netflow_store::{write_export, Export, Format};

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
/// (`dir/flows` gives `dir/flows.<secs>`), and `n > 0` adds `-n` after the
/// seconds (several files in the same second).
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
    let file = match name.strip_suffix(".gz") {
        Some(stem) => format!("{stem}.{suffix}.gz"),
        None => format!("{name}.{suffix}"),
    };
    base.with_file_name(file)
}

/// Gzip JSON lines ([`netflow_store::write_export`]) appended to a file.
///
/// Lines are buffered in memory and written at each [`flush`](Sink::flush) as
/// one complete gzip member with a single `write` call (the file is a
/// concatenation of members; read it with a multi-member reader such as
/// `flate2::read::MultiGzDecoder`, `zcat` or Python's `gzip`). So a crash
/// loses at most what was not flushed yet and never leaves a damaged member:
/// if a write fails (disk full, I/O error) the file is cut back to its length
/// before the member and the lines stay buffered for the next flush, up to
/// [`FileSink::max_buffer`] bytes; beyond that they are dropped and counted.
///
/// With a [`Rotation`] ([`FileSink::with_rotation`]) the files are named
/// after the given path by [`rotated_path`] (`flows.gz` → `flows.<unix
/// seconds at opening>.gz`); at a flush where the rotation is due, the buffer
/// is written, the file synced and closed, and the next one opened (a file
/// with nothing written is kept open; [`Sink::close`] removes it). [`FileSink::reopen_flag`] asks for a
/// new file (or, without rotation, the same path reopened, e.g. after
/// logrotate moved it) at the next flush.
#[derive(Debug)]
pub struct FileSink {
    base: PathBuf,
    path: PathBuf,
    file: File,
    file_len: u64,
    opened: Instant,
    rotation: Rotation,
    reopen: Arc<AtomicBool>,
    format: Format,
    buf: Vec<u8>,
    buf_lines: u64,
    /// Buffered bytes that trigger a flush from `write`.
    pub flush_at: usize,
    /// Buffered bytes kept at most while writes fail.
    pub max_buffer: usize,
    counters: SinkCounters,
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn open_append(path: &Path) -> io::Result<(File, u64)> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let len = file.metadata()?.len();
    Ok((file, len))
}

/// A rotated file name not taken yet.
fn next_rotated(base: &Path) -> PathBuf {
    let secs = unix_secs();
    let mut n = 0;
    loop {
        let p = rotated_path(base, secs, n);
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
    /// after `base` by [`rotated_path`] instead of `base` itself.
    pub fn with_rotation(
        base: impl AsRef<Path>,
        format: Format,
        rotation: Rotation,
    ) -> io::Result<FileSink> {
        let base = base.as_ref().to_path_buf();
        let path = if rotation.is_enabled() {
            next_rotated(&base)
        } else {
            base.clone()
        };
        let (file, file_len) = open_append(&path)?;
        Ok(FileSink {
            base,
            path,
            file,
            file_len,
            opened: Instant::now(),
            rotation,
            reopen: Arc::new(AtomicBool::new(false)),
            format,
            buf: Vec::with_capacity(1 << 16),
            buf_lines: 0,
            flush_at: 8 << 20,
            max_buffer: 64 << 20,
            counters: SinkCounters::default(),
        })
    }

    /// The file written now.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Set it (e.g. from a SIGHUP handler) to have the next flush close the
    /// file and open a new one.
    pub fn reopen_flag(&self) -> Arc<AtomicBool> {
        self.reopen.clone()
    }

    /// Append already formatted lines (`count` of them, each ending in `\n`).
    pub fn append_lines(&mut self, lines: &[u8], count: u64) -> io::Result<()> {
        self.buf.extend_from_slice(lines);
        self.buf_lines += count;
        self.counters.buffered = self.buf_lines;
        if self.buf.len() >= self.flush_at {
            return self.flush();
        }
        Ok(())
    }

    fn write_member(&mut self) -> io::Result<u64> {
        let mut gz = GzEncoder::new(
            Vec::with_capacity(self.buf.len() / 4 + 64),
            Compression::default(),
        );
        gz.write_all(&self.buf)?;
        let member = gz.finish()?;
        let before = self.file.metadata()?.len();
        if let Err(e) = self.file.write_all(&member) {
            // Never leave half a member behind: later members would be unreadable.
            let _ = self.file.set_len(before);
            return Err(e);
        }
        self.file_len = before + member.len() as u64;
        Ok(member.len() as u64)
    }

    fn flush_buffer(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let start = Instant::now();
        let result = self.write_member();
        self.counters.flush_seconds.observe(start.elapsed());
        match result {
            Ok(bytes) => {
                self.counters.written += self.buf_lines;
                self.counters.bytes += bytes;
                self.counters.flushes += 1;
                self.buf.clear();
                self.buf_lines = 0;
                self.counters.buffered = 0;
                Ok(())
            }
            Err(e) => {
                self.counters.errors += 1;
                if self.buf.len() > self.max_buffer {
                    self.counters.dropped += self.buf_lines;
                    self.buf.clear();
                    self.buf_lines = 0;
                    self.counters.buffered = 0;
                }
                Err(io::Error::new(
                    e.kind(),
                    format!("cannot write {}: {e}", self.path.display()),
                ))
            }
        }
    }

    fn rotation_due(&self) -> bool {
        self.file_len > 0
            && (self
                .rotation
                .interval
                .is_some_and(|i| self.opened.elapsed() >= i)
                || self.rotation.size.is_some_and(|s| self.file_len >= s))
    }

    /// Sync and close the file, open the next one.
    fn rotate(&mut self) -> io::Result<()> {
        let err = |e: io::Error, p: &Path| {
            io::Error::new(e.kind(), format!("cannot open {}: {e}", p.display()))
        };
        self.file.sync_all().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot sync {}: {e}", self.path.display()),
            )
        })?;
        let next = if self.rotation.is_enabled() {
            next_rotated(&self.base)
        } else {
            self.base.clone()
        };
        let (file, len) = open_append(&next).map_err(|e| err(e, &next))?;
        log::info!("closed {}, writing {}", self.path.display(), next.display());
        self.file = file;
        self.file_len = len;
        self.path = next;
        self.opened = Instant::now();
        self.counters.rotations += 1;
        Ok(())
    }
}

impl Sink for FileSink {
    fn write(&mut self, export: &Export<'_>) -> io::Result<()> {
        let n = write_export(self.format, &mut self.buf, export) as u64;
        self.buf_lines += n;
        self.counters.buffered = self.buf_lines;
        if self.buf.len() >= self.flush_at {
            return self.flush();
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_buffer()?;
        if self.reopen.swap(false, Ordering::Relaxed) || self.rotation_due() {
            self.rotate()?;
        }
        Ok(())
    }

    fn close(&mut self) -> io::Result<()> {
        self.flush_buffer()?;
        self.file.sync_all()?;
        if self.rotation.is_enabled() && self.file_len == 0 {
            // The next file of a rotation, opened but never written to.
            let _ = std::fs::remove_file(&self.path);
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
