//! Analysis of stored flows (files written by `netflow collector` or the Python
//! original's collector).
//!
//! - [`flow`]: one normalized [`Flow`] per stored record, any layout and
//!   version, read by a streaming [`FlowReader`].
//! - [`columns`]: columns files (`--format columns`) as flows, and `top`'s
//!   parallel column scan of them.
//! - [`table`]: the Python original's connection table (`python3 -m netflow.analyzer`).
//! - [`dns`]: reverse DNS with bounded concurrency, timeouts and a cache.
//! - [`services`]: port -> service name from the system's services database.
//! - [`top`]: top-N talkers with filters (streaming aggregation).

pub mod columns;
pub mod dns;
pub mod flow;
pub mod progress;
pub mod report;
pub mod services;
pub mod table;
pub mod top;

pub use flow::{Entry, Flow, FlowReader, HeaderInfo, ReadStats, TimeBase};
