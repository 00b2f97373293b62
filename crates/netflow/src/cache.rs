//! Template state for many exporters at once.
//!
//! Templates are scoped as RFC 3954 section 5.1 and RFC 7011 section 8 require:
//! by exporter (transport session: the exporter's address and port), by
//! protocol (v9 and IPFIX never share templates), by source ID / observation
//! domain, and by template ID. There is no global table.
//!
//! Memory is bounded by [`Limits`]: at most `max_scopes` scopes of at most
//! `max_templates_per_scope` templates of at most `max_fields_per_template`
//! fields. When a cap is reached the least recently used scope or template is
//! evicted and counted ([`CacheStats::evicted_scopes`],
//! [`CacheStats::evicted_templates`]), so a flood of templates or exporters
//! cannot push out the ones in use. RFC 7011 section 8.4 allows a collector to
//! forget templates; an exporter resends them (RFC 7011 section 8.2 / RFC 3954
//! section 5.2), and data that arrives meanwhile waits in the
//! [`crate::PendingBuffer`].
//!
//! "Used" means a data set was decoded with the template (a lookup through
//! [`TemplateScope::get`]) or the template was announced again. The hot path
//! pays one relaxed atomic increment and store per lookup; the ordering is
//! only consulted when a cap is reached (see [`LruIndex`]).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::template::{FieldSpec, Template, TemplateKind};
use crate::{ErrorKind, Protocol};

/// Who sent an export packet: the exporter's transport address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExporterId(pub SocketAddr);

impl ExporterId {
    /// The exporter used when the caller does not name one (`0.0.0.0:0`).
    pub const UNSPECIFIED: ExporterId =
        ExporterId(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)));
}

impl Default for ExporterId {
    fn default() -> Self {
        ExporterId::UNSPECIFIED
    }
}

impl From<SocketAddr> for ExporterId {
    fn from(a: SocketAddr) -> Self {
        ExporterId(a)
    }
}

impl core::fmt::Display for ExporterId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.fmt(f)
    }
}

/// (exporter, protocol, source ID / observation domain): one template namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScopeKey {
    pub exporter: ExporterId,
    pub protocol: Protocol,
    /// v9 source ID or IPFIX observation domain ID.
    pub domain: u32,
}

/// Hashes what `Eq` compares (address, port, IPv6 flow info and scope id,
/// protocol, domain) in one or a few wide writes: the derived `Hash` made
/// about ten small SipHash writes, and a scope is looked up for every packet
/// (it was 5 % to 10 % of decoding a v9 packet of a few records).
impl Hash for ScopeKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let tail = (self.protocol as u64) << 32 | self.domain as u64;
        match self.exporter.0 {
            SocketAddr::V4(a) => state.write_u128(
                (u32::from(*a.ip()) as u128) << 80 | (a.port() as u128) << 64 | tail as u128,
            ),
            SocketAddr::V6(a) => {
                state.write_u128(u128::from(*a.ip()));
                state.write_u128(
                    (a.port() as u128) << 64 | (a.flowinfo() as u128) << 32 | a.scope_id() as u128,
                );
                state.write_u64(tail);
            }
        }
    }
}

/// A template's full identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TemplateKey {
    pub scope: ScopeKey,
    pub template_id: u16,
}

impl core::fmt::Display for TemplateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "exporter {} {} domain {} template {}",
            self.scope.exporter,
            self.scope.protocol.name(),
            self.scope.domain,
            self.template_id
        )
    }
}

/// Resource limits. Reaching a scope or template cap evicts the least
/// recently used one (counted); a cap of 0 refuses with an error entry and a
/// counter. Nothing grows without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Distinct (exporter, protocol, domain) scopes.
    pub max_scopes: usize,
    /// Templates per scope (i.e. per exporter and domain).
    pub max_templates_per_scope: usize,
    /// Fields in one template record.
    pub max_fields_per_template: usize,
    /// Structured data (RFC 6313) nesting depth.
    pub max_list_depth: usize,
    /// Fixed fields of length 0 in one template. They carry nothing but cost
    /// work per record: 1000 of them in a 1-byte record would let one 64 KiB
    /// datagram expand to 64 million values.
    pub max_zero_length_fields: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_scopes: 65_536,
            max_templates_per_scope: 4_096,
            max_fields_per_template: 1_024,
            max_list_depth: 8,
            max_zero_length_fields: 16,
        }
    }
}

/// Multiplicative hasher for template ids: the per-set template lookup is on
/// the hot path, and 16-bit keys need no DoS-resistant hash (a scope holds
/// at most `max_templates_per_scope` of them).
#[derive(Debug, Default, Clone, Copy)]
pub struct TemplateIdHasher(u64);

impl Hasher for TemplateIdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    #[inline]
    fn write_u16(&mut self, v: u16) {
        self.write_u64(v as u64);
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Least-recently-used order kept lazily, so that marking a use costs one
/// store (of a tick from a monotonic clock) and only eviction does work.
///
/// A min-heap of (tick, key) entries. Every live key has at least one entry
/// whose tick is at most the key's latest use tick (the tick of its
/// insertion, or a later one). Evicting pops the smallest tick; if the key
/// was used since (its latest tick is larger) it goes back in under that tick
/// and the next one is tried. When the popped tick is the key's latest, no
/// other key can have an older latest use, so the choice is exact LRU; each
/// re-insertion pays for a use since the last one, so eviction is O(log n)
/// amortized. Inserting a new key (the newest tick) is O(1) on average: it
/// stays at the bottom of the heap. Stale entries (keys removed by a
/// withdrawal, or inserted again) are dropped when met, and the whole index
/// is rebuilt (O(n)) once stale entries outnumber live keys.
#[derive(Debug, Clone)]
struct LruIndex<K> {
    heap: BinaryHeap<Reverse<(u64, K)>>,
}

impl<K: Ord> Default for LruIndex<K> {
    fn default() -> Self {
        LruIndex {
            heap: BinaryHeap::new(),
        }
    }
}

impl<K: Copy + Ord> LruIndex<K> {
    /// A key was inserted (or used) at `tick`.
    fn insert(&mut self, tick: u64, key: K) {
        self.heap.push(Reverse((tick, key)));
    }

    /// Remove and return the least recently used live key. `latest` gives a
    /// key's latest use tick, or None if the key is gone.
    fn pop_least_recent(&mut self, latest: impl Fn(&K) -> Option<u64>) -> Option<K> {
        while let Some(Reverse((tick, key))) = self.heap.pop() {
            match latest(&key) {
                None => continue,
                Some(now) if now <= tick => return Some(key),
                Some(now) => self.heap.push(Reverse((now, key))),
            }
        }
        None
    }

    /// Replace the entries with these (tick, key) pairs.
    fn rebuild(&mut self, entries: Vec<(u64, K)>) {
        self.heap = entries.into_iter().map(Reverse).collect();
    }

    /// Rebuild from the live keys when stale entries outnumber them.
    fn compact_if_stale(&mut self, live: usize, keys: impl Fn() -> Vec<(u64, K)>) {
        if self.heap.len() > 2 * live + 64 {
            self.rebuild(keys());
        }
    }

    fn len(&self) -> usize {
        self.heap.len()
    }
}

/// A stored template and when it was last used (a tick of its scope's clock).
#[derive(Debug)]
struct Slot {
    template: Arc<Template>,
    last_used: AtomicU64,
}

impl Clone for Slot {
    fn clone(&self) -> Self {
        Slot {
            template: self.template.clone(),
            last_used: AtomicU64::new(self.last_used.load(Ordering::Relaxed)),
        }
    }
}

type TemplateMap = HashMap<u16, Slot, BuildHasherDefault<TemplateIdHasher>>;

/// The templates of one scope. Shared (`Arc`) with the data sets decoded from
/// it, so sub-template lists resolve against the templates known at decode time.
#[derive(Debug, Default)]
pub struct TemplateScope {
    templates: TemplateMap,
    /// Use clock of this scope: every lookup takes the next tick.
    clock: AtomicU64,
    pub(crate) max_list_depth: usize,
}

impl Clone for TemplateScope {
    fn clone(&self) -> Self {
        TemplateScope {
            templates: self.templates.clone(),
            clock: AtomicU64::new(self.clock.load(Ordering::Relaxed)),
            max_list_depth: self.max_list_depth,
        }
    }
}

impl TemplateScope {
    /// A shared empty scope, for records whose template has no lists.
    /// A constant, not a `OnceLock`: every data set visited without lists
    /// gets it, and a `OnceLock` is a load and a check each time.
    pub(crate) fn empty_static() -> &'static TemplateScope {
        static EMPTY: TemplateScope = TemplateScope {
            templates: HashMap::with_hasher(BuildHasherDefault::new()),
            clock: AtomicU64::new(0),
            max_list_depth: 0,
        };
        &EMPTY
    }
    pub(crate) fn empty(max_list_depth: usize) -> Self {
        TemplateScope {
            templates: TemplateMap::default(),
            clock: AtomicU64::new(0),
            max_list_depth,
        }
    }
    /// The next tick of this scope's use clock (unique, increasing).
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed) + 1
    }
    /// The template with this id, for decoding: marks it used (it becomes the
    /// most recently used of its scope, the last one evicted). Use
    /// [`TemplateScope::peek`] to look without marking.
    #[inline]
    pub fn get(&self, template_id: u16) -> Option<&Arc<Template>> {
        let slot = self.templates.get(&template_id)?;
        slot.last_used.store(self.tick(), Ordering::Relaxed);
        Some(&slot.template)
    }
    /// The template with this id, without marking it used.
    pub fn peek(&self, template_id: u16) -> Option<&Arc<Template>> {
        self.templates.get(&template_id).map(|s| &s.template)
    }
    pub fn len(&self) -> usize {
        self.templates.len()
    }
    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }
    /// Templates in this scope, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Template>> {
        self.templates.values().map(|s| &s.template)
    }
    /// Template ids from least to most recently used (the eviction order).
    pub fn ids_by_last_use(&self) -> Vec<u16> {
        let mut ids: Vec<(u64, u16)> = self.ticks();
        ids.sort_unstable();
        ids.into_iter().map(|(_, id)| id).collect()
    }
    /// Fields of all templates in this scope.
    pub fn field_count(&self) -> usize {
        self.templates
            .values()
            .map(|s| s.template.fields.len())
            .sum()
    }
    fn ticks(&self) -> Vec<(u64, u16)> {
        self.templates
            .iter()
            .map(|(&id, s)| (s.last_used.load(Ordering::Relaxed), id))
            .collect()
    }
    fn last_used(&self, template_id: u16) -> Option<u64> {
        self.templates
            .get(&template_id)
            .map(|s| s.last_used.load(Ordering::Relaxed))
    }
}

/// What storing a template record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateChange {
    /// A template id not known before.
    Learned,
    /// The same layout announced again (nothing changed).
    Refreshed,
    /// A known id with a new layout.
    Redefined,
    /// Withdrawn (IPFIX, RFC 7011 section 8.1).
    Withdrawn,
}

/// Counters kept by the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub learned: u64,
    pub refreshed: u64,
    pub redefined: u64,
    pub withdrawn: u64,
    /// Templates evicted (least recently used first) to make room for a new
    /// one in a scope holding `max_templates_per_scope`.
    pub evicted_templates: u64,
    /// Scopes evicted (least recently used first, with all their templates)
    /// to make room for a new one when `max_scopes` are held.
    pub evicted_scopes: u64,
    /// Templates that went with the evicted scopes.
    pub templates_in_evicted_scopes: u64,
    /// Templates refused because `max_templates_per_scope` is 0.
    pub rejected_template_limit: u64,
    /// Scopes refused because `max_scopes` is 0.
    pub rejected_scope_limit: u64,
}

/// One scope and its bookkeeping.
#[derive(Debug, Clone)]
struct ScopeSlot {
    key: ScopeKey,
    scope: Arc<TemplateScope>,
    /// Tick of the cache's clock when a packet last used this scope.
    last_used: u64,
    /// Eviction order of the scope's templates (ticks of the scope's clock).
    lru: LruIndex<u16>,
}

/// No position: [`ScopeTable::last`] remembers nothing.
const NO_SLOT: usize = usize::MAX;

/// The scopes, stored densely and found through a keyed hash of their key,
/// with the position of the last scope found in front of the hash.
///
/// The index keeps the std `HashMap`'s randomly keyed SipHash: exporter
/// addresses can be spoofed, and an unkeyed hash would let a sender fill
/// one bucket. But SipHash of a scope key is ~270 instructions, and every
/// packet needs its scope (several times with templates in it): a router
/// sends packet after packet from one address, port and domain, so checking
/// the last scope found first (a key comparison) skips the hash for nearly
/// all of them. Any removal moves slots, so it forgets the last position.
#[derive(Debug, Clone)]
struct ScopeTable {
    slots: Vec<ScopeSlot>,
    /// Position in `slots` of each key.
    index: HashMap<ScopeKey, usize>,
    /// Position of the scope last found by [`ScopeTable::find`], or `NO_SLOT`.
    last: usize,
}

impl Default for ScopeTable {
    fn default() -> Self {
        ScopeTable {
            slots: Vec::new(),
            index: HashMap::new(),
            last: NO_SLOT,
        }
    }
}

impl ScopeTable {
    /// Position of `key`, without remembering it.
    #[inline]
    fn position(&self, key: &ScopeKey) -> Option<usize> {
        match self.slots.get(self.last) {
            Some(slot) if slot.key == *key => Some(self.last),
            _ => self.index.get(key).copied(),
        }
    }

    /// [`find`](Self::find) through the hash index only (the caller
    /// checked the last position).
    #[cold]
    #[inline(never)]
    fn find_by_hash(&mut self, key: &ScopeKey) -> Option<usize> {
        let at = self.index.get(key).copied()?;
        self.last = at;
        Some(at)
    }

    /// Position of `key`, remembered for the next lookup.
    #[inline]
    fn find(&mut self, key: &ScopeKey) -> Option<usize> {
        let at = self.position(key)?;
        self.last = at;
        Some(at)
    }

    fn get(&self, key: &ScopeKey) -> Option<&ScopeSlot> {
        self.position(key).map(|at| &self.slots[at])
    }

    fn contains(&self, key: &ScopeKey) -> bool {
        self.position(key).is_some()
    }

    fn len(&self) -> usize {
        self.slots.len()
    }

    fn iter(&self) -> core::slice::Iter<'_, ScopeSlot> {
        self.slots.iter()
    }

    /// Add a scope whose key is not held; returns its position.
    fn push(&mut self, slot: ScopeSlot) -> usize {
        let at = self.slots.len();
        self.index.insert(slot.key, at);
        self.slots.push(slot);
        self.last = at;
        at
    }

    fn remove(&mut self, key: &ScopeKey) -> Option<ScopeSlot> {
        let at = self.index.remove(key)?;
        self.last = NO_SLOT;
        let gone = self.slots.swap_remove(at);
        if let Some(moved) = self.slots.get(at) {
            self.index.insert(moved.key, at);
        }
        Some(gone)
    }

    fn retain(&mut self, keep: impl Fn(&ScopeKey) -> bool) {
        self.last = NO_SLOT;
        self.slots.retain(|s| keep(&s.key));
        self.index.retain(|k, _| keep(k));
        for (at, slot) in self.slots.iter().enumerate() {
            self.index.insert(slot.key, at);
        }
    }
}

/// Template state for any number of exporters.
#[derive(Debug, Clone, Default)]
pub struct TemplateCache {
    scopes: ScopeTable,
    /// Eviction order of scopes (ticks of `clock`).
    scope_lru: LruIndex<ScopeKey>,
    /// Use clock of scopes: one tick per use of a scope (a packet's data
    /// set or template record).
    clock: u64,
    limits: Limits,
    stats: CacheStats,
    /// See [`take_spec_buffer`](Self::take_spec_buffer). Holds at most
    /// `max_fields_per_template` specifiers.
    spec_buffer: Vec<FieldSpec>,
    /// Refreshes only the slow way (see [`set_slow_refresh`](Self::set_slow_refresh)).
    slow_refresh: bool,
}

impl TemplateCache {
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    pub fn with_limits(limits: Limits) -> Self {
        TemplateCache {
            limits,
            ..Default::default()
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// The template for a key (does not mark it used).
    pub fn get(&self, key: &TemplateKey) -> Option<&Arc<Template>> {
        self.scopes.get(&key.scope)?.scope.peek(key.template_id)
    }

    /// The templates of one scope.
    pub fn scope(&self, key: &ScopeKey) -> Option<&Arc<TemplateScope>> {
        self.scopes.get(key).map(|s| &s.scope)
    }

    /// All scopes (in no particular order).
    pub fn scopes(&self) -> impl Iterator<Item = (&ScopeKey, &Arc<TemplateScope>)> {
        self.scopes.iter().map(|s| (&s.key, &s.scope))
    }

    /// Number of scopes held.
    pub fn scope_count(&self) -> usize {
        self.scopes.len()
    }

    /// Scopes from least to most recently used (the eviction order).
    pub fn scopes_by_last_use(&self) -> Vec<ScopeKey> {
        let mut keys: Vec<(u64, ScopeKey)> =
            self.scopes.iter().map(|s| (s.last_used, s.key)).collect();
        keys.sort_unstable();
        keys.into_iter().map(|(_, k)| k).collect()
    }

    /// Total number of templates stored.
    pub fn template_count(&self) -> usize {
        self.scopes.iter().map(|s| s.scope.len()).sum()
    }

    /// Total number of template fields stored (the bulk of the cache's memory).
    pub fn field_count(&self) -> usize {
        self.scopes.iter().map(|s| s.scope.field_count()).sum()
    }

    /// Forget everything an exporter announced (e.g. when its TCP session closes).
    pub fn remove_exporter(&mut self, exporter: ExporterId) {
        self.scopes.retain(|k| k.exporter != exporter);
        self.compact_scope_index();
    }

    fn compact_scope_index(&mut self) {
        let scopes = &self.scopes;
        self.scope_lru.compact_if_stale(scopes.len(), || {
            scopes.iter().map(|s| (s.last_used, s.key)).collect()
        });
    }

    /// Mark a scope used.
    #[inline]
    fn touch_scope(&mut self, key: &ScopeKey) -> Option<&mut ScopeSlot> {
        let at = self.scopes.find(key)?;
        let slot = &mut self.scopes.slots[at];
        self.clock += 1;
        slot.last_used = self.clock;
        Some(slot)
    }

    /// The current snapshot of a scope, or an empty one. Taken when a packet
    /// carries data sets, so it marks the scope used.
    pub(crate) fn snapshot(&mut self, key: &ScopeKey) -> Arc<TemplateScope> {
        match self.touch_scope(key) {
            Some(s) => s.scope.clone(),
            None => Arc::new(TemplateScope::empty(self.limits.max_list_depth)),
        }
    }

    /// Position of a scope, marked used, for [`template_in`](Self::template_in).
    /// Valid until the cache changes (storing, withdrawing, removing).
    ///
    /// The check of the last scope found is inlined into the packet walk,
    /// the hash lookup kept out of line: as one function, the call saved
    /// and restored six registers for the lookup it nearly never makes
    /// (~50 instructions a packet, ~25 now).
    #[inline(always)]
    pub(crate) fn use_scope(&mut self, key: &ScopeKey) -> Option<usize> {
        let last = self.scopes.last;
        let at = match self.scopes.slots.get(last) {
            Some(slot) if slot.key == *key => last,
            _ => self.scopes.find_by_hash(key)?,
        };
        self.clock += 1;
        if let Some(slot) = self.scopes.slots.get_mut(at) {
            slot.last_used = self.clock;
        }
        Some(at)
    }

    /// The template to decode a data set with, from the scope at a position
    /// [`use_scope`](Self::use_scope) gave: marks it used. Takes no
    /// reference to the scope (as a snapshot would), so later template
    /// changes in the same packet need not copy it.
    /// Borrowed, so a caller that needs no `Arc` of its own (the visitor
    /// of [`visit_packet`](crate::packet::visit_packet)) pays no reference
    /// count.
    #[inline]
    pub(crate) fn template_in(&self, at: usize, template_id: u16) -> Option<&Arc<Template>> {
        self.scopes.slots.get(at)?.scope.get(template_id)
    }

    /// The scope at a position [`use_scope`](Self::use_scope) gave.
    pub(crate) fn scope_in(&self, at: usize) -> Option<&TemplateScope> {
        self.scopes.slots.get(at).map(|s| &*s.scope)
    }

    /// An empty scope with this cache's list depth limit, for data sets of
    /// templates with lists whose scope is gone (never allocates).
    pub(crate) fn empty_scope(&self) -> TemplateScope {
        TemplateScope::empty(self.limits.max_list_depth)
    }

    /// A buffer for the field specifiers of template records being read, lent
    /// to a packet walk so it need not allocate one per packet.
    pub(crate) fn take_spec_buffer(&mut self) -> Vec<FieldSpec> {
        std::mem::take(&mut self.spec_buffer)
    }

    pub(crate) fn return_spec_buffer(&mut self, buffer: Vec<FieldSpec>) {
        self.spec_buffer = buffer;
    }

    /// Make room for one more scope: evict the least recently used one.
    fn evict_scope(&mut self) -> bool {
        let scopes = &self.scopes;
        let victim = self
            .scope_lru
            .pop_least_recent(|k| scopes.get(k).map(|s| s.last_used))
            .or_else(|| {
                // Every live key has an entry, so this is unreachable; rebuild anyway.
                self.scope_lru
                    .rebuild(scopes.iter().map(|s| (s.last_used, s.key)).collect());
                self.scope_lru
                    .pop_least_recent(|k| scopes.get(k).map(|s| s.last_used))
            });
        let Some(victim) = victim else {
            return false;
        };
        if let Some(gone) = self.scopes.remove(&victim) {
            self.stats.evicted_scopes += 1;
            self.stats.templates_in_evicted_scopes += gone.scope.len() as u64;
        }
        true
    }

    /// A template record that announces again, byte for byte, a template
    /// the scope holds: `wire` starts with its field specifiers (see
    /// `template::wire_specs`), `field_count` of them. If so, marks the
    /// scope and the template used and counts the refresh, exactly as
    /// [`insert`](Self::insert) does for a refresh, and returns the length
    /// of the specifiers; else changes nothing (the caller then reads the
    /// record and inserts it). Skips reading the specifiers into a list and
    /// comparing them one by one with the template's fields.
    pub(crate) fn refresh_unchanged(
        &mut self,
        key: &ScopeKey,
        template_id: u16,
        kind: TemplateKind,
        scope_count: u16,
        field_count: usize,
        wire: &[u8],
    ) -> Option<usize> {
        if self.slow_refresh {
            return None;
        }
        let at = self.scopes.position(key)?;
        let scope = &self.scopes.slots[at].scope;
        let existing = scope.templates.get(&template_id)?;
        let t = &existing.template;
        let n = t.wire.len();
        let same = n > 0
            && t.kind == kind
            && t.scope_count == scope_count
            && t.fields.len() == field_count
            && wire.get(..n) == Some(&t.wire[..]);
        if !same {
            return None;
        }
        // What insert() does for a refresh: the scope used (touch_scope),
        // the template used, the refresh counted.
        existing.last_used.store(scope.tick(), Ordering::Relaxed);
        self.scopes.last = at;
        self.clock += 1;
        self.scopes.slots[at].last_used = self.clock;
        self.stats.refreshed += 1;
        Some(n)
    }

    /// Store a template record (already checked against the field limit).
    pub(crate) fn insert(
        &mut self,
        key: ScopeKey,
        template_id: u16,
        kind: TemplateKind,
        scope_count: u16,
        specs: &[FieldSpec],
    ) -> Result<TemplateChange, ErrorKind> {
        if let Some(slot) = self.touch_scope(&key) {
            if let Some(existing) = slot.scope.templates.get(&template_id) {
                if existing.template.same_layout(kind, scope_count, specs) {
                    // A refresh is a use; the atomic store needs no copy of a shared scope.
                    existing
                        .last_used
                        .store(slot.scope.tick(), Ordering::Relaxed);
                    self.stats.refreshed += 1;
                    return Ok(TemplateChange::Refreshed);
                }
            }
        }
        let zero = specs.iter().filter(|s| s.length == 0).count();
        if zero > self.limits.max_zero_length_fields {
            return Err(ErrorKind::ZeroLengthFields {
                template_id,
                count: zero,
                limit: self.limits.max_zero_length_fields,
            });
        }
        let template = Template::compile(key.protocol, template_id, kind, scope_count, specs)?;
        if !self.scopes.contains(&key) {
            if self.limits.max_scopes == 0 {
                self.stats.rejected_scope_limit += 1;
                return Err(ErrorKind::ScopeLimit { limit: 0 });
            }
            while self.scopes.len() >= self.limits.max_scopes && self.evict_scope() {}
            self.clock += 1;
            self.scopes.push(ScopeSlot {
                key,
                scope: Arc::new(TemplateScope::empty(self.limits.max_list_depth)),
                last_used: self.clock,
                lru: LruIndex::default(),
            });
            self.scope_lru.insert(self.clock, key);
            self.compact_scope_index();
        }
        let max = self.limits.max_templates_per_scope;
        let at = self.scopes.find(&key).expect("inserted above");
        let slot = &mut self.scopes.slots[at];
        let scope = Arc::make_mut(&mut slot.scope);
        let change = if scope.templates.contains_key(&template_id) {
            TemplateChange::Redefined
        } else if max == 0 {
            self.stats.rejected_template_limit += 1;
            return Err(ErrorKind::TemplateLimit {
                template_id,
                limit: max,
            });
        } else {
            while scope.templates.len() >= max {
                let victim = slot
                    .lru
                    .pop_least_recent(|id| scope.last_used(*id))
                    .or_else(|| {
                        // Every live key has an entry, so this is unreachable; rebuild anyway.
                        slot.lru.rebuild(scope.ticks());
                        slot.lru.pop_least_recent(|id| scope.last_used(*id))
                    });
                let Some(victim) = victim else {
                    // Unreachable: a full scope has a least recently used template.
                    return Err(ErrorKind::TemplateLimit {
                        template_id,
                        limit: max,
                    });
                };
                scope.templates.remove(&victim);
                self.stats.evicted_templates += 1;
            }
            TemplateChange::Learned
        };
        let tick = scope.tick();
        scope.templates.insert(
            template_id,
            Slot {
                template: Arc::new(template),
                last_used: AtomicU64::new(tick),
            },
        );
        if change == TemplateChange::Learned {
            slot.lru.insert(tick, template_id);
            slot.lru
                .compact_if_stale(scope.templates.len(), || scope.ticks());
            self.stats.learned += 1;
        } else {
            self.stats.redefined += 1;
        }
        Ok(change)
    }

    /// Withdraw one template (RFC 7011 section 8.1). Returns whether it existed.
    pub(crate) fn withdraw(&mut self, key: ScopeKey, template_id: u16) -> bool {
        let Some(at) = self.scopes.find(&key) else {
            return false;
        };
        let slot = &mut self.scopes.slots[at];
        if slot.scope.peek(template_id).is_none() {
            return false;
        }
        let scope = Arc::make_mut(&mut slot.scope);
        scope.templates.remove(&template_id);
        slot.lru
            .compact_if_stale(scope.templates.len(), || scope.ticks());
        self.stats.withdrawn += 1;
        true
    }

    /// Withdraw every template of one kind in a scope (RFC 7011 section 8.1,
    /// template ID 2 or 3 with field count 0). Returns the withdrawn ids.
    pub(crate) fn withdraw_all(&mut self, key: ScopeKey, kind: TemplateKind) -> Vec<u16> {
        let Some(at) = self.scopes.find(&key) else {
            return Vec::new();
        };
        let slot = &mut self.scopes.slots[at];
        let ids: Vec<u16> = slot
            .scope
            .iter()
            .filter(|t| t.kind == kind)
            .map(|t| t.id)
            .collect();
        if !ids.is_empty() {
            let scope = Arc::make_mut(&mut slot.scope);
            for id in &ids {
                scope.templates.remove(id);
            }
            slot.lru
                .compact_if_stale(scope.templates.len(), || scope.ticks());
            self.stats.withdrawn += ids.len() as u64;
        }
        ids
    }

    /// Recognize template refreshes only by reading the record and
    /// comparing its fields, never by comparing its bytes with the held
    /// template (see `refresh_unchanged`): for tests that check the two
    /// ways agree.
    #[doc(hidden)]
    pub fn set_slow_refresh(&mut self, slow: bool) {
        self.slow_refresh = slow;
    }

    /// Entries in the eviction indexes (scopes, templates): bounded by a
    /// constant factor of the live entries. For tests of the bounds.
    #[doc(hidden)]
    pub fn index_sizes(&self) -> (usize, usize) {
        (
            self.scope_lru.len(),
            self.scopes.iter().map(|s| s.lru.len()).sum(),
        )
    }
}
