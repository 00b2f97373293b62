//! Encoding export packets of every version: the inverse of
//! [`crate::parse_packet`].
//!
//! What parsing yields, encoding takes: header representations
//! ([`V5Header`](crate::wire::v5::V5Header), [`IpfixHeader`](crate::wire::ipfix::IpfixHeader), ...),
//! [`Template`]s (as compiled by [`Template::compile`] or held by a
//! [`crate::TemplateCache`]) and records as [`OwnedRecord`](crate::OwnedRecord)s
//! ([`crate::Record::to_owned_record`]) or plain `&[OwnedValue]` in template
//! order. A parsed packet re-emitted from its representation gives the same
//! bytes, with the exceptions listed below.
//!
//! * NetFlow v1/v5/v7: [`emit_v1`], [`emit_v5`], [`emit_v7`] from typed
//!   [`FixedFlow`]s (the fast path for generators), or [`emit_fixed`] from
//!   [`OwnedRecord`](crate::OwnedRecord)s in the fixed layout order.
//! * NetFlow v9 and IPFIX: a [`MessageBuilder`] with template sets, options
//!   template sets, IPFIX withdrawals and data sets; it groups consecutive
//!   records of one kind into one set and fills the IPFIX message length or
//!   the v9 record count in [`MessageBuilder::finish`].
//!
//! Everything appends to a caller's `Vec<u8>`, so one buffer serves millions
//! of packets; encoding a record allocates nothing.
//!
//! # Value encoding
//!
//! Per field, from the template field's [`ValueKind`]
//! and length (RFC 7011 section 6):
//!
//! | field kind | value | on the wire |
//! | --- | --- | --- |
//! | unsigned, dateTimeSeconds/Milliseconds (1..=8 bytes) | `Unsigned` / `DateTime*` | big-endian, reduced size (section 6.2): error if it does not fit |
//! | signed (1..=8) | `Signed` | two's complement, reduced size: error if it does not fit |
//! | float32, float64 (8, or 4 reduced) | `Float` | IEEE 754; reduced to 4 bytes it is rounded to float32 (error if a finite value overflows) |
//! | boolean | `Bool` | 1 true, 2 false |
//! | macAddress, ipv4Address, ipv6Address | `Mac`, `Ipv4`, `Ipv6` | as is |
//! | string / octetArray, fixed length | `String` or `Bytes` | padded with zeros; error if longer |
//! | dateTimeMicro/Nanoseconds | `DateTimeMicroseconds` / `DateTimeNanoseconds` | NTP timestamp as decoded |
//! | basicList, subTemplateList, subTemplateMultiList | `List` | RFC 6313 section 4.5; sub-templates from a [`TemplateLookup`] |
//! | any kind | `Bytes` of exactly the field length | the bytes as they are (what the decoder gives for values it cannot type, e.g. a boolean 0) |
//!
//! Variable-length fields (length 65535) take `String`, `Bytes` or `List`
//! values with the 1-byte length prefix below 255 bytes and the 3-byte form
//! otherwise (RFC 7011 section 7), or the 3-byte form whenever
//! [`OwnedField::long_length`](crate::OwnedField::long_length) (or
//! [`OwnedListContent::Basic::long_lengths`](crate::owned::OwnedListContent::Basic)
//! for list elements, or [`MessageBuilder::force_long_lengths`]) says so.
//! Padding fields (IPFIX paddingOctets, the pad bytes of v1/v5/v7 records)
//! take no value and are written as zeros.
//!
//! # What does not round-trip byte for byte
//!
//! The decoded representation drops a few things a packet can carry; such
//! packets are not canonical and re-emit differently:
//! * non-zero bytes in padding fields, set padding or v1/v5/v7 pad bytes (re-emitted as zeros),
//!   and zero bytes after the last set (emit writes none);
//! * trailing NUL bytes of a variable-length string (the decoder trims them;
//!   in fixed-length strings they come back as padding);
//! * the enterprise bit set with enterprise number 0, and a basicList mixing
//!   both length forms for elements shorter than 255 bytes;
//! * a v9 `count` or IPFIX `length` that disagrees with the content (emit
//!   computes them).

mod fixed;
mod message;
mod value;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;

use crate::cache::TemplateScope;
use crate::template::{FieldId, Template};
use crate::value::ValueKind;

pub use fixed::{emit_fixed, emit_v1, emit_v5, emit_v7, FixedFlow};
pub use message::{Checkpoint, MessageBuilder};
pub use value::{encode_record, encode_value, encode_values};

/// Largest export packet: the IPFIX message length field is 16 bits, and a
/// UDP datagram cannot carry more.
pub const MAX_MESSAGE_LEN: usize = 65_535;

/// Nesting limit of structured data lists: the decoder's default
/// ([`crate::Limits::max_list_depth`]), beyond which a list would decode as bytes.
pub const MAX_LIST_DEPTH: usize = 8;

/// Why something could not be encoded. Nothing is left half-written: the
/// [`MessageBuilder`] methods and the `emit_*` functions restore the buffer
/// to its length before the call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The value does not fit the field: an integer too large for the
    /// (reduced-size) length, a string or octet array longer than a
    /// fixed-length field, a variable-length value over 65535 bytes, a finite
    /// float64 overflowing float32, `Bytes` of the wrong length.
    ValueTooLarge { field: FieldId, length: u16 },
    /// The value's type cannot encode this field (e.g. `Ipv4` for an
    /// unsigned16 field, a subTemplateList value for a basicList field).
    WrongType { field: FieldId, kind: ValueKind },
    /// A list in a fixed-length field whose encoding has another length.
    LengthMismatch {
        field: FieldId,
        length: u16,
        encoded: usize,
    },
    /// A record with more or fewer values than its template has fields
    /// (padding fields not counted).
    FieldCount {
        template_id: u16,
        expected: usize,
        got: usize,
    },
    /// A sub-template list names a template the [`TemplateLookup`] does not have.
    UnknownTemplate(u16),
    /// Lists nested deeper than [`MAX_LIST_DEPTH`].
    ListTooDeep { limit: usize },
    /// A basicList that cannot be decoded back: elements with a fixed length
    /// of 0, or an element id above 0x7FFF.
    BadListElement { element: FieldId },
    /// The message would be longer than 65535 bytes (or the builder's
    /// [`MessageBuilder::max_len`]).
    MessageTooLong { length: usize, limit: usize },
    /// A set (or subTemplateMultiList block) longer than 65535 bytes.
    SetTooLong { set_id: u16, length: usize },
    /// More records than the header's 16-bit count can say.
    TooManyRecords { count: usize },
    /// A template the decoder would refuse: id below 256, no field, a zero
    /// record length, a bad scope count, an IPFIX field id above 0x7FFF, an
    /// enterprise field in NetFlow v9.
    InvalidTemplate {
        template_id: u16,
        reason: &'static str,
    },
    /// Padding at least as long as the shortest record of the set: the
    /// decoder would read it as a record (RFC 7011 section 3.3.1).
    PaddingTooLong {
        set_id: u16,
        padding: usize,
        min_record_len: usize,
    },
    /// Not possible in this protocol (template withdrawal in NetFlow v9, a
    /// v1/v5/v7 header in a message builder, ...).
    Unsupported(&'static str),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use EncodeError as E;
        let field = |f: &mut fmt::Formatter<'_>, id: &FieldId| {
            if id.enterprise == 0 {
                write!(f, "field {}", id.id)
            } else {
                write!(f, "field {}:{}", id.enterprise, id.id)
            }
        };
        match self {
            E::ValueTooLarge { field: id, length } => {
                field(f, id)?;
                if *length == crate::template::VARIABLE_LENGTH {
                    write!(f, ": value longer than 65535 bytes")
                } else {
                    write!(f, ": value does not fit in {length} bytes")
                }
            }
            E::WrongType { field: id, kind } => {
                field(f, id)?;
                write!(f, ": value of the wrong type for a {kind:?} field")
            }
            E::LengthMismatch {
                field: id,
                length,
                encoded,
            } => {
                field(f, id)?;
                write!(
                    f,
                    ": list encodes to {encoded} bytes, field length is {length}"
                )
            }
            E::FieldCount {
                template_id,
                expected,
                got,
            } => write!(
                f,
                "template {template_id}: {got} values for {expected} fields"
            ),
            E::UnknownTemplate(id) => write!(f, "sub-template {id} is not known"),
            E::ListTooDeep { limit } => write!(f, "lists nested deeper than {limit}"),
            E::BadListElement { element } => {
                write!(f, "basicList element ")?;
                field(f, element)?;
                write!(f, " cannot be encoded")
            }
            E::MessageTooLong { length, limit } => {
                write!(f, "message of {length} bytes exceeds {limit}")
            }
            E::SetTooLong { set_id, length } => {
                write!(f, "set {set_id} of {length} bytes exceeds 65535")
            }
            E::TooManyRecords { count } => write!(f, "{count} records exceed the header count"),
            E::InvalidTemplate {
                template_id,
                reason,
            } => write!(f, "template {template_id}: {reason}"),
            E::PaddingTooLong {
                set_id,
                padding,
                min_record_len,
            } => write!(
                f,
                "set {set_id}: {padding} padding bytes would decode as a record of {min_record_len}"
            ),
            E::Unsupported(what) => write!(f, "unsupported: {what}"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Templates by id, for the records of subTemplateLists and
/// subTemplateMultiLists.
pub trait TemplateLookup {
    fn template(&self, id: u16) -> Option<&Template>;
}

/// The templates of a [`crate::TemplateCache`] scope.
impl TemplateLookup for TemplateScope {
    fn template(&self, id: u16) -> Option<&Template> {
        // peek, not get: encoding with a template is not a use that should keep
        // it from LRU eviction (only decoding data and refreshes are).
        self.peek(id).map(|t| &**t)
    }
}

/// A single template answers for its own id.
impl TemplateLookup for Template {
    fn template(&self, id: u16) -> Option<&Template> {
        (self.id == id).then_some(self)
    }
}

impl TemplateLookup for Vec<Template> {
    fn template(&self, id: u16) -> Option<&Template> {
        self.iter().find(|t| t.id == id)
    }
}

impl TemplateLookup for Vec<Arc<Template>> {
    fn template(&self, id: u16) -> Option<&Template> {
        self.iter().find(|t| t.id == id).map(|t| &**t)
    }
}

impl<const N: usize> TemplateLookup for [Template; N] {
    fn template(&self, id: u16) -> Option<&Template> {
        self.iter().find(|t| t.id == id)
    }
}

impl<S: BuildHasher> TemplateLookup for HashMap<u16, Arc<Template>, S> {
    fn template(&self, id: u16) -> Option<&Template> {
        self.get(&id).map(|t| &**t)
    }
}

impl TemplateLookup for BTreeMap<u16, Arc<Template>> {
    fn template(&self, id: u16) -> Option<&Template> {
        self.get(&id).map(|t| &**t)
    }
}

impl<T: TemplateLookup + ?Sized> TemplateLookup for Arc<T> {
    fn template(&self, id: u16) -> Option<&Template> {
        (**self).template(id)
    }
}
