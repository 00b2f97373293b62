//! The three input formats: pcap and pcapng (framing by the `pcap-file`
//! crate), and text with one hex payload per line.

use std::borrow::Cow;
use std::io::{self, BufRead, Read};

use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::PcapNgReader;
use pcap_file::{PcapError, TsResolution};

use crate::link::LinkType;
use crate::CaptureError;

/// The input: a boxed byte stream.
pub(crate) type Input = Box<dyn Read>;

/// One captured frame.
pub(crate) struct Frame<'a> {
    /// 1-based packet number in the file.
    pub number: u64,
    pub time_ms: u64,
    pub link: LinkType,
    pub data: &'a [u8],
}

/// What one step of a capture reader found.
pub(crate) enum Step<'a> {
    Frame(Frame<'a>),
    /// A block that holds no packet (pcapng section/interface/statistics/...).
    Other,
    End,
}

/// Map a `pcap-file` error to ours. `packet` is the 1-based number of the
/// packet being read (0 = the file header).
pub(crate) fn pcap_error(file: &str, packet: u64, e: PcapError) -> CaptureError {
    let reason = match e {
        PcapError::IoError(io) if io.kind() == io::ErrorKind::UnexpectedEof => {
            "the file ends in the middle of a record (cut short?)".to_string()
        }
        PcapError::IoError(source) => {
            return CaptureError::Read {
                file: file.to_string(),
                source,
            }
        }
        PcapError::IncompleteBuffer => {
            "the file ends in the middle of a record (cut short?)".to_string()
        }
        other => other.to_string(),
    };
    CaptureError::Corrupt {
        file: file.to_string(),
        packet,
        reason,
    }
}

/// A classic pcap file (any byte order, micro- or nanosecond timestamps).
pub(crate) struct PcapSource {
    reader: PcapReader<Input>,
    link: LinkType,
    nanos: bool,
    packets: u64,
    owned: Vec<u8>,
}

impl PcapSource {
    pub(crate) fn new(file: &str, input: Input) -> Result<PcapSource, CaptureError> {
        let reader = PcapReader::new(input).map_err(|e| pcap_error(file, 0, e))?;
        let header = reader.header();
        let linktype = u32::from(header.datalink);
        let link = LinkType::from_linktype(linktype);
        if !link.is_supported() {
            return Err(CaptureError::UnsupportedLinkType {
                file: file.to_string(),
                linktype: linktype & 0xFFFF,
            });
        }
        let nanos = header.ts_resolution == TsResolution::NanoSecond;
        Ok(PcapSource {
            reader,
            link,
            nanos,
            packets: 0,
            owned: Vec::new(),
        })
    }

    pub(crate) fn next(&mut self, file: &str) -> Result<Step<'_>, CaptureError> {
        // Raw records: pcap-file's checked `next_packet` rejects packets whose
        // original length exceeds the snaplen, which is what a truncated capture holds.
        let raw = match self.reader.next_raw_packet() {
            None => return Ok(Step::End),
            Some(Err(e)) => return Err(pcap_error(file, self.packets + 1, e)),
            Some(Ok(raw)) => raw,
        };
        self.packets += 1;
        let frac_ms = if self.nanos {
            raw.ts_frac / 1_000_000
        } else {
            raw.ts_frac / 1_000
        };
        let time_ms = raw.ts_sec as u64 * 1000 + frac_ms.min(999) as u64;
        let data: &[u8] = match raw.data {
            Cow::Borrowed(b) => b,
            Cow::Owned(v) => {
                self.owned = v;
                &self.owned
            }
        };
        Ok(Step::Frame(Frame {
            number: self.packets,
            time_ms,
            link: self.link,
            data,
        }))
    }
}

/// An interface of a pcapng section.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link: LinkType,
    snaplen: u32,
    /// `if_tsresol`: bit 7 clear = 10^-n seconds, set = 2^-n seconds.
    tsresol: u8,
    /// `if_tsoffset`: seconds added to every timestamp.
    tsoffset: i64,
}

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;

/// A pcapng file: blocks framed by pcap-file, packet and interface blocks
/// read here (pcap-file 2.0 takes EPB timestamps as nanoseconds whatever the
/// interface's resolution says).
pub(crate) struct PcapNgSource {
    reader: PcapNgReader<Input>,
    big_endian: bool,
    interfaces: Vec<Interface>,
    packets: u64,
    last_ms: u64,
}

fn rd16(b: &[u8], at: usize, big: bool) -> Option<u16> {
    let x = [*b.get(at)?, *b.get(at + 1)?];
    Some(if big {
        u16::from_be_bytes(x)
    } else {
        u16::from_le_bytes(x)
    })
}

fn rd32(b: &[u8], at: usize, big: bool) -> Option<u32> {
    let x = [
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ];
    Some(if big {
        u32::from_be_bytes(x)
    } else {
        u32::from_le_bytes(x)
    })
}

fn rd64(b: &[u8], at: usize, big: bool) -> Option<u64> {
    let hi = rd32(b, at, big)? as u64;
    let lo = rd32(b, at + 4, big)? as u64;
    Some(if big { hi << 32 | lo } else { lo << 32 | hi })
}

fn corrupt(file: &str, packet: u64, reason: &str) -> CaptureError {
    CaptureError::Corrupt {
        file: file.to_string(),
        packet,
        reason: reason.to_string(),
    }
}

/// Milliseconds since the epoch of a pcapng timestamp.
fn pcapng_ms(raw: u64, iface: &Interface) -> u64 {
    let exp = (iface.tsresol & 0x7F) as u32;
    let units: Option<u128> = if iface.tsresol & 0x80 == 0 {
        10u128.checked_pow(exp)
    } else {
        2u128.checked_pow(exp)
    };
    let ms = match units {
        Some(u) if u > 0 => (raw as u128 * 1000 / u).min(u64::MAX as u128) as u64,
        _ => 0,
    };
    ms.saturating_add_signed(iface.tsoffset.saturating_mul(1000))
}

impl PcapNgSource {
    pub(crate) fn new(file: &str, input: Input) -> Result<PcapNgSource, CaptureError> {
        let reader = PcapNgReader::new(input).map_err(|e| pcap_error(file, 0, e))?;
        let big_endian = reader.section().endianness == pcap_file::Endianness::Big;
        Ok(PcapNgSource {
            reader,
            big_endian,
            interfaces: Vec::new(),
            packets: 0,
            last_ms: 0,
        })
    }

    pub(crate) fn next(&mut self, file: &str) -> Result<Step<'_>, CaptureError> {
        let block = match self.reader.next_raw_block() {
            None => return Ok(Step::End),
            Some(Err(e)) => return Err(pcap_error(file, self.packets + 1, e)),
            Some(Ok(b)) => b,
        };
        let big = self.big_endian;
        let body: &[u8] = match &block.body {
            Cow::Borrowed(b) => b,
            Cow::Owned(_) => return Err(corrupt(file, self.packets, "unexpected block buffer")),
        };
        match block.type_ {
            SHB => {
                self.big_endian = body.get(..4) == Some(&[0x1A, 0x2B, 0x3C, 0x4D][..]);
                self.interfaces.clear();
                Ok(Step::Other)
            }
            IDB => {
                let (Some(linktype), Some(snaplen)) = (rd16(body, 0, big), rd32(body, 4, big))
                else {
                    return Err(corrupt(
                        file,
                        self.packets,
                        "short interface description block",
                    ));
                };
                let mut iface = Interface {
                    link: LinkType::from_linktype(linktype as u32),
                    snaplen,
                    tsresol: 6,
                    tsoffset: 0,
                };
                let mut pos = 8;
                while let (Some(code), Some(len)) = (rd16(body, pos, big), rd16(body, pos + 2, big))
                {
                    let len = len as usize;
                    let value = body.get(pos + 4..pos + 4 + len).unwrap_or(&[]);
                    match (code, value.len()) {
                        (0, _) => break,
                        (9, 1) => iface.tsresol = value[0],
                        (14, 8) => iface.tsoffset = rd64(value, 0, big).unwrap_or(0) as i64,
                        _ => {}
                    }
                    pos += 4 + len.div_ceil(4) * 4;
                }
                self.interfaces.push(iface);
                Ok(Step::Other)
            }
            EPB | PB => {
                self.packets += 1;
                // EPB: interface u32; PB: interface u16 + drops u16. Then the same layout.
                let iface_id = if block.type_ == EPB {
                    rd32(body, 0, big)
                } else {
                    rd16(body, 0, big).map(u32::from)
                };
                let (Some(iface_id), Some(hi), Some(lo), Some(caplen)) = (
                    iface_id,
                    rd32(body, 4, big),
                    rd32(body, 8, big),
                    rd32(body, 12, big),
                ) else {
                    return Err(corrupt(file, self.packets, "short packet block"));
                };
                let Some(iface) = self.interfaces.get(iface_id as usize).copied() else {
                    return Err(corrupt(
                        file,
                        self.packets,
                        &format!("packet of undeclared interface {iface_id}"),
                    ));
                };
                let Some(data) = body.get(20..20usize.saturating_add(caplen as usize)) else {
                    return Err(corrupt(
                        file,
                        self.packets,
                        "captured length runs past the block",
                    ));
                };
                let time_ms = pcapng_ms((hi as u64) << 32 | lo as u64, &iface);
                self.last_ms = time_ms;
                Ok(Step::Frame(Frame {
                    number: self.packets,
                    time_ms,
                    link: iface.link,
                    data,
                }))
            }
            SPB => {
                self.packets += 1;
                let Some(iface) = self.interfaces.first().copied() else {
                    return Err(corrupt(
                        file,
                        self.packets,
                        "simple packet block without an interface",
                    ));
                };
                let Some(orig) = rd32(body, 0, big) else {
                    return Err(corrupt(file, self.packets, "short simple packet block"));
                };
                let mut caplen = (orig as usize).min(body.len() - 4);
                if iface.snaplen != 0 {
                    caplen = caplen.min(iface.snaplen as usize);
                }
                // No timestamp in a simple packet block: keep the last one seen.
                Ok(Step::Frame(Frame {
                    number: self.packets,
                    time_ms: self.last_ms,
                    link: iface.link,
                    data: &body[4..4 + caplen],
                }))
            }
            _ => Ok(Step::Other),
        }
    }
}

/// Text with one hex payload per line.
pub(crate) struct HexSource {
    reader: Box<dyn BufRead>,
    line: u64,
    text: Vec<u8>,
}

/// What one line of hex text held.
pub(crate) enum HexLine {
    /// Decoded into the output buffer; the line number.
    Payload(u64),
    /// Not hex; the line number.
    Invalid(u64),
    End,
}

impl HexSource {
    pub(crate) fn new(input: Input) -> HexSource {
        HexSource {
            reader: Box::new(io::BufReader::with_capacity(64 * 1024, input)),
            line: 0,
            text: Vec::new(),
        }
    }

    /// The next payload line decoded into `out`; blank and `#` lines are skipped.
    pub(crate) fn next(&mut self, file: &str, out: &mut Vec<u8>) -> Result<HexLine, CaptureError> {
        loop {
            self.text.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.text)
                .map_err(|source| CaptureError::Read {
                    file: file.to_string(),
                    source,
                })?;
            if n == 0 {
                return Ok(HexLine::End);
            }
            self.line += 1;
            let line = self.text.trim_ascii();
            if line.is_empty() || line[0] == b'#' {
                continue;
            }
            return Ok(if decode_hex(line, out) {
                HexLine::Payload(self.line)
            } else {
                HexLine::Invalid(self.line)
            });
        }
    }
}

/// Decode hex digits (either case; whitespace between them ignored) into `out`.
pub(crate) fn decode_hex(text: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    let mut hi: Option<u8> = None;
    for &c in text {
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            c if c.is_ascii_whitespace() => continue,
            _ => return false,
        };
        match hi.take() {
            None => hi = Some(v),
            Some(h) => out.push(h << 4 | v),
        }
    }
    hi.is_none()
}
