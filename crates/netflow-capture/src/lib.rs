//! # netflow-capture
//!
//! Reads capture inputs into a stream of UDP datagrams, for feeding NetFlow /
//! IPFIX export packets to a decoder:
//!
//! - **pcap** (any byte order, micro- or nanosecond timestamps) and **pcapng**
//!   (any number of sections and interfaces), detected by their magic numbers;
//!   link types Ethernet (with 802.1Q / 802.1ad VLAN tags), Linux cooked
//!   capture v1 and v2, raw IPv4/IPv6 and BSD loopback; IPv4 and IPv6 (with
//!   extension headers) carrying UDP; fragmented datagrams are reassembled.
//!   Frames that hold no UDP datagram are skipped and counted in [`Stats`].
//! - **hex text**: anything else that is text, one datagram per line as hex
//!   digits (whitespace between them allowed); blank lines and lines starting
//!   with `#` are skipped. Such datagrams come from `0.0.0.0:0` at time 0.
//!
//! ```no_run
//! use netflow_capture::{CaptureReader, Options};
//!
//! let mut reader = CaptureReader::open("exports.pcap".as_ref(), Options::default())?;
//! while let Some(item) = reader.next_datagram() {
//!     match item {
//!         Ok(d) => println!("{} {} -> {}: {} bytes", d.index, d.source, d.destination, d.payload.len()),
//!         Err(e) if !e.is_fatal() => eprintln!("{e}"),
//!         Err(e) => return Err(e),
//!     }
//! }
//! # Ok::<(), netflow_capture::CaptureError>(())
//! ```

mod error;
mod link;
mod reassembly;
mod source;

use core::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;

pub use error::CaptureError;
pub use link::LinkType;

use link::{parse_frame, Parsed, Skip};
use reassembly::Reassembler;
use source::{Frame, HexLine, HexSource, Input, PcapNgSource, PcapSource, Step};

/// One UDP datagram read from an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// 0-based position among the datagrams this reader yielded (plus
    /// [`Options::first_index`]); a hex line that is not hex uses up an index too.
    pub index: u64,
    /// Capture time in milliseconds since the Unix epoch (0 for hex text).
    pub time_ms: u64,
    /// UDP source (the exporter); `0.0.0.0:0` for hex text.
    pub source: SocketAddr,
    /// UDP destination (the collector); `0.0.0.0:0` for hex text.
    pub destination: SocketAddr,
    /// Where it is in the input: the 1-based packet number of a capture (of
    /// the last fragment, if reassembled), or the line number of hex text.
    pub frame: u64,
    /// The UDP payload.
    pub payload: &'a [u8],
}

/// The format of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap,
    PcapNg,
    HexText,
}

impl Format {
    /// The format announced by the first bytes of an input (at least 4 are
    /// needed to recognize a capture), or None if it is not text either.
    pub fn detect(prefix: &[u8]) -> Option<Format> {
        match prefix.get(..4) {
            Some(
                [0xA1, 0xB2, 0xC3, 0xD4]
                | [0xD4, 0xC3, 0xB2, 0xA1]
                | [0xA1, 0xB2, 0x3C, 0x4D]
                | [0x4D, 0x3C, 0xB2, 0xA1],
            ) => Some(Format::Pcap),
            Some([0x0A, 0x0D, 0x0D, 0x0A]) => Some(Format::PcapNg),
            _ if prefix
                .iter()
                .all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace()) =>
            {
                Some(Format::HexText)
            }
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Pcap => "pcap",
            Format::PcapNg => "pcapng",
            Format::HexText => "hex text",
        }
    }
}

/// How to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Keep only UDP datagrams whose source or destination port is this.
    /// Does not apply to hex text.
    pub port: Option<u16>,
    /// The index of the first datagram (to number several inputs as one stream).
    pub first_index: u64,
}

/// What a reader saw and skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames (packets) read from a capture.
    pub frames: u64,
    /// Datagrams yielded.
    pub datagrams: u64,
    /// Frames that are not IPv4/IPv6.
    pub not_ip: u64,
    /// IP packets that are not UDP.
    pub not_udp: u64,
    /// UDP datagrams on other ports than [`Options::port`].
    pub other_port: u64,
    /// Datagrams cut short by the capture's snapshot length.
    pub truncated: u64,
    /// Frames whose IP/UDP headers are invalid.
    pub malformed: u64,
    /// Frames of a link type that is not decoded (pcapng interfaces).
    pub unsupported_link: u64,
    /// IP fragments seen.
    pub fragments: u64,
    /// Datagrams reassembled from fragments.
    pub reassembled: u64,
    /// Fragments of datagrams that never completed (missing pieces, timeout, limits).
    pub fragments_dropped: u64,
    /// Hex text lines that are not hex.
    pub invalid_lines: u64,
}

impl Stats {
    /// Frames or lines that yielded no datagram, for a reason other than the port filter.
    pub fn skipped(&self) -> u64 {
        self.not_ip
            + self.not_udp
            + self.truncated
            + self.malformed
            + self.unsupported_link
            + self.fragments_dropped
    }

    fn count(&mut self, skip: Skip) {
        match skip {
            Skip::NotIp => self.not_ip += 1,
            Skip::NotUdp => self.not_udp += 1,
            Skip::Malformed => self.malformed += 1,
            Skip::Truncated => self.truncated += 1,
            Skip::UnsupportedLink => self.unsupported_link += 1,
        }
    }
}

/// Lists what was skipped, e.g. `3 not UDP, 1 on other ports`; empty if nothing was.
impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [
            (self.not_ip, "not IP"),
            (self.not_udp, "not UDP"),
            (self.other_port, "on other ports"),
            (self.truncated, "cut short by the snapshot length"),
            (self.malformed, "with invalid IP/UDP headers"),
            (self.unsupported_link, "of unsupported link types"),
            (self.fragments_dropped, "IP fragments never completed"),
            (self.invalid_lines, "lines not hex"),
        ];
        let mut first = true;
        for (n, what) in parts {
            if n > 0 {
                if !first {
                    f.write_str(", ")?;
                }
                write!(f, "{n} {what}")?;
                first = false;
            }
        }
        Ok(())
    }
}

enum Inner {
    Pcap(PcapSource),
    PcapNg(PcapNgSource),
    Hex(HexSource),
}

/// Reader state apart from the input.
struct State {
    port: Option<u16>,
    next_index: u64,
    stats: Stats,
    buf: Vec<u8>,
    reasm: Reassembler,
}

/// Where a datagram came from (its payload is in `State::buf`).
struct Meta {
    time_ms: u64,
    source: SocketAddr,
    destination: SocketAddr,
    frame: u64,
}

const UNSPECIFIED: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));

impl State {
    fn accept(
        &mut self,
        frame: &Frame<'_>,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) -> Option<Meta> {
        if let Some(p) = self.port {
            if src.port() != p && dst.port() != p {
                self.stats.other_port += 1;
                return None;
            }
        }
        self.buf.clear();
        self.buf.extend_from_slice(payload);
        Some(Meta {
            time_ms: frame.time_ms,
            source: src,
            destination: dst,
            frame: frame.number,
        })
    }

    fn handle(&mut self, frame: &Frame<'_>) -> Option<Meta> {
        self.stats.frames += 1;
        match parse_frame(frame.link, frame.data) {
            Parsed::Udp { src, dst, payload } => self.accept(frame, src, dst, payload),
            Parsed::Fragment {
                key,
                offset,
                more,
                data,
            } => {
                let whole =
                    self.reasm
                        .add(key, offset, more, data, frame.time_ms, &mut self.stats)?;
                match link::udp(key.src, key.dst, &whole) {
                    Parsed::Udp { src, dst, payload } => self.accept(frame, src, dst, payload),
                    Parsed::Skip(skip) => {
                        self.stats.count(skip);
                        None
                    }
                    Parsed::Fragment { .. } => None,
                }
            }
            Parsed::Skip(skip) => {
                self.stats.count(skip);
                None
            }
        }
    }
}

/// Reads datagrams from one input.
pub struct CaptureReader {
    name: String,
    format: Format,
    inner: Inner,
    state: State,
    done: bool,
}

impl fmt::Debug for CaptureReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureReader")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("stats", &self.state.stats)
            .finish_non_exhaustive()
    }
}

impl CaptureReader {
    /// Open a file; `-` is standard input.
    pub fn open(path: &Path, options: Options) -> Result<CaptureReader, CaptureError> {
        let name = path.display().to_string();
        if path == Path::new("-") {
            return CaptureReader::from_reader(name, io::stdin(), options);
        }
        let file = File::open(path).map_err(|source| CaptureError::Open {
            file: name.clone(),
            source,
        })?;
        CaptureReader::from_reader(name, file, options)
    }

    /// Read from any byte stream; `name` is used in errors.
    pub fn from_reader(
        name: impl Into<String>,
        mut reader: impl Read + 'static,
        options: Options,
    ) -> Result<CaptureReader, CaptureError> {
        let name = name.into();
        let mut prefix = [0u8; 4];
        let mut have = 0;
        while have < prefix.len() {
            match reader.read(&mut prefix[have..]) {
                Ok(0) => break,
                Ok(n) => have += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => return Err(CaptureError::Read { file: name, source }),
            }
        }
        let prefix = prefix[..have].to_vec();
        let Some(format) = Format::detect(&prefix) else {
            return Err(CaptureError::UnknownFormat { file: name });
        };
        let input: Input = Box::new(io::Cursor::new(prefix).chain(reader));
        let inner = match format {
            Format::Pcap => Inner::Pcap(PcapSource::new(&name, input)?),
            Format::PcapNg => Inner::PcapNg(PcapNgSource::new(&name, input)?),
            Format::HexText => Inner::Hex(HexSource::new(input)),
        };
        let state = State {
            port: options.port,
            next_index: options.first_index,
            stats: Stats::default(),
            buf: Vec::with_capacity(65_536),
            reasm: Reassembler::default(),
        };
        Ok(CaptureReader {
            name,
            format,
            inner,
            state,
            done: false,
        })
    }

    /// The input's name as given (`-` for standard input).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// What was read and skipped so far (final once `next_datagram` returned None).
    pub fn stats(&self) -> &Stats {
        &self.state.stats
    }

    /// The index the next datagram will get.
    pub fn next_index(&self) -> u64 {
        self.state.next_index
    }

    fn finish(&mut self) {
        self.done = true;
        self.state.reasm.finish(&mut self.state.stats);
    }

    /// The next datagram; None at the end of the input or after a fatal
    /// error. A non-fatal error ([`CaptureError::is_fatal`]) can be followed
    /// by more datagrams.
    pub fn next_datagram(&mut self) -> Option<Result<Datagram<'_>, CaptureError>> {
        if self.done {
            return None;
        }
        let meta = loop {
            let step = match &mut self.inner {
                Inner::Pcap(s) => s.next(&self.name),
                Inner::PcapNg(s) => s.next(&self.name),
                Inner::Hex(s) => match s.next(&self.name, &mut self.state.buf) {
                    Ok(HexLine::Payload(line)) => {
                        break Meta {
                            time_ms: 0,
                            source: UNSPECIFIED,
                            destination: UNSPECIFIED,
                            frame: line,
                        };
                    }
                    Ok(HexLine::Invalid(line)) => {
                        let index = self.state.next_index;
                        self.state.next_index += 1;
                        self.state.stats.invalid_lines += 1;
                        return Some(Err(CaptureError::InvalidHex {
                            file: self.name.clone(),
                            line,
                            index,
                        }));
                    }
                    Ok(HexLine::End) => Ok(Step::End),
                    Err(e) => Err(e),
                },
            };
            match step {
                Ok(Step::Frame(frame)) => {
                    if let Some(meta) = self.state.handle(&frame) {
                        break meta;
                    }
                }
                Ok(Step::Other) => {}
                Ok(Step::End) => {
                    self.finish();
                    return None;
                }
                Err(e) => {
                    self.finish();
                    return Some(Err(e));
                }
            }
        };
        let index = self.state.next_index;
        self.state.next_index += 1;
        self.state.stats.datagrams += 1;
        Some(Ok(Datagram {
            index,
            time_ms: meta.time_ms,
            source: meta.source,
            destination: meta.destination,
            frame: meta.frame,
            payload: &self.state.buf,
        }))
    }
}

#[cfg(test)]
mod tests;
