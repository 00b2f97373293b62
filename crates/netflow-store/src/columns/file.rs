//! Writing and reading columns files (layout: see the [module
//! documentation](super)).

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::packed::{self, Packer, PACKED};
use super::{Batch, Column, ColumnData, COLUMNS};

/// The first 8 bytes of a columns file.
pub const FILE_MAGIC: &[u8; 8] = b"NFCOLS\r\n";
/// Format version written (and the highest read). Version 2 added the
/// columns `src_mask` to `vlan` (ids 37 to 42), whose fields version 1
/// kept in `extra`: a reader of version 1 would skip them as unknown
/// columns and lose those fields, so it must refuse the file instead.
/// Version 1 files read as they are (those fields from `extra`). Version
/// 3 added a codec ([`CODEC_LZ4_PLANES`]) that a version 2 reader does not
/// know, version 4 two more ([`CODEC_LZ4_ADDR`], [`CODEC_RAW_ADDR`]),
/// version 5 two more ([`CODEC_LZ4_ADDR_PLANES`], [`CODEC_RAW_ADDR_PLANES`],
/// which it writes instead of version 4's); version 6 added the MAC
/// address columns (`src_mac`, `dst_mac`), whose fields earlier versions
/// keep in `extra` (a version 5 reader would skip the columns and lose
/// them, as a version 1 reader the columns of version 2); version 7 a
/// codec ([`CODEC_LZ4_DELTA_PLANES`]); version 8 the [`PACKED`] flag,
/// which a version 7 reader would ignore (and read the packed form as
/// LZ4); version 9 the v7 record's own fields as columns (`v7_flags1`,
/// `v7_flags2`, `router_sc`; earlier versions keep them in `extra`, and a
/// version 8 reader would skip the columns and lose them). Files of every
/// earlier version read as they are.
pub const VERSION: u16 = 9;
const FILE_HEADER_LEN: u64 = 16;
const BLOCK_MAGIC: &[u8; 4] = b"NFCB";
const FOOTER_MAGIC: &[u8; 4] = b"NFCF";
const END_MAGIC: &[u8; 8] = b"NFCEND\r\n";
const BLOCK_HEADER_LEN: usize = 36;
const DIR_ENTRY_LEN: usize = 16;
const FOOTER_ENTRY_LEN: usize = 28;
const CODEC_RAW: u8 = 0;
const CODEC_LZ4: u8 = 1;
/// The values' bytes as planes (every row's first byte, then every row's
/// second, ...; the validity bitmap before them as it is), then LZ4. Times,
/// counters and interface numbers differ from row to row in their low
/// bytes only: in planes their high bytes are long runs, which LZ4 takes in
/// a few instructions and stores in a few bytes. On the generator's v9
/// stream LZ4 took 38 % fewer instructions (the writer thread 27 % fewer,
/// planes included) and the file was 24 % smaller (BENCHMARKS.md, session 7).
const CODEC_LZ4_PLANES: u8 = 2;
/// An address column split by family (the validity bitmap before it as it
/// is, then: a bitmap with bit i set when row i is IPv4-mapped (`::ffff:
/// a.b.c.d`, how IPv4 addresses are kept) or, without a value, zeros; the
/// last 4 bytes of every row; the first 12 bytes of every other row, in row
/// order), then LZ4. As 16-byte rows, LZ4 took a sequence for every IPv4
/// row (12 bytes matched, 4 literal): the three address columns were 60 %
/// of the writer's LZ4 time on the generator's v9 stream
/// (BENCHMARKS.md, session 9).
const CODEC_LZ4_ADDR: u8 = 3;
/// As [`CODEC_LZ4_ADDR`], stored as is (LZ4 did not make it smaller).
const CODEC_RAW_ADDR: u8 = 4;
/// The split of [`CODEC_LZ4_ADDR`] with its two parts as byte planes: the
/// last 4 bytes of every row as 4 planes (byte 12 of every row, then byte
/// 13, ...), the first 12 bytes of the rows that are not IPv4 as 12 planes
/// (of those rows only), then LZ4. On the generator's v9 stream (30 % IPv6
/// flows; `examples/column_costs.rs`), LZ4 took 2.2 ms instead of 4.4 ms
/// for the source address's parts of six 65,536-row blocks and stored 25 %
/// fewer bytes: the IPv6 prefixes' constant bytes become runs, and the
/// first bytes of the IPv4 addresses, of few values, no longer sit
/// between the random last ones (BENCHMARKS.md, session 11).
const CODEC_LZ4_ADDR_PLANES: u8 = 5;
/// As [`CODEC_LZ4_ADDR_PLANES`], stored as is.
const CODEC_RAW_ADDR_PLANES: u8 = 6;
/// A raw time column (`first_raw`, `last_raw`) stored as its difference to
/// the absolute one of the same row (`start_ms`, `end_ms`; the 8-byte
/// wrapping difference of the two columns' values as little-endian `u64`,
/// see [`delta_base`]), as byte planes (the validity bitmap before them
/// as it is), then LZ4. Where the exporter gives times relative to its
/// uptime (v1 to v9), the absolute time is the raw one plus one value per
/// export (export time less uptime): the difference is that value, a run
/// LZ4 stores in a few bytes. As their own values the two took 5.0 of the
/// 31.6 bytes a row of the generator's v5 blocks after LZ4, as
/// differences 0.06 (`examples/column_costs`, BENCHMARKS.md, session 19).
const CODEC_LZ4_DELTA_PLANES: u8 = 7;
const HAS_BITMAP: u8 = 1;
/// Largest `extra` column accepted when reading (a corrupt length must not
/// make the reader allocate gigabytes).
const MAX_VAR_COLUMN: usize = 1 << 30;

/// A problem with a columns file: where (file, byte offset) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnError {
    pub path: PathBuf,
    pub offset: u64,
    pub message: String,
}

impl fmt::Display for ColumnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: at byte offset {}: {}",
            self.path.display(),
            self.offset,
            self.message
        )
    }
}

impl std::error::Error for ColumnError {}

/// A block's place and summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockInfo {
    /// Byte offset of the block header in the file.
    pub offset: u64,
    pub rows: u32,
    /// Range of the rows' flow time (see the module documentation).
    pub min_time_ms: i64,
    pub max_time_ms: i64,
}

#[derive(Debug, Clone, Copy)]
struct DirEntry {
    id: u16,
    codec: u8,
    flags: u8,
    stored_len: u32,
    raw_len: u32,
    crc: u32,
    /// Offset of the stored bytes in the file.
    at: u64,
}

/// The 16-byte file header.
pub fn file_header() -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..8].copy_from_slice(FILE_MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// One block ready to be written: the bytes and its summary (offset 0
/// until written).
#[derive(Debug, Clone)]
pub struct EncodedBlock {
    pub bytes: Vec<u8>,
    pub info: BlockInfo,
}

/// Encode `batch` as one block (LZ4 per column, stored raw when that is not smaller).
pub fn encode_block(batch: &Batch) -> EncodedBlock {
    let mut encoder = BlockEncoder::default();
    let info = encoder.encode(batch).1;
    let mut bytes = std::mem::take(&mut encoder.out);
    bytes.truncate(encoder.len);
    EncodedBlock { bytes, info }
}

/// [`encode_block`] for a writer of many blocks (the collector): the
/// block is built in buffers kept from one block to the next, each
/// column compressed straight into its place in the block, and a column
/// without nulls compressed from its values where they are. A new
/// buffer per column and block, and three copies of every stored byte,
/// were a tenth of the collector's writer thread.
///
/// [`with_helper`](Self::with_helper): the columns of a block of at least
/// [`HELPER_ROWS`] rows are encoded by two threads, the calling one and a
/// helper, each a run of consecutive columns (split where the larger of
/// the two runs' encoding times in the last block is least), then put
/// together: the same bytes as one thread makes.
#[derive(Debug, Default)]
pub struct BlockEncoder {
    /// The block: header, column directory, stored columns (its first
    /// `len` bytes; the rest is room kept for the next blocks).
    out: Vec<u8>,
    len: usize,
    /// The buffers of the columns the calling thread encodes.
    columns: ColumnsEncoder,
    /// [`with_helper`](Self::with_helper): the helper's buffers.
    helper: Option<Box<Helper>>,
    /// Per column (`Column as usize`): how many of the next blocks store
    /// it as is without trying LZ4, because the last block tried did not
    /// compress ([`INCOMPRESSIBLE`]). Empty until the first block.
    skip_lz4: Vec<u8>,
    /// Per column, with a helper: nanoseconds its encoding took in the last
    /// block that stored it (where the columns are split).
    cost_ns: Vec<u64>,
    /// Columns the helper encoded in the last block (0: one thread did).
    helper_columns: usize,
}

/// A thread's buffers for encoding columns.
#[derive(Debug, Default)]
struct ColumnsEncoder {
    /// A column's bitmap and values (and offsets) when they must be put
    /// together before compressing.
    raw: Vec<u8>,
    /// Packs the planes of few values ([`PACKED`]).
    packer: Packer,
    /// The lengths of the segments of the column being packed.
    lens: Vec<usize>,
    /// Room for the IPv6 rows' first 12 bytes (`to_address_parts`).
    heads: Vec<[u8; 12]>,
    /// The directory entries of the columns encoded.
    dir: Vec<u8>,
}

/// The helper thread's buffers: its columns' and their stored bytes.
#[derive(Debug, Default)]
struct Helper {
    columns: ColumnsEncoder,
    out: Vec<u8>,
}

/// The columns of one thread: which, and their part of the encoder's state
/// (`skip_lz4` and `cost_ns` from column `first` on).
struct ColumnRun<'a> {
    batch: &'a Batch,
    columns: &'a [Column],
    first: usize,
    skip_lz4: &'a mut [u8],
    cost_ns: &'a mut [u64],
    timed: bool,
}

/// Blocks of fewer rows are encoded by one thread (a thread started per
/// block costs tens of microseconds; a block of 8,192 v5 rows takes about
/// a millisecond to encode).
pub const HELPER_ROWS: usize = 8192;

/// A column LZ4 made no smaller than this part of its input (`n / 16`:
/// 15/16, 94 %) is stored as is in the next [`SKIP_BLOCKS`] blocks
/// without trying: random-looking values (the generator's ports, 96 % of
/// their size after LZ4) cost LZ4 its slowest bytes, a search for
/// matches at every few bytes, to save a few percent of them (ports were
/// 5 % of the writer's encoding, `examples/column_costs`). Then it is
/// tried again, so a column whose values change character is compressed
/// again within that many blocks.
const INCOMPRESSIBLE: usize = 15;
const SKIP_BLOCKS: u8 = 8;

impl BlockEncoder {
    /// An encoder that encodes the columns of large blocks on two threads
    /// (see [`BlockEncoder`]): for a writer whose own thread is the busiest
    /// (the collector's, where encoding and writing a block took 60 % of
    /// the CPU of the generator's v5 stream) on a machine with a core to
    /// spare.
    pub fn with_helper() -> BlockEncoder {
        BlockEncoder {
            helper: Some(Box::default()),
            ..BlockEncoder::default()
        }
    }

    /// Columns the helper thread encoded in the last block (0 when the
    /// calling thread encoded them all).
    pub fn helper_columns(&self) -> usize {
        self.helper_columns
    }

    /// The block's bytes (until the next call) and its summary (offset 0
    /// until written).
    pub fn encode(&mut self, batch: &Batch) -> (&[u8], BlockInfo) {
        let rows = batch.rows();
        // No row has a value: not stored (an absent column reads as all nulls).
        let stored: Vec<Column> = Column::ALL
            .iter()
            .copied()
            .filter(|c| {
                batch
                    .column(*c)
                    .is_some_and(|col| rows == 0 || col.nulls < rows)
            })
            .collect();
        let ncols = stored.len();
        let dir_at = BLOCK_HEADER_LEN;
        let data_at = dir_at + ncols * DIR_ENTRY_LEN;
        // `out` only grows: every byte of the block is written below (the
        // header, each directory entry and each column whole), so the room
        // for a column's compressed bytes is not zeroed again before every
        // column, as resizing and truncating it was (a tenth of the
        // writer thread, in `memset`).
        let out = &mut self.out;
        if out.len() < data_at {
            out.resize(data_at, 0);
        }
        self.skip_lz4.resize(COLUMNS, 0);
        self.cost_ns.resize(COLUMNS, 0);
        let helper = self.helper.as_deref_mut().filter(|_| rows >= HELPER_ROWS);
        let timed = helper.is_some();
        // The helper's run: the last columns, from where the larger of the
        // two runs' costs is least (a column not timed yet counts its raw
        // bytes a row as nanoseconds); each run at least one column, even
        // where one column costs more than all the others.
        let split = match helper {
            Some(_) if ncols > 1 => {
                let cost = |c: &Column| match self.cost_ns[*c as usize] {
                    0 => (c.width().max(4) * rows) as u64,
                    ns => ns,
                };
                let total: u64 = stored.iter().map(cost).sum();
                let mut sum = 0;
                (1..ncols)
                    .map(|mine| {
                        sum += cost(&stored[mine - 1]);
                        (sum.max(total - sum), mine)
                    })
                    .min()
                    .map_or(ncols, |(_, mine)| mine)
            }
            _ => ncols,
        };
        let (mine, theirs) = stored.split_at(split);
        let first_theirs = theirs.first().map_or(COLUMNS, |c| *c as usize);
        let (skip_mine, skip_theirs) = self.skip_lz4.split_at_mut(first_theirs);
        let (cost_mine, cost_theirs) = self.cost_ns.split_at_mut(first_theirs);
        let run = |columns, first, skip_lz4, cost_ns| ColumnRun {
            batch,
            columns,
            first,
            skip_lz4,
            cost_ns,
            timed,
        };
        let mine = run(mine, 0, skip_mine, cost_mine);
        let theirs = run(theirs, first_theirs, skip_theirs, cost_theirs);
        let columns = &mut self.columns;
        let out = &mut self.out;
        let helped = match helper {
            Some(helper) if !theirs.columns.is_empty() => {
                let Helper {
                    columns: helper_columns,
                    out: helper_out,
                } = helper;
                let ends = std::thread::scope(|scope| {
                    let theirs = std::thread::Builder::new()
                        .name("netflow-encode".into())
                        .spawn_scoped(scope, || helper_columns.encode(theirs, helper_out, 0))
                        .ok()?;
                    let end = columns.encode(mine, out, data_at);
                    // A panic of the helper (a bug) is this thread's.
                    let helper_end = theirs
                        .join()
                        .unwrap_or_else(|e| std::panic::resume_unwind(e));
                    Some((end, helper_end))
                });
                ends.map(|(end, helper_end)| {
                    if out.len() < end + helper_end {
                        out.resize(end + helper_end, 0);
                    }
                    out[end..end + helper_end].copy_from_slice(&helper_out[..helper_end]);
                    columns.dir.extend_from_slice(&helper_columns.dir);
                    end + helper_end
                })
            }
            _ => None,
        };
        // One thread: no helper, a small block, or no thread to be had
        // (then every column here, none encoded yet).
        let (end, split) = match helped {
            Some(end) => (end, split),
            None => {
                let all = ColumnRun {
                    batch,
                    columns: &stored,
                    first: 0,
                    skip_lz4: &mut self.skip_lz4,
                    cost_ns: &mut self.cost_ns,
                    timed,
                };
                (self.columns.encode(all, &mut self.out, data_at), ncols)
            }
        };
        self.helper_columns = ncols - split;
        let out = &mut self.out;
        out[dir_at..data_at].copy_from_slice(&self.columns.dir);
        let (min, max) = batch.time_range().unwrap_or((0, 0));
        let body_len = (end - BLOCK_HEADER_LEN) as u32;
        let head = &mut out[..BLOCK_HEADER_LEN];
        head[0..4].copy_from_slice(BLOCK_MAGIC);
        head[4..8].copy_from_slice(&(rows as u32).to_le_bytes());
        head[8..10].copy_from_slice(&(ncols as u16).to_le_bytes());
        head[10..12].copy_from_slice(&0u16.to_le_bytes());
        head[12..16].copy_from_slice(&body_len.to_le_bytes());
        head[16..24].copy_from_slice(&min.to_le_bytes());
        head[24..32].copy_from_slice(&max.to_le_bytes());
        // The header's checksum covers the header before it and the directory.
        let mut crc = crc32fast::Hasher::new();
        crc.update(&out[..BLOCK_HEADER_LEN - 4]);
        crc.update(&out[dir_at..data_at]);
        let crc = crc.finalize();
        out[BLOCK_HEADER_LEN - 4..BLOCK_HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        self.len = end;
        (
            &out[..end],
            BlockInfo {
                offset: 0,
                rows: rows as u32,
                min_time_ms: min,
                max_time_ms: max,
            },
        )
    }
}

impl ColumnsEncoder {
    /// Encode the columns of `run` into `out` from `at` on, back to back
    /// (`out` grown as needed, never shrunk), their directory entries into
    /// `self.dir`; the end of the last one.
    fn encode(&mut self, run: ColumnRun<'_>, out: &mut Vec<u8>, mut end: usize) -> usize {
        let (batch, columns, first, timed) = (run.batch, run.columns, run.first, run.timed);
        let (skip_lz4, cost_ns) = (run.skip_lz4, run.cost_ns);
        self.dir.clear();
        let rows = batch.rows();
        let bitmap_len = rows.div_ceil(8);
        // What a raw time column is stored as differences to: its base
        // column when the block stores it (a value in some row) with a
        // value (zeros for nulls) in every row.
        let delta_base_values = |c: Column| {
            delta_base(c)
                .and_then(|b| batch.column(b))
                .filter(|col| rows > 0 && col.nulls < rows && col.values.len() == rows * 8)
                .map(|col| &col.values[..])
        };
        for c in columns {
            let Some(col) = batch.column(*c) else {
                continue;
            };
            let started = timed.then(std::time::Instant::now);
            let bitmap = col.nulls > 0;
            let i = *c as usize - first;
            let try_lz4 = skip_lz4[i] == 0;
            skip_lz4[i] = skip_lz4[i].saturating_sub(1);
            // Planes are for LZ4 and for packing, which is tried even
            // when LZ4 is not (as is, they are undone below).
            let planes = in_planes(*c);
            let delta = delta_base_values(*c).filter(|_| planes && col.values.len() == rows * 8);
            let addr = is_address(*c);
            if addr {
                let bitmap_len = bitmap.then_some(bitmap_len);
                to_address_parts(col, rows, bitmap_len, &mut self.raw, &mut self.heads);
            }
            let input: &[u8] = if addr {
                &self.raw
            } else if planes {
                let raw = &mut self.raw;
                raw.clear();
                if bitmap {
                    raw.extend_from_slice(&col.valid[..bitmap_len.min(col.valid.len())]);
                    raw.resize(bitmap_len, 0);
                }
                match delta {
                    Some(base) => to_planes_8::<true>(&col.values, base, raw),
                    None => to_planes(&col.values, c.width(), raw),
                }
                raw
            } else if !bitmap && c.width() != 0 {
                &col.values
            } else {
                let raw = &mut self.raw;
                raw.clear();
                if bitmap {
                    raw.extend_from_slice(&col.valid[..bitmap_len.min(col.valid.len())]);
                    raw.resize(bitmap_len, 0);
                }
                if c.width() == 0 {
                    for o in &col.offsets {
                        raw.extend_from_slice(&o.to_le_bytes());
                    }
                }
                raw.extend_from_slice(&col.values);
                raw
            };
            let at = end;
            // The codec for `input` through LZ4, which names its layout
            // (also when packed).
            let layout = if addr {
                CODEC_LZ4_ADDR_PLANES
            } else if delta.is_some() {
                CODEC_LZ4_DELTA_PLANES
            } else if planes {
                CODEC_LZ4_PLANES
            } else {
                CODEC_LZ4
            };
            // Bitmaps and byte planes, each a segment: those of few
            // values packed, the rest LZ4 or as is.
            let packed = if addr || planes || c.width() == 1 {
                let prefix =
                    if bitmap { bitmap_len } else { 0 } + if addr { rows.div_ceil(8) } else { 0 };
                let planes_of_rows = if addr { 4 } else { c.width() };
                let lens = &mut self.lens;
                lens.clear();
                lens.push(prefix);
                lens.extend(std::iter::repeat_n(rows, planes_of_rows));
                // The first 12 bytes of the addresses that are not IPv4.
                let others = input.len() - prefix - planes_of_rows * rows;
                lens.extend(std::iter::repeat_n(
                    others / 12,
                    if others > 0 { 12 } else { 0 },
                ));
                self.packer
                    .pack(input, lens, try_lz4, INCOMPRESSIBLE, out, at)
            } else {
                None
            };
            if let Some(packed) = packed {
                end = packed.end;
                if packed.incompressible {
                    skip_lz4[i] = SKIP_BLOCKS;
                }
                let flags = PACKED | if bitmap { HAS_BITMAP } else { 0 };
                self.dir.extend_from_slice(&dir_entry(
                    *c,
                    layout,
                    flags,
                    &out[at..end],
                    input.len(),
                ));
                if let Some(started) = started {
                    cost_ns[i] = started.elapsed().as_nanos().max(1) as u64;
                }
                continue;
            }
            // At least `input.len()`: room for the column stored raw too.
            let room = at + lz4_flex::block::get_maximum_output_size(input.len());
            if out.len() < room {
                out.resize(room, 0);
            }
            let compressed = if try_lz4 {
                let n = lz4_flex::block::compress_into(input, &mut out[at..room])
                    .expect("the output is sized by get_maximum_output_size");
                if n * 16 > input.len() * INCOMPRESSIBLE {
                    skip_lz4[i] = SKIP_BLOCKS;
                }
                n
            } else {
                usize::MAX
            };
            let codec = if compressed < input.len() {
                end = at + compressed;
                layout
            } else if addr {
                end = at + input.len();
                out[at..end].copy_from_slice(input);
                CODEC_RAW_ADDR_PLANES
            } else {
                // Stored as is: the values as rows, not planes (the
                // bitmap, if any, is the same).
                end = at + input.len();
                if planes {
                    let values_at = input.len() - col.values.len();
                    out[at..at + values_at].copy_from_slice(&input[..values_at]);
                    out[at + values_at..end].copy_from_slice(&col.values);
                } else {
                    out[at..end].copy_from_slice(input);
                }
                CODEC_RAW
            };
            let flags = if bitmap { HAS_BITMAP } else { 0 };
            self.dir
                .extend_from_slice(&dir_entry(*c, codec, flags, &out[at..end], input.len()));
            if let Some(started) = started {
                cost_ns[i] = started.elapsed().as_nanos().max(1) as u64;
            }
        }
        end
    }
}

/// The directory entry of column `c` stored as `stored`, `raw_len` bytes
/// before compression.
fn dir_entry(
    c: Column,
    codec: u8,
    flags: u8,
    stored: &[u8],
    raw_len: usize,
) -> [u8; DIR_ENTRY_LEN] {
    let mut entry = [0u8; DIR_ENTRY_LEN];
    entry[0..2].copy_from_slice(&(c as u16).to_le_bytes());
    entry[2] = codec;
    entry[3] = flags;
    entry[4..8].copy_from_slice(&(stored.len() as u32).to_le_bytes());
    entry[8..12].copy_from_slice(&(raw_len as u32).to_le_bytes());
    entry[12..16].copy_from_slice(&crc32fast::hash(stored).to_le_bytes());
    entry
}

/// The footer indexing `blocks` (written at close).
pub fn footer(blocks: &[BlockInfo]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + blocks.len() * FOOTER_ENTRY_LEN + 16);
    f.extend_from_slice(FOOTER_MAGIC);
    f.extend_from_slice(&(blocks.len() as u32).to_le_bytes());
    for b in blocks {
        f.extend_from_slice(&b.offset.to_le_bytes());
        f.extend_from_slice(&b.rows.to_le_bytes());
        f.extend_from_slice(&b.min_time_ms.to_le_bytes());
        f.extend_from_slice(&b.max_time_ms.to_le_bytes());
    }
    let crc = crc32fast::hash(&f);
    let len = f.len() as u32 + 4;
    f.extend_from_slice(&crc.to_le_bytes());
    f.extend_from_slice(&len.to_le_bytes());
    f.extend_from_slice(END_MAGIC);
    f
}

/// Writes a columns file to any writer: the header at once, a block per
/// [`write_block`](Self::write_block), the footer at [`finish`](Self::finish).
#[derive(Debug)]
pub struct ColumnWriter<W: Write> {
    out: W,
    pos: u64,
    index: Vec<BlockInfo>,
}

impl<W: Write> ColumnWriter<W> {
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&file_header())?;
        Ok(ColumnWriter {
            out,
            pos: FILE_HEADER_LEN,
            index: Vec::new(),
        })
    }

    /// Write `batch` as one block (nothing for an empty batch); returns the bytes written.
    pub fn write_block(&mut self, batch: &Batch) -> io::Result<usize> {
        if batch.is_empty() {
            return Ok(0);
        }
        let mut block = encode_block(batch);
        self.out.write_all(&block.bytes)?;
        block.info.offset = self.pos;
        self.pos += block.bytes.len() as u64;
        self.index.push(block.info);
        Ok(block.bytes.len())
    }

    /// Write the footer and flush; returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&footer(&self.index))?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// What [`ColumnFile::open`] found besides blocks.
#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    /// The file ends with a footer (it was closed, not killed).
    pub complete: bool,
    /// Damaged or cut parts (reading went on after them where it could).
    pub problems: Vec<ColumnError>,
    /// Offset just past the last good block or footer: where a writer
    /// appending to the file goes on (cutting a torn tail).
    pub good_len: u64,
}

/// A block read back with the columns asked for.
pub type ReadBlock = Batch;

/// A columns file opened for reading: the blocks found by walking their
/// headers, read on demand ([`read_block`](Self::read_block), any thread).
#[derive(Debug)]
pub struct ColumnFile {
    file: File,
    path: PathBuf,
    version: u16,
    blocks: Vec<(BlockInfo, Vec<DirEntry>)>,
    report: ScanReport,
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn le_i64(b: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Read up to `len` bytes at `at` (fewer at the end of the file).
fn read_upto(file: &File, at: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match file.read_at(&mut buf[got..], at + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// Whether the first bytes of a file are the columns magic.
pub fn is_columns_file(head: &[u8]) -> bool {
    head.starts_with(FILE_MAGIC)
}

impl ColumnFile {
    /// Open `path` and walk its blocks. Fails only when the file cannot be
    /// read or is not a columns file; damage inside is in
    /// [`problems`](Self::problems) and the good blocks are still read.
    pub fn open(path: impl AsRef<Path>) -> io::Result<ColumnFile> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path)?;
        let len = file.metadata()?.len();
        let head = read_upto(&file, 0, FILE_HEADER_LEN as usize)?;
        if !is_columns_file(&head) || head.len() < FILE_HEADER_LEN as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: not a netflow columns file", path.display()),
            ));
        }
        let version = le_u16(&head, 8);
        if version > VERSION {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: columns format version {version} (this build reads up to {VERSION})",
                    path.display()
                ),
            ));
        }
        let mut f = ColumnFile {
            file,
            path,
            version,
            blocks: Vec::new(),
            report: ScanReport::default(),
        };
        f.scan(len)?;
        Ok(f)
    }

    fn problem(&mut self, offset: u64, message: String) {
        self.report.problems.push(ColumnError {
            path: self.path.clone(),
            offset,
            message,
        });
    }

    fn scan(&mut self, len: u64) -> io::Result<()> {
        let mut pos = FILE_HEADER_LEN;
        self.report.good_len = pos;
        while pos < len {
            let head = read_upto(&self.file, pos, BLOCK_HEADER_LEN)?;
            if head.starts_with(FOOTER_MAGIC) && head.len() >= 8 {
                let n = le_u32(&head, 4) as u64;
                let total = 8 + n * FOOTER_ENTRY_LEN as u64 + 4 + 4 + 8;
                if pos + total > len {
                    self.problem(
                        pos,
                        format!("footer cut: needs {total} bytes, the file ends at {len}"),
                    );
                    return Ok(());
                }
                let tail = read_upto(&self.file, pos + total - 8, 8)?;
                if tail != END_MAGIC {
                    self.problem(
                        pos,
                        "damaged footer (no end mark); looking for the next block".into(),
                    );
                    pos = self.resync(pos + 1, len)?;
                    continue;
                }
                pos += total;
                self.report.good_len = pos;
                self.report.complete = pos == len;
                continue;
            }
            if !head.starts_with(BLOCK_MAGIC) {
                self.problem(
                    pos,
                    "no block starts here (bad magic); looking for the next block".into(),
                );
                pos = self.resync(pos + 1, len)?;
                continue;
            }
            if head.len() < BLOCK_HEADER_LEN {
                self.problem(
                    pos,
                    format!(
                        "block header cut at the end of the file ({} of {BLOCK_HEADER_LEN} bytes; the writer was stopped while writing it)",
                        head.len()
                    ),
                );
                return Ok(());
            }
            match self.block_at(pos, &head, len)? {
                Ok((info, dir, end)) => {
                    self.blocks.push((info, dir));
                    self.report.complete = false;
                    pos = end;
                    self.report.good_len = pos;
                }
                Err((msg, cut)) => {
                    self.problem(pos, msg);
                    if cut {
                        return Ok(());
                    }
                    pos = self.resync(pos + 1, len)?;
                }
            }
        }
        Ok(())
    }

    /// Parse and check the block whose header is `head` at `pos`: its
    /// summary, directory and end; or what is wrong and whether the file is
    /// cut there (`true`) rather than damaged.
    #[allow(clippy::type_complexity)]
    fn block_at(
        &self,
        pos: u64,
        head: &[u8],
        len: u64,
    ) -> io::Result<Result<(BlockInfo, Vec<DirEntry>, u64), (String, bool)>> {
        let rows = le_u32(head, 4);
        let ncols = le_u16(head, 8) as usize;
        let body_len = le_u32(head, 12) as u64;
        let end = pos + BLOCK_HEADER_LEN as u64 + body_len;
        let dir_len = ncols * DIR_ENTRY_LEN;
        let dir = read_upto(&self.file, pos + BLOCK_HEADER_LEN as u64, dir_len)?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head[..32]);
        crc.update(&dir);
        let crc_ok = dir.len() == dir_len && crc.finalize() == le_u32(head, 32);
        if end > len {
            return Ok(Err((
                format!(
                    "block of {rows} rows cut: it needs {} bytes, the file ends at {len} (the writer was stopped while writing it; its rows are lost)",
                    end - pos
                ),
                crc_ok || dir.len() < dir_len,
            )));
        }
        if !crc_ok {
            return Ok(Err((
                "block header checksum mismatch (damaged); looking for the next block".into(),
                false,
            )));
        }
        let mut entries = Vec::with_capacity(ncols);
        let mut at = pos + BLOCK_HEADER_LEN as u64 + dir_len as u64;
        for e in dir.chunks_exact(DIR_ENTRY_LEN) {
            let d = DirEntry {
                id: le_u16(e, 0),
                codec: e[2],
                flags: e[3],
                stored_len: le_u32(e, 4),
                raw_len: le_u32(e, 8),
                crc: le_u32(e, 12),
                at,
            };
            at += d.stored_len as u64;
            entries.push(d);
        }
        if at != end {
            return Ok(Err((
                format!(
                    "block directory does not add up ({} bytes of columns, body says {})",
                    at - pos,
                    end - pos
                ),
                false,
            )));
        }
        Ok(Ok((
            BlockInfo {
                offset: pos,
                rows,
                min_time_ms: le_i64(head, 16),
                max_time_ms: le_i64(head, 24),
            },
            entries,
            end,
        )))
    }

    /// The offset of the next block header with a good checksum at or after
    /// `from`, or `len` when there is none.
    fn resync(&mut self, from: u64, len: u64) -> io::Result<u64> {
        const WINDOW: usize = 1 << 20;
        let mut at = from;
        while at < len {
            let buf = read_upto(&self.file, at, WINDOW + 3)?;
            let mut i = 0;
            while let Some(p) = buf[i..].windows(4).position(|w| w == BLOCK_MAGIC) {
                let cand = at + (i + p) as u64;
                let head = read_upto(&self.file, cand, BLOCK_HEADER_LEN)?;
                if head.len() == BLOCK_HEADER_LEN {
                    if let Ok(Ok(_)) = self.block_at(cand, &head, len) {
                        return Ok(cand);
                    }
                }
                i += p + 1;
            }
            if buf.len() <= WINDOW {
                break;
            }
            at += WINDOW as u64;
        }
        Ok(len)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format version in the file header.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The good blocks, in file order.
    pub fn blocks(&self) -> impl ExactSizeIterator<Item = &BlockInfo> {
        self.blocks.iter().map(|b| &b.0)
    }

    /// Block `index`'s summary.
    pub fn block(&self, index: usize) -> Option<&BlockInfo> {
        self.blocks.get(index).map(|b| &b.0)
    }

    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// Rows in all good blocks.
    pub fn rows(&self) -> u64 {
        self.blocks.iter().map(|b| b.0.rows as u64).sum()
    }

    /// Damaged or cut parts found while opening.
    pub fn problems(&self) -> &[ColumnError] {
        &self.report.problems
    }

    /// The file ends with a footer (closed, not killed while writing).
    pub fn is_complete(&self) -> bool {
        self.report.complete
    }

    /// Offset after the last good block (or footer).
    pub fn good_len(&self) -> u64 {
        self.report.good_len
    }

    /// Read block `index` with the `columns` asked for (others are absent in
    /// the result; a column the block does not have reads as all nulls).
    pub fn read_block(&self, index: usize, columns: &[Column]) -> Result<Batch, ColumnError> {
        let mut batch = Batch::empty();
        self.read_block_into(index, columns, &mut batch, &mut BlockScratch::default())?;
        Ok(batch)
    }

    /// Like [`read_block`](Self::read_block), into `batch` and with
    /// `scratch`, reusing their memory (a scan of many blocks then
    /// allocates, and page-faults, only for the first ones).
    pub fn read_block_into(
        &self,
        index: usize,
        columns: &[Column],
        batch: &mut Batch,
        scratch: &mut BlockScratch,
    ) -> Result<(), ColumnError> {
        self.read_block_with(index, columns, &[], batch, scratch)
    }

    /// Like [`read_block_into`](Self::read_block_into), and for the
    /// `presence` columns only which rows have a value
    /// ([`Batch::present`]; their values read as `None`): a column with a
    /// value in every row is then not even decompressed.
    pub fn read_block_with(
        &self,
        index: usize,
        values: &[Column],
        presence: &[Column],
        batch: &mut Batch,
        scratch: &mut BlockScratch,
    ) -> Result<(), ColumnError> {
        let (info, dir) = self.blocks.get(index).ok_or_else(|| ColumnError {
            path: self.path.clone(),
            offset: 0,
            message: format!("no block {index}"),
        })?;
        let rows = info.rows as usize;
        batch.rows = 0;
        batch.min_time_ms = info.min_time_ms;
        batch.max_time_ms = info.max_time_ms;
        batch.cols.resize(COLUMNS, None);
        // Columns not asked for are absent (their memory kept for later).
        for (i, col) in batch.cols.iter_mut().enumerate() {
            if !values.iter().chain(presence).any(|c| *c as usize == i) {
                if let Some(c) = col.take() {
                    scratch.spare.push(c);
                }
            }
        }
        let wanted = values.iter().map(|c| (*c, false)).chain(
            presence
                .iter()
                .filter(|p| !values.contains(p))
                .map(|c| (*c, true)),
        );
        // The columns others are stored as differences to
        // ([`CODEC_LZ4_DELTA_PLANES`]) first when asked for: those others
        // then add their values instead of reading them again.
        let is_base = |c: Column| Column::ALL.iter().any(|r| delta_base(*r) == Some(c));
        let bases = values.iter().filter(|c| is_base(**c)).map(|c| (*c, false));
        let wanted =
            bases.chain(wanted.filter(|(c, presence_only)| *presence_only || !is_base(*c)));
        // Column `c`'s values were read by this call.
        let mut read_here = [false; COLUMNS];
        for (c, presence_only) in wanted {
            let mut col = batch.cols[c as usize]
                .take()
                .or_else(|| scratch.spare.pop())
                .unwrap_or_default();
            let base = delta_base(c)
                .filter(|b| read_here[*b as usize])
                .and_then(|b| batch.cols[b as usize].as_ref())
                .map(|b| &b.values[..]);
            let read = self.read_column(info, dir, c, presence_only, base, &mut col, scratch);
            batch.cols[c as usize] = Some(col);
            read?;
            read_here[c as usize] = !presence_only;
        }
        batch.rows = rows;
        Ok(())
    }

    /// Add to `batch`, which holds block `index` as read by
    /// [`read_block_with`](Self::read_block_with), which of its rows have a
    /// value in column `c` (when the batch does not have `c` already): for
    /// a reader that finds it needs the presence of a column only after
    /// looking at the others (an address column is 16 bytes a row to
    /// decompress for a bitmap).
    pub fn read_presence_into(
        &self,
        index: usize,
        c: Column,
        batch: &mut Batch,
        scratch: &mut BlockScratch,
    ) -> Result<(), ColumnError> {
        if batch.cols.get(c as usize).is_some_and(|col| col.is_some()) {
            return Ok(());
        }
        let (info, dir) = self.blocks.get(index).ok_or_else(|| ColumnError {
            path: self.path.clone(),
            offset: 0,
            message: format!("no block {index}"),
        })?;
        if info.rows as usize != batch.rows {
            return Err(ColumnError {
                path: self.path.clone(),
                offset: info.offset,
                message: format!("the batch does not hold block {index}"),
            });
        }
        batch.cols.resize(COLUMNS, None);
        let mut col = scratch.spare.pop().unwrap_or_default();
        let read = self.read_column(info, dir, c, true, None, &mut col, scratch);
        batch.cols[c as usize] = Some(col);
        read
    }

    /// Read column `c` of a block into `col` (its bitmap only when
    /// `presence_only`); after an error `col` holds no values. `base`:
    /// the values of the column `c` may be stored as differences to
    /// ([`delta_base`]) when already read (else they are read here).
    #[allow(clippy::too_many_arguments)]
    fn read_column(
        &self,
        info: &BlockInfo,
        dir: &[DirEntry],
        c: Column,
        presence_only: bool,
        base: Option<&[u8]>,
        col: &mut ColumnData,
        scratch: &mut BlockScratch,
    ) -> Result<(), ColumnError> {
        let read = self.read_column_unchecked(info, dir, c, presence_only, base, col, scratch);
        if read.is_err() {
            // The in-place path may have left the previous block's values.
            col.values.clear();
            col.valid.clear();
        }
        read
    }

    /// [`ColumnFile::read_column`], which clears `col` after an error.
    #[allow(clippy::too_many_arguments)]
    fn read_column_unchecked(
        &self,
        info: &BlockInfo,
        dir: &[DirEntry],
        c: Column,
        presence_only: bool,
        base: Option<&[u8]>,
        col: &mut ColumnData,
        scratch: &mut BlockScratch,
    ) -> Result<(), ColumnError> {
        let rows = info.rows as usize;
        let err = |at: u64, message: String| ColumnError {
            path: self.path.clone(),
            offset: at,
            message,
        };
        // `values` keeps its old bytes until a path below clears it: it may
        // be decompressed into in place (overwritten, not zeroed first).
        col.valid.clear();
        col.offsets.clear();
        col.nulls = 0;
        let Some(d) = dir.iter().find(|d| d.id == c as u16) else {
            // Not in this block: every row null (no values, no bits).
            col.values.clear();
            col.nulls = rows;
            return Ok(());
        };
        let packed = d.flags & PACKED != 0;
        let in_place = d.codec == CODEC_LZ4 && c.width() != 0 && !presence_only && !packed;
        if !in_place {
            col.values.clear();
        }
        if presence_only && d.flags & HAS_BITMAP == 0 {
            col.valid.resize(rows.div_ceil(8), 0xff);
            return Ok(());
        }
        let stored = &mut scratch.stored;
        read_exact_into(&self.file, d.at, d.stored_len as usize, stored)
            .map_err(|e| err(d.at, format!("column {}: {e}", c.name())))?;
        if crc32fast::hash(stored) != d.crc {
            return Err(err(
                d.at,
                format!(
                    "column {} of the block at {}: checksum mismatch (damaged)",
                    c.name(),
                    info.offset
                ),
            ));
        }
        let bitmap_len = if d.flags & HAS_BITMAP != 0 {
            rows.div_ceil(8)
        } else {
            0
        };
        let raw_len = d.raw_len as usize;
        let split = matches!(
            d.codec,
            CODEC_LZ4_ADDR | CODEC_RAW_ADDR | CODEC_LZ4_ADDR_PLANES | CODEC_RAW_ADDR_PLANES
        );
        if split && !is_address(c) {
            return Err(err(
                d.at,
                format!("column {}: codec {} is for addresses", c.name(), d.codec),
            ));
        }
        let base_column = delta_base(c);
        if d.codec == CODEC_LZ4_DELTA_PLANES && base_column.is_none() {
            return Err(err(
                d.at,
                format!(
                    "column {}: codec {} is for first_raw and last_raw",
                    c.name(),
                    d.codec
                ),
            ));
        }
        // Split addresses: the family bitmap and 4 bytes a row, then 12
        // bytes for each row that is not IPv4 (counted when read).
        let split_min = bitmap_len + rows.div_ceil(8) + rows * 4;
        let ok_len = match c.width() {
            0 => raw_len >= bitmap_len + (rows + 1) * 4 && raw_len <= MAX_VAR_COLUMN,
            _ if split => {
                raw_len >= split_min
                    && raw_len <= split_min + rows * 12
                    && (raw_len - split_min) % 12 == 0
            }
            w => raw_len == bitmap_len + rows * w,
        };
        if !ok_len {
            return Err(err(
                d.at,
                format!(
                    "column {}: {} bytes do not fit {rows} rows",
                    c.name(),
                    raw_len
                ),
            ));
        }
        if in_place {
            // Decompressed where the values belong instead of into
            // `scratch.raw` and copied: no second buffer of new memory per
            // thread (first touches are page faults, ~1.7 µs each here),
            // and no copy at all for a column without nulls.
            let out = &mut col.values;
            // Zeroed only where it grows.
            if out.len() < raw_len {
                out.resize(raw_len, 0);
            }
            out.truncate(raw_len);
            return match lz4_flex::block::decompress_into(stored, out) {
                Ok(n) if n == raw_len => {
                    if bitmap_len > 0 {
                        col.valid.extend_from_slice(&out[..bitmap_len]);
                        col.nulls = rows - set_bits(&col.valid, rows);
                        out.copy_within(bitmap_len.., 0);
                        out.truncate(raw_len - bitmap_len);
                    } else {
                        col.valid.resize(rows.div_ceil(8), 0xff);
                    }
                    Ok(())
                }
                Ok(n) => Err(err(
                    d.at,
                    format!(
                        "column {}: {n} bytes after LZ4, expected {raw_len}",
                        c.name()
                    ),
                )),
                Err(e) => Err(err(d.at, format!("column {}: LZ4: {e}", c.name()))),
            };
        }
        if d.flags & !(HAS_BITMAP | PACKED) != 0 {
            return Err(err(
                d.at,
                format!("column {}: unknown flags {:#04x}", c.name(), d.flags),
            ));
        }
        let lz4_codec = matches!(
            d.codec,
            CODEC_LZ4
                | CODEC_LZ4_PLANES
                | CODEC_LZ4_ADDR
                | CODEC_LZ4_ADDR_PLANES
                | CODEC_LZ4_DELTA_PLANES
        );
        let raw: &[u8] = match d.codec {
            _ if packed && (!lz4_codec || d.codec == CODEC_LZ4_ADDR) => {
                return Err(err(
                    d.at,
                    format!("column {}: codec {} is not packed", c.name(), d.codec),
                ))
            }
            _ if packed => {
                let out = &mut scratch.raw;
                if out.len() < raw_len {
                    out.resize(raw_len, 0);
                }
                let out = &mut out[..raw_len];
                packed::unpack(stored, out, &mut scratch.rest)
                    .map_err(|m| err(d.at, format!("column {}: {m}", c.name())))?;
                out
            }
            CODEC_RAW | CODEC_RAW_ADDR | CODEC_RAW_ADDR_PLANES if stored.len() == raw_len => stored,
            CODEC_RAW | CODEC_RAW_ADDR | CODEC_RAW_ADDR_PLANES => {
                return Err(err(d.at, format!("column {}: length mismatch", c.name())))
            }
            CODEC_LZ4
            | CODEC_LZ4_PLANES
            | CODEC_LZ4_ADDR
            | CODEC_LZ4_ADDR_PLANES
            | CODEC_LZ4_DELTA_PLANES => {
                // Grown, never cleared: zeroing what LZ4 overwrites
                // anyway was a tenth of a scan.
                let out = &mut scratch.raw;
                if out.len() < raw_len {
                    out.resize(raw_len, 0);
                }
                let out = &mut out[..raw_len];
                match lz4_flex::block::decompress_into(stored, out) {
                    Ok(n) if n == raw_len => out,
                    Ok(n) => {
                        return Err(err(
                            d.at,
                            format!(
                                "column {}: {n} bytes after LZ4, expected {raw_len}",
                                c.name()
                            ),
                        ))
                    }
                    Err(e) => return Err(err(d.at, format!("column {}: LZ4: {e}", c.name()))),
                }
            }
            other => {
                return Err(err(
                    d.at,
                    format!("column {}: unknown codec {other}", c.name()),
                ))
            }
        };
        if bitmap_len > 0 {
            col.valid.extend_from_slice(&raw[..bitmap_len]);
            col.nulls = rows - set_bits(&col.valid, rows);
        } else {
            col.valid.resize(rows.div_ceil(8), 0xff);
        }
        let raw = &raw[bitmap_len..];
        if presence_only {
            // Only the bitmap was wanted.
        } else if c.width() == 0 {
            let (offs, values) = raw.split_at((rows + 1) * 4);
            col.offsets.extend(
                offs.chunks_exact(4)
                    .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes"))),
            );
            let monotonic = col.offsets.first() == Some(&0)
                && col.offsets.windows(2).all(|w| w[0] <= w[1])
                && col
                    .offsets
                    .last()
                    .is_some_and(|l| *l as usize == values.len());
            if !monotonic {
                return Err(err(d.at, format!("column {}: bad offsets", c.name())));
            }
            col.values.extend_from_slice(values);
        } else if d.codec == CODEC_LZ4_PLANES {
            from_planes(raw, c.width(), &mut col.values);
        } else if let (CODEC_LZ4_DELTA_PLANES, Some(base_column)) = (d.codec, base_column) {
            from_planes(raw, c.width(), &mut col.values);
            let missing = || {
                err(
                    d.at,
                    format!(
                        "column {}: stored as differences to {}, which the block does not have",
                        c.name(),
                        base_column.name()
                    ),
                )
            };
            match base {
                Some(base) if base.len() == col.values.len() => add_base(&mut col.values, base),
                Some(_) => return Err(missing()),
                None => {
                    let mut base = scratch.spare.pop().unwrap_or_default();
                    let read =
                        self.read_column(info, dir, base_column, false, None, &mut base, scratch);
                    let ok = read.is_ok() && base.values.len() == col.values.len();
                    if ok {
                        add_base(&mut col.values, &base.values);
                    }
                    scratch.spare.push(base);
                    read?;
                    if !ok {
                        return Err(missing());
                    }
                }
            }
        } else if split {
            let validity = (bitmap_len > 0).then_some(&col.valid[..]);
            let planes = matches!(d.codec, CODEC_LZ4_ADDR_PLANES | CODEC_RAW_ADDR_PLANES);
            if !from_address_parts(raw, rows, validity, planes, &mut col.values) {
                return Err(err(
                    d.at,
                    format!("column {}: family bitmap and addresses disagree", c.name()),
                ));
            }
        } else {
            col.values.extend_from_slice(raw);
        }
        Ok(())
    }
}

/// The columns written as byte planes ([`CODEC_LZ4_PLANES`]): numbers of
/// 2 to 8 bytes that vary from row to row in their low bytes, and the
/// template id and flags, which vary between a few values (a v9
/// exporter's IPv4 and IPv6 templates): as planes they are packed, 0.06 of
/// their bytes instead of 0.34 on the generator's v9 blocks, in half the
/// time (BENCHMARKS.md, session 20). (Addresses and the columns that are
/// the same in many rows in a row compress as well or better, and faster,
/// as rows: the exporter's port and version took twice as long as planes
/// of one value, the flow label and ICMP type longer and larger.)
fn in_planes(c: Column) -> bool {
    use Column as C;
    matches!(
        c,
        C::StartMs
            | C::EndMs
            | C::FirstRaw
            | C::LastRaw
            | C::Bytes
            | C::Packets
            | C::ReverseBytes
            | C::ReversePackets
            | C::InputIf
            | C::OutputIf
            | C::SrcAs
            | C::DstAs
            | C::TcpFlags
            | C::TemplateId
            | C::Flags
    )
}

/// The column whose values a raw time column is stored as a difference to
/// ([`CODEC_LZ4_DELTA_PLANES`]). Neither base is itself stored as a
/// difference, so reading one column reads at most one other.
fn delta_base(c: Column) -> Option<Column> {
    match c {
        Column::FirstRaw => Some(Column::StartMs),
        Column::LastRaw => Some(Column::EndMs),
        _ => None,
    }
}

/// The 16-byte address columns (kept as IPv6, IPv4 as `::ffff:a.b.c.d`).
fn is_address(c: Column) -> bool {
    matches!(
        c,
        Column::ExporterAddr | Column::SrcAddr | Column::DstAddr | Column::NextHop
    )
}

/// The first 12 bytes of an IPv4-mapped IPv6 address (RFC 4291 2.5.5.2).
const V4_MAPPED: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/// `raw` = the address column `col` of `rows` rows split as
/// [`CODEC_LZ4_ADDR_PLANES`] stores it: its validity bitmap (`bitmap_len`
/// bytes when it has one), the family bitmap, the last 4 bytes of every
/// row as 4 planes, the first 12 of the rows that are not IPv4 as 12
/// planes.
#[inline(never)]
///
/// `heads`: room for the first 12 bytes of the rows that are not IPv4,
/// kept between calls.
fn to_address_parts(
    col: &ColumnData,
    rows: usize,
    bitmap_len: Option<usize>,
    raw: &mut Vec<u8>,
    heads: &mut Vec<[u8; 12]>,
) {
    raw.clear();
    // Every row with the same IPv4 address (the exporter's, a next hop of
    // 0.0.0.0): the family bits all set and each plane one byte repeated,
    // made without a look at each row's parts (the exporter's address
    // took 3 ns a row of the generator's v5 blocks, 4 % of encoding them).
    if let (None, Some(first)) = (bitmap_len, col.values.first_chunk::<16>()) {
        let same = col.values.len() == rows * 16
            && first[..12] == V4_MAPPED
            && col.values.chunks_exact(16).all(|row| row == first);
        if same {
            raw.resize(rows / 8, 0xff);
            if rows % 8 != 0 {
                raw.push((1u8 << (rows % 8)) - 1);
            }
            for b in &first[12..] {
                raw.resize(raw.len() + rows, *b);
            }
            return;
        }
    }
    if let Some(len) = bitmap_len {
        raw.extend_from_slice(&col.valid[..len.min(col.valid.len())]);
        raw.resize(len, 0);
    }
    let family_at = raw.len();
    let low_at = family_at + rows.div_ceil(8);
    raw.resize(low_at + rows * 4, 0);
    let (head, low) = raw.split_at_mut(low_at);
    let (validity, family) = head.split_at_mut(family_at);
    let (low0, low) = low.split_at_mut(rows);
    let (low1, low) = low.split_at_mut(rows);
    let (low2, low3) = low.split_at_mut(rows);
    // Every row's first 12 bytes are stored at the next place, which only
    // a row that is not IPv4 takes: no branch on the family, which the
    // generator's v9 rows (30 % IPv6, mixed) mispredicted every third row.
    if heads.len() < rows {
        heads.resize(rows, [0; 12]);
    }
    let mut others = 0;
    // Eight rows at a time: their family bits gathered in a register and
    // stored once (a read-modify-write of the family byte for every row
    // was the loop's longest wait), the same for their validity bits.
    let lows = low0
        .chunks_mut(8)
        .zip(low1.chunks_mut(8))
        .zip(low2.chunks_mut(8))
        .zip(low3.chunks_mut(8));
    let groups = col.values.chunks(16 * 8).zip(lows).zip(family.iter_mut());
    for (g, ((group, (((l0, l1), l2), l3)), family)) in groups.enumerate() {
        prefetch_ahead(&col.values, g * 128);
        prefetch_ahead(&col.values, g * 128 + 64);
        let valid = match bitmap_len {
            Some(_) => validity.get(g).copied().unwrap_or(0),
            None => 0xff,
        };
        let mut v4_rows = 0u8;
        let rows = group
            .chunks_exact(16)
            .zip(l0.iter_mut().zip(l1).zip(l2.iter_mut().zip(l3)));
        for (j, (row, ((l0, l1), (l2, l3)))) in rows.enumerate() {
            let (high, v4) = row.split_at(12);
            // A row without a value must read back as zeros, not as ::ffff:0.0.0.0.
            let v4_row = if valid & (1 << j) != 0 {
                high == V4_MAPPED
            } else {
                row == [0; 16]
            };
            v4_rows |= u8::from(v4_row) << j;
            if let (Some(head), Ok(high)) = (heads.get_mut(others), high.try_into()) {
                *head = high;
            }
            others += usize::from(!v4_row);
            if let [a, b, c, d] = *v4 {
                (*l0, *l1, *l2, *l3) = (a, b, c, d);
            }
        }
        *family = v4_rows;
    }
    for j in 0..12 {
        raw.extend(heads[..others].iter().map(|h| h[j]));
    }
}

/// Append the `rows` 16-byte rows of the split addresses `raw` (after the
/// validity bitmap; its parts as rows, [`CODEC_LZ4_ADDR`], or as `planes`,
/// [`CODEC_LZ4_ADDR_PLANES`]) to `values`: `::ffff:a.b.c.d` for an IPv4
/// row with a value (every row when there is no `validity` bitmap), zeros
/// for one without, the 12 stored bytes and the 4 for any other. `false`
/// when the family bitmap does not count as many other rows as there are
/// stored.
fn from_address_parts(
    raw: &[u8],
    rows: usize,
    validity: Option<&[u8]>,
    planes: bool,
    values: &mut Vec<u8>,
) -> bool {
    let family_len = rows.div_ceil(8);
    let Some((family, rest)) = raw.split_at_checked(family_len) else {
        return false;
    };
    let Some((low, high)) = rest.split_at_checked(rows * 4) else {
        return false;
    };
    if high.len() != 12 * (rows - set_bits(family, rows)) {
        return false;
    }
    values.reserve(rows * 16);
    if planes {
        from_address_planes(family, low, high, rows, validity, values);
        return true;
    }
    let mut highs = high.chunks_exact(12);
    for (i, v4) in low.chunks_exact(4).enumerate() {
        if super::bit(family, i) {
            if validity.is_none_or(|b| super::bit(b, i)) {
                values.extend_from_slice(&V4_MAPPED);
                values.extend_from_slice(v4);
            } else {
                values.extend_from_slice(&[0; 16]);
            }
        } else {
            // Counted above: as many as there are clear bits.
            values.extend_from_slice(highs.next().unwrap_or(&[0; 12]));
            values.extend_from_slice(v4);
        }
    }
    true
}

/// How far ahead of its reads [`prefetch_ahead`] asks for a column's bytes.
const PREFETCH_DISTANCE: usize = 1024;

/// Ask for the cache line [`PREFETCH_DISTANCE`] bytes after `at` in
/// `bytes` (nothing past its end). The batches the writer encodes were
/// written by the decode thread on the other core, and its loops over them
/// waited on their loads (`perf` at 220,000 v9 datagrams/s: the address
/// split and the 8-byte planes, 12 % of the collector's CPU).
#[inline]
fn prefetch_ahead(bytes: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(line) = bytes.get(at + PREFETCH_DISTANCE..) {
        // SAFETY: a prefetch hint neither reads nor faults; the address is
        // in `bytes`.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (bytes, at);
}

/// [`from_address_parts`] for parts as planes: `low` 4 planes of `rows`
/// bytes, `high` 12 planes of as many bytes as `family` has clear bits
/// (checked by the caller).
fn from_address_planes(
    family: &[u8],
    low: &[u8],
    high: &[u8],
    rows: usize,
    validity: Option<&[u8]>,
    values: &mut Vec<u8>,
) {
    let heads = high.len() / 12;
    let (low0, low) = low.split_at(rows.min(low.len()));
    let (low1, low) = low.split_at(rows.min(low.len()));
    let (low2, low3) = low.split_at(rows.min(low.len()));
    let lows = low0.iter().zip(low1).zip(low2).zip(low3);
    let mut k = 0;
    for (i, (((&a, &b), &c), &d)) in lows.enumerate() {
        if super::bit(family, i) {
            if validity.is_none_or(|v| super::bit(v, i)) {
                values.extend_from_slice(&V4_MAPPED);
                values.extend_from_slice(&[a, b, c, d]);
            } else {
                values.extend_from_slice(&[0; 16]);
            }
        } else {
            let mut head = [0u8; 12];
            for (j, place) in head.iter_mut().enumerate() {
                *place = high.get(j * heads + k).copied().unwrap_or(0);
            }
            k += 1;
            values.extend_from_slice(&head);
            values.extend_from_slice(&[a, b, c, d]);
        }
    }
}

/// Append `values` (rows of `w` bytes) to `out` as `w` planes: byte 0 of
/// every row, then byte 1 of every row, ... (Plane by plane: each plane
/// is appended in one go from an exact-size iterator, with no bounds
/// check or zeroing per byte.)
fn to_planes(values: &[u8], w: usize, out: &mut Vec<u8>) {
    let w = w.max(1);
    out.reserve(values.len());
    match w {
        2 => to_planes_narrow::<2>(values, out),
        4 => to_planes_narrow::<4>(values, out),
        8 => to_planes_8::<false>(values, &[], out),
        _ => {
            for j in 0..w {
                out.extend(values.chunks_exact(w).map(|v| v[j]));
            }
        }
    }
}

/// [`to_planes`] for 8-byte rows: 8 rows at a time as 8 words, transposed
/// in registers (byte j of row i to byte i of plane j), each plane's 8
/// bytes stored at once. A byte at a time, the times and counters of the
/// generator's blocks took 2.2 ns a row a column, this way 1.5 (BENCHMARKS.md,
/// session 9).
///
/// `MINUS`: each row's value less (wrapping, as little-endian `u64`) the
/// same row of `base` ([`CODEC_LZ4_DELTA_PLANES`]; `base` has as many
/// rows as `values`, a missing row reads as 0).
fn to_planes_8<const MINUS: bool>(values: &[u8], base: &[u8], out: &mut Vec<u8>) {
    let rows = values.len() / 8;
    let at = out.len();
    out.resize(at + rows * 8, 0);
    let planes = &mut out[at..];
    let word_at = |bytes: &[u8], i: usize| {
        bytes
            .get(i..i + 8)
            .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    };
    let mut eights = values.chunks_exact(64);
    for (k, eight) in eights.by_ref().enumerate() {
        prefetch_ahead(values, k * 64);
        let mut r = [0u64; 8];
        for (i, (word, row)) in r.iter_mut().zip(eight.chunks_exact(8)).enumerate() {
            *word = u64::from_le_bytes(row.try_into().unwrap_or_default());
            if MINUS {
                *word = word.wrapping_sub(word_at(base, k * 64 + i * 8));
            }
        }
        for (j, word) in transpose_8x8(r).into_iter().enumerate() {
            if let Some(place) = planes.get_mut(j * rows + k * 8..j * rows + k * 8 + 8) {
                place.copy_from_slice(&word.to_le_bytes());
            }
        }
    }
    // The last rows (fewer than 8) a byte at a time.
    let first = rows - eights.remainder().len() / 8;
    for (i, row) in eights.remainder().chunks_exact(8).enumerate() {
        let mut word = u64::from_le_bytes(row.try_into().unwrap_or_default());
        if MINUS {
            word = word.wrapping_sub(word_at(base, (first + i) * 8));
        }
        for (j, b) in word.to_le_bytes().into_iter().enumerate() {
            if let Some(place) = planes.get_mut(j * rows + first + i) {
                *place = b;
            }
        }
    }
}

/// [`to_planes`] for rows of `W` = 2 or 4 bytes: 8 rows at a time in
/// registers, as [`to_planes_8`] (its transpose without the steps that
/// would only move zeros: the rows are put where its first step would put
/// them), each plane's 8 bytes stored at once. A byte a row a plane, the
/// generator's interface and AS numbers took 3.5 times as long a byte as
/// the 8-byte columns' planes (`perf` of `examples/column_costs`,
/// BENCHMARKS.md, session 20).
fn to_planes_narrow<const W: usize>(values: &[u8], out: &mut Vec<u8>) {
    let rows = values.len() / W;
    let at = out.len();
    out.resize(at + rows * W, 0);
    let planes = &mut out[at..];
    let mut eights = values.chunks_exact(8 * W);
    for (k, eight) in eights.by_ref().enumerate() {
        let row = |i: usize| {
            let mut b = [0u8; 8];
            b[..W].copy_from_slice(&eight[i * W..i * W + W]);
            u64::from_le_bytes(b)
        };
        let mut words = [0u64; 4];
        if W == 4 {
            let [mut a0, mut a1, mut a2, mut a3] = [0, 1, 2, 3].map(|i| row(i) | row(i + 4) << 32);
            swap_bits(&mut a0, &mut a2, 16, QUARTER);
            swap_bits(&mut a1, &mut a3, 16, QUARTER);
            swap_bits(&mut a0, &mut a1, 8, EIGHTH);
            swap_bits(&mut a2, &mut a3, 8, EIGHTH);
            words = [a0, a1, a2, a3];
        } else {
            let [mut a0, mut a1] =
                [0, 1].map(|i| row(i) | row(i + 2) << 16 | row(i + 4) << 32 | row(i + 6) << 48);
            swap_bits(&mut a0, &mut a1, 8, EIGHTH);
            words[..2].copy_from_slice(&[a0, a1]);
        }
        for (j, word) in words.iter().take(W).enumerate() {
            if let Some(place) = planes.get_mut(j * rows + k * 8..j * rows + k * 8 + 8) {
                place.copy_from_slice(&word.to_le_bytes());
            }
        }
    }
    // The last rows (fewer than 8) a byte at a time.
    let first = rows - eights.remainder().len() / W;
    for (i, row) in eights.remainder().chunks_exact(W).enumerate() {
        for (j, &b) in row.iter().enumerate() {
            if let Some(place) = planes.get_mut(j * rows + first + i) {
                *place = b;
            }
        }
    }
}

/// The bits of `mask` in `y` swapped with those `shift` bits up in `x`.
#[inline(always)]
fn swap_bits(x: &mut u64, y: &mut u64, shift: u32, mask: u64) {
    let t = ((*x >> shift) ^ *y) & mask;
    *y ^= t;
    *x ^= t << shift;
}

const QUARTER: u64 = 0x0000_ffff_0000_ffff;
const EIGHTH: u64 = 0x00ff_00ff_00ff_00ff;

/// Byte j of word i to byte i of word j (little-endian byte order), by
/// swapping 4-byte, then 2-byte, then 1-byte blocks between words.
#[inline]
fn transpose_8x8(r: [u64; 8]) -> [u64; 8] {
    let [mut a0, mut a1, mut a2, mut a3, mut a4, mut a5, mut a6, mut a7] = r;
    macro_rules! swap {
        ($x:ident, $y:ident, $shift:expr, $mask:expr) => {{
            let t = (($x >> $shift) ^ $y) & $mask;
            $y ^= t;
            $x ^= t << $shift;
        }};
    }
    const HALF: u64 = 0x0000_0000_ffff_ffff;
    swap!(a0, a4, 32, HALF);
    swap!(a1, a5, 32, HALF);
    swap!(a2, a6, 32, HALF);
    swap!(a3, a7, 32, HALF);
    swap!(a0, a2, 16, QUARTER);
    swap!(a1, a3, 16, QUARTER);
    swap!(a4, a6, 16, QUARTER);
    swap!(a5, a7, 16, QUARTER);
    swap!(a0, a1, 8, EIGHTH);
    swap!(a2, a3, 8, EIGHTH);
    swap!(a4, a5, 8, EIGHTH);
    swap!(a6, a7, 8, EIGHTH);
    [a0, a1, a2, a3, a4, a5, a6, a7]
}

/// Append the rows of `w` bytes whose planes are `planes` to `values`
/// (the inverse of [`to_planes`]), row by row from `w` planes cut to the
/// row count. (The analyzer reads these columns for every row it scans:
/// this took 21 M instructions for 363,000 rows of 8 bytes, a tenth of a
/// `top --by src --metric bytes`; bytes written a plane at a time, twice
/// that. Zipped iterators and 8-byte stores were no better.)
fn from_planes(planes: &[u8], w: usize, values: &mut Vec<u8>) {
    let w = w.max(1);
    let rows = planes.len() / w;
    values.reserve(rows * w);
    macro_rules! rows {
        ($w:literal) => {{
            let p: [&[u8]; $w] = std::array::from_fn(|j| &planes[j * rows..(j + 1) * rows]);
            values.extend((0..rows).flat_map(|r| {
                let row: [u8; $w] = std::array::from_fn(|j| p[j][r]);
                row
            }));
        }};
    }
    match w {
        2 => rows!(2),
        4 => rows!(4),
        8 => rows!(8),
        _ => {
            let start = values.len();
            values.resize(start + rows * w, 0);
            let out = &mut values[start..];
            for (j, plane) in planes.chunks_exact(rows.max(1)).enumerate().take(w) {
                for (r, &b) in plane.iter().enumerate() {
                    if let Some(v) = out.get_mut(r * w + j) {
                        *v = b;
                    }
                }
            }
        }
    }
}

/// `values[i] += base[i]` for each 8-byte row (wrapping, little-endian
/// `u64`): the inverse of [`to_planes_8`]'s `MINUS` after the planes are
/// rows again.
fn add_base(values: &mut [u8], base: &[u8]) {
    for (v, b) in values.chunks_exact_mut(8).zip(base.chunks_exact(8)) {
        let sum = u64::from_le_bytes(v.try_into().unwrap_or_default())
            .wrapping_add(u64::from_le_bytes(b.try_into().unwrap_or_default()));
        v.copy_from_slice(&sum.to_le_bytes());
    }
}

/// Buffers [`ColumnFile::read_block_into`] reuses between blocks.
#[derive(Debug, Default)]
pub struct BlockScratch {
    stored: Vec<u8>,
    raw: Vec<u8>,
    /// The data of a packed column after LZ4.
    rest: Vec<u8>,
    spare: Vec<ColumnData>,
}

/// Read exactly `len` bytes at `at` into `buf` (an error at the end of the
/// file). `buf` is only grown, never zeroed again: the read overwrites it.
fn read_exact_into(file: &File, at: u64, len: usize, buf: &mut Vec<u8>) -> io::Result<()> {
    if buf.len() < len {
        buf.resize(len, 0);
    }
    buf.truncate(len);
    file.read_exact_at(buf, at)
}

/// Set bits among the first `rows` of a validity bitmap (bits past `rows`
/// in its last byte, which a damaged file may have set, not counted).
fn set_bits(bitmap: &[u8], rows: usize) -> usize {
    let whole = rows / 8;
    let mut n: usize = bitmap[..whole.min(bitmap.len())]
        .iter()
        .map(|b| b.count_ones() as usize)
        .sum();
    if rows % 8 != 0 {
        if let Some(last) = bitmap.get(whole) {
            n += (last & ((1u8 << (rows % 8)) - 1)).count_ones() as usize;
        }
    }
    n
}

/// Open `path` for appending blocks: a new file gets the header; an
/// existing columns file is cut after its last good block or footer (a
/// block torn by a crash is dropped), and one of an earlier version gets
/// this version in its header (its blocks read the same in this version;
/// the appended ones may have columns the earlier version does not know).
/// Returns the file, positioned at its end, its length, and what was cut
/// (if anything).
pub fn open_for_append(path: &Path) -> io::Result<(File, u64, Option<String>)> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)?;
    let len = file.metadata()?.len();
    if len == 0 {
        file.write_all(&file_header())?;
        return Ok((file, FILE_HEADER_LEN, None));
    }
    let existing = ColumnFile::open(path)?;
    let good = existing.good_len();
    let mut cut = None;
    if good < len {
        let why = existing
            .problems()
            .last()
            .map_or(String::new(), |p| format!(": {}", p.message));
        cut = Some(format!(
            "{}: cut {} bytes after offset {good} before appending{why}",
            path.display(),
            len - good
        ));
        file.set_len(good)?;
    }
    if existing.version() < VERSION {
        // Not through `file`: a positioned write to a file opened to
        // append goes to its end on Linux.
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)?
            .write_all_at(&VERSION.to_le_bytes(), 8)?;
    }
    Ok((file, good, cut))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columns::{set_bit, set_ones};

    /// A xorshift64 generator (test data only).
    fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    /// Every column `batch` does not fill given `rows` rows, all null (the
    /// string columns their offsets), and the row count set.
    fn fill_absent(batch: &mut Batch, rows: usize) {
        for c in Column::ALL {
            let d = batch.column_mut(*c);
            if d.values.is_empty() && c.width() != 0 {
                d.values.resize(rows * c.width(), 0);
                set_bit(&mut d.valid, rows - 1, false);
                d.nulls = rows;
            } else if c.width() == 0 {
                d.offsets.resize(rows + 1, 0);
                set_ones(&mut d.valid, 0, rows);
            }
        }
        batch.rows = rows;
    }

    /// The codec the block's directory gives column `c`.
    fn codec_in(block: &[u8], c: Column) -> Option<u8> {
        block[BLOCK_HEADER_LEN..]
            .chunks_exact(DIR_ENTRY_LEN)
            .find(|e| e[0..2] == (c as u16).to_le_bytes())
            .map(|e| e[2])
    }

    /// Column `c` of `block`: its codec, its flags and its stored bytes.
    fn stored_in(block: &[u8], c: Column) -> (u8, u8, &[u8]) {
        let columns = usize::from(le_u16(block, 8));
        let dir = &block[BLOCK_HEADER_LEN..BLOCK_HEADER_LEN + columns * DIR_ENTRY_LEN];
        let mut at = BLOCK_HEADER_LEN + dir.len();
        for e in dir.chunks_exact(DIR_ENTRY_LEN) {
            let len = le_u32(e, 4) as usize;
            if e[0..2] == (c as u16).to_le_bytes() {
                return (e[2], e[3], &block[at..at + len]);
            }
            at += len;
        }
        panic!("no column {}", c.name())
    }

    /// Whether column `c` of `block` went through LZ4: its codec's or,
    /// packed, its rest's (the packed form's third byte).
    fn lz4_in(block: &[u8], c: Column) -> bool {
        match stored_in(block, c) {
            (_, flags, stored) if flags & PACKED != 0 => stored[2] == 1,
            (codec, ..) => codec != CODEC_RAW,
        }
    }

    /// `batch` written as the one block of a file and read back whole.
    fn write_and_read(batch: &Batch, name: &str) -> Batch {
        let block = encode_block(batch);
        read_block_bytes(&block.bytes, block.info, name)
    }

    /// Planes as defined (byte `j` of row `r` at `j * rows + r`) and back,
    /// for every width and row count up to 40.
    #[test]
    fn planes_are_bytes_by_position_and_back() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        for w in [1usize, 2, 3, 4, 8, 16] {
            for rows in 0..40 {
                let values: Vec<u8> = (0..rows * w).map(|_| next() as u8).collect();
                let mut planes = vec![7u8; 3];
                to_planes(&values, w, &mut planes);
                assert_eq!(planes.len(), 3 + rows * w);
                for r in 0..rows {
                    for j in 0..w {
                        assert_eq!(
                            planes[3 + j * rows + r],
                            values[r * w + j],
                            "w {w} rows {rows}"
                        );
                    }
                }
                let mut back = vec![9u8; 5];
                from_planes(&planes[3..], w, &mut back);
                assert_eq!(&back[5..], &values[..], "w {w} rows {rows}");
            }
        }
    }

    /// A block whose plane columns compress (times, with and without
    /// nulls) and do not (random counters: stored as rows), written to a
    /// file and read back: the same values and bits, and the codecs the
    /// encoder chose.
    #[test]
    fn plane_columns_read_back() {
        let rows = 3000;
        let mut batch = Batch::new();
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15u64);
        for r in 0..rows {
            let start = 1_700_000_000_000u64 + (next() % 5000);
            let d = batch.column_mut(Column::StartMs);
            d.values.extend_from_slice(&start.to_le_bytes());
            set_ones(&mut d.valid, r, 1);
            let d = batch.column_mut(Column::EndMs);
            if r % 7 == 3 {
                d.values.extend_from_slice(&[0; 8]);
                set_bit(&mut d.valid, r, false);
                d.nulls += 1;
            } else {
                d.values.extend_from_slice(&(start + 60_000).to_le_bytes());
                set_ones(&mut d.valid, r, 1);
            }
            let d = batch.column_mut(Column::Bytes);
            d.values.extend_from_slice(&next().to_le_bytes());
            set_ones(&mut d.valid, r, 1);
            let d = batch.column_mut(Column::InputIf);
            d.values.extend_from_slice(&((r % 3) as u32).to_le_bytes());
            set_ones(&mut d.valid, r, 1);
        }
        fill_absent(&mut batch, rows);
        let block = encode_block(&batch);
        let codec = |c: Column| codec_in(&block.bytes, c);
        assert_eq!(codec(Column::StartMs), Some(CODEC_LZ4_PLANES));
        assert_eq!(codec(Column::EndMs), Some(CODEC_LZ4_PLANES));
        assert_eq!(codec(Column::InputIf), Some(CODEC_LZ4_PLANES));
        assert_eq!(codec(Column::Bytes), Some(CODEC_RAW), "random: not smaller");
        let read = write_and_read(&batch, "planes");
        for c in [
            Column::StartMs,
            Column::EndMs,
            Column::Bytes,
            Column::InputIf,
        ] {
            let (a, b) = (batch.column(c).unwrap(), read.column(c).unwrap());
            assert_eq!(a.values, b.values, "{}", c.name());
            assert_eq!(a.valid, b.valid, "{}", c.name());
            assert_eq!(a.nulls, b.nulls, "{}", c.name());
        }
    }

    /// `bytes`, one block of a file, read back whole.
    fn read_block_bytes(bytes: &[u8], info: BlockInfo, name: &str) -> Batch {
        let path = std::env::temp_dir().join(format!("{name}-{}.nfcol", std::process::id()));
        let mut file = file_header().to_vec();
        file.extend_from_slice(bytes);
        let info = BlockInfo {
            offset: FILE_HEADER_LEN,
            ..info
        };
        file.extend_from_slice(&footer(&[info]));
        std::fs::write(&path, file).unwrap();
        let f = ColumnFile::open(&path).unwrap();
        let read = f.read_block(0, Column::ALL).unwrap();
        let _ = std::fs::remove_file(&path);
        read
    }

    /// `bytes` as the one block of a file: the file open, and its path
    /// (removed by the caller).
    fn file_of_block(bytes: &[u8], name: &str) -> (ColumnFile, PathBuf) {
        let path = std::env::temp_dir().join(format!("{name}-{}.nfcol", std::process::id()));
        let mut file = file_header().to_vec();
        file.extend_from_slice(bytes);
        std::fs::write(&path, file).unwrap();
        (ColumnFile::open(&path).unwrap(), path)
    }

    /// The byte offset of column `c`'s directory entry in `block`.
    fn entry_of(block: &[u8], c: Column) -> usize {
        let ncols = u16::from_le_bytes([block[8], block[9]]) as usize;
        (0..ncols)
            .map(|n| BLOCK_HEADER_LEN + n * DIR_ENTRY_LEN)
            .find(|e| block[*e..e + 2] == (c as u16).to_le_bytes())
            .expect("column in the directory")
    }

    /// The header checksum of `block` made right again after its
    /// directory was changed.
    fn reseal(block: &mut [u8]) {
        let ncols = u16::from_le_bytes([block[8], block[9]]) as usize;
        let data_at = BLOCK_HEADER_LEN + ncols * DIR_ENTRY_LEN;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&block[..BLOCK_HEADER_LEN - 4]);
        crc.update(&block[BLOCK_HEADER_LEN..data_at]);
        let crc = crc.finalize().to_le_bytes();
        block[BLOCK_HEADER_LEN - 4..BLOCK_HEADER_LEN].copy_from_slice(&crc);
    }

    /// Column `c` of `block` replaced by `stored` (its codec, its flags
    /// when given, `raw_len`), the stored checksum, body length and header
    /// checksum made right: a crafted column the reader must judge.
    fn replace_column(
        block: &mut Vec<u8>,
        c: Column,
        (codec, flags): (u8, Option<u8>),
        stored: &[u8],
        raw_len: usize,
    ) {
        let entry = entry_of(block, c);
        let ncols = u16::from_le_bytes([block[8], block[9]]) as usize;
        // Where its bytes are: after those of the columns before it.
        let at = BLOCK_HEADER_LEN
            + ncols * DIR_ENTRY_LEN
            + (BLOCK_HEADER_LEN..entry)
                .step_by(DIR_ENTRY_LEN)
                .map(|e| le_u32(block, e + 4) as usize)
                .sum::<usize>();
        let stored_len = le_u32(block, entry + 4) as usize;
        block.splice(at..at + stored_len, stored.iter().copied());
        block[entry + 2] = codec;
        if let Some(flags) = flags {
            block[entry + 3] = flags;
        }
        block[entry + 4..entry + 8].copy_from_slice(&(stored.len() as u32).to_le_bytes());
        block[entry + 8..entry + 12].copy_from_slice(&(raw_len as u32).to_le_bytes());
        block[entry + 12..entry + 16].copy_from_slice(&crc32fast::hash(stored).to_le_bytes());
        let body_len = (block.len() - BLOCK_HEADER_LEN) as u32;
        block[12..16].copy_from_slice(&body_len.to_le_bytes());
        reseal(block);
    }

    /// Whether the reader reads column `c` of the one block `block` of a
    /// file, asked for `cols`: then with `width` bytes a row (`rows` rows);
    /// or refuses it (an error, not a panic).
    fn read_or_refused(block: &[u8], cols: &[Column], c: Column, rows: usize) -> bool {
        // A file of its own per call (the tests run at once).
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (f, path) = file_of_block(block, &format!("crafted-{}-{call}", c.name()));
        assert_eq!(f.block_count(), 1, "{:?}", f.problems());
        let read = f.read_block(0, cols);
        let _ = std::fs::remove_file(&path);
        match read {
            Ok(b) => {
                assert_eq!(b.column(c).unwrap().values.len(), rows * c.width());
                true
            }
            Err(_) => false,
        }
    }

    /// The four time columns of `rows` v5 records: `first_raw`/`last_raw`
    /// in uptime milliseconds, `start_ms`/`end_ms` the same instants plus
    /// one offset per export of 30 records (export time less uptime, the
    /// exporter's boot time give or take a millisecond). Rows
    /// `r % 97 == 4` have no start (neither column), rows `r % 101 == 6` a
    /// raw end but no absolute one (its value zeros), and in rows `r % 89
    /// == 9` the raw start is above the absolute one (the difference
    /// wraps).
    fn v5_times(rows: usize, seed: u64) -> Batch {
        let mut batch = Batch::new();
        let mut next = xorshift(seed);
        let mut offset = 0u64;
        let put = |batch: &mut Batch, c: Column, r: usize, v: Option<u64>| {
            let d = batch.column_mut(c);
            d.values.extend_from_slice(&v.unwrap_or(0).to_le_bytes());
            set_bit(&mut d.valid, r, v.is_some());
            d.nulls += usize::from(v.is_none());
        };
        for r in 0..rows {
            if r % 30 == 0 {
                // The exporter's boot time in Unix ms, as export time less
                // uptime gives it: to the millisecond, give or take one.
                offset = 1_796_000_000_000 + next() % 3;
            }
            let first = 3_600_000 + next() % 150_000;
            let last = first + next() % 120_000;
            let start = if r % 89 == 9 {
                first - 5
            } else {
                first + offset
            };
            let has_start = r % 97 != 4;
            put(&mut batch, Column::StartMs, r, has_start.then_some(start));
            put(&mut batch, Column::FirstRaw, r, has_start.then_some(first));
            put(
                &mut batch,
                Column::EndMs,
                r,
                (r % 101 != 6).then_some(last + offset),
            );
            put(&mut batch, Column::LastRaw, r, Some(last));
        }
        fill_absent(&mut batch, rows);
        batch
    }

    /// `first_raw` and `last_raw` are stored as their differences to
    /// `start_ms` and `end_ms` (a few bytes: one value per export), and
    /// read back the same whichever columns are asked for and in which
    /// order (the base read with them, after them, or not asked for);
    /// without a base in the block (no row has a start) as their own
    /// values.
    #[test]
    fn raw_times_are_stored_as_differences_to_the_absolute_ones() {
        let times = [
            Column::StartMs,
            Column::EndMs,
            Column::FirstRaw,
            Column::LastRaw,
        ];
        for rows in [3001, 7, 1] {
            let batch = v5_times(rows, 0x2545_f491_4f6c_dd1d + rows as u64);
            let block = encode_block(&batch);
            let codec = |c: Column| codec_in(&block.bytes, c);
            let stored = |c: Column| le_u32(&block.bytes, entry_of(&block.bytes, c) + 4);
            // (A few rows LZ4 does not shrink: stored as is.)
            if rows > 1000 {
                assert_eq!(codec(Column::FirstRaw), Some(CODEC_LZ4_DELTA_PLANES));
                assert_eq!(codec(Column::LastRaw), Some(CODEC_LZ4_DELTA_PLANES));
                assert_eq!(codec(Column::StartMs), Some(CODEC_LZ4_PLANES));
                // Runs of 30 rows against random starts (broken by the
                // rows without a start and those that wrap; the starts'
                // third byte, of 8 values, packed in 3 bits).
                assert!(
                    stored(Column::FirstRaw) * 2 < stored(Column::StartMs),
                    "{} vs {}",
                    stored(Column::FirstRaw),
                    stored(Column::StartMs)
                );
            }
            let (f, path) = file_of_block(&block.bytes, "raw-times");
            // The bits of the rows (a reader may set those after them).
            let bits = |v: &[u8]| {
                (0..rows)
                    .map(|r| v[r / 8] >> (r % 8) & 1)
                    .collect::<Vec<_>>()
            };
            // The first row whose values differ (the rows are too many to print).
            let first_diff = |x: &[u8], y: &[u8]| {
                (x.len() != y.len() || x != y).then(|| {
                    let row = x.chunks(8).zip(y.chunks(8)).position(|(a, b)| a != b);
                    (x.len(), y.len(), row)
                })
            };
            let same = |read: &Batch, cols: &[Column], what: &str| {
                for c in cols {
                    let (a, b) = (batch.column(*c).unwrap(), read.column(*c).unwrap());
                    let diff = first_diff(&a.values, &b.values);
                    assert_eq!(diff, None, "{rows} rows, {what}: {}", c.name());
                    let (x, y) = (bits(&a.valid), bits(&b.valid));
                    assert_eq!(x, y, "{rows} rows, {what}: {}", c.name());
                    assert_eq!(a.nulls, b.nulls, "{rows} rows, {what}: {}", c.name());
                }
            };
            same(&f.read_block(0, Column::ALL).unwrap(), &times, "all");
            for cols in [
                &[Column::FirstRaw][..],
                &[Column::LastRaw, Column::FirstRaw],
                &[Column::LastRaw, Column::EndMs],
                &[Column::FirstRaw, Column::EndMs, Column::StartMs],
            ] {
                same(&f.read_block(0, cols).unwrap(), cols, &format!("{cols:?}"));
            }
            // The bases asked for their presence only.
            let (mut b, mut scratch) = (Batch::empty(), BlockScratch::default());
            f.read_block_with(
                0,
                &[Column::LastRaw],
                &[Column::EndMs],
                &mut b,
                &mut scratch,
            )
            .unwrap();
            same(&b, &[Column::LastRaw], "presence of the base");
            let presence = &b.column(Column::EndMs).unwrap().valid;
            assert_eq!(
                bits(presence),
                bits(&batch.column(Column::EndMs).unwrap().valid)
            );
            // The next block read into the same batch, its bases' presence
            // only: no base left over from the block before.
            let other = v5_times(rows, 99);
            let block2 = encode_block(&other);
            let (f2, path2) = file_of_block(&block2.bytes, "raw-times-2");
            let bases = [Column::StartMs, Column::EndMs];
            let raws = [Column::FirstRaw, Column::LastRaw];
            f.read_block_with(0, &bases, &[], &mut b, &mut scratch)
                .unwrap();
            f2.read_block_with(0, &raws, &bases, &mut b, &mut scratch)
                .unwrap();
            for c in raws {
                let (x, y) = (
                    &b.column(c).unwrap().values,
                    &other.column(c).unwrap().values,
                );
                let diff = first_diff(x, y);
                assert_eq!(diff, None, "{rows} rows, after another block: {}", c.name());
            }
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(&path2);
        }
        // No start in any row: `first_raw` as its own values.
        let mut batch = v5_times(300, 5);
        let d = batch.column_mut(Column::StartMs);
        d.valid.iter_mut().for_each(|b| *b = 0);
        d.values.iter_mut().for_each(|b| *b = 0);
        d.nulls = 300;
        let block = encode_block(&batch);
        assert_eq!(codec_in(&block.bytes, Column::StartMs), None);
        assert_eq!(
            codec_in(&block.bytes, Column::FirstRaw),
            Some(CODEC_LZ4_PLANES)
        );
        let read = write_and_read(&batch, "raw-times-no-base");
        let (a, b) = (
            batch.column(Column::FirstRaw).unwrap(),
            read.column(Column::FirstRaw).unwrap(),
        );
        assert_eq!((&a.values, a.nulls), (&b.values, b.nulls));
    }

    /// Crafted difference columns with valid checksums (random lengths and
    /// contents, compressed or not, with or without a bitmap, the base
    /// present, renamed away, or itself given the codec): the reader gives
    /// `first_raw` with 8 bytes a row or an error, never a panic.
    #[test]
    fn crafted_difference_columns_are_refused_or_read() {
        let mut next = xorshift(0x853c_49e6_748f_ea9b);
        let rows = 300;
        let good = encode_block(&v5_times(rows, 3)).bytes;
        let (mut read, mut refused) = (0, 0);
        for _ in 0..2000 {
            let mut block = good.clone();
            let bitmap = next() % 2 == 0;
            let want = usize::from(bitmap) * rows.div_ceil(8) + rows * 8;
            let raw_len = match next() % 3 {
                0 => want,
                1 => next() as usize % (want + 16),
                _ => want + 8,
            };
            let raw: Vec<u8> = (0..raw_len).map(|_| (next() % 4) as u8).collect();
            let (codec, stored) = match next() % 3 {
                0 => (CODEC_LZ4_DELTA_PLANES, lz4_flex::block::compress(&raw)),
                1 => (CODEC_LZ4_DELTA_PLANES, raw.clone()),
                _ => (CODEC_RAW, raw.clone()),
            };
            let flags = if bitmap { HAS_BITMAP } else { 0 };
            replace_column(
                &mut block,
                Column::FirstRaw,
                (codec, Some(flags)),
                &stored,
                raw_len,
            );
            let base = entry_of(&block, Column::StartMs);
            match next() % 4 {
                0 => block[base..base + 2].copy_from_slice(&(Column::Vlan as u16).to_le_bytes()),
                1 => block[base + 2] = CODEC_LZ4_DELTA_PLANES,
                _ => {}
            }
            reseal(&mut block);
            for cols in [
                &[Column::FirstRaw][..],
                &[Column::StartMs, Column::FirstRaw],
            ] {
                match read_or_refused(&block, cols, Column::FirstRaw, rows) {
                    true => read += 1,
                    false => refused += 1,
                }
            }
        }
        assert!(read > 300 && refused > 300, "read {read} refused {refused}");
    }

    /// `rows` rows whose columns have planes of few values: protocols of
    /// 3 values (one plane, 2 bits), input interfaces 1 to 4 (a plane of 2
    /// bits, three of one value), byte counts under 2^20 with nulls (a
    /// bitmap, three random planes, five of one value), source addresses
    /// 10.0-3.x.y with every 7th row IPv6 2001:db8::x:y:0:1 or :2 and
    /// every 11th null (family bitmap, planes of 1 and 3 bits, random
    /// ones, IPv6 planes of one value and random ones), and
    /// the times of `v5_times` (raw ones as differences).
    fn packable(rows: usize, seed: u64) -> Batch {
        let mut batch = v5_times(rows, seed);
        let mut next = xorshift(seed ^ 0x9e37_79b9);
        for c in [
            Column::Protocol,
            Column::InputIf,
            Column::Bytes,
            Column::SrcAddr,
        ] {
            *batch.column_mut(c) = ColumnData::default();
        }
        for r in 0..rows {
            let d = batch.column_mut(Column::Protocol);
            d.values.push([6, 17, 1][(next() % 3) as usize]);
            set_bit(&mut d.valid, r, true);
            let d = batch.column_mut(Column::InputIf);
            d.values
                .extend_from_slice(&(1 + (next() % 4) as u32).to_le_bytes());
            set_bit(&mut d.valid, r, true);
            let d = batch.column_mut(Column::Bytes);
            let v = (r % 13 != 5).then(|| next() % (1 << 20));
            d.values.extend_from_slice(&v.unwrap_or(0).to_le_bytes());
            set_bit(&mut d.valid, r, v.is_some());
            d.nulls += usize::from(v.is_none());
            let d = batch.column_mut(Column::SrcAddr);
            let mut a = [0u8; 16];
            if r % 11 == 3 {
                d.nulls += 1;
            } else if r % 7 == 2 {
                // 2001:db8::x:y:1 or ::2
                a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
                a[8..12].copy_from_slice(&next().to_le_bytes()[..4]);
                a[15] = 1 + (r % 2) as u8;
            } else {
                a[10..12].copy_from_slice(&[0xff, 0xff]);
                let low = next().to_le_bytes();
                a[12..].copy_from_slice(&[10, (low[0] % 4), low[1], low[2]]);
            }
            d.values.extend_from_slice(&a);
            set_bit(&mut d.valid, r, r % 11 != 3);
        }
        // Raw starts whose differences to the absolute ones are one boot
        // time less 0 to 2 ms (a plane of 3 values, and 0 where there is
        // no start).
        let starts = batch.column(Column::StartMs).unwrap().values.clone();
        let raw = &mut batch.column_mut(Column::FirstRaw).values;
        for (r, start) in starts.chunks_exact(8).enumerate() {
            let start = u64::from_le_bytes(start.try_into().unwrap());
            if start != 0 {
                let first = start - 1_796_000_000_000 - next() % 3;
                raw[r * 8..r * 8 + 8].copy_from_slice(&first.to_le_bytes());
            }
        }
        batch
    }

    /// Columns with planes of few values are stored packed (and smaller
    /// than LZ4 stores them) and read back the same, asked for alone or
    /// together, in a file of blocks of different sizes.
    #[test]
    fn packed_columns_read_back() {
        let cols = [
            Column::Protocol,
            Column::InputIf,
            Column::Bytes,
            Column::SrcAddr,
            Column::StartMs,
            Column::FirstRaw,
        ];
        for rows in [4099, 700, 1] {
            let batch = packable(rows, rows as u64);
            let block = encode_block(&batch);
            for c in cols {
                let (codec, flags, stored) = stored_in(&block.bytes, c);
                if rows > 1000 {
                    assert!(flags & PACKED != 0, "{} not packed", c.name());
                    // Unpacked, LZ4 would store more.
                    let raw_len = le_u32(&block.bytes, entry_of(&block.bytes, c) + 8) as usize;
                    let mut raw = vec![0u8; raw_len];
                    packed::unpack(stored, &mut raw, &mut Vec::new()).unwrap();
                    let lz4 = lz4_flex::block::compress(&raw).len();
                    assert!(
                        stored.len() < lz4,
                        "{}: {} vs {lz4}",
                        c.name(),
                        stored.len()
                    );
                } else if rows == 1 {
                    assert_eq!(flags & PACKED, 0, "{} packed", c.name());
                }
                let _ = codec;
            }
            let (f, path) = file_of_block(&block.bytes, &format!("packed-{rows}"));
            for asked in [
                &cols[..],
                &[Column::SrcAddr],
                &[Column::FirstRaw, Column::Bytes],
            ] {
                let read = f.read_block(0, asked).unwrap();
                for c in asked {
                    let (a, b) = (batch.column(*c).unwrap(), read.column(*c).unwrap());
                    assert_eq!(a.values, b.values, "{rows} rows: {}", c.name());
                    let bit = |v: &[u8], r: usize| v[r / 8] >> (r % 8) & 1;
                    let same = (0..rows).all(|r| bit(&a.valid, r) == bit(&b.valid, r));
                    assert!(same, "{rows} rows: {} validity", c.name());
                    assert_eq!(a.nulls, b.nulls, "{rows} rows: {}", c.name());
                }
            }
            let _ = std::fs::remove_file(path);
        }
    }

    /// Packed forms with a byte changed, cut, or under a codec that is
    /// not packed, or with an unknown flag: read (as some values) or
    /// refused, never a panic.
    #[test]
    fn crafted_packed_columns_are_refused_or_read() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        let rows = 4099;
        let good = encode_block(&packable(rows, 5)).bytes;
        let (mut read, mut refused) = (0, 0);
        for c in [
            Column::Protocol,
            Column::Bytes,
            Column::SrcAddr,
            Column::FirstRaw,
        ] {
            let (codec, flags, stored) = stored_in(&good, c);
            assert!(flags & PACKED != 0, "{}", c.name());
            let stored = stored.to_vec();
            let raw_len = le_u32(&good, entry_of(&good, c) + 8) as usize;
            for _ in 0..300 {
                let mut bad = stored.clone();
                let (mut codec, mut flags, mut len) = (codec, flags, raw_len);
                match next() % 6 {
                    0 => bad.truncate(next() as usize % bad.len()),
                    1 => {
                        codec = [CODEC_RAW, CODEC_LZ4_ADDR, CODEC_RAW_ADDR_PLANES, 9]
                            [next() as usize % 4]
                    }
                    2 => flags |= 4 << (next() % 6),
                    3 => len = next() as usize % (raw_len + 16),
                    _ => {
                        // In the headers and dictionaries, or anywhere.
                        let within = [64, bad.len()][(next() % 2) as usize].min(bad.len());
                        for _ in 0..1 + next() % 3 {
                            let at = next() as usize % within;
                            bad[at] = next() as u8;
                        }
                    }
                }
                let mut block = good.clone();
                replace_column(&mut block, c, (codec, Some(flags)), &bad, len);
                match read_or_refused(&block, &[c], c, rows) {
                    true => read += 1,
                    false => refused += 1,
                }
            }
        }
        assert!(read > 200 && refused > 400, "read {read} refused {refused}");
    }

    /// A column stored as differences whose base the block lacks, and the
    /// difference codec on a column that has no base, are refused with
    /// the column named; the other columns still read.
    #[test]
    fn differences_without_their_base_are_refused() {
        let batch = v5_times(500, 7);
        let good = encode_block(&batch);
        // `start_ms` renamed `reverse_bytes` (8 bytes too): `first_raw`
        // has no base.
        let mut block = good.bytes.clone();
        let e = entry_of(&block, Column::StartMs);
        block[e..e + 2].copy_from_slice(&(Column::ReverseBytes as u16).to_le_bytes());
        reseal(&mut block);
        let (f, path) = file_of_block(&block, "no-base");
        assert_eq!(f.block_count(), 1, "{:?}", f.problems());
        let e = f.read_block(0, &[Column::FirstRaw]).unwrap_err();
        assert!(
            e.message.contains("first_raw") && e.message.contains("does not have"),
            "{e}"
        );
        assert!(f
            .read_block(0, &[Column::StartMs, Column::FirstRaw])
            .is_err());
        let read = f.read_block(0, &[Column::LastRaw]).unwrap();
        let same = read.column(Column::LastRaw).unwrap().values
            == batch.column(Column::LastRaw).unwrap().values;
        assert!(same, "last_raw, whose base is there, reads back");
        // The codec on `start_ms`, which is stored as itself.
        let mut block = good.bytes.clone();
        let e = entry_of(&block, Column::StartMs);
        block[e + 2] = CODEC_LZ4_DELTA_PLANES;
        reseal(&mut block);
        let (f, path2) = file_of_block(&block, "delta-codec-on-base");
        let e = f.read_block(0, &[Column::StartMs]).unwrap_err();
        assert!(
            e.message.contains("start_ms") && e.message.contains("first_raw and last_raw"),
            "{e}"
        );
        let e = f.read_block(0, &[Column::FirstRaw]).unwrap_err();
        assert!(e.message.contains("start_ms"), "{e}");
        assert!(f.read_block(0, &[Column::LastRaw]).is_ok());
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&path2);
    }

    /// An encoder with a helper thread makes the same bytes as one
    /// without, block after block (each column's LZ4 skipping carried over
    /// by whichever thread encodes it: `bytes` random in some blocks), and
    /// does split the columns of a block of `HELPER_ROWS` rows or more.
    #[test]
    fn a_helper_thread_encodes_the_same_bytes() {
        let (mut one, mut two) = (BlockEncoder::default(), BlockEncoder::with_helper());
        for (i, rows) in [20_000, 9000, 100, 20_000, 30_000, 8191, 8192]
            .into_iter()
            .enumerate()
        {
            let mut batch = v5_times(rows, i as u64 + 1);
            let mut next = xorshift(0x9e37_79b9_7f4a_7c15 + i as u64);
            let mut refill = |c: Column, value: &mut dyn FnMut(usize) -> Vec<u8>| {
                let d = batch.column_mut(c);
                d.values.clear();
                d.valid.clear();
                d.nulls = 0;
                for r in 0..rows {
                    d.values.extend_from_slice(&value(r));
                }
                set_ones(&mut d.valid, 0, rows);
            };
            let random = i % 2 == 0;
            refill(Column::Bytes, &mut |r| {
                let v = if random { next() } else { 40 + r as u64 % 3 };
                v.to_le_bytes().to_vec()
            });
            refill(Column::SrcPort, &mut |r| {
                ((r * 7) as u16).to_le_bytes().to_vec()
            });
            refill(Column::SrcAddr, &mut |r| {
                let mut a = [0u8; 16];
                a[10..12].copy_from_slice(&[0xff, 0xff]);
                a[12..].copy_from_slice(&(0x0a00_0000 + r as u32 % 777).to_be_bytes());
                a.to_vec()
            });
            let stored = Column::ALL
                .iter()
                .filter(|c| batch.column(**c).is_some_and(|d| d.nulls < rows))
                .count();
            let a = one.encode(&batch).0.to_vec();
            let (b, info) = two.encode(&batch);
            let b = b.to_vec();
            assert!(a == b, "block {i} of {rows} rows: not the same bytes");
            assert_eq!(one.helper_columns(), 0);
            if rows >= HELPER_ROWS {
                let helped = two.helper_columns();
                assert!(
                    helped > 0 && helped < stored,
                    "block {i}: {helped} of {stored}"
                );
            } else {
                assert_eq!(two.helper_columns(), 0, "block {i} of {rows} rows");
            }
            let read = read_block_bytes(&b, info, "helper");
            let same = batch.column(Column::Bytes).unwrap().values
                == read.column(Column::Bytes).unwrap().values;
            assert!(same, "block {i}: bytes read back");
        }
    }

    /// A column LZ4 does not shrink (random counters) is stored as is,
    /// and so, without LZ4 being tried, in the next `SKIP_BLOCKS` blocks
    /// of the same encoder even where LZ4 would now shrink it (runs of 30
    /// rows, whose high bytes are one value: those planes are packed all
    /// along, the rest is stored as is); then LZ4 is tried again. The
    /// other columns are compressed throughout, and every block reads back
    /// as encoded.
    #[test]
    fn an_incompressible_column_is_stored_as_is_for_some_blocks() {
        let rows = 2000;
        let block = |random: bool, seed: u64| {
            let mut batch = Batch::new();
            let mut next = xorshift(seed);
            for r in 0..rows {
                let d = batch.column_mut(Column::Bytes);
                let v = if random {
                    next()
                } else {
                    1500 + (r / 30) as u64 * 977
                };
                d.values.extend_from_slice(&v.to_le_bytes());
                set_ones(&mut d.valid, r, 1);
                let d = batch.column_mut(Column::SrcPort);
                d.values.extend_from_slice(&((r % 7) as u16).to_le_bytes());
                set_ones(&mut d.valid, r, 1);
            }
            fill_absent(&mut batch, rows);
            batch
        };
        let (random, same) = (block(true, 0x51af_d7ed_558c_cd1d), block(false, 1));
        let mut encoder = BlockEncoder::default();
        let mut check = |batch: &Batch, want: (u8, u8, bool), i: usize| {
            let (bytes, info) = encoder.encode(batch);
            let (codec, flags, _) = stored_in(bytes, Column::Bytes);
            let got = (codec, flags, lz4_in(bytes, Column::Bytes));
            assert_eq!(got, want, "block {i}");
            assert_eq!(codec_in(bytes, Column::SrcPort), Some(CODEC_LZ4));
            let read = read_block_bytes(bytes, info, "skip-lz4");
            for c in [Column::Bytes, Column::SrcPort] {
                let (a, b) = (batch.column(c).unwrap(), read.column(c).unwrap());
                assert_eq!(a.values, b.values, "block {i} {}", c.name());
                assert_eq!(a.valid, b.valid, "block {i} {}", c.name());
            }
        };
        let packed = |lz4| (CODEC_LZ4_PLANES, PACKED, lz4);
        check(&same, packed(true), 0);
        check(&random, (CODEC_RAW, 0, false), 1);
        for i in 0..SKIP_BLOCKS as usize {
            check(&same, packed(false), 2 + i);
        }
        check(&same, packed(true), 2 + SKIP_BLOCKS as usize);
        // A new encoder tries LZ4 on every column.
        assert!(lz4_in(&encode_block(&same).bytes, Column::Bytes));
    }

    /// Address columns split by family: IPv4 rows, IPv6 rows, rows
    /// without a value (zeros, and one that is not zeros), a valid `::`,
    /// `::ffff:0.0.0.0` with and without a value; LZ4 when smaller, else
    /// stored as is. Every column reads back the same.
    #[test]
    fn address_columns_read_back() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1du64);
        fn mapped(v4: [u8; 4]) -> [u8; 16] {
            let mut a = [0u8; 16];
            a[..12].copy_from_slice(&V4_MAPPED);
            a[12..].copy_from_slice(&v4);
            a
        }
        let mut random = |family: u64| {
            let r = next();
            match family {
                0 => mapped((r as u32).to_be_bytes()),
                2 => {
                    let mut a = [0u8; 16];
                    a[..8].copy_from_slice(&r.to_be_bytes());
                    a[8..].copy_from_slice(
                        &r.rotate_left(29)
                            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                            .to_be_bytes(),
                    );
                    a
                }
                _ => {
                    let mut a = [0u8; 16];
                    a[..8].copy_from_slice(
                        &0x2001_0db8_0000_0000u64.wrapping_add(r >> 60).to_be_bytes(),
                    );
                    a[8..].copy_from_slice(&r.to_be_bytes());
                    a
                }
            }
        };
        // Blocks of (column, each row's bytes and whether it has a value)
        // and the codec each column must get.
        type Rows = Vec<([u8; 16], bool)>;
        let mixed: Rows = (0..2000)
            .map(|r| match r % 13 {
                0 | 5 => (random(1), true),
                3 => ([0; 16], false),
                7 if r == 7 => (mapped([10, 1, 2, 3]), false),
                8 if r == 8 => ([0; 16], true),
                9 if r == 9 => (mapped([0; 4]), true),
                10 if r == 10 => (mapped([0; 4]), false),
                _ => (random(0), true),
            })
            .collect();
        let blocks: Vec<Vec<(Column, Rows, u8)>> = vec![
            vec![
                (
                    Column::SrcAddr,
                    (0..2000)
                        .map(|r| (mapped([10, 0, (r % 3) as u8, (r % 7) as u8]), true))
                        .collect(),
                    CODEC_LZ4_ADDR_PLANES,
                ),
                (Column::DstAddr, mixed, CODEC_LZ4_ADDR_PLANES),
                (
                    Column::ExporterAddr,
                    vec![(mapped([192, 0, 2, 9]), true); 2000],
                    CODEC_LZ4_ADDR_PLANES,
                ),
            ],
            vec![
                (
                    Column::NextHop,
                    (0..8).map(|_| (random(2), true)).collect(),
                    CODEC_RAW_ADDR_PLANES,
                ),
                (
                    Column::SrcAddr,
                    (0..8).map(|_| (random(0), true)).collect(),
                    CODEC_RAW_ADDR_PLANES,
                ),
            ],
        ];
        for (n, columns) in blocks.into_iter().enumerate() {
            let rows = columns[0].1.len();
            let mut batch = Batch::new();
            let mut check = Vec::new();
            for (c, values, codec) in columns {
                let d = batch.column_mut(c);
                for (r, (v, valid)) in values.into_iter().enumerate() {
                    d.values.extend_from_slice(&v);
                    if valid {
                        set_ones(&mut d.valid, r, 1);
                    } else {
                        set_bit(&mut d.valid, r, false);
                        d.nulls += 1;
                    }
                }
                check.push((c, codec));
            }
            fill_absent(&mut batch, rows);
            let block = encode_block(&batch);
            let codec = |c: Column| codec_in(&block.bytes, c);
            let read = write_and_read(&batch, "addresses");
            for (c, want) in check {
                assert_eq!(codec(c), Some(want), "block {n} {}", c.name());
                let (a, b) = (batch.column(c).unwrap(), read.column(c).unwrap());
                assert!(
                    a.values == b.values,
                    "block {n} {}: values differ",
                    c.name()
                );
                assert_eq!(a.valid, b.valid, "block {n} {}", c.name());
                assert_eq!(a.nulls, b.nulls, "block {n} {}", c.name());
            }
        }
    }

    /// Split addresses whose family bitmap does not count the stored IPv6
    /// heads, or too short for the rows: refused, no panic (both layouts).
    #[test]
    fn address_parts_must_agree() {
        for planes in [false, true] {
            let mut values = Vec::new();
            // 3 rows: family bits 0b101 (rows 0 and 2 IPv4), 12 bytes, one head.
            let mut raw = vec![0b101];
            raw.extend_from_slice(&[1; 12]);
            raw.extend_from_slice(&[7; 12]);
            assert!(from_address_parts(&raw, 3, None, planes, &mut values));
            assert_eq!(values.len(), 48);
            assert_eq!(&values[16..28], &[7; 12]);
            assert_eq!(&values[..12], &V4_MAPPED);
            for (bad, rows) in [
                (&raw[..raw.len() - 12], 3),
                (&raw[..raw.len() - 1], 3),
                (&raw[..5], 3),
                (&raw[..0], 3),
                (&raw[..], 4),
                (&raw[..], 2),
            ] {
                values.clear();
                assert!(
                    !from_address_parts(bad, rows, None, planes, &mut values),
                    "{} {rows} {planes}",
                    bad.len()
                );
            }
            let mut all_v6 = raw.clone();
            all_v6[0] = 0;
            assert!(!from_address_parts(&all_v6, 3, None, planes, &mut values));
        }
    }

    /// The split as planes, written out by hand: two IPv4 rows and two
    /// IPv6 ones (`2001:db8::1`, `2001:db8:1::2`), no validity bitmap.
    #[test]
    fn address_planes_by_hand() {
        let rows: [[u8; 16]; 4] = [
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3],
            [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 9],
            [0x20, 1, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        ];
        #[rustfmt::skip]
        let split: [u8; 1 + 16 + 24] = [
            0b0101,
            // The last 4 bytes, byte by byte.
            10, 0, 192, 0,   1, 0, 0, 0,   2, 0, 2, 0,   3, 1, 9, 2,
            // The first 12 of rows 1 and 3, byte by byte.
            0x20, 0x20, 1, 1, 0x0d, 0x0d, 0xb8, 0xb8, 0, 0, 0, 1,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let col = ColumnData {
            values: rows.concat(),
            valid: vec![0b1111],
            ..ColumnData::default()
        };
        let mut raw = Vec::new();
        to_address_parts(&col, 4, None, &mut raw, &mut Vec::new());
        assert_eq!(raw, split);
        let mut values = Vec::new();
        assert!(from_address_parts(&split, 4, None, true, &mut values));
        assert_eq!(values, rows.concat());
        // One IPv4 address in every row (the exporter's), 8 and 11 rows.
        for n in [8, 11] {
            let col = ColumnData {
                values: rows[2].repeat(n),
                valid: vec![0xff, 0xff],
                ..ColumnData::default()
            };
            let mut raw = Vec::new();
            to_address_parts(&col, n, None, &mut raw, &mut Vec::new());
            let family: &[u8] = if n == 8 { &[0xff] } else { &[0xff, 0b111] };
            let planes = [192, 0, 2, 9].map(|b| vec![b; n]).concat();
            assert_eq!(raw, [family, &planes].concat(), "{n} rows");
            let mut values = Vec::new();
            assert!(from_address_parts(&raw, n, None, true, &mut values));
            assert_eq!(values, col.values);
        }
        // One IPv6 address in every row: no family bit, its 12 first bytes
        // in every row.
        let col = ColumnData {
            values: rows[1].repeat(11),
            valid: vec![0xff, 0xff],
            ..ColumnData::default()
        };
        let mut raw = Vec::new();
        to_address_parts(&col, 11, None, &mut raw, &mut Vec::new());
        assert_eq!(raw[..2], [0, 0]);
        assert_eq!(raw.len(), 2 + 11 * 16);
        let mut values = Vec::new();
        assert!(from_address_parts(&raw, 11, None, true, &mut values));
        assert_eq!(values, col.values);
    }

    /// Split address columns with valid checksums over crafted bytes
    /// (random family bitmaps, lengths and contents, either codec): the
    /// reader gives the column or an error, never a panic, and a column it
    /// gives has 16 bytes a row.
    #[test]
    fn crafted_address_columns_are_refused_or_read() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15u64);
        let rows = 40;
        let mut batch = Batch::new();
        let d = batch.column_mut(Column::SrcAddr);
        for r in 0..rows {
            let mut a = [0u8; 16];
            a[10] = 0xff;
            a[11] = 0xff;
            a[15] = r as u8;
            if r % 3 == 0 {
                a[0] = 0x20;
            }
            d.values.extend_from_slice(&a);
        }
        set_ones(&mut d.valid, 0, rows);
        fill_absent(&mut batch, rows);
        let good = encode_block(&batch).bytes;
        let (mut read, mut refused) = (0, 0);
        for round in 0..3000 {
            let mut block = good.clone();
            let codec = [
                CODEC_RAW_ADDR,
                CODEC_LZ4_ADDR,
                CODEC_RAW_ADDR_PLANES,
                CODEC_LZ4_ADDR_PLANES,
            ][round % 4];
            let raw_min = rows.div_ceil(8) + rows * 4;
            let family: Vec<u8> = (0..rows.div_ceil(8)).map(|_| next() as u8).collect();
            let ipv6_rows = rows - set_bits(&family, rows);
            let raw_len = match next() % 4 {
                0 | 1 => raw_min + 12 * ipv6_rows,
                2 => raw_min + 12 * (next() as usize % (rows + 2)),
                _ => next() as usize % (raw_min + 12 * rows + 20),
            };
            let raw: Vec<u8> = (0..raw_len)
                .map(|i| family.get(i).copied().unwrap_or((next() % 3) as u8))
                .collect();
            let mut stored = if matches!(codec, CODEC_RAW_ADDR | CODEC_RAW_ADDR_PLANES) {
                raw
            } else {
                lz4_flex::block::compress(&raw)
            };
            if next() % 5 == 0 && !stored.is_empty() {
                let i = next() as usize % stored.len();
                stored[i] = next() as u8;
            }
            replace_column(&mut block, Column::SrcAddr, (codec, None), &stored, raw_len);
            match read_or_refused(&block, &[Column::SrcAddr], Column::SrcAddr, rows) {
                true => read += 1,
                false => refused += 1,
            }
        }
        assert!(read > 100 && refused > 100, "read {read} refused {refused}");
    }

    /// What a column with a valid checksum but a crafted or damaged LZ4
    /// block gives the decoder (safe-decode): an error or bytes within the
    /// output, never a panic.
    #[test]
    fn the_decoder_takes_garbage() {
        let mut next = xorshift(0x853c_49e6_748f_ea9bu64);
        let good = lz4_flex::block::compress(
            &(0..4000u32)
                .flat_map(|i| (i % 97).to_le_bytes())
                .collect::<Vec<u8>>(),
        );
        let mut out = vec![0u8; 16_000];
        let mut errors = 0;
        for round in 0..20_000 {
            let mut input: Vec<u8> = if round % 2 == 0 {
                (0..next() % 300).map(|_| next() as u8).collect()
            } else {
                good.clone()
            };
            if round % 2 == 1 {
                for _ in 0..1 + next() % 4 {
                    let at = (next() as usize) % input.len();
                    input[at] = next() as u8;
                }
                input.truncate(input.len() - (next() as usize % 8).min(input.len()));
            }
            let len = (next() % 16_001) as usize;
            match lz4_flex::block::decompress_into(&input, &mut out[..len]) {
                Ok(n) => assert!(n <= len),
                Err(_) => errors += 1,
            }
        }
        assert!(errors > 10_000, "{errors}");
    }

    #[test]
    fn set_bits_counts_only_the_rows() {
        assert_eq!(set_bits(&[], 0), 0);
        assert_eq!(set_bits(&[0xff], 8), 8);
        // Rows 0, 2 and 9 of 10; the bits of rows 10..16 set as damage.
        assert_eq!(set_bits(&[0b0000_0101, 0b1111_1110], 10), 3);
        assert_eq!(set_bits(&[0xff, 0xff, 0xff], 17), 17);
        // A bitmap shorter than the rows (a damaged column): what is there.
        assert_eq!(set_bits(&[0x0f], 20), 4);
    }
}
