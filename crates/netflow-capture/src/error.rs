//! Errors of reading a capture input. Each names the input; those found in
//! the middle of a capture also name the packet (1-based, as Wireshark counts).

use core::fmt;
use std::io;

/// An input that cannot be read, or a part of it that cannot be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum CaptureError {
    /// The file cannot be opened.
    Open { file: String, source: io::Error },
    /// Reading failed (I/O error).
    Read { file: String, source: io::Error },
    /// Neither pcap, pcapng nor hex text.
    UnknownFormat { file: String },
    /// A pcap file whose link type is not decoded (LINKTYPE_ value).
    UnsupportedLinkType { file: String, linktype: u32 },
    /// The capture is corrupt at (or cut short in) the given packet.
    Corrupt {
        file: String,
        packet: u64,
        reason: String,
    },
    /// A line of a hex text input that is not hex. Not fatal: reading goes on
    /// with the next line; the line used up datagram index `index`.
    InvalidHex { file: String, line: u64, index: u64 },
}

impl CaptureError {
    /// False only for errors after which reading the same input goes on.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, CaptureError::InvalidHex { .. })
    }

    /// The input's name (`-` for standard input).
    pub fn file(&self) -> &str {
        match self {
            CaptureError::Open { file, .. }
            | CaptureError::Read { file, .. }
            | CaptureError::UnknownFormat { file }
            | CaptureError::UnsupportedLinkType { file, .. }
            | CaptureError::Corrupt { file, .. }
            | CaptureError::InvalidHex { file, .. } => file,
        }
    }

    /// The datagram index a non-fatal error used up.
    pub fn datagram_index(&self) -> Option<u64> {
        match self {
            CaptureError::InvalidHex { index, .. } => Some(*index),
            _ => None,
        }
    }
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::Open { file, source } => write!(f, "{file}: cannot open: {source}"),
            CaptureError::Read { file, source } => write!(f, "{file}: cannot read: {source}"),
            CaptureError::UnknownFormat { file } => {
                write!(f, "{file}: not a pcap, pcapng or hex text file")
            }
            CaptureError::UnsupportedLinkType { file, linktype } => {
                write!(f, "{file}: unsupported link type {linktype}")
            }
            CaptureError::Corrupt {
                file,
                packet: 0,
                reason,
            } => {
                write!(f, "{file}: corrupt capture file header: {reason}")
            }
            CaptureError::Corrupt {
                file,
                packet,
                reason,
            } => {
                write!(f, "{file}: corrupt capture at packet {packet}: {reason}")
            }
            CaptureError::InvalidHex { file, line, .. } => {
                write!(f, "{file}: line {line}: invalid hex text")
            }
        }
    }
}

impl std::error::Error for CaptureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CaptureError::Open { source, .. } | CaptureError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}
