//! Errors: every one names what is wrong and the byte offset (from the start of
//! the export packet) where it was found.

use core::fmt;

/// What went wrong while decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Fewer bytes than the structure at `offset` needs.
    Truncated { needed: usize, available: usize },
    /// The version field is not 1, 5, 7, 9 or 10.
    UnknownVersion(u16),
    /// Hex input that is not an even number of hex digits.
    InvalidHex,
    /// IPFIX message length field smaller than the header or larger than the datagram.
    BadMessageLength { length: u16, datagram: usize },
    /// A set/flowset length below 4 or past the end of the message.
    BadSetLength { set_id: u16, length: u16 },
    /// Set ID 0/1 (IPFIX) or 4..=255 is reserved (RFC 7011 section 3.3.2).
    ReservedSetId(u16),
    /// Template ID below 256 (RFC 7011 section 3.4.1, RFC 3954 section 5.2).
    ReservedTemplateId(u16),
    /// A template record whose total record length is zero (would loop forever).
    EmptyTemplate(u16),
    /// Template declares more fields than `Limits::max_fields_per_template`.
    TooManyFields {
        template_id: u16,
        count: usize,
        limit: usize,
    },
    /// Template has more zero-length fields than `Limits::max_zero_length_fields`.
    ZeroLengthFields {
        template_id: u16,
        count: usize,
        limit: usize,
    },
    /// A template record that does not fit in its set.
    TemplateTruncated(u16),
    /// v9 options template whose scope/option lengths are not multiples of 4.
    BadOptionsLengths {
        template_id: u16,
        scope_len: u16,
        option_len: u16,
    },
    /// IPFIX options template with scope count 0 or above the field count.
    BadScopeCount {
        template_id: u16,
        scope_count: u16,
        field_count: u16,
    },
    /// Template limit per (exporter, domain) reached; template not stored.
    TemplateLimit { template_id: u16, limit: usize },
    /// Exporter/domain limit reached; templates of a new scope not stored.
    ScopeLimit { limit: usize },
    /// A data record cut short (variable-length field running past the set).
    RecordTruncated { template_id: u16 },
    /// Records in a v1/v5/v7 packet promised by `count` but not present.
    CountMismatch { count: u16, present: usize },
    /// Non-zero bytes after the last set/flowset.
    TrailingBytes(usize),
    /// Bytes after the last record of a data set that are too few for a record
    /// but not zero, as padding must be (RFC 7011 section 3.3.1).
    NonZeroPadding { template_id: u16, length: usize },
    /// Structured data nested deeper than `Limits::max_list_depth`.
    ListTooDeep { limit: usize },
    /// A structured data (RFC 6313) list whose content is malformed.
    BadList,
}

/// A decoding error located at a byte offset in the export packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    /// Byte offset from the start of the export packet.
    pub offset: usize,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, offset: usize) -> Self {
        Error { kind, offset }
    }
    pub(crate) fn truncated(offset: usize, needed: usize, available: usize) -> Self {
        Error::new(ErrorKind::Truncated { needed, available }, offset)
    }
    /// A short, stable name of the error kind, for counters and metrics labels.
    pub fn kind_name(&self) -> &'static str {
        use ErrorKind::*;
        match self.kind {
            Truncated { .. } => "truncated",
            UnknownVersion(_) => "unknown_version",
            InvalidHex => "invalid_hex",
            BadMessageLength { .. } => "bad_message_length",
            BadSetLength { .. } => "bad_set_length",
            ReservedSetId(_) => "reserved_set_id",
            ReservedTemplateId(_) => "reserved_template_id",
            EmptyTemplate(_) => "empty_template",
            TooManyFields { .. } => "too_many_fields",
            ZeroLengthFields { .. } => "zero_length_fields",
            TemplateTruncated(_) => "template_truncated",
            BadOptionsLengths { .. } => "bad_options_lengths",
            BadScopeCount { .. } => "bad_scope_count",
            TemplateLimit { .. } => "template_limit",
            ScopeLimit { .. } => "scope_limit",
            RecordTruncated { .. } => "record_truncated",
            CountMismatch { .. } => "count_mismatch",
            TrailingBytes(_) => "trailing_bytes",
            NonZeroPadding { .. } => "nonzero_padding",
            ListTooDeep { .. } => "list_too_deep",
            BadList => "bad_list",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ErrorKind::*;
        match self {
            Truncated { needed, available } => {
                write!(f, "truncated: needs {needed} bytes, {available} available")
            }
            UnknownVersion(v) => write!(f, "unknown export version {v}"),
            InvalidHex => write!(f, "invalid hex text"),
            BadMessageLength { length, datagram } => write!(
                f,
                "IPFIX message length {length} invalid for a {datagram}-byte datagram"
            ),
            BadSetLength { set_id, length } => {
                write!(f, "set {set_id} has invalid length {length}")
            }
            ReservedSetId(id) => write!(f, "reserved set id {id}"),
            ReservedTemplateId(id) => write!(f, "reserved template id {id} (must be >= 256)"),
            EmptyTemplate(id) => write!(f, "template {id} describes zero-length records"),
            TooManyFields { template_id, count, limit } => write!(
                f,
                "template {template_id} has {count} fields, limit is {limit}"
            ),
            ZeroLengthFields {
                template_id,
                count,
                limit,
            } => write!(
                f,
                "template {template_id} has {count} zero-length fields, limit is {limit}"
            ),
            TemplateTruncated(id) => write!(f, "template {id} runs past the end of its set"),
            BadOptionsLengths { template_id, scope_len, option_len } => write!(
                f,
                "options template {template_id}: scope length {scope_len} / option length {option_len} not multiples of 4"
            ),
            BadScopeCount { template_id, scope_count, field_count } => write!(
                f,
                "options template {template_id}: scope field count {scope_count} invalid for {field_count} fields"
            ),
            TemplateLimit { template_id, limit } => write!(
                f,
                "template {template_id} not stored: {limit} templates per exporter/domain reached"
            ),
            ScopeLimit { limit } => write!(f, "exporter/domain limit {limit} reached"),
            RecordTruncated { template_id } => {
                write!(f, "record of template {template_id} runs past the end of its set")
            }
            CountMismatch { count, present } => {
                write!(f, "header count {count} but only {present} records present")
            }
            TrailingBytes(n) => write!(f, "{n} non-zero bytes after the last set"),
            NonZeroPadding { template_id, length } => write!(
                f,
                "{length} non-zero padding bytes after the last record of a set of template {template_id}"
            ),
            ListTooDeep { limit } => write!(f, "structured data nested deeper than {limit}"),
            BadList => write!(f, "malformed structured data list"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte offset {}", self.kind, self.offset)
    }
}

impl std::error::Error for Error {}
