//! The columns format (`netflow collector --format columns`): a binary,
//! block-columnar store of normalized flow records, for analyzers that scan
//! many flows and read only the columns a query needs.
//!
//! # Why not Apache Parquet
//!
//! Parquet was measured first (issue 5): the `parquet` crate without arrow,
//! snappy only, adds about 60 s to a clean release build here, which would
//! have been acceptable. It was not taken because of durability: a Parquet
//! file is only readable once its footer (the schema and the offsets of
//! every row group) is written at the end, at close. The collector writes a
//! block every flush interval (1 s) so that a `kill -9` or a power loss
//! loses at most that interval, as its gzip files do; a Parquet file killed
//! that way is unreadable as a whole, and rewriting a footer after every
//! 1-s row group makes it grow with every row group (quadratic writes).
//! Here every block is self-describing and checksummed, the file needs no
//! footer to be read, and a torn last block is detected and cut.
//!
//! # File layout (version 9, all integers little-endian)
//!
//! ```text
//! file    = file-header block* [footer]
//! file-header (16 bytes) = "NFCOLS\r\n" (8) | version u16 = 8 | flags u16 = 0 | reserved u32 = 0
//! block   = block-header directory column-data*
//! block-header (36 bytes) = "NFCB" | rows u32 | columns u16 | reserved u16 | body_len u32
//!           | min_time_ms i64 | max_time_ms i64 | crc32 u32
//!     body_len: bytes of directory + column data after the header;
//!     min/max_time_ms: range of the rows' flow time (absolute start, else
//!     receive time: the time `analyzer top --since/--until` filters on);
//!     crc32: CRC-32 (IEEE) of the 32 header bytes before it and the directory.
//! directory = columns x (column id u16 | codec u8 | flags u8 | stored_len u32 | raw_len u32 | crc32 u32)
//!     codec 0: stored as is, 1: LZ4 block (lz4_flex), 2 (version 3): the
//!     values as byte planes (byte 0 of every row, then byte 1 of every
//!     row, ...; the bitmap before them as it is), then an LZ4 block;
//!     3 (version 4, the 16-byte address columns): the addresses split by
//!     family (the bitmap before them as it is, then a family bitmap, bit
//!     i set when row i is IPv4-mapped `::ffff:a.b.c.d` or, without a
//!     value, zeros; the last 4 bytes of every row; the first 12 bytes of
//!     every row whose bit is clear, in row order), then an LZ4 block;
//!     4 (version 4): the same split stored as is (raw_len is then
//!     bitmap + (rows+7)/8 + 4 x rows + 12 x the rows that are not IPv4);
//!     5 (version 5, what it writes for addresses instead of 3): the split
//!     of codec 3 with its two parts as byte planes (byte 12 of every row,
//!     then byte 13, 14, 15; then byte 0 of every row whose bit is clear,
//!     then byte 1, ... 11 of those rows), then an LZ4 block; 6 (version
//!     5): the same stored as is (raw_len as for 4); 7 (version 7,
//!     `first_raw` and `last_raw` only): each row's value less (wrapping,
//!     as u64) the same row's value in `start_ms` (for `first_raw`) or
//!     `end_ms` (for `last_raw`) of the same block, which must be stored
//!     in it (a row without a value has zeros there too), as byte planes
//!     as codec 2, then an LZ4 block;
//!     flags bit 0: a validity bitmap precedes the values; bit 1 (version
//!     8, with codecs 1, 2, 5 and 7 only): the stored bytes are a packed
//!     form (`columns/packed.rs`): the raw bytes cut into segments (the
//!     bitmaps, each byte plane; codec 1 only for 1-byte columns, their
//!     values one plane), those of one value stored as it, those of 2 to 16
//!     values as a dictionary and indexes of 1 to 4 bits, the others
//!     together with the indexes as is or as an LZ4 block; the codec then
//!     says how the raw bytes are laid out, not that LZ4 was used. Other
//!     flag bits are refused. crc32 of the stored bytes.
//! column-data (raw, after decompression) = [validity bitmap, (rows+7)/8 bytes,
//!     bit i set = row i has a value] values
//!     fixed-width columns: rows x width bytes (a row without a value is zeros);
//!     `extra`: (rows + 1) u32 offsets, then the bytes.
//! footer  = "NFCF" | blocks u32 | blocks x (offset u64 | rows u32 | min_time_ms i64 | max_time_ms i64)
//!           | crc32 u32 (of all footer bytes before it) | footer_len u32 (bytes from "NFCF" to crc32) | "NFCEND\r\n"
//! ```
//!
//! The footer is written when a file is closed (SIGTERM, rotation): it marks
//! the file complete and indexes the blocks. Readers do not need it: they walk
//! the block headers (one small read per block, [`ColumnFile::open`]), so a
//! file cut by `kill -9` is readable up to its last complete block, and a
//! file appended to after a restart (footer, then more blocks) too. Unknown
//! column ids are skipped by readers; a column absent from a block reads as
//! all nulls.
//!
//! Version 2 added the columns `src_mask` to `vlan` (ids 37 to 42) and
//! their [`flags`] bits; version 1 files have those fields in `extra` and
//! read the same (a version 1 block simply has none of those columns). A
//! version 1 reader would skip the new columns and lose their fields, so
//! the version in the header was raised: it refuses the file instead.
//! Version 6 added `src_mac` and `dst_mac` (ids 43, 44) the same way:
//! earlier files have those fields in `extra`. Version 7 added codec 7,
//! which a version 6 reader does not know; version 8 the packed flag,
//! which a version 7 reader would ignore. Version 9 added the v7 record's
//! own fields as columns (`v7_flags1`, `v7_flags2`, `router_sc`, ids 45 to
//! 47): earlier files have them in `extra`.
//!
//! # Schema: one row per data record (flow and options records)
//!
//! See [`Column`] for every column, its width and meaning. A record's
//! fields are mapped to the core columns by Information Element
//! (IANA, also the v9 field types and the v1/v5/v7 fixed fields, which share
//! the numbers): a field goes to its column when the column holds it exactly
//! (same type, first occurrence); every other field of the record (other
//! elements, a second occurrence, a value of an unexpected type, options
//! scope fields, lists) goes to the `extra` column as one compact JSON
//! object, keys and values as `--format flows` writes them. So no field of a
//! record is lost: [`Batch::record_fields`] gives a stored record's fields
//! back in the `--format flows` shape (checked against it in the tests).
//!
//! Flow times: the start/end fields as given are kept raw
//! (`first_raw`/`last_raw` with their unit in `time_unit`, exactly as the
//! analyzer's `Flow` holds them) and converted to absolute Unix
//! milliseconds (`start_ms`/`end_ms`) when the record allows: sysUpTime
//! values from the header's uptime and export time (v1/v5/v7/v9) or from the
//! exporter's `systemInitTimeMilliseconds` (IPFIX options data, remembered
//! per exporter by the [`BatchBuilder`]).

mod build;
mod file;
mod packed;

pub use build::BatchBuilder;
pub use file::{
    encode_block, file_header, footer, is_columns_file, open_for_append, BlockEncoder, BlockInfo,
    BlockScratch, ColumnError, ColumnFile, ColumnWriter, EncodedBlock, ReadBlock, ScanReport,
    FILE_MAGIC, VERSION,
};

/// Bits of the [`Column::Flags`] column.
pub mod flags {
    /// An options record (v9 options data, IPFIX options template data).
    pub const OPTIONS: u16 = 1 << 0;
    /// `src_addr` is an IPv6 address (else IPv4, stored v4-mapped).
    pub const SRC_V6: u16 = 1 << 1;
    /// `dst_addr` is IPv6.
    pub const DST_V6: u16 = 1 << 2;
    /// `next_hop` is IPv6.
    pub const NEXT_HOP_V6: u16 = 1 << 3;
    /// The exporter's address is IPv6.
    pub const EXPORTER_V6: u16 = 1 << 4;
    /// `bytes` came from octetTotalCount (85), not octetDeltaCount / IN_BYTES (1).
    pub const BYTES_TOTAL: u16 = 1 << 5;
    /// `packets` came from packetTotalCount (86), not packetDeltaCount (2).
    pub const PACKETS_TOTAL: u16 = 1 << 6;
    /// `reverse_bytes` came from reverseOctetTotalCount.
    pub const REVERSE_BYTES_TOTAL: u16 = 1 << 7;
    /// `reverse_packets` came from reversePacketTotalCount.
    pub const REVERSE_PACKETS_TOTAL: u16 = 1 << 8;
    /// `src_mask` came from sourceIPv6PrefixLength / IPV6_SRC_MASK (29),
    /// not sourceIPv4PrefixLength / SRC_MASK (9). Version 2.
    pub const SRC_MASK_V6: u16 = 1 << 9;
    /// `dst_mask` came from IE 30, not 13. Version 2.
    pub const DST_MASK_V6: u16 = 1 << 10;
    /// `icmp_type` came from icmpTypeCodeIPv6 (139), not icmpTypeCodeIPv4 /
    /// ICMP_TYPE (32). Version 2.
    pub const ICMP_V6: u16 = 1 << 11;
    /// `vlan` came from postVlanId / DST_VLAN (59), not vlanId / SRC_VLAN
    /// (58). Version 2.
    pub const VLAN_POST: u16 = 1 << 12;
}

/// Units of [`Column::TimeUnit`] (what `first_raw`/`last_raw` are).
pub mod time_unit {
    /// Milliseconds of exporter uptime (FIRST_SWITCHED/LAST_SWITCHED, IEs 22/21).
    pub const SYS_UPTIME_MS: u8 = 1;
    /// Unix seconds (flowStartSeconds/flowEndSeconds, IEs 150/151).
    pub const UNIX_SECONDS: u8 = 2;
    /// Unix milliseconds (flowStartMilliseconds/flowEndMilliseconds, IEs 152/153).
    pub const UNIX_MILLIS: u8 = 3;
    /// NTP timestamp `seconds << 32 | fraction` of flowStart/EndMicroseconds (IEs 154/155).
    pub const NTP_MICROS: u8 = 4;
    /// NTP timestamp of flowStart/EndNanoseconds (IEs 156/157).
    pub const NTP_NANOS: u8 = 5;
}

macro_rules! columns {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal, $name:literal, $width:literal; )*) => {
        /// A column of the format: its id in the file (stable), name and width.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u16)]
        pub enum Column {
            $( $(#[$doc])* $variant = $id, )*
        }

        impl Column {
            /// Every column, in id order.
            pub const ALL: &'static [Column] = &[$(Column::$variant),*];

            /// The column's name (as in the README's schema table).
            pub fn name(self) -> &'static str {
                match self { $(Column::$variant => $name,)* }
            }

            /// Bytes per value; 0 for the variable-length `extra` column.
            pub fn width(self) -> usize {
                match self { $(Column::$variant => $width,)* }
            }

            /// The column with this id (ids of newer versions: `None`).
            pub fn from_id(id: u16) -> Option<Column> {
                match id { $($id => Some(Column::$variant),)* _ => None }
            }
        }
    };
}

columns! {
    /// Receive time of the datagram, Unix seconds as an `f64` (its bits; the
    /// exact value the JSON layouts write).
    Received = 0, "received", 8;
    /// Exporter address, 16 bytes (IPv4 as `::ffff:a.b.c.d`, see [`flags::EXPORTER_V6`]).
    ExporterAddr = 1, "exporter_addr", 16;
    /// Exporter UDP/TCP source port.
    ExporterPort = 2, "exporter_port", 2;
    /// NetFlow version (1, 5, 7, 9; 10 for IPFIX).
    Version = 3, "version", 2;
    /// v9 source id / IPFIX observation domain id (null for v1/v5/v7).
    Domain = 4, "domain", 4;
    /// Template id of the record's set (0 for v1/v5/v7).
    TemplateId = 5, "template_id", 2;
    /// Header sequence number (null for v1).
    Sequence = 6, "sequence", 4;
    /// Header export time, Unix seconds.
    ExportTime = 7, "export_time", 4;
    /// Header nanoseconds of the export time (v1/v5/v7 only).
    ExportNanos = 8, "export_nanos", 4;
    /// Header exporter uptime at export, ms (v1/v5/v7/v9).
    Uptime = 9, "uptime_ms", 4;
    /// v5 header sampling field, raw (mode in the top 2 bits).
    HeaderSampling = 10, "header_sampling", 2;
    /// Bit set, see [`flags`].
    Flags = 11, "flags", 2;
    /// Flow start, absolute Unix milliseconds, when derivable.
    StartMs = 12, "start_ms", 8;
    /// Flow end, absolute Unix milliseconds, when derivable.
    EndMs = 13, "end_ms", 8;
    /// Flow start as given in the record, in [`Column::TimeUnit`] units.
    FirstRaw = 14, "first_raw", 8;
    /// Flow end as given in the record.
    LastRaw = 15, "last_raw", 8;
    /// Unit of `first_raw`/`last_raw`, see [`time_unit`].
    TimeUnit = 16, "time_unit", 1;
    /// Source address (IE 8 or 27), 16 bytes, see [`flags::SRC_V6`].
    SrcAddr = 17, "src_addr", 16;
    /// Destination address (IE 12 or 28).
    DstAddr = 18, "dst_addr", 16;
    /// Source transport port (IE 7).
    SrcPort = 19, "src_port", 2;
    /// Destination transport port (IE 11).
    DstPort = 20, "dst_port", 2;
    /// IP protocol (IE 4).
    Protocol = 21, "protocol", 1;
    /// Bytes (IE 1 octetDeltaCount / IN_BYTES / IN_OCTETS, else 85 octetTotalCount).
    Bytes = 22, "bytes", 8;
    /// Packets (IE 2, else 86).
    Packets = 23, "packets", 8;
    /// TCP flags (IE 6; 16 bits in IPFIX).
    TcpFlags = 24, "tcp_flags", 2;
    /// Type of service / DSCP byte (IE 5).
    Tos = 25, "tos", 1;
    /// Input interface (IE 10).
    InputIf = 26, "input_if", 4;
    /// Output interface (IE 14).
    OutputIf = 27, "output_if", 4;
    /// Source AS (IE 16).
    SrcAs = 28, "src_as", 4;
    /// Destination AS (IE 17).
    DstAs = 29, "dst_as", 4;
    /// Next hop (IE 15 or 62), see [`flags::NEXT_HOP_V6`].
    NextHop = 30, "next_hop", 16;
    /// Flow direction (IE 61: 0 ingress, 1 egress).
    Direction = 31, "direction", 1;
    /// Reverse bytes of an RFC 5103 biflow (PEN 29305 IE 1, else 85).
    ReverseBytes = 32, "reverse_bytes", 8;
    /// Reverse packets (PEN 29305 IE 2, else 86).
    ReversePackets = 33, "reverse_packets", 8;
    /// Sampling interval field of the record (IE 34).
    SamplingInterval = 34, "sampling_interval", 4;
    /// IP version (IE 60).
    IpVersion = 35, "ip_version", 1;
    /// Every other field, one compact JSON object (empty when none).
    Extra = 36, "extra", 0;
    /// Source prefix length (IE 9, or 29 with [`flags::SRC_MASK_V6`]). Since version 2.
    SrcMask = 37, "src_mask", 1;
    /// Destination prefix length (IE 13, or 30 with [`flags::DST_MASK_V6`]). Since version 2.
    DstMask = 38, "dst_mask", 1;
    /// ICMP type and code, `type << 8 | code` (IE 32, or 139 with
    /// [`flags::ICMP_V6`]). Since version 2.
    IcmpType = 39, "icmp_type", 2;
    /// IPv6 flow label (IE 31). Since version 2.
    FlowLabel = 40, "flow_label", 4;
    /// Flow end reason (IE 136). Since version 2.
    EndReason = 41, "end_reason", 1;
    /// VLAN id (IE 58, or 59 with [`flags::VLAN_POST`]). Since version 2.
    Vlan = 42, "vlan", 2;
    /// Source MAC address (IE 56 sourceMacAddress / v9 IN_SRC_MAC), the 6
    /// bytes as on the wire. Since version 6.
    SrcMac = 43, "src_mac", 6;
    /// Destination MAC address (IE 80 destinationMacAddress / v9
    /// IN_DST_MAC). Since version 6.
    DstMac = 44, "dst_mac", 6;
    /// NetFlow v7 `flags1` (record byte 36: which flow fields are
    /// invalid). Since version 9.
    V7Flags1 = 45, "v7_flags1", 1;
    /// NetFlow v7 `flags2` (record bytes 46-47). Since version 9.
    V7Flags2 = 46, "v7_flags2", 2;
    /// NetFlow v7 `router_sc`: the IPv4 address of the router the switch
    /// shortcut bypassed, as a 32-bit number (the address's 4 bytes read
    /// big-endian). Since version 9.
    RouterSc = 47, "router_sc", 4;
}

/// Number of columns in this version.
pub const COLUMNS: usize = 48;

/// One column's values in a [`Batch`]: little-endian values (or the
/// `extra` bytes) and a validity bitmap.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColumnData {
    /// Fixed-width: `rows * width` bytes, or none at all when no row has a
    /// value (a column no record fed, a column a block does not have) or
    /// the column was read for its presence only. `extra`: the
    /// concatenated JSON texts.
    pub values: Vec<u8>,
    /// `extra` only: `rows + 1` end offsets into `values` (first is 0).
    pub offsets: Vec<u32>,
    /// Bit `i` set: row `i` has a value.
    pub valid: Vec<u8>,
    /// Rows without a value.
    pub nulls: usize,
}

/// Rows of records in columns: what a block holds, what the
/// [`BatchBuilder`] builds and what [`ColumnFile::read_block`] returns (with
/// the columns asked for).
///
/// Two batches are equal when they hold the same rows: a fixed-width
/// column without values equals one whose values are all zeros (the
/// builder does not write the zeros of a column no record fed).
#[derive(Debug, Clone)]
pub struct Batch {
    rows: usize,
    cols: Vec<Option<ColumnData>>,
    min_time_ms: i64,
    max_time_ms: i64,
}

impl Default for Batch {
    fn default() -> Self {
        Batch::new()
    }
}

impl PartialEq for Batch {
    fn eq(&self, other: &Batch) -> bool {
        let same_column = |(i, (a, b)): (usize, (&Option<ColumnData>, &Option<ColumnData>))| {
            let (a, b) = match (a, b) {
                (None, None) => return true,
                (Some(a), Some(b)) => (a, b),
                _ => return false,
            };
            let width = Column::from_id(i as u16).map_or(0, |c| c.width());
            // No values: as many zeros as the rows need.
            let zeros = |v: &[u8], w: &[u8]| {
                width > 0
                    && v.is_empty()
                    && w.len() == self.rows * width
                    && w.iter().all(|&x| x == 0)
            };
            a.valid == b.valid
                && a.nulls == b.nulls
                && a.offsets == b.offsets
                && (a.values == b.values
                    || zeros(&a.values, &b.values)
                    || zeros(&b.values, &a.values))
        };
        self.rows == other.rows
            && self.min_time_ms == other.min_time_ms
            && self.max_time_ms == other.max_time_ms
            && self.cols.len() == other.cols.len()
            && self
                .cols
                .iter()
                .zip(&other.cols)
                .enumerate()
                .all(same_column)
    }
}

impl Batch {
    /// An empty batch with every column, each with room for as many bytes
    /// as `self`'s holds now and a quarter more ([`make_room_of`](Self::make_room_of)):
    /// a batch made to take the place of one handed on (the collector's
    /// sink, when the writer has returned none) fills to about the same
    /// size without growing its columns by reallocation, each growth a
    /// copy of all the column held (a quarter of the decode thread's
    /// instructions on fprobe's v5 stream, callgrind).
    pub fn empty_with_room_of(&self) -> Batch {
        let mut b = Batch::new();
        b.make_room_of(self);
        b
    }

    /// Give each column of this batch room for as many bytes as `full`'s
    /// holds and a quarter more, without copying: a column with no bytes
    /// and too little room gets a new allocation (growing it would copy
    /// its old room), one with bytes is grown. The collector's decode
    /// worker goes on in a batch the writer returned after the one it
    /// handed over: one hand-over is rarely the size of the one before
    /// (a burst of datagrams more or less), and each column of a batch
    /// too small for it grew by doubling, a copy each time (`perf record
    /// -e page-faults`: 40 % of the decode thread's faults, in `realloc`,
    /// on fprobe's v5 stream at 40,000 datagrams/s).
    pub fn make_room_of(&mut self, full: &Batch) {
        fn room<T>(v: &mut Vec<T>, bytes: usize) {
            let want = bytes + bytes / 4;
            if v.capacity() >= want {
                return;
            }
            if v.is_empty() {
                *v = Vec::with_capacity(want);
            } else {
                v.reserve_exact(want - v.len());
            }
        }
        for (mine, theirs) in self.cols.iter_mut().zip(&full.cols) {
            if let (Some(m), Some(t)) = (mine, theirs) {
                room(&mut m.values, t.values.len());
                room(&mut m.valid, t.valid.len());
                room(&mut m.offsets, t.offsets.len());
            }
        }
    }

    /// An empty batch with every column.
    pub fn new() -> Batch {
        let mut cols: Vec<Option<ColumnData>> = vec![None; COLUMNS];
        for c in Column::ALL {
            let mut d = ColumnData::default();
            if c.width() == 0 {
                d.offsets.push(0);
            }
            cols[*c as usize] = Some(d);
        }
        Batch {
            rows: 0,
            cols,
            min_time_ms: i64::MAX,
            max_time_ms: i64::MIN,
        }
    }

    /// No rows and no columns (what a reader fills).
    pub fn empty() -> Batch {
        Batch {
            rows: 0,
            cols: vec![None; COLUMNS],
            min_time_ms: i64::MAX,
            max_time_ms: i64::MIN,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Range of the rows' flow time (`None` when empty).
    pub fn time_range(&self) -> Option<(i64, i64)> {
        (self.rows > 0 && self.min_time_ms <= self.max_time_ms)
            .then_some((self.min_time_ms, self.max_time_ms))
    }

    /// Bytes of values held (a measure for flushing by size).
    pub fn byte_size(&self) -> usize {
        self.cols
            .iter()
            .flatten()
            .map(|c| c.values.len() + c.valid.len() + c.offsets.len() * 4)
            .sum()
    }

    /// The column, when this batch has it (read blocks have only the columns asked for).
    pub fn column(&self, c: Column) -> Option<&ColumnData> {
        self.cols.get(c as usize)?.as_ref()
    }

    pub(crate) fn column_mut(&mut self, c: Column) -> &mut ColumnData {
        self.cols[c as usize].get_or_insert_with(ColumnData::default)
    }

    /// Remove every row, keeping the allocations.
    pub fn clear(&mut self) {
        for c in self.cols.iter_mut().flatten() {
            c.values.clear();
            c.valid.clear();
            c.nulls = 0;
            c.offsets.clear();
        }
        if let Some(Some(e)) = self.cols.get_mut(Column::Extra as usize) {
            e.offsets.push(0);
        }
        self.rows = 0;
        self.min_time_ms = i64::MAX;
        self.max_time_ms = i64::MIN;
    }

    /// Gives every fixed-width column without values (no row has one)
    /// the zeros of its rows, for a writer that appends to each column.
    pub(crate) fn fill_values(&mut self) {
        let rows = self.rows;
        for (i, d) in self.cols.iter_mut().enumerate() {
            let width = Column::from_id(i as u16).map_or(0, |c| c.width());
            if let Some(d) = d.as_mut().filter(|d| width > 0 && d.values.is_empty()) {
                d.values.resize(rows * width, 0);
            }
        }
    }

    /// Append all rows of `other` (same columns: both built by a [`BatchBuilder`]).
    pub fn append(&mut self, other: &Batch) {
        if other.rows == 0 {
            return;
        }
        let rows = self.rows;
        for (i, theirs) in other.cols.iter().enumerate() {
            let Some(theirs) = theirs else { continue };
            let Some(Some(mine)) = self.cols.get_mut(i) else {
                continue;
            };
            let width = Column::from_id(i as u16).map_or(0, |c| c.width());
            if width == 0 {
                let base = mine.values.len() as u32;
                mine.offsets
                    .extend(theirs.offsets.iter().skip(1).map(|o| o + base));
                mine.values.extend_from_slice(&theirs.values);
            } else if !theirs.values.is_empty() {
                // Mine may have no values yet (no row had one).
                mine.values.resize(rows * width, 0);
                mine.values.extend_from_slice(&theirs.values);
            } else if !mine.values.is_empty() {
                // Theirs has none: their rows are nulls, zeros in mine.
                mine.values.resize((rows + other.rows) * width, 0);
            }
            append_bits(
                &mut mine.valid,
                rows,
                &theirs.valid,
                other.rows,
                theirs.nulls,
            );
            mine.nulls += theirs.nulls;
        }
        self.rows += other.rows;
        self.min_time_ms = self.min_time_ms.min(other.min_time_ms);
        self.max_time_ms = self.max_time_ms.max(other.max_time_ms);
    }

    // ---- typed access (for readers) ----

    fn fixed(&self, c: Column, row: usize) -> Option<&[u8]> {
        let d = self.column(c)?;
        if !bit(&d.valid, row) {
            return None;
        }
        let w = c.width();
        d.values.get(row * w..row * w + w)
    }

    /// Whether the row has a value in column `c` (also for a column read
    /// for its presence only, whose values read as `None`).
    #[inline]
    pub fn present(&self, c: Column, row: usize) -> bool {
        self.column(c).is_some_and(|d| bit(&d.valid, row))
    }

    /// An unsigned column's value (u8/u16/u32/u64 columns), `None` when null or absent.
    #[inline]
    pub fn u64(&self, c: Column, row: usize) -> Option<u64> {
        let b = self.fixed(c, row)?;
        let mut x = [0u8; 8];
        x[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
        Some(u64::from_le_bytes(x))
    }

    /// A signed 64-bit column (`start_ms`, `end_ms`).
    #[inline]
    pub fn i64(&self, c: Column, row: usize) -> Option<i64> {
        self.u64(c, row).map(|v| v as i64)
    }

    /// An address column (16 bytes) as an address: IPv6 when `v6`, else the
    /// IPv4 address of the v4-mapped form.
    #[inline]
    pub fn addr(&self, c: Column, row: usize, v6: bool) -> Option<std::net::IpAddr> {
        let b: [u8; 16] = self.fixed(c, row)?.try_into().ok()?;
        let a = std::net::Ipv6Addr::from(b);
        Some(if v6 {
            a.into()
        } else {
            std::net::Ipv4Addr::new(b[12], b[13], b[14], b[15]).into()
        })
    }

    /// A MAC address column (`src_mac`, `dst_mac`), `None` when null or absent.
    #[inline]
    pub fn mac(&self, c: Column, row: usize) -> Option<[u8; 6]> {
        self.fixed(c, row)?.try_into().ok()
    }

    /// The receive time (Unix seconds).
    pub fn received(&self, row: usize) -> Option<f64> {
        self.u64(Column::Received, row).map(f64::from_bits)
    }

    /// The flags of a row (0 when the column is absent).
    #[inline]
    pub fn flags(&self, row: usize) -> u16 {
        self.u64(Column::Flags, row).unwrap_or(0) as u16
    }

    /// The exporter of a row.
    pub fn exporter(&self, row: usize) -> Option<std::net::SocketAddr> {
        let v6 = self.flags(row) & flags::EXPORTER_V6 != 0;
        let a = self.addr(Column::ExporterAddr, row, v6)?;
        let p = self.u64(Column::ExporterPort, row)? as u16;
        Some(std::net::SocketAddr::new(a, p))
    }

    /// The `extra` JSON text of a row (`""` when it has none).
    pub fn extra(&self, row: usize) -> Option<&str> {
        let d = self.column(Column::Extra)?;
        let s = *d.offsets.get(row)? as usize;
        let e = *d.offsets.get(row + 1)? as usize;
        std::str::from_utf8(d.values.get(s..e)?).ok()
    }

    /// A stored record's fields as a JSON object in the `--format flows`
    /// shape (`"fields"`): core columns under the names of the record's
    /// version, then the `extra` fields. Field order is not kept (core
    /// fields first).
    pub fn record_fields(&self, row: usize) -> serde_json::Map<String, serde_json::Value> {
        build::record_fields(self, row)
    }
}

#[inline]
pub(crate) fn bit(bits: &[u8], i: usize) -> bool {
    bits.get(i >> 3).is_some_and(|b| b & (1 << (i & 7)) != 0)
}

pub(crate) fn set_bit(bits: &mut Vec<u8>, i: usize, on: bool) {
    if bits.len() <= i >> 3 {
        bits.resize((i >> 3) + 1, 0);
    }
    if on {
        bits[i >> 3] |= 1 << (i & 7);
    }
}

/// Set bits `from..from + n` (the bits after `from` are clear), a byte at
/// a time: a mask for the first and last bytes, whole bytes between. (Bit at a time,
/// with a length check per bit, it was most of appending a decode
/// worker's rows to the sink's batch, which is done column by column for
/// a few rows at a time.)
#[inline]
pub(crate) fn set_ones(bits: &mut Vec<u8>, from: usize, n: usize) {
    if n == 0 {
        return;
    }
    let end = from + n;
    if bits.len() < end.div_ceil(8) {
        bits.resize(end.div_ceil(8), 0);
    }
    let (first, last) = (from / 8, (end - 1) / 8);
    // The bits from `from` on in its byte, and up to `end - 1` in its.
    let head = 0xffu8 << (from % 8);
    let tail = 0xffu8 >> (7 - (end - 1) % 8);
    if first == last {
        bits[first] |= head & tail;
    } else {
        bits[first] |= head;
        bits[first + 1..last].fill(0xff);
        bits[last] |= tail;
    }
}

/// Append `n` bits of `src` (`nulls` of them clear) after the first `at`
/// bits of `dst` (bits after `at` are clear).
fn append_bits(dst: &mut Vec<u8>, at: usize, src: &[u8], n: usize, nulls: usize) {
    dst.truncate(at.div_ceil(8));
    let end = at + n;
    if nulls == 0 {
        set_ones(dst, at, n);
    } else if nulls < n {
        let src = &src[..n.div_ceil(8).min(src.len())];
        let shift = at % 8;
        if shift == 0 {
            dst.extend_from_slice(src);
        } else {
            // Each source byte straddles two of `dst`: its low bits go
            // into the partial last byte, its high bits start the next.
            for &b in src {
                let last = dst.len() - 1;
                dst[last] |= b << shift;
                dst.push(b >> (8 - shift));
            }
        }
    }
    dst.resize(end.div_ceil(8), 0);
    // Bits of `src` past `n` (a read block's last byte may have them) are not rows.
    if end % 8 != 0 {
        if let Some(last) = dst.get_mut(end / 8) {
            *last &= (1u8 << (end % 8)) - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{append_bits, bit, set_bit};

    /// `append_bits` as `set_bit` one bit at a time would do it: every
    /// start within a byte, lengths over byte boundaries, sources with
    /// no, some and all bits set (and stray bits past their length).
    #[test]
    fn append_bits_is_set_bit_repeated() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for at in 0..20 {
            for n in 0..40 {
                for pattern in 0..5 {
                    let mut src = Vec::new();
                    for i in 0..n {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        let on = match pattern {
                            0 => false,
                            1 => true,
                            2 => i % 3 == 0,
                            _ => state & 1 == 1,
                        };
                        set_bit(&mut src, i, on);
                    }
                    src.resize(n.div_ceil(8), 0);
                    if pattern == 4 && n % 8 != 0 {
                        // Stray bits past `n`.
                        *src.last_mut().unwrap() |= !((1u8 << (n % 8)) - 1);
                    }
                    let nulls = (0..n).filter(|i| !bit(&src, *i)).count();
                    let mut want = Vec::new();
                    for i in 0..at {
                        set_bit(&mut want, i, i % 2 == 1);
                    }
                    let mut got = want.clone();
                    for i in 0..n {
                        set_bit(&mut want, at + i, bit(&src, i));
                    }
                    want.resize((at + n).div_ceil(8), 0);
                    append_bits(&mut got, at, &src, n, nulls);
                    assert_eq!(got, want, "at {at}, {n} bits, pattern {pattern}");
                }
            }
        }
    }
}
