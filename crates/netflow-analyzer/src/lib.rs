//! Analysis of stored flows (files written by `netflow collector` or the Python
//! original's collector).
//!
//! - [`flow`]: one normalized [`Flow`] per stored record, any layout and
//!   version, read by a streaming [`FlowReader`].

pub mod flow;
pub mod report;

pub use flow::{Entry, Flow, FlowReader, HeaderInfo, ReadStats, TimeBase};
