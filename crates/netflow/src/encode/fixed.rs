//! NetFlow v1, v5 and v7 packets: a header and fixed-layout flow records.

use std::net::Ipv4Addr;

use super::value::{record_into, Ctx, Source};
use super::{EncodeError, MAX_MESSAGE_LEN};
use crate::packet::{fixed_record_template, Header};
use crate::wire::{v1, v5, v7};
use crate::{OwnedRecord, Protocol};

/// One flow of a NetFlow v1, v5 or v7 record, typed. Fields a version does
/// not have are ignored by that version's encoder (v1 has no AS numbers or
/// masks; only v7 has `flags1`, `flags2` and `router_sc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FixedFlow {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub next_hop: Ipv4Addr,
    /// SNMP index of the input / output interface.
    pub input: u16,
    pub output: u16,
    pub packets: u32,
    pub octets: u32,
    /// SysUptime (ms) at the first and last packet of the flow.
    pub first: u32,
    pub last: u32,
    pub src_port: u16,
    pub dst_port: u16,
    pub tcp_flags: u8,
    pub protocol: u8,
    pub tos: u8,
    pub src_as: u16,
    pub dst_as: u16,
    pub src_mask: u8,
    pub dst_mask: u8,
    /// v7: flags of invalid fields.
    pub flags1: u8,
    pub flags2: u16,
    /// v7: router bypassed by the switch shortcut.
    pub router_sc: Ipv4Addr,
}

impl Default for FixedFlow {
    fn default() -> Self {
        FixedFlow {
            src_addr: Ipv4Addr::UNSPECIFIED,
            dst_addr: Ipv4Addr::UNSPECIFIED,
            next_hop: Ipv4Addr::UNSPECIFIED,
            input: 0,
            output: 0,
            packets: 0,
            octets: 0,
            first: 0,
            last: 0,
            src_port: 0,
            dst_port: 0,
            tcp_flags: 0,
            protocol: 0,
            tos: 0,
            src_as: 0,
            dst_as: 0,
            src_mask: 0,
            dst_mask: 0,
            flags1: 0,
            flags2: 0,
            router_sc: Ipv4Addr::UNSPECIFIED,
        }
    }
}

impl FixedFlow {
    /// The first 36 bytes, common to v1, v5 and v7 (up to the destination port).
    #[inline]
    fn common(&self, r: &mut [u8]) {
        r[0..4].copy_from_slice(&self.src_addr.octets());
        r[4..8].copy_from_slice(&self.dst_addr.octets());
        r[8..12].copy_from_slice(&self.next_hop.octets());
        r[12..14].copy_from_slice(&self.input.to_be_bytes());
        r[14..16].copy_from_slice(&self.output.to_be_bytes());
        r[16..20].copy_from_slice(&self.packets.to_be_bytes());
        r[20..24].copy_from_slice(&self.octets.to_be_bytes());
        r[24..28].copy_from_slice(&self.first.to_be_bytes());
        r[28..32].copy_from_slice(&self.last.to_be_bytes());
        r[32..34].copy_from_slice(&self.src_port.to_be_bytes());
        r[34..36].copy_from_slice(&self.dst_port.to_be_bytes());
    }

    /// Bytes 36.. of v5 and v7 records (v5: pad1 = `flags1` is written as 0).
    #[inline]
    fn v5_tail(&self, r: &mut [u8], flags1: u8, flags2: u16) {
        r[36] = flags1;
        r[37] = self.tcp_flags;
        r[38] = self.protocol;
        r[39] = self.tos;
        r[40..42].copy_from_slice(&self.src_as.to_be_bytes());
        r[42..44].copy_from_slice(&self.dst_as.to_be_bytes());
        r[44] = self.src_mask;
        r[45] = self.dst_mask;
        r[46..48].copy_from_slice(&flags2.to_be_bytes());
    }
}

/// Reserve a header and `n` records of `rlen` bytes, zeroed; returns the start.
fn reserve(out: &mut Vec<u8>, hlen: usize, rlen: usize, n: usize) -> Result<usize, EncodeError> {
    let length = hlen + rlen * n;
    if n > u16::MAX as usize {
        return Err(EncodeError::TooManyRecords { count: n });
    }
    if length > MAX_MESSAGE_LEN {
        return Err(EncodeError::MessageTooLong {
            length,
            limit: MAX_MESSAGE_LEN,
        });
    }
    let start = out.len();
    out.resize(start + length, 0);
    Ok(start)
}

/// Append a NetFlow v1 packet (RFC-less Cisco format: 16-byte header, 48-byte
/// records). `version` and `count` are set from the flows. Returns the
/// packet length.
pub fn emit_v1(
    header: &v1::V1Header,
    flows: &[FixedFlow],
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let (hl, rl) = (v1::V1Header::LEN, v1::RECORD_LEN);
    let start = reserve(out, hl, rl, flows.len())?;
    let h = v1::V1Header {
        version: 1,
        count: flows.len() as u16,
        ..*header
    };
    h.emit(&mut out[start..]);
    for (f, r) in flows.iter().zip(out[start + hl..].chunks_exact_mut(rl)) {
        f.common(r);
        r[38] = f.protocol;
        r[39] = f.tos;
        r[40] = f.tcp_flags;
    }
    Ok(hl + rl * flows.len())
}

/// Append a NetFlow v5 packet (24-byte header, 48-byte records). `version`
/// and `count` are set from the flows. Returns the packet length.
pub fn emit_v5(
    header: &v5::V5Header,
    flows: &[FixedFlow],
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let (hl, rl) = (v5::V5Header::LEN, v5::RECORD_LEN);
    let start = reserve(out, hl, rl, flows.len())?;
    let h = v5::V5Header {
        version: 5,
        count: flows.len() as u16,
        ..*header
    };
    h.emit(&mut out[start..]);
    for (f, r) in flows.iter().zip(out[start + hl..].chunks_exact_mut(rl)) {
        f.common(r);
        f.v5_tail(r, 0, 0);
    }
    Ok(hl + rl * flows.len())
}

/// Append a NetFlow v7 packet (24-byte header, 52-byte records). `version`
/// and `count` are set from the flows. Returns the packet length.
pub fn emit_v7(
    header: &v7::V7Header,
    flows: &[FixedFlow],
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let (hl, rl) = (v7::V7Header::LEN, v7::RECORD_LEN);
    let start = reserve(out, hl, rl, flows.len())?;
    let h = v7::V7Header {
        version: 7,
        count: flows.len() as u16,
        ..*header
    };
    h.emit(&mut out[start..]);
    for (f, r) in flows.iter().zip(out[start + hl..].chunks_exact_mut(rl)) {
        f.common(r);
        f.v5_tail(r, f.flags1, f.flags2);
        r[48..52].copy_from_slice(&f.router_sc.octets());
    }
    Ok(hl + rl * flows.len())
}

/// Append a v1, v5 or v7 packet from records as the decoder gives them
/// ([`crate::Record::to_owned_record`]: the fields of the fixed layout in
/// order, pad bytes left out; they are written as zeros). `version` and
/// `count` are set from the records. Returns the packet length; on error
/// `out` is left as it was.
pub fn emit_fixed(
    header: &Header,
    records: &[OwnedRecord],
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let n = records.len();
    let (protocol, rl) = match header {
        Header::V1(_) => (Protocol::V1, v1::RECORD_LEN),
        Header::V5(_) => (Protocol::V5, v5::RECORD_LEN),
        Header::V7(_) => (Protocol::V7, v7::RECORD_LEN),
        _ => {
            return Err(EncodeError::Unsupported(
                "emit_fixed takes a v1, v5 or v7 header; use MessageBuilder",
            ))
        }
    };
    let count = u16::try_from(n).map_err(|_| EncodeError::TooManyRecords { count: n })?;
    let start = out.len();
    match header {
        Header::V1(h) => out.extend_from_slice(
            &v1::V1Header {
                version: 1,
                count,
                ..*h
            }
            .to_bytes(),
        ),
        Header::V5(h) => out.extend_from_slice(
            &v5::V5Header {
                version: 5,
                count,
                ..*h
            }
            .to_bytes(),
        ),
        Header::V7(h) => out.extend_from_slice(
            &v7::V7Header {
                version: 7,
                count,
                ..*h
            }
            .to_bytes(),
        ),
        _ => {}
    }
    let length = out.len() - start + rl * n;
    if length > MAX_MESSAGE_LEN {
        out.truncate(start);
        return Err(EncodeError::MessageTooLong {
            length,
            limit: MAX_MESSAGE_LEN,
        });
    }
    let template =
        fixed_record_template(protocol).ok_or(EncodeError::Unsupported("fixed layout"))?;
    for r in records {
        if let Err(e) = record_into(out, template, Source::Fields(&r.fields), Ctx::default(), 0) {
            out.truncate(start);
            return Err(e);
        }
    }
    Ok(length)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_packet, TemplateCache};

    #[test]
    fn v5_packet_matches_hand_written_bytes() {
        let header = v5::V5Header {
            uptime: 227_747,
            timestamp: 1_585_497_478,
            timestamp_nano: 581_262_000,
            sequence: 9,
            engine_type: 1,
            engine_id: 2,
            sampling_interval: 0x4064,
            ..Default::default()
        };
        let flow = FixedFlow {
            src_addr: [10, 0, 0, 1].into(),
            dst_addr: [10, 0, 0, 2].into(),
            next_hop: [10, 0, 0, 254].into(),
            input: 3,
            output: 4,
            packets: 5,
            octets: 1500,
            first: 1000,
            last: 2000,
            src_port: 443,
            dst_port: 51000,
            tcp_flags: 0x1b,
            protocol: 6,
            tos: 0x10,
            src_as: 64512,
            dst_as: 64513,
            src_mask: 24,
            dst_mask: 16,
            flags1: 0xff, // not in v5: written as pad zero
            ..Default::default()
        };
        #[rustfmt::skip]
        let expected: Vec<u8> = vec![
            // header: version 5, count 1, uptime, secs, nsecs, sequence, engine 1/2, sampling
            0x00, 0x05, 0x00, 0x01, 0x00, 0x03, 0x79, 0xa3,
            0x5e, 0x80, 0xc5, 0x86, 0x22, 0xa5, 0x5a, 0xb0,
            0x00, 0x00, 0x00, 0x09, 0x01, 0x02, 0x40, 0x64,
            // record: srcaddr, dstaddr, nexthop
            10, 0, 0, 1, 10, 0, 0, 2, 10, 0, 0, 254,
            // input 3, output 4, dPkts 5, dOctets 1500
            0, 3, 0, 4, 0, 0, 0, 5, 0, 0, 0x05, 0xdc,
            // first 1000, last 2000, srcport 443, dstport 51000
            0, 0, 0x03, 0xe8, 0, 0, 0x07, 0xd0, 0x01, 0xbb, 0xc7, 0x38,
            // pad1, tcp_flags, prot, tos, src_as, dst_as, src_mask, dst_mask, pad2
            0, 0x1b, 6, 0x10, 0xfc, 0x00, 0xfc, 0x01, 24, 16, 0, 0,
        ];
        let mut out = vec![];
        assert_eq!(emit_v5(&header, &[flow], &mut out).unwrap(), 72);
        assert_eq!(out, expected);
        // The same packet from the decoder's records.
        let p = parse_packet(&out, &mut TemplateCache::new()).unwrap();
        assert!(p.errors.is_empty());
        let recs: Vec<_> = p.records().map(|r| r.to_owned_record()).collect();
        let mut again = vec![0xee];
        emit_fixed(&p.header, &recs, &mut again).unwrap();
        assert_eq!(&again[1..], &expected[..]);
    }

    #[test]
    fn v1_and_v7_layouts() {
        let flow = FixedFlow {
            src_addr: [1, 2, 3, 4].into(),
            protocol: 17,
            tos: 3,
            tcp_flags: 2,
            src_as: 7,
            flags1: 0x11,
            flags2: 0x2233,
            router_sc: [5, 6, 7, 8].into(),
            ..Default::default()
        };
        let mut out = Vec::new();
        emit_v1(&v1::V1Header::default(), &[flow, flow], &mut out).unwrap();
        assert_eq!(out.len(), 16 + 2 * 48);
        assert_eq!(&out[..4], &[0, 1, 0, 2]);
        let r = &out[16..64];
        assert_eq!(&r[36..48], &[0, 0, 17, 3, 2, 0, 0, 0, 0, 0, 0, 0]);
        out.clear();
        emit_v7(&v7::V7Header::default(), &[flow], &mut out).unwrap();
        let r = &out[24..];
        assert_eq!(
            &r[36..52],
            &[0x11, 2, 17, 3, 0, 7, 0, 0, 0, 0, 0x22, 0x33, 5, 6, 7, 8]
        );
        let p = parse_packet(&out, &mut TemplateCache::new()).unwrap();
        let rec = p.records().next().unwrap().to_owned_record();
        assert_eq!(
            rec.get("ROUTER_SC"),
            Some(&crate::OwnedValue::Ipv4([5, 6, 7, 8].into()))
        );
    }

    #[test]
    fn too_many_records() {
        let flows = vec![FixedFlow::default(); 1400];
        let mut out = vec![1];
        assert!(matches!(
            emit_v5(&v5::V5Header::default(), &flows, &mut out),
            Err(EncodeError::MessageTooLong { .. })
        ));
        assert_eq!(out, [1]);
    }
}
