//! Sequence-number accounting per (exporter, domain) stream: loss,
//! reordering, duplicates and exporter restarts, in the unit each version counts.
//!
//! # Streams
//!
//! A stream ([`StreamKey`]) is what one sequence counter numbers: the
//! exporter's transport address, the protocol, and
//!
//! * v9: the source ID (RFC 3954 section 5.1: the counter is per Observation Domain);
//! * IPFIX: the observation domain ID (RFC 7011 section 3.1: per Observation Domain);
//! * v5: `engine_type << 8 | engine_id` (a router with several flow switching
//!   engines sends one flow counter per engine);
//! * v1, v7: 0.
//!
//! # What the sequence number counts
//!
//! * **v5, v7: flows.** `flow_sequence` is the number of flows exported before
//!   this packet, so the next packet is expected at `sequence + count`, where
//!   `count` is the header's record count.
//! * **v9: export packets.** RFC 3954 section 5.1: "Incremental sequence
//!   counter of all Export Packets sent from the current Observation Domain by
//!   the Exporter": the next packet is expected at `sequence + 1`, whatever it
//!   holds (templates, options, flows).
//! * **IPFIX: data records.** RFC 7011 section 3.1: the number of IPFIX Data
//!   Records sent before this message in this Observation Domain, modulo 2^32;
//!   "Template and Options Template Records do not increase the Sequence
//!   Number". Options data records are data records and do count. The next
//!   message is expected at `sequence + data records in this message`.
//! * **v1: nothing.** v1 has no sequence number; only datagrams and records
//!   are counted ([`Observation::Unsequenced`]).
//!
//! Every quantity below (expected, received, lost, ...) is in that unit; see
//! [`SequenceUnit`].
//!
//! # Rules
//!
//! Sequence numbers are compared with serial number arithmetic modulo 2^32
//! (RFC 1982): the distance `d` from the next expected number to the
//! datagram's number is `(sequence - expected) mod 2^32` read as a signed
//! 32-bit integer, so a counter that wraps from 2^32 - 1 to 0 is simply in
//! order. Each datagram covers the range `[sequence, sequence + units)`.
//!
//! 1. **First datagram** of a stream: the accounting starts at its sequence
//!    number (nothing before it is expected): [`Observation::First`].
//! 2. **In order** (`d == 0`): [`Observation::InOrder`].
//! 3. **Restart**: `d != 0` and the exporter's clock says it rebooted. v5, v7
//!    and v9 headers carry the exporter's uptime: a reboot is the uptime going
//!    back while the implied boot time (`export_time * 1000 - uptime`, in
//!    milliseconds) moves forward by more than 2 s. (A datagram that is merely
//!    late has an older uptime too, but the same boot time; an uptime that
//!    wraps after 49.7 days moves the boot time forward by 2^32 ms and is not a
//!    reboot.) A datagram entirely behind the expected number that was sent
//!    *later* than the newest datagram seen (v5/v7/v9: greater uptime; IPFIX:
//!    greater export time, as IPFIX has no uptime) is a counter reset too.
//!    (For IPFIX it is the export time going *forward* with the sequence
//!    number going back that reveals a restart: a late or duplicated message
//!    carries an export time no later than the newest one. So an IPFIX
//!    exporter that restarts within the same second as its last message is
//!    not recognized at once; see the late rule below.)
//!    A restart begins a new epoch: accounting starts again at the new number,
//!    the old epoch's open gaps stay lost, and nothing is counted as lost,
//!    reordered or duplicate for the jump itself: [`Observation::Restart`].
//! 4. **Gap** (`d > 0`): the `d` units in between are counted as lost and
//!    remembered as a gap: [`Observation::Gap`]. (Serial arithmetic reads a
//!    jump back by more than 2^31 as a jump forward.)
//! 5. **Behind** (`d < 0`): the datagram's range is compared with the window
//!    of recently seen sequence space (the ranges of the last
//!    [`TrackerLimits::window`] datagrams that advanced the stream):
//!    * entirely inside remembered gaps: a late datagram; the loss it had
//!      caused is taken back: [`Observation::Reordered`];
//!    * entirely inside sequence space already received: [`Observation::Duplicate`];
//!    * entirely older than the window: [`Observation::Late`], counted apart,
//!      neither received nor lost. The 4th late datagram in a row starts a
//!      new epoch instead ([`Observation::Restart`]): a counter reset that the
//!      clock could not reveal must not stall the accounting;
//!    * anything else (part already received, part new or filling a gap):
//!      the exporter's numbering is inconsistent; the part already covered is
//!      counted as `overlapped`, the rest as received: [`Observation::Overlap`];
//!    * a message without data records (IPFIX templates only) covers nothing:
//!      [`Observation::Reordered`] with `filled: 0` within the window,
//!      [`Observation::Late`] before it.
//!
//! Invariant, per stream: `expected == received + lost + unverified`.
//!
//! A gap that leaves the window (is older than the last `window` datagrams)
//! is final: it stays counted as lost. Memory is bounded: `window` ranges and
//! at most `2 * window` gaps per stream, and at most
//! [`TrackerLimits::max_streams`] streams; when a new stream would exceed
//! that, the least recently seen stream is forgotten and counted in
//! [`SequenceTracker::evicted`].
//!
//! # Messages whose record count is unknown
//!
//! An IPFIX message with a data set whose template is unknown (see
//! [`ExportPacket::missing`]) holds an unknown number of records, so its end
//! in sequence space is unknown. Use [`SequenceTracker::observe_incomplete`]
//! (or [`SequenceTracker::observe_packet`], which chooses): the tracker then
//! trusts the next message's sequence number, and the span up to it is
//! counted as `unverified` rather than received or lost. Such a message
//! behind the expected number cannot fill a gap. v5, v7 and v9 are not
//! affected: their unit does not depend on decoding the records.
//!
//! # Exporters that number differently
//!
//! softflowd 1.1.0 (IPFIX) sends as sequence number the count of *flow* data
//! records exported up to and *including* the message, without its options
//! data records (first message: 20 flows and 1 options record, sequence 20
//! instead of 0). Read per RFC 7011, a message with more flows than the one
//! before it then shows a gap, one with fewer repeats sequence space
//! ([`Observation::Overlap`], or [`Observation::Duplicate`] when it has at
//! most as many records as the shortfall). Its v9 and v5 numbering is correct.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use crate::cache::ExporterId;
use crate::packet::{ExportPacket, Header};
use crate::Protocol;

/// One sequence-numbered stream: (exporter, protocol, domain).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    pub exporter: ExporterId,
    pub protocol: Protocol,
    /// v9 source ID, IPFIX observation domain, v5 `engine_type << 8 | engine_id`,
    /// 0 for v1 and v7 (see [`stream_domain`]).
    pub domain: u32,
}

impl StreamKey {
    /// The stream a packet with this header belongs to.
    pub fn new(exporter: ExporterId, header: &Header) -> StreamKey {
        StreamKey {
            exporter,
            protocol: header.protocol(),
            domain: stream_domain(header),
        }
    }

    /// What the stream's sequence number counts.
    pub fn unit(&self) -> SequenceUnit {
        SequenceUnit::of(self.protocol)
    }
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exporter {} {} domain {}",
            self.exporter,
            self.protocol.name(),
            self.domain
        )
    }
}

/// The domain part of a [`StreamKey`]: v9 source ID, IPFIX observation domain,
/// v5 `engine_type << 8 | engine_id`, 0 for v1 and v7.
pub fn stream_domain(header: &Header) -> u32 {
    match header {
        Header::V5(h) => (h.engine_type as u32) << 8 | h.engine_id as u32,
        Header::V9(h) => h.source_id,
        Header::Ipfix(h) => h.observation_domain,
        Header::V1(_) | Header::V7(_) => 0,
    }
}

/// What a version's sequence number counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SequenceUnit {
    /// v1: no sequence number.
    Unsequenced,
    /// v5, v7: flow records.
    Flows,
    /// v9: export packets (RFC 3954 section 5.1).
    Packets,
    /// IPFIX: data records, options data records included (RFC 7011 section 3.1).
    Records,
}

impl SequenceUnit {
    pub fn of(protocol: Protocol) -> SequenceUnit {
        match protocol {
            Protocol::V1 => SequenceUnit::Unsequenced,
            Protocol::V5 | Protocol::V7 => SequenceUnit::Flows,
            Protocol::V9 => SequenceUnit::Packets,
            Protocol::Ipfix => SequenceUnit::Records,
        }
    }

    /// `-`, `flows`, `packets` or `records`.
    pub fn name(self) -> &'static str {
        match self {
            SequenceUnit::Unsequenced => "-",
            SequenceUnit::Flows => "flows",
            SequenceUnit::Packets => "packets",
            SequenceUnit::Records => "records",
        }
    }
}

/// What one datagram was, in its stream. Amounts are in the stream's [`SequenceUnit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Observation {
    /// v1: no sequence number.
    Unsequenced,
    /// The first datagram of the stream (or the first since it was evicted).
    First,
    /// The number expected.
    InOrder,
    /// Ahead of the number expected: `missing` units are (for now) lost.
    Gap { missing: u64 },
    /// Behind the number expected, entirely within a gap: `filled` units
    /// counted as lost are taken back. `filled` is 0 for a message without
    /// data records or whose record count is unknown.
    Reordered { filled: u64 },
    /// Behind the number expected, entirely within what was already received.
    Duplicate,
    /// Behind the number expected, and the exporter's numbering is
    /// inconsistent: `repeated` units cover what was already received,
    /// `filled` units fill a gap, `new` units extend the stream.
    Overlap {
        repeated: u64,
        filled: u64,
        new: u64,
    },
    /// Older than the window of remembered sequence space: not accounted.
    Late,
    /// The exporter restarted (or reset its counter): a new epoch begins.
    Restart,
}

/// Per-stream counters. Amounts are in the stream's [`SequenceUnit`]
/// (v1: only `datagrams` and `records`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct StreamCounters {
    /// Datagrams seen, whatever they were.
    pub datagrams: u64,
    /// Data records the caller reported (decoded ones, for an incomplete message).
    pub records: u64,
    /// Sequence space spanned: per epoch, from the first datagram's number to
    /// the end of the highest range seen.
    pub expected: u64,
    /// Units of that space received (late ones included, duplicates not).
    pub received: u64,
    /// Units of that space never received (gaps), late arrivals taken back.
    pub lost: u64,
    /// Units that arrived late and filled a gap (included in `received`).
    pub reordered: u64,
    /// Units of datagrams that repeated what was already received.
    pub duplicates: u64,
    /// Units of partly new datagrams that covered what was already received
    /// (the exporter's numbering is inconsistent).
    pub overlapped: u64,
    /// Units of datagrams older than the window (not accounted).
    pub late: u64,
    /// Spans after messages whose record count was unknown: neither received nor lost.
    pub unverified: u64,
    /// Restarts (new epochs after the first).
    pub restarts: u64,
}

impl StreamCounters {
    fn add(&mut self, o: &StreamCounters) {
        self.datagrams += o.datagrams;
        self.records += o.records;
        self.expected += o.expected;
        self.received += o.received;
        self.lost += o.lost;
        self.reordered += o.reordered;
        self.duplicates += o.duplicates;
        self.overlapped += o.overlapped;
        self.late += o.late;
        self.unverified += o.unverified;
        self.restarts += o.restarts;
    }
}

/// Limits of a [`SequenceTracker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackerLimits {
    /// Streams tracked at most; the least recently seen one is evicted for a new one.
    pub max_streams: usize,
    /// Datagram ranges remembered per stream for reorder and duplicate
    /// detection (at least 1).
    pub window: usize,
}

impl Default for TrackerLimits {
    fn default() -> Self {
        TrackerLimits {
            max_streams: 16_384,
            window: 64,
        }
    }
}

/// Slack on the boot time (`export_time * 1000 - uptime`): export times have
/// a resolution of one second.
const REBOOT_SLACK_MS: i64 = 2_000;
/// An uptime in milliseconds wraps after 2^32 ms.
const UPTIME_WRAP_MS: i64 = 1 << 32;
/// Consecutive late datagrams after which the stream restarts.
const LATE_RESYNC: u32 = 4;

/// The clock fields of a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Clock {
    export_time: u32,
    uptime: Option<u32>,
}

/// When a datagram was sent, compared with the newest one of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Earlier,
    Same,
    Later,
    /// After a reboot of the exporter.
    Rebooted,
}

impl Clock {
    fn of(header: &Header) -> Clock {
        Clock {
            export_time: header.export_time(),
            uptime: header.uptime(),
        }
    }

    fn compare(&self, newest: &Clock) -> Sent {
        match (self.uptime, newest.uptime) {
            (Some(up), Some(newest_up)) => {
                let boot = |c: &Clock, up: u32| c.export_time as i64 * 1000 - up as i64;
                let shift = boot(self, up) - boot(newest, newest_up);
                if (shift - UPTIME_WRAP_MS).abs() <= REBOOT_SLACK_MS {
                    // Same boot, this uptime wrapped after the newest one's.
                    Sent::Later
                } else if (shift + UPTIME_WRAP_MS).abs() <= REBOOT_SLACK_MS {
                    // Same boot, the newest uptime wrapped after this one.
                    Sent::Earlier
                } else if shift > REBOOT_SLACK_MS && up < newest_up {
                    Sent::Rebooted
                } else {
                    match up.cmp(&newest_up) {
                        std::cmp::Ordering::Less => Sent::Earlier,
                        std::cmp::Ordering::Equal => Sent::Same,
                        std::cmp::Ordering::Greater => Sent::Later,
                    }
                }
            }
            _ => match self.export_time.cmp(&newest.export_time) {
                std::cmp::Ordering::Less => Sent::Earlier,
                std::cmp::Ordering::Equal => Sent::Same,
                std::cmp::Ordering::Greater => Sent::Later,
            },
        }
    }
}

/// Sequence state of one stream. Positions are sequence numbers unwrapped
/// to i64 (epoch-relative coordinates).
#[derive(Debug, Clone)]
struct SeqState {
    /// The next number expected.
    head: i64,
    /// False after a message whose record count is unknown: `head` is its start.
    head_known: bool,
    /// Start of the current epoch.
    epoch_start: i64,
    /// Start of the ranges of the last `window` datagrams that advanced `head`, oldest first.
    recent: VecDeque<i64>,
    /// Missing ranges `[start, end)`, sorted, disjoint, within the window.
    gaps: VecDeque<(i64, i64)>,
    /// Clock of the newest datagram.
    newest: Clock,
    /// Consecutive late datagrams.
    late_run: u32,
}

impl SeqState {
    fn start(
        seq: u32,
        units: Option<u64>,
        clock: Clock,
        window: usize,
        c: &mut StreamCounters,
    ) -> SeqState {
        let s = seq as i64;
        let mut st = SeqState {
            head: s,
            head_known: true,
            epoch_start: s,
            recent: VecDeque::new(),
            gaps: VecDeque::new(),
            newest: clock,
            late_run: 0,
        };
        st.advance(s, units, clock, window, c);
        st
    }

    /// Low edge of the window: what lies before it is unknown.
    fn low(&self) -> i64 {
        self.recent.front().copied().unwrap_or(self.epoch_start)
    }

    /// A datagram at `s >= head` (gap already accounted) moves the head.
    fn advance(
        &mut self,
        s: i64,
        units: Option<u64>,
        clock: Clock,
        window: usize,
        c: &mut StreamCounters,
    ) {
        self.recent.push_back(s);
        while self.recent.len() > window.max(1) {
            self.recent.pop_front();
        }
        let low = self.low();
        while self.gaps.front().is_some_and(|g| g.1 <= low) {
            self.gaps.pop_front();
        }
        while self.gaps.len() > 2 * window.max(1) {
            self.gaps.pop_front();
        }
        self.newest = clock;
        self.late_run = 0;
        match units {
            Some(n) => {
                let n = clamp_units(n);
                self.head = s + n;
                self.head_known = true;
                c.expected += n as u64;
                c.received += n as u64;
            }
            None => {
                self.head = s;
                self.head_known = false;
            }
        }
    }

    /// Remove `[a, b)` from the gaps; returns how many units were in gaps.
    fn fill(&mut self, a: i64, b: i64) -> i64 {
        // No gaps (a stream without loss, nearly always): nothing to
        // remove, and no new list made for nothing.
        if a >= b || self.gaps.is_empty() {
            return 0;
        }
        let mut filled = 0;
        let mut kept = VecDeque::with_capacity(self.gaps.len() + 1);
        for &(g0, g1) in &self.gaps {
            let (x, y) = (g0.max(a), g1.min(b));
            if x >= y {
                kept.push_back((g0, g1));
                continue;
            }
            filled += y - x;
            if g0 < x {
                kept.push_back((g0, x));
            }
            if y < g1 {
                kept.push_back((y, g1));
            }
        }
        self.gaps = kept;
        filled
    }

    fn restart(
        &mut self,
        seq: u32,
        units: Option<u64>,
        clock: Clock,
        window: usize,
        c: &mut StreamCounters,
    ) -> Observation {
        c.restarts += 1;
        *self = SeqState::start(seq, units, clock, window, c);
        Observation::Restart
    }

    fn observe(
        &mut self,
        seq: u32,
        units: Option<u64>,
        clock: Clock,
        window: usize,
        c: &mut StreamCounters,
    ) -> Observation {
        let sent = clock.compare(&self.newest);
        let mut d = seq.wrapping_sub(self.head as u32) as i32 as i64;
        if sent == Sent::Rebooted && (d != 0 || !self.head_known) {
            return self.restart(seq, units, clock, window, c);
        }
        if !self.head_known && d >= 0 {
            // The previous message (of unknown length) ended where this one starts.
            c.expected += d as u64;
            c.unverified += d as u64;
            self.head += d;
            self.head_known = true;
            d = 0;
        }
        let s = self.head + d;
        if d == 0 {
            self.advance(s, units, clock, window, c);
            return Observation::InOrder;
        }
        if d > 0 {
            c.expected += d as u64;
            c.lost += d as u64;
            self.gaps.push_back((self.head, s));
            self.advance(s, units, clock, window, c);
            return Observation::Gap { missing: d as u64 };
        }
        // Behind the number expected.
        let n = units.map_or(0, clamp_units);
        let e = s + n;
        if e <= self.head && sent == Sent::Later {
            // Sent after everything seen, yet numbered before it: the counter was reset.
            return self.restart(seq, units, clock, window, c);
        }
        let low = self.low();
        if n == 0 {
            // No data records (or an unknown number of them): nothing to account.
            if s < low {
                return self.late(seq, units, clock, window, c, 0);
            }
            self.late_run = 0;
            return Observation::Reordered { filled: 0 };
        }
        let old = (e.min(low) - s).max(0);
        if old == n {
            return self.late(seq, units, clock, window, c, n as u64);
        }
        self.late_run = 0;
        let (a, b) = (s.max(low), e.min(self.head));
        let filled = self.fill(a, b);
        let repeated = (b - a).max(0) - filled;
        let new = (e - self.head).max(0);
        c.lost -= filled as u64;
        c.received += filled as u64;
        c.reordered += filled as u64;
        if filled == n {
            return Observation::Reordered {
                filled: filled as u64,
            };
        }
        if repeated == n {
            c.duplicates += n as u64;
            return Observation::Duplicate;
        }
        c.overlapped += repeated as u64;
        c.late += old as u64;
        if new > 0 {
            let head = self.head;
            self.advance(head, Some(new as u64), clock, window, c);
        }
        Observation::Overlap {
            repeated: repeated as u64,
            filled: filled as u64,
            new: new as u64,
        }
    }

    fn late(
        &mut self,
        seq: u32,
        units: Option<u64>,
        clock: Clock,
        window: usize,
        c: &mut StreamCounters,
        n: u64,
    ) -> Observation {
        self.late_run += 1;
        if self.late_run >= LATE_RESYNC {
            return self.restart(seq, units, clock, window, c);
        }
        c.late += n;
        Observation::Late
    }
}

/// Units of one datagram, capped at 2^32 (a sequence number cannot say more).
fn clamp_units(n: u64) -> i64 {
    n.min(1 << 32) as i64
}

#[derive(Debug, Clone)]
struct Stream {
    counters: StreamCounters,
    seq: Option<SeqState>,
    /// Last use, for LRU eviction.
    tick: u64,
}

/// Sequence accounting for any number of streams. See the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct SequenceTracker {
    streams: BTreeMap<StreamKey, Stream>,
    /// Streams by last use.
    lru: BTreeMap<u64, StreamKey>,
    tick: u64,
    limits: TrackerLimits,
    evicted: u64,
}

impl SequenceTracker {
    pub fn new(limits: TrackerLimits) -> Self {
        SequenceTracker {
            limits,
            ..Default::default()
        }
    }

    pub fn limits(&self) -> &TrackerLimits {
        &self.limits
    }

    /// Account one datagram from `exporter` with this header, holding
    /// `data_records` data records (options data records included; v9: any
    /// number, v5/v7: the header's count is what the sequence counts).
    pub fn observe(
        &mut self,
        exporter: ExporterId,
        header: &Header,
        data_records: u64,
    ) -> Observation {
        self.observe_with(exporter, header, data_records, true)
    }

    /// Like [`observe`](Self::observe) for a message whose record count is
    /// unknown (an IPFIX data set waits for its template): `decoded_records`
    /// is what could be decoded. See the [module docs](self).
    pub fn observe_incomplete(
        &mut self,
        exporter: ExporterId,
        header: &Header,
        decoded_records: u64,
    ) -> Observation {
        self.observe_with(exporter, header, decoded_records, false)
    }

    /// Account a decoded packet: [`observe`](Self::observe), or
    /// [`observe_incomplete`](Self::observe_incomplete) for an IPFIX message
    /// with data sets whose template is unknown.
    pub fn observe_packet(&mut self, packet: &ExportPacket<'_>) -> Observation {
        let records = packet.record_count() as u64;
        let complete = packet.missing.is_empty();
        self.observe_with(packet.exporter, &packet.header, records, complete)
    }

    fn observe_with(
        &mut self,
        exporter: ExporterId,
        header: &Header,
        records: u64,
        complete: bool,
    ) -> Observation {
        let key = StreamKey::new(exporter, header);
        let units = match header {
            Header::V1(_) => None,
            Header::V5(h) => Some(h.count as u64),
            Header::V7(h) => Some(h.count as u64),
            Header::V9(_) => Some(1),
            Header::Ipfix(_) => complete.then_some(records),
        };
        let window = self.limits.window;
        let stream = match self.streams.get_mut(&key) {
            // Already the most recently used (one exporter's datagrams one
            // after the other, the usual stream): its place in the LRU
            // order stays, without a removal and an insertion in `lru`
            // per datagram.
            Some(s) if s.tick == self.tick => s,
            Some(s) => {
                self.tick += 1;
                self.lru.remove(&s.tick);
                s.tick = self.tick;
                self.lru.insert(self.tick, key);
                s
            }
            None => {
                if self.limits.max_streams == 0 {
                    self.evicted += 1;
                    return match header.sequence() {
                        None => Observation::Unsequenced,
                        Some(_) => Observation::First,
                    };
                }
                while self.streams.len() >= self.limits.max_streams {
                    let Some((_, old)) = self.lru.pop_first() else {
                        break;
                    };
                    self.streams.remove(&old);
                    self.evicted += 1;
                }
                self.tick += 1;
                let tick = self.tick;
                self.lru.insert(tick, key);
                self.streams.entry(key).or_insert(Stream {
                    counters: StreamCounters::default(),
                    seq: None,
                    tick,
                })
            }
        };
        let c = &mut stream.counters;
        c.datagrams += 1;
        c.records += records;
        let Some(seq) = header.sequence() else {
            return Observation::Unsequenced;
        };
        let clock = Clock::of(header);
        match &mut stream.seq {
            None => {
                stream.seq = Some(SeqState::start(seq, units, clock, window, c));
                Observation::First
            }
            Some(st) => st.observe(seq, units, clock, window, c),
        }
    }

    /// All streams, ordered by key.
    pub fn streams(&self) -> impl Iterator<Item = (StreamKey, &StreamCounters)> {
        self.streams.iter().map(|(k, s)| (*k, &s.counters))
    }

    /// The counters of one stream.
    pub fn stream(&self, key: &StreamKey) -> Option<&StreamCounters> {
        self.streams.get(key).map(|s| &s.counters)
    }

    /// The sum of all streams' counters (units of different versions added up).
    pub fn totals(&self) -> StreamCounters {
        let mut t = StreamCounters::default();
        for s in self.streams.values() {
            t.add(&s.counters);
        }
        t
    }

    /// Number of streams tracked.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Streams forgotten to stay within `max_streams`.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Forget an exporter's streams (e.g. when its transport session ends).
    pub fn remove_exporter(&mut self, exporter: ExporterId) {
        let lru = &mut self.lru;
        self.streams.retain(|k, s| {
            let keep = k.exporter != exporter;
            if !keep {
                lru.remove(&s.tick);
            }
            keep
        });
    }
}
