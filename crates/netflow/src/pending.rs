//! Data that arrives before its template.
//!
//! Over UDP an exporter's data sets can arrive before the template they need
//! (collector start, loss, reordering). [`crate::ExportPacket::missing`] names
//! every such set and the (exporter, domain, template) it waits for;
//! [`PendingBuffer`] keeps copies of them within count, byte and age limits,
//! and [`Decoder`] replays them as soon as the template arrives. Whatever a
//! limit forces out is counted, never silently lost.
//!
//! Besides the global byte limit each exporter has its own
//! (`max_bytes_per_exporter`): one exporter that never sends its templates (or
//! a spoofed flood) then evicts only its own oldest sets, not everyone's.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use crate::cache::{
    ExporterId, ScopeKey, TemplateCache, TemplateChange, TemplateKey, TemplateScope,
};
use crate::packet::{
    decode_waiting, parse_packet_from, visit_packet_from, ExportPacket, Header, MissingSet,
    TemplateEvent, VisitedPacket,
};
use crate::record::{DataSet, DataSetView};
use crate::template::Template;
use crate::Error;

/// Limits of the pending buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingLimits {
    /// Sets kept at most.
    pub max_sets: usize,
    /// Bytes of set bodies kept at most.
    pub max_bytes: usize,
    /// Bytes of set bodies kept at most for one exporter.
    pub max_bytes_per_exporter: usize,
    /// Age in milliseconds (of the caller's clock) after which a set is dropped.
    pub max_age_ms: u64,
}

impl Default for PendingLimits {
    fn default() -> Self {
        PendingLimits {
            max_sets: 16_384,
            max_bytes: 64 << 20,
            max_bytes_per_exporter: 16 << 20,
            max_age_ms: 10 * 60 * 1000,
        }
    }
}

/// A data set waiting for its template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSet {
    pub key: TemplateKey,
    /// The caller's tag for the datagram it came in (e.g. its index or receive time).
    pub tag: u64,
    /// Header of the packet it came in.
    pub header: Header,
    /// Offset of the set header in that packet.
    pub offset: usize,
    /// When it was buffered (caller's clock, milliseconds).
    pub received_ms: u64,
    /// The set body.
    pub body: Box<[u8]>,
}

/// Counters of the pending buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingStats {
    /// Sets buffered.
    pub buffered: u64,
    /// Sets decoded after their template arrived.
    pub replayed: u64,
    /// Sets dropped because they waited longer than `max_age_ms`.
    pub dropped_age: u64,
    /// Sets dropped to stay within `max_sets` / `max_bytes`.
    pub dropped_capacity: u64,
    /// Sets dropped to keep their exporter within `max_bytes_per_exporter`
    /// (the exporter's own oldest sets, or a set larger than the limit).
    pub dropped_exporter_capacity: u64,
}

/// Bounded buffer of data sets waiting for templates, oldest first.
#[derive(Debug, Clone, Default)]
pub struct PendingBuffer {
    sets: VecDeque<PendingSet>,
    /// How many sets wait for each key: makes "does anything wait for this
    /// template?" O(1), as it is asked for every template change.
    waiting: HashMap<TemplateKey, usize>,
    bytes: usize,
    /// Bytes held per exporter (no entry when none).
    exporter_bytes: HashMap<ExporterId, usize>,
    limits: PendingLimits,
    stats: PendingStats,
}

impl PendingBuffer {
    pub fn new(limits: PendingLimits) -> Self {
        PendingBuffer {
            limits,
            ..Default::default()
        }
    }

    pub fn stats(&self) -> &PendingStats {
        &self.stats
    }

    pub fn len(&self) -> usize {
        self.sets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// Bytes of set bodies held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Bytes of set bodies held for one exporter.
    pub fn exporter_bytes(&self, exporter: ExporterId) -> usize {
        self.exporter_bytes.get(&exporter).copied().unwrap_or(0)
    }

    /// The sets waiting, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &PendingSet> {
        self.sets.iter()
    }

    /// True if some set waits for `key`.
    pub fn waits_for(&self, key: &TemplateKey) -> bool {
        self.waiting.contains_key(key)
    }

    fn forget(&mut self, s: &PendingSet) {
        self.bytes -= s.body.len();
        Self::forget_exporter_bytes(&mut self.exporter_bytes, s);
        if let Some(n) = self.waiting.get_mut(&s.key) {
            *n -= 1;
            if *n == 0 {
                self.waiting.remove(&s.key);
            }
        }
    }

    fn forget_exporter_bytes(exporter_bytes: &mut HashMap<ExporterId, usize>, s: &PendingSet) {
        let exporter = s.key.scope.exporter;
        if let Some(n) = exporter_bytes.get_mut(&exporter) {
            *n -= s.body.len();
            if *n == 0 {
                exporter_bytes.remove(&exporter);
            }
        }
    }

    /// Buffer a set; returns the sets evicted to make room (oldest first).
    pub fn push(&mut self, set: PendingSet) -> Vec<PendingSet> {
        let mut evicted = Vec::new();
        let exporter = set.key.scope.exporter;
        if set.body.len() > self.limits.max_bytes_per_exporter {
            self.stats.dropped_exporter_capacity += 1;
            evicted.push(set);
            return evicted;
        }
        if set.body.len() > self.limits.max_bytes || self.limits.max_sets == 0 {
            self.stats.dropped_capacity += 1;
            evicted.push(set);
            return evicted;
        }
        // This exporter's own oldest sets make room first. Finding them is a
        // scan from the front, which stops at the first one: it is near the
        // front whenever this exporter is the one filling the buffer.
        while self.exporter_bytes(exporter) + set.body.len() > self.limits.max_bytes_per_exporter {
            let Some(at) = self
                .sets
                .iter()
                .position(|s| s.key.scope.exporter == exporter)
            else {
                break;
            };
            let old = self.sets.remove(at).expect("position is in range");
            self.forget(&old);
            self.stats.dropped_exporter_capacity += 1;
            evicted.push(old);
        }
        while self.sets.len() >= self.limits.max_sets
            || self.bytes + set.body.len() > self.limits.max_bytes
        {
            let old = self.sets.pop_front().expect("non-empty while over a limit");
            self.forget(&old);
            self.stats.dropped_capacity += 1;
            evicted.push(old);
        }
        self.bytes += set.body.len();
        *self.exporter_bytes.entry(exporter).or_insert(0) += set.body.len();
        *self.waiting.entry(set.key).or_insert(0) += 1;
        self.stats.buffered += 1;
        self.sets.push_back(set);
        evicted
    }

    /// Remove and return the sets waiting for `key`, oldest first.
    pub fn take(&mut self, key: &TemplateKey) -> Vec<PendingSet> {
        self.take_any(std::slice::from_ref(key))
    }

    /// Remove and return the sets waiting for any of `keys`, in arrival order.
    pub fn take_any(&mut self, keys: &[TemplateKey]) -> Vec<PendingSet> {
        let keys: HashSet<&TemplateKey> = keys.iter().collect();
        self.take_where(|k| keys.contains(k))
    }

    /// Remove and return the sets whose key satisfies `wanted`, in arrival
    /// order. One pass over the buffer, whatever the number of keys.
    pub fn take_where(&mut self, wanted: impl Fn(&TemplateKey) -> bool) -> Vec<PendingSet> {
        if !self.waiting.keys().any(&wanted) {
            return Vec::new();
        }
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(self.sets.len());
        for s in self.sets.drain(..) {
            if wanted(&s.key) {
                self.bytes -= s.body.len();
                Self::forget_exporter_bytes(&mut self.exporter_bytes, &s);
                taken.push(s);
            } else {
                kept.push_back(s);
            }
        }
        self.sets = kept;
        self.waiting.retain(|k, _| !wanted(k));
        taken
    }

    /// Remove and return the sets older than `max_age_ms` at time `now_ms`.
    pub fn expire(&mut self, now_ms: u64) -> Vec<PendingSet> {
        let mut expired = Vec::new();
        while let Some(front) = self.sets.front() {
            if now_ms.saturating_sub(front.received_ms) <= self.limits.max_age_ms {
                break;
            }
            let s = self.sets.pop_front().expect("front exists");
            self.forget(&s);
            self.stats.dropped_age += 1;
            expired.push(s);
        }
        expired
    }

    /// Remove and return everything (e.g. at the end of input, to report it).
    pub fn drain(&mut self) -> Vec<PendingSet> {
        self.bytes = 0;
        self.waiting.clear();
        self.exporter_bytes.clear();
        self.sets.drain(..).collect()
    }
}

/// A set that waited for its template and is now decoded.
#[derive(Debug, Clone)]
pub struct ReplayedSet {
    pub pending: PendingSet,
    template: Arc<Template>,
    scope: Arc<TemplateScope>,
    /// A problem found while decoding it (e.g. bytes after the last record).
    pub error: Option<Error>,
}

impl ReplayedSet {
    /// The decoded set.
    pub fn data_set(&self) -> DataSet<'_> {
        decode_waiting(
            self.template.clone(),
            self.scope.clone(),
            self.pending.offset,
            &self.pending.body,
        )
        .0
    }
}

/// The result of [`Decoder::decode`].
#[derive(Debug)]
pub struct Decoded<'a> {
    /// The packet itself.
    pub packet: ExportPacket<'a>,
    /// Earlier sets whose template arrived in this packet, decoded now.
    pub replayed: Vec<ReplayedSet>,
    /// Sets dropped from the buffer (too old, or over capacity) while handling this packet.
    pub dropped: Vec<PendingSet>,
}

/// The result of [`Decoder::visit`]: [`Decoded`] with the packet's data sets
/// handed to the visitor instead of collected.
#[derive(Debug)]
pub struct Visited<'a> {
    /// What the walk found besides the data sets it visited.
    pub packet: VisitedPacket<'a>,
    /// Earlier sets whose template arrived in this packet, decoded now.
    pub replayed: Vec<ReplayedSet>,
    /// Sets dropped from the buffer (too old, or over capacity) while handling this packet.
    pub dropped: Vec<PendingSet>,
}

/// A stateful decoder: template cache plus pending buffer, for any number of exporters.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    pub cache: TemplateCache,
    pub pending: PendingBuffer,
    /// Sets dropped while decoding a datagram that then failed to parse;
    /// reported with the next successful decode (or `take_dropped`).
    unreported: Vec<PendingSet>,
}

impl Decoder {
    pub fn new(cache: TemplateCache, pending: PendingBuffer) -> Self {
        Decoder {
            cache,
            pending,
            unreported: Vec::new(),
        }
    }

    /// Sets dropped from the pending buffer that no `Decoded` has reported yet.
    pub fn take_dropped(&mut self) -> Vec<PendingSet> {
        std::mem::take(&mut self.unreported)
    }

    /// Decode one datagram from `exporter`. `tag` identifies the datagram to the
    /// caller (it comes back with sets replayed later); `now_ms` is the caller's
    /// clock for the age limit.
    pub fn decode<'a>(
        &mut self,
        exporter: ExporterId,
        bytes: &'a [u8],
        tag: u64,
        now_ms: u64,
    ) -> Result<Decoded<'a>, Error> {
        let mut dropped = self.expired(now_ms);
        let packet = match parse_packet_from(exporter, bytes, &mut self.cache) {
            Ok(p) => p,
            Err(e) => {
                // Keep what expired for the next `Decoded::dropped`: never lost unseen.
                self.unreported = dropped;
                return Err(e);
            }
        };
        let replayed = self.replay(exporter, &packet.header, &packet.templates);
        self.buffer_missing(&packet.header, &packet.missing, tag, now_ms, &mut dropped);
        Ok(Decoded {
            packet,
            replayed,
            dropped,
        })
    }

    /// [`decode`](Self::decode) with the packet's data sets handed to `visit`
    /// as the walk reaches them, as [`visit_packet_from`] hands them
    /// (no [`ExportPacket`] built; see there for the order): the same
    /// templates learned, the same sets buffered, replayed and dropped, the
    /// same counters. Sets replayed from the buffer come back in
    /// [`Visited::replayed`], after the packet's own.
    ///
    /// [`visit_packet_from`]: crate::packet::visit_packet_from
    pub fn visit<'a, F>(
        &mut self,
        exporter: ExporterId,
        bytes: &'a [u8],
        tag: u64,
        now_ms: u64,
        visit: F,
    ) -> Result<Visited<'a>, Error>
    where
        F: FnMut(DataSetView<'_>),
    {
        let mut dropped = self.expired(now_ms);
        let packet = match visit_packet_from(exporter, bytes, &mut self.cache, visit) {
            Ok(p) => p,
            Err(e) => {
                self.unreported = dropped;
                return Err(e);
            }
        };
        let replayed = self.replay(exporter, &packet.header, &packet.templates);
        self.buffer_missing(&packet.header, &packet.missing, tag, now_ms, &mut dropped);
        Ok(Visited {
            packet,
            replayed,
            dropped,
        })
    }

    /// Sets not reported yet and those too old at `now_ms`.
    #[inline]
    fn expired(&mut self, now_ms: u64) -> Vec<PendingSet> {
        let mut dropped = std::mem::take(&mut self.unreported);
        dropped.extend(self.pending.expire(now_ms));
        dropped
    }

    /// Decode the buffered sets whose template a packet with `header` and
    /// template events `templates` brought.
    fn replay(
        &mut self,
        exporter: ExporterId,
        header: &Header,
        templates: &[TemplateEvent],
    ) -> Vec<ReplayedSet> {
        let mut replayed = Vec::new();
        let scope_key = header.domain().map(|domain| ScopeKey {
            exporter,
            protocol: header.protocol(),
            domain,
        });
        if let (false, Some(scope_key)) = (self.pending.is_empty(), scope_key) {
            // Keys whose template arrived; their sets replay in arrival order.
            let mut arrived: HashSet<TemplateKey> = HashSet::new();
            for ev in templates {
                if !matches!(
                    ev.change,
                    TemplateChange::Learned | TemplateChange::Redefined
                ) {
                    continue;
                }
                let key = TemplateKey {
                    scope: scope_key,
                    template_id: ev.template_id,
                };
                // The template may have been withdrawn again later in the packet:
                // then the sets keep waiting.
                if self.pending.waits_for(&key) && self.cache.get(&key).is_some() {
                    arrived.insert(key);
                }
            }
            if !arrived.is_empty() {
                let scope = self.cache.snapshot(&scope_key);
                for p in self.pending.take_where(|k| arrived.contains(k)) {
                    let Some(template) = scope.get(p.key.template_id).cloned() else {
                        continue;
                    };
                    let (_, error) =
                        decode_waiting(template.clone(), scope.clone(), p.offset, &p.body);
                    self.pending.stats.replayed += 1;
                    replayed.push(ReplayedSet {
                        pending: p,
                        template,
                        scope: scope.clone(),
                        error,
                    });
                }
            }
        }
        replayed
    }

    /// Buffer the sets of a packet that wait for their template.
    fn buffer_missing(
        &mut self,
        header: &Header,
        missing: &[MissingSet<'_>],
        tag: u64,
        now_ms: u64,
        dropped: &mut Vec<PendingSet>,
    ) {
        for m in missing {
            dropped.extend(self.pending.push(PendingSet {
                key: m.key,
                tag,
                header: *header,
                offset: m.offset,
                received_ms: now_ms,
                body: m.body.into(),
            }));
        }
    }
}
