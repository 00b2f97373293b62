//! Packet sampling configuration learned from export packets, and the
//! scaling of sampled counters.
//!
//! A [`SamplingTable`] learns, per (exporter, protocol, domain, sampler id)
//! ([`SamplerKey`]), the rate at which the exporter's metering process
//! selected packets, from:
//!
//! * **v5 headers**: the 16-bit `sampling_interval` field holds a 2-bit mode
//!   (top bits: 0 none stated, 1 deterministic, 2 random) and a 14-bit
//!   interval N: one packet in N. Interval 0 means unsampled (1 in 1). The key
//!   is the v5 stream (domain `engine_type << 8 | engine_id`, see
//!   [`crate::sequence::stream_domain`]) with no sampler id; every v5 header
//!   replaces it.
//! * **v9 options data records** (RFC 3954 section 6.2, field types of
//!   section 8): SAMPLING_INTERVAL (34): 1 in N; SAMPLING_ALGORITHM (35):
//!   1 deterministic, 2 random; FLOW_SAMPLER_ID (48); FLOW_SAMPLER_MODE (49):
//!   1 deterministic, 2 random; FLOW_SAMPLER_RANDOM_INTERVAL (50): 1 in N.
//!   v9 scope fields are scope types (System, Interface, ...), not field
//!   types, and are ignored: a rate with an Interface scope is taken as the
//!   domain's (per-interface sampling is not modelled; the last record wins).
//! * **IPFIX options data records** (RFC 7011 section 3.4.2.2, PSAMP
//!   elements of RFC 5477): samplingPacketInterval (305) and
//!   samplingPacketSpace (306): `interval` packets selected, then `space`
//!   skipped, i.e. `interval` in `interval + space` (1 and 7: 1 in 8);
//!   samplingSize (309) and samplingPopulation (310): `size` in `population`;
//!   selectorId (302); selectorAlgorithm (304, IANA PSAMP selector
//!   algorithms: 1 systematic count-based = deterministic, 3 random
//!   n-out-of-N and 4 uniform probabilistic = random); and the older
//!   samplingInterval (34), samplingAlgorithm (35), samplerId (48),
//!   samplerMode (49) and samplerRandomInterval (50). IPFIX scope fields are
//!   Information Elements and are read like the others (a selectorId is
//!   usually the scope of a PSAMP selector report).
//!
//! One options record gives at most one rate, from the first of these pairs
//! that is present and valid: 305/306 (305 > 0), 309/310 (0 < 309 <= 310),
//! 50, 34 (an interval of 0 is read as 1: unsampled). Its algorithm comes
//! from 304, else 49, else 35; without any, 305/306 is deterministic (the
//! PSAMP definition of systematic count-based sampling), 309/310 and 50 are
//! random, 34 is [`SamplingAlgorithm::Unspecified`]. The sampler id is 302,
//! else 48; a record without one sets the domain's default sampler.
//! Time-based (307/308) and probabilistic (311) selection are not converted
//! into a rate.
//!
//! [`SamplingTable::rate_for`] finds the rate of a data record: the sampler
//! the record names (selectorId 302, else FLOW_SAMPLER_ID / samplerId 48); if
//! it names none, or one never described, the domain's default sampler; if
//! it names none and the domain has no default but exactly one sampler, that
//! one. A record that names an unknown sampler never gets another named
//! sampler's rate.
//!
//! Counters are not scaled unless asked: [`scaled_counters`] multiplies the
//! byte and packet counters of a record by the rate.

use std::collections::BTreeMap;
use std::fmt;

use crate::cache::ExporterId;
use crate::packet::{ExportPacket, Header};
use crate::record::{DataSet, Record};
use crate::sequence::StreamKey;
use crate::Protocol;

/// Element ids (enterprise 0) this module reads.
pub mod ie {
    /// octetDeltaCount / IN_BYTES.
    pub const OCTET_DELTA_COUNT: u16 = 1;
    /// packetDeltaCount / IN_PKTS.
    pub const PACKET_DELTA_COUNT: u16 = 2;
    /// postOctetDeltaCount / OUT_BYTES.
    pub const POST_OCTET_DELTA_COUNT: u16 = 23;
    /// postPacketDeltaCount / OUT_PKTS.
    pub const POST_PACKET_DELTA_COUNT: u16 = 24;
    /// samplingInterval / SAMPLING_INTERVAL.
    pub const SAMPLING_INTERVAL: u16 = 34;
    /// samplingAlgorithm / SAMPLING_ALGORITHM.
    pub const SAMPLING_ALGORITHM: u16 = 35;
    /// samplerId / FLOW_SAMPLER_ID.
    pub const SAMPLER_ID: u16 = 48;
    /// samplerMode / FLOW_SAMPLER_MODE.
    pub const SAMPLER_MODE: u16 = 49;
    /// samplerRandomInterval / FLOW_SAMPLER_RANDOM_INTERVAL.
    pub const SAMPLER_RANDOM_INTERVAL: u16 = 50;
    /// octetTotalCount / IN_PERMANENT_BYTES.
    pub const OCTET_TOTAL_COUNT: u16 = 85;
    /// packetTotalCount / IN_PERMANENT_PKTS.
    pub const PACKET_TOTAL_COUNT: u16 = 86;
    pub const SELECTOR_ID: u16 = 302;
    pub const SELECTOR_ALGORITHM: u16 = 304;
    pub const SAMPLING_PACKET_INTERVAL: u16 = 305;
    pub const SAMPLING_PACKET_SPACE: u16 = 306;
    pub const SAMPLING_SIZE: u16 = 309;
    pub const SAMPLING_POPULATION: u16 = 310;
}

/// How packets were selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SamplingAlgorithm {
    /// Not stated (v5 mode 0, v9 SAMPLING_INTERVAL alone).
    Unspecified,
    /// Every N-th packet: v5 mode 1, v9 algorithm / sampler mode 1, PSAMP 1
    /// (systematic count-based).
    Deterministic,
    /// At random: v5 mode 2, v9 algorithm / sampler mode 2, PSAMP 3 (random
    /// n-out-of-N) and 4 (uniform probabilistic).
    Random,
    /// Any other value, as found (v5 mode 3, other v9 values, other PSAMP algorithms).
    Other(u64),
}

impl SamplingAlgorithm {
    /// v5 mode, v9 SAMPLING_ALGORITHM (35) and FLOW_SAMPLER_MODE (49) values.
    fn netflow(v: u64) -> SamplingAlgorithm {
        match v {
            1 => SamplingAlgorithm::Deterministic,
            2 => SamplingAlgorithm::Random,
            v => SamplingAlgorithm::Other(v),
        }
    }
    /// IANA PSAMP selector algorithm (selectorAlgorithm, 304).
    fn psamp(v: u64) -> SamplingAlgorithm {
        match v {
            1 => SamplingAlgorithm::Deterministic,
            3 | 4 => SamplingAlgorithm::Random,
            v => SamplingAlgorithm::Other(v),
        }
    }
    pub fn name(&self) -> &'static str {
        match self {
            SamplingAlgorithm::Unspecified => "unspecified",
            SamplingAlgorithm::Deterministic => "deterministic",
            SamplingAlgorithm::Random => "random",
            SamplingAlgorithm::Other(_) => "other",
        }
    }
}

impl fmt::Display for SamplingAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SamplingAlgorithm::Other(v) => write!(f, "algorithm {v}"),
            a => f.write_str(a.name()),
        }
    }
}

/// Where a rate was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SamplingSource {
    V5Header,
    V9Options,
    IpfixOptions,
}

/// A packet sampling rate: `selected` packets in every `population`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SamplingRate {
    /// Packets selected in each `population` (at least 1).
    pub selected: u64,
    /// Packets in the population (at least `selected`).
    pub population: u64,
    pub algorithm: SamplingAlgorithm,
    pub source: SamplingSource,
}

impl SamplingRate {
    /// One packet in `interval` (0 is taken as 1).
    pub fn one_in(interval: u64, algorithm: SamplingAlgorithm, source: SamplingSource) -> Self {
        SamplingRate {
            selected: 1,
            population: interval.max(1),
            algorithm,
            source,
        }
    }

    /// The factor counters are multiplied by: `population / selected`.
    pub fn factor(&self) -> f64 {
        self.population as f64 / self.selected.max(1) as f64
    }

    /// True unless every packet is selected.
    pub fn is_sampled(&self) -> bool {
        self.selected < self.population
    }

    /// `count * population / selected`, rounded to the nearest integer,
    /// saturating at `u64::MAX`.
    pub fn scale(&self, count: u64) -> u64 {
        let sel = self.selected.max(1) as u128;
        let v = (count as u128 * self.population as u128 + sel / 2) / sel;
        v.min(u64::MAX as u128) as u64
    }
}

/// `1/8 random`, `2/7 deterministic`, `1/1 unspecified`.
impl fmt::Display for SamplingRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} {}",
            self.selected, self.population, self.algorithm
        )
    }
}

/// A sampler: a stream and a sampler id (None: the domain's default sampler).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SamplerKey {
    pub stream: StreamKey,
    pub sampler: Option<u64>,
}

/// The sampler id and rate an options record describes, if it describes one
/// (see the [module docs](self) for the rules). `protocol` decides whether
/// scope fields are read (IPFIX) or not (v9).
pub fn options_sampling(record: &Record<'_>) -> Option<(Option<u64>, SamplingRate)> {
    let protocol = record.template().protocol;
    let source = match protocol {
        Protocol::V9 => SamplingSource::V9Options,
        Protocol::Ipfix => SamplingSource::IpfixOptions,
        _ => return None,
    };
    let mut v: [Option<u64>; 11] = [None; 11];
    const IDS: [u16; 11] = [
        ie::SAMPLING_INTERVAL,
        ie::SAMPLING_ALGORITHM,
        ie::SAMPLER_ID,
        ie::SAMPLER_MODE,
        ie::SAMPLER_RANDOM_INTERVAL,
        ie::SELECTOR_ID,
        ie::SELECTOR_ALGORITHM,
        ie::SAMPLING_PACKET_INTERVAL,
        ie::SAMPLING_PACKET_SPACE,
        ie::SAMPLING_SIZE,
        ie::SAMPLING_POPULATION,
    ];
    for (field, value) in record.fields() {
        if field.spec.field.enterprise != 0 || (field.scope && protocol == Protocol::V9) {
            continue;
        }
        if let Some(i) = IDS.iter().position(|&id| id == field.spec.field.id) {
            if v[i].is_none() {
                v[i] = value.as_u64();
            }
        }
    }
    let [interval, algorithm, sampler_id, sampler_mode, random_interval, selector_id, selector_algorithm, packet_interval, packet_space, size, population] =
        v;
    let stated = selector_algorithm
        .map(SamplingAlgorithm::psamp)
        .or(sampler_mode.map(SamplingAlgorithm::netflow))
        .or(algorithm.map(SamplingAlgorithm::netflow));
    let rate = match (packet_interval, packet_space, size, population) {
        (Some(i), Some(s), _, _) if i > 0 => SamplingRate {
            selected: i,
            population: i.saturating_add(s),
            algorithm: stated.unwrap_or(SamplingAlgorithm::Deterministic),
            source,
        },
        (_, _, Some(n), Some(p)) if n > 0 && n <= p => SamplingRate {
            selected: n,
            population: p,
            algorithm: stated.unwrap_or(SamplingAlgorithm::Random),
            source,
        },
        _ => match (random_interval, interval) {
            (Some(n), _) => {
                SamplingRate::one_in(n, stated.unwrap_or(SamplingAlgorithm::Random), source)
            }
            (None, Some(n)) => {
                SamplingRate::one_in(n, stated.unwrap_or(SamplingAlgorithm::Unspecified), source)
            }
            (None, None) => return None,
        },
    };
    Some((selector_id.or(sampler_id), rate))
}

/// The sampler a data record names: selectorId (302), else samplerId /
/// FLOW_SAMPLER_ID (48). Scope fields are not read.
pub fn record_sampler_id(record: &Record<'_>) -> Option<u64> {
    record
        .get_id(ie::SELECTOR_ID)
        .or_else(|| record.get_id(ie::SAMPLER_ID))
        .and_then(|v| v.as_u64())
}

/// The rate stated by a v5 header (see the [module docs](self)).
pub fn v5_header_sampling(h: &crate::wire::v5::V5Header) -> SamplingRate {
    let algorithm = match h.sampling_mode() {
        0 => SamplingAlgorithm::Unspecified,
        m => SamplingAlgorithm::netflow(m as u64),
    };
    SamplingRate::one_in(
        h.sampling_rate() as u64,
        algorithm,
        SamplingSource::V5Header,
    )
}

/// A record's byte and packet counters multiplied by `rate` (see
/// [`SamplingRate::scale`]): bytes from the first present of
/// octetDeltaCount / IN_BYTES (1), octetTotalCount / IN_PERMANENT_BYTES (85),
/// postOctetDeltaCount / OUT_BYTES (23); packets likewise from 2, 86, 24.
/// None where the record has none of them (or not as an integer). Reverse
/// (RFC 5103) and other counters are left to [`SamplingRate::scale`].
pub fn scaled_counters(record: &Record<'_>, rate: SamplingRate) -> (Option<u64>, Option<u64>) {
    let first = |ids: [u16; 3]| {
        ids.iter()
            .find_map(|&id| record.get_id(id))
            .and_then(|v| v.as_u64())
    };
    (
        first([
            ie::OCTET_DELTA_COUNT,
            ie::OCTET_TOTAL_COUNT,
            ie::POST_OCTET_DELTA_COUNT,
        ])
        .map(|b| rate.scale(b)),
        first([
            ie::PACKET_DELTA_COUNT,
            ie::PACKET_TOTAL_COUNT,
            ie::POST_PACKET_DELTA_COUNT,
        ])
        .map(|p| rate.scale(p)),
    )
}

/// Sampling rates learned per sampler. Bounded: storing a sampler beyond
/// `max_samplers` first forgets the least recently learned eighth of them
/// (one sort per eighth, so a flood of new exporters costs O(log n) each),
/// counted in [`SamplingTable::evicted`].
#[derive(Debug, Clone)]
pub struct SamplingTable {
    /// Each rate with the tick of its last learning.
    rates: BTreeMap<SamplerKey, (SamplingRate, u64)>,
    max_samplers: usize,
    tick: u64,
    evicted: u64,
    rejected: u64,
}

impl Default for SamplingTable {
    fn default() -> Self {
        SamplingTable::new(65_536)
    }
}

impl SamplingTable {
    pub fn new(max_samplers: usize) -> Self {
        SamplingTable {
            rates: BTreeMap::new(),
            max_samplers,
            tick: 0,
            evicted: 0,
            rejected: 0,
        }
    }

    /// Learn from a decoded packet: its v5 header, and its options data
    /// records. Returns how many rates were stored.
    pub fn observe_packet(&mut self, packet: &ExportPacket<'_>) -> usize {
        let mut n = 0;
        if let Header::V5(h) = &packet.header {
            let key = SamplerKey {
                stream: StreamKey::new(packet.exporter, &packet.header),
                sampler: None,
            };
            n += self.learn(key, v5_header_sampling(h)) as usize;
        }
        for set in &packet.data_sets {
            n += self.observe_data_set(packet.exporter, &packet.header, set);
        }
        n
    }

    /// Learn from the options records of one data set (e.g. one decoded after
    /// its template arrived) that came in a packet with `header`. Returns how
    /// many rates were stored.
    pub fn observe_data_set(
        &mut self,
        exporter: ExporterId,
        header: &Header,
        set: &DataSet<'_>,
    ) -> usize {
        if !set.is_options() {
            return 0;
        }
        let stream = StreamKey::new(exporter, header);
        let mut n = 0;
        for record in set.records() {
            if let Some((sampler, rate)) = options_sampling(&record) {
                n += self.learn(SamplerKey { stream, sampler }, rate) as usize;
            }
        }
        n
    }

    /// Store a rate; false only if the limit is 0. At the limit, the least
    /// recently learned samplers make room.
    pub fn learn(&mut self, key: SamplerKey, rate: SamplingRate) -> bool {
        self.tick += 1;
        if let Some(r) = self.rates.get_mut(&key) {
            *r = (rate, self.tick);
            return true;
        }
        if self.max_samplers == 0 {
            self.rejected += 1;
            return false;
        }
        if self.rates.len() >= self.max_samplers {
            let keep = self.max_samplers - self.max_samplers.div_ceil(8);
            let mut by_age: Vec<(u64, SamplerKey)> =
                self.rates.iter().map(|(k, (_, t))| (*t, *k)).collect();
            let remove = by_age.len() - keep;
            by_age.select_nth_unstable(remove - 1);
            for (_, k) in &by_age[..remove] {
                self.rates.remove(k);
            }
            self.evicted += remove as u64;
        }
        self.rates.insert(key, (rate, self.tick));
        true
    }

    /// The rate that applies to a data record of `exporter` in `domain` (the
    /// [`StreamKey`] domain: [`crate::sequence::stream_domain`] of the
    /// packet's header), by the rules in the [module docs](self).
    pub fn rate_for(
        &self,
        exporter: ExporterId,
        domain: u32,
        record: &Record<'_>,
    ) -> Option<SamplingRate> {
        let stream = StreamKey {
            exporter,
            protocol: record.template().protocol,
            domain,
        };
        let named = record_sampler_id(record);
        if let Some(id) = named {
            if let Some((r, _)) = self.rates.get(&SamplerKey {
                stream,
                sampler: Some(id),
            }) {
                return Some(*r);
            }
        }
        if let Some((r, _)) = self.rates.get(&SamplerKey {
            stream,
            sampler: None,
        }) {
            return Some(*r);
        }
        if named.is_some() {
            return None;
        }
        let mut all = self.samplers_of(stream);
        match (all.next(), all.next()) {
            (Some((_, r)), None) => Some(*r),
            _ => None,
        }
    }

    /// Forget every sampler of `exporter` (e.g. when its IPFIX transport
    /// session closes: RFC 7011 section 10.4.1 ends its state with the
    /// session). Returns how many were removed.
    pub fn remove_exporter(&mut self, exporter: ExporterId) -> usize {
        let before = self.rates.len();
        self.rates.retain(|k, _| k.stream.exporter != exporter);
        before - self.rates.len()
    }

    /// The rate of one sampler.
    pub fn get(&self, key: &SamplerKey) -> Option<&SamplingRate> {
        self.rates.get(key).map(|(r, _)| r)
    }

    /// All samplers, ordered by key.
    pub fn samplers(&self) -> impl Iterator<Item = (&SamplerKey, &SamplingRate)> {
        self.rates.iter().map(|(k, (r, _))| (k, r))
    }

    /// The samplers of one stream: the default one (None) first, then by id.
    pub fn samplers_of(
        &self,
        stream: StreamKey,
    ) -> impl Iterator<Item = (&SamplerKey, &SamplingRate)> {
        self.rates
            .range(
                SamplerKey {
                    stream,
                    sampler: None,
                }..=SamplerKey {
                    stream,
                    sampler: Some(u64::MAX),
                },
            )
            .map(|(k, (r, _))| (k, r))
    }

    pub fn len(&self) -> usize {
        self.rates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rates.is_empty()
    }

    /// Samplers not stored: the limit is 0.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Samplers forgotten (least recently learned first) to make room.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}
