//! # netflow
//!
//! Zero-copy decoding of NetFlow v1, v5, v7, v9 (RFC 3954) and IPFIX
//! (RFC 7011, with RFC 7012 types, RFC 6313 structured data and RFC 5103
//! reverse elements) export packets. No I/O, no async.
//!
//! ```
//! use netflow::{parse_packet, TemplateCache, Value};
//!
//! // A NetFlow v5 packet with one flow 10.0.0.1 -> 10.0.0.2.
//! let mut bytes = vec![0u8; 24 + 48];
//! bytes[1] = 5; // version
//! bytes[3] = 1; // count
//! bytes[24..28].copy_from_slice(&[10, 0, 0, 1]);
//! bytes[28..32].copy_from_slice(&[10, 0, 0, 2]);
//! let mut cache = TemplateCache::new();
//! let packet = parse_packet(&bytes, &mut cache).unwrap();
//! let flow = packet.records().next().unwrap();
//! assert_eq!(flow.get("IPV4_DST_ADDR"), Some(Value::Ipv4([10, 0, 0, 2].into())));
//! ```
//!
//! Template state lives in a [`TemplateCache`] keyed by exporter, protocol,
//! observation domain and template ID. [`Decoder`] adds a bounded buffer for
//! data that arrives before its template and replays it when the template comes.

pub mod cache;
pub mod encode;
mod error;
pub mod list;
pub mod owned;
pub mod packet;
pub mod pending;
pub mod record;
pub mod registry;
pub mod sampling;
pub mod sequence;
#[cfg(feature = "serde")]
pub mod serde_impl;
pub mod template;
pub mod value;
pub mod wire;

pub use cache::{
    ExporterId, Limits, ScopeKey, TemplateCache, TemplateChange, TemplateKey, TemplateScope,
};
pub use error::{Error, ErrorKind};
pub use owned::{OwnedBlock, OwnedField, OwnedList, OwnedListContent, OwnedRecord, OwnedValue};
pub use packet::{
    parse_packet, parse_packet_from, visit_packet, visit_packet_from, ExportPacket, Header,
    MissingSet, TemplateEvent, VisitedPacket,
};
pub use pending::{
    Decoded, Decoder, PendingBuffer, PendingLimits, PendingSet, ReplayedSet, Visited,
};
pub use record::{Column, Columns, DataSet, DataSetView, Record};
pub use sampling::{SamplingRate, SamplingTable};
pub use sequence::{Observation, SequenceTracker, StreamCounters, StreamKey, TrackerLimits};
pub use template::{FieldId, FieldSpec, Template, TemplateField, TemplateKind};
pub use value::{NtpTimestamp, Value};

/// Export protocol (version) of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Protocol {
    V1,
    V5,
    V7,
    V9,
    Ipfix,
}

impl Protocol {
    /// Version number on the wire.
    pub fn version(self) -> u16 {
        match self {
            Protocol::V1 => 1,
            Protocol::V5 => 5,
            Protocol::V7 => 7,
            Protocol::V9 => 9,
            Protocol::Ipfix => 10,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V1 => "v1",
            Protocol::V5 => "v5",
            Protocol::V7 => "v7",
            Protocol::V9 => "v9",
            Protocol::Ipfix => "ipfix",
        }
    }
}

/// Decode hex text (upper or lower case; whitespace anywhere is ignored) to bytes.
pub fn decode_hex(text: &str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut hi: Option<u8> = None;
    for (i, c) in text.bytes().enumerate() {
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            c if c.is_ascii_whitespace() => continue,
            _ => return Err(Error::new(ErrorKind::InvalidHex, i)),
        };
        match hi.take() {
            None => hi = Some(v),
            Some(h) => out.push(h << 4 | v),
        }
    }
    if hi.is_some() {
        return Err(Error::new(ErrorKind::InvalidHex, text.len()));
    }
    Ok(out)
}
