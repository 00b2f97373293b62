//! File formats of stored flows.
//!
//! - [`Format::Original`]: the Python original's collector layout, one JSON line
//!   per export datagram: `{"<receive ts>": {"client": [host, port], "header": {...}, "flows": [...]}}`,
//!   readable unchanged by the original's analyzer (`python3 -m netflow.analyzer`).
//!   See [`original`] for the value rules and the documented differences.
//! - [`Format::Flows`]: one flat JSON object per flow record (see [`flows`]).
//!
//! - [`columns`]: a binary block-columnar file of normalized records
//!   (`--format columns`), written with [`columns::ColumnWriter`] and read
//!   with [`columns::ColumnFile`]; not lines, so not a [`Format`].
//!
//! [`read_lines`] reads such files back, plain or gzip (multi-member, as the
//! original writes them: one gzip member per line).

pub mod columns;
pub mod flows;
pub mod original;
pub mod pyjson;
pub mod read;

use std::net::SocketAddr;

use netflow::{DataSet, Header};

pub use pyjson::py_float_repr;
pub use read::{lines_from, read_lines, Lines};

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
///
/// [`Format::Original`] writes exactly one line per export, also when it holds
/// no data record (`"flows": []`, as the original does for a template-only
/// datagram). [`Format::Flows`] writes one line per record (none for zero records).
pub fn write_export(format: Format, out: &mut Vec<u8>, export: &Export<'_>) -> usize {
    match format {
        Format::Original => {
            original::write_line(out, export);
            1
        }
        Format::Flows => flows::write_records(out, export),
    }
}
