//! File formats of stored flows (STUB being written: the interface below is fixed).
//!
//! - [`Format::Original`]: the Python original's collector layout, one JSON line
//!   per export datagram: `{"<receive ts>": {"client": [host, port], "header": {...}, "flows": [...]}}`.
//! - [`Format::Flows`]: one flat JSON object per flow record.

use std::net::SocketAddr;

use netflow::{DataSet, Header};

/// Which layout lines are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Original,
    Flows,
}

/// One decoded export datagram (or the sets of one that waited for a template),
/// as a sink receives it.
#[derive(Debug, Clone, Copy)]
pub struct Export<'a> {
    /// When the datagram was received, seconds since the Unix epoch.
    pub received: f64,
    /// Who sent it.
    pub exporter: SocketAddr,
    /// Its header.
    pub header: &'a Header,
    /// Its data sets (flows and options), in wire order.
    pub sets: &'a [DataSet<'a>],
}

/// Append the line(s) for `export` in `format` to `out`, each ending in `\n`.
/// Returns the number of lines written.
pub fn write_export(format: Format, out: &mut Vec<u8>, export: &Export<'_>) -> usize {
    let _ = (format, out, export);
    0
}
