//! Template state for many exporters at once.
//!
//! Templates are scoped as RFC 3954 section 5.1 and RFC 7011 section 8 require:
//! by exporter (transport session: the exporter's address and port), by
//! protocol (v9 and IPFIX never share templates), by source ID / observation
//! domain, and by template ID. There is no global table.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopeKey {
    pub exporter: ExporterId,
    pub protocol: Protocol,
    /// v9 source ID or IPFIX observation domain ID.
    pub domain: u32,
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

/// Resource limits. Exceeding one yields an error entry and a counter, never
/// unbounded growth.
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

type TemplateMap = HashMap<u16, Arc<Template>, BuildHasherDefault<TemplateIdHasher>>;

/// The templates of one scope. Shared (`Arc`) with the data sets decoded from
/// it, so sub-template lists resolve against the templates known at decode time.
#[derive(Debug, Clone, Default)]
pub struct TemplateScope {
    templates: TemplateMap,
    pub(crate) max_list_depth: usize,
}

impl TemplateScope {
    /// A shared empty scope, for records whose template has no lists.
    pub(crate) fn empty_static() -> &'static TemplateScope {
        static EMPTY: std::sync::OnceLock<TemplateScope> = std::sync::OnceLock::new();
        EMPTY.get_or_init(|| TemplateScope::empty(0))
    }
    pub(crate) fn empty(max_list_depth: usize) -> Self {
        TemplateScope {
            templates: TemplateMap::default(),
            max_list_depth,
        }
    }
    /// The template with this id.
    pub fn get(&self, template_id: u16) -> Option<&Arc<Template>> {
        self.templates.get(&template_id)
    }
    pub fn len(&self) -> usize {
        self.templates.len()
    }
    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }
    /// Templates in this scope, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Template>> {
        self.templates.values()
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
    /// Templates refused by `max_templates_per_scope`.
    pub rejected_template_limit: u64,
    /// Scopes refused by `max_scopes`.
    pub rejected_scope_limit: u64,
}

/// Template state for any number of exporters.
#[derive(Debug, Clone, Default)]
pub struct TemplateCache {
    scopes: HashMap<ScopeKey, Arc<TemplateScope>>,
    limits: Limits,
    stats: CacheStats,
}

impl TemplateCache {
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    pub fn with_limits(limits: Limits) -> Self {
        TemplateCache {
            scopes: HashMap::new(),
            limits,
            stats: CacheStats::default(),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// The template for a key.
    pub fn get(&self, key: &TemplateKey) -> Option<&Arc<Template>> {
        self.scopes.get(&key.scope)?.get(key.template_id)
    }

    /// The templates of one scope.
    pub fn scope(&self, key: &ScopeKey) -> Option<&Arc<TemplateScope>> {
        self.scopes.get(key)
    }

    /// All scopes with at least one template.
    pub fn scopes(&self) -> impl Iterator<Item = (&ScopeKey, &Arc<TemplateScope>)> {
        self.scopes.iter()
    }

    /// Total number of templates stored.
    pub fn template_count(&self) -> usize {
        self.scopes.values().map(|s| s.len()).sum()
    }

    /// Forget everything an exporter announced (e.g. when its TCP session closes).
    pub fn remove_exporter(&mut self, exporter: ExporterId) {
        self.scopes.retain(|k, _| k.exporter != exporter);
    }

    /// The current snapshot of a scope, or an empty one.
    pub(crate) fn snapshot(&self, key: &ScopeKey) -> Arc<TemplateScope> {
        match self.scopes.get(key) {
            Some(s) => s.clone(),
            None => Arc::new(TemplateScope::empty(self.limits.max_list_depth)),
        }
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
        if let Some(existing) = self.scopes.get(&key).and_then(|s| s.get(template_id)) {
            if existing.same_layout(kind, scope_count, specs) {
                self.stats.refreshed += 1;
                return Ok(TemplateChange::Refreshed);
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
        if !self.scopes.contains_key(&key) {
            if self.scopes.len() >= self.limits.max_scopes {
                self.stats.rejected_scope_limit += 1;
                return Err(ErrorKind::ScopeLimit {
                    limit: self.limits.max_scopes,
                });
            }
            self.scopes.insert(
                key,
                Arc::new(TemplateScope::empty(self.limits.max_list_depth)),
            );
        }
        let max = self.limits.max_templates_per_scope;
        let scope = Arc::make_mut(self.scopes.get_mut(&key).expect("inserted above"));
        let change = if scope.templates.contains_key(&template_id) {
            TemplateChange::Redefined
        } else if scope.templates.len() >= max {
            self.stats.rejected_template_limit += 1;
            return Err(ErrorKind::TemplateLimit {
                template_id,
                limit: max,
            });
        } else {
            TemplateChange::Learned
        };
        scope.templates.insert(template_id, Arc::new(template));
        match change {
            TemplateChange::Learned => self.stats.learned += 1,
            _ => self.stats.redefined += 1,
        }
        Ok(change)
    }

    /// Withdraw one template (RFC 7011 section 8.1). Returns whether it existed.
    pub(crate) fn withdraw(&mut self, key: ScopeKey, template_id: u16) -> bool {
        let Some(scope) = self.scopes.get_mut(&key) else {
            return false;
        };
        if scope.get(template_id).is_none() {
            return false;
        }
        Arc::make_mut(scope).templates.remove(&template_id);
        self.stats.withdrawn += 1;
        true
    }

    /// Withdraw every template of one kind in a scope (RFC 7011 section 8.1,
    /// template ID 2 or 3 with field count 0). Returns the withdrawn ids.
    pub(crate) fn withdraw_all(&mut self, key: ScopeKey, kind: TemplateKind) -> Vec<u16> {
        let Some(scope) = self.scopes.get_mut(&key) else {
            return Vec::new();
        };
        let ids: Vec<u16> = scope
            .templates
            .values()
            .filter(|t| t.kind == kind)
            .map(|t| t.id)
            .collect();
        if !ids.is_empty() {
            let s = Arc::make_mut(scope);
            for id in &ids {
                s.templates.remove(id);
            }
            self.stats.withdrawn += ids.len() as u64;
        }
        ids
    }
}
