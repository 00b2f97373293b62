//! The columns format: every record of the real exporter captures stored
//! and read back equal to its `--format flows` line (the independent
//! layout), and damaged, cut and appended-to files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use netflow::{Decoder, ExporterId};
use netflow_store::columns::{
    encode_block, file_header, footer, open_for_append, Batch, BatchBuilder, BlockInfo, Column,
    ColumnFile, ColumnWriter,
};
use netflow_store::{write_export, Export, Format};
use serde_json::Value as Json;

fn captures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/captures");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "pcap")
                && p.file_name().is_some_and(|n| n != "input-traffic.pcap")
        })
        .collect();
    v.sort();
    assert!(v.len() >= 10, "{v:?}");
    v
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("netflow-columns");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Decode a capture; per datagram, the flows-layout lines and a batch of rows.
fn decode_capture(path: &Path) -> (Vec<Json>, Vec<Batch>) {
    let mut reader = netflow_capture::CaptureReader::open(path, Default::default()).unwrap();
    let mut decoder = Decoder::default();
    let mut builder = BatchBuilder::new();
    let mut lines = Vec::new();
    let mut batches = Vec::new();
    while let Some(d) = reader.next_datagram() {
        let d = d.unwrap();
        let Ok(decoded) = decoder.decode(ExporterId(d.source), d.payload, d.index, d.time_ms)
        else {
            continue;
        };
        let p = &decoded.packet;
        let export = Export {
            received: d.time_ms as f64 / 1000.0 + 0.000123,
            exporter: d.source,
            header: &p.header,
            sets: &p.data_sets,
        };
        let mut out = Vec::new();
        write_export(Format::Flows, &mut out, &export);
        let n = builder.add_export(&export);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), n, "{}", path.display());
        for l in text.lines() {
            lines.push(serde_json::from_str(l).unwrap());
        }
        // A block every 3 datagrams.
        if d.index % 3 == 2 {
            batches.push(builder.take());
        }
    }
    batches.push(builder.take());
    (lines, batches)
}

#[test]
fn every_capture_record_comes_back_as_its_flows_line() {
    let mut total = 0;
    for cap in captures() {
        let (lines, batches) = decode_capture(&cap);
        let path = tmp(&format!(
            "{}.nfcol",
            cap.file_stem().unwrap().to_string_lossy()
        ));
        let file = std::fs::File::create(&path).unwrap();
        let mut w = ColumnWriter::new(file).unwrap();
        for b in &batches {
            w.write_block(b).unwrap();
        }
        w.finish().unwrap();

        let f = ColumnFile::open(&path).unwrap();
        assert!(f.problems().is_empty(), "{:?}", f.problems());
        assert!(f.is_complete());
        assert_eq!(f.rows(), lines.len() as u64, "{}", cap.display());
        let mut expect = lines.iter();
        for i in 0..f.block_count() {
            let b = f.read_block(i, Column::ALL).unwrap();
            for row in 0..b.rows() {
                let want = expect.next().unwrap();
                let ctx = format!("{} row {row} of block {i}: {want}", cap.display());
                assert_eq!(
                    Json::from(b.received(row).unwrap()),
                    want["received"],
                    "{ctx}"
                );
                let exporter: SocketAddr = want["exporter"].as_str().unwrap().parse().unwrap();
                assert_eq!(b.exporter(row), Some(exporter), "{ctx}");
                for (c, key) in [
                    (Column::Version, "version"),
                    (Column::Domain, "domain"),
                    (Column::TemplateId, "template_id"),
                    (Column::ExportTime, "export_time"),
                    (Column::Sequence, "sequence"),
                ] {
                    assert_eq!(
                        b.u64(c, row).map_or(Json::Null, Json::from),
                        want[key],
                        "{ctx}: {key}"
                    );
                }
                let options = b.flags(row) & netflow_store::columns::flags::OPTIONS != 0;
                assert_eq!(Json::from(options), want["options"], "{ctx}");
                assert_eq!(
                    Json::Object(b.record_fields(row)),
                    want["fields"],
                    "{ctx}: fields"
                );
                total += 1;
            }
        }
        assert!(expect.next().is_none());
    }
    assert!(total > 3000, "{total} records");
}

/// Reading blocks into one reused batch gives what fresh reads give, whatever
/// columns each read asks for.
#[test]
fn reused_batch_reads_equal_fresh_reads() {
    let cap = captures()
        .into_iter()
        .find(|p| p.ends_with("pmacct-v9.pcap"))
        .unwrap();
    let (_, mut batches) = decode_capture(&cap);
    // Large blocks of every capture's records, where columns have nulls
    // (v5 beside v9 and IPFIX, options records) and still compress, read
    // before and between the small ones.
    let mut mixed = Batch::new();
    for c in captures() {
        for b in decode_capture(&c).1 {
            mixed.append(&b);
        }
    }
    batches.insert(0, mixed.clone());
    batches.insert(2, mixed);
    let path = tmp("reuse.nfcol");
    let mut w = ColumnWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    for b in &batches {
        w.write_block(b).unwrap();
    }
    w.finish().unwrap();
    let f = ColumnFile::open(&path).unwrap();
    assert!(f.block_count() >= 3, "{}", f.block_count());
    let sets: [&[Column]; 3] = [
        Column::ALL,
        &[Column::Flags, Column::SrcAddr, Column::Bytes],
        &[Column::Extra, Column::DstPort],
    ];
    let mut reused = Batch::empty();
    let mut scratch = netflow_store::columns::BlockScratch::default();
    for i in 0..f.block_count() {
        let cols = sets[i % 3];
        f.read_block_into(i, cols, &mut reused, &mut scratch)
            .unwrap();
        let fresh = f.read_block(i, cols).unwrap();
        assert_eq!(reused.rows(), fresh.rows());
        for c in Column::ALL {
            assert_eq!(
                reused.column(*c),
                fresh.column(*c),
                "block {i} {}",
                c.name()
            );
        }
        // And both as written: every value and every row's presence (a
        // buffer reused from a larger block must not leave bytes behind).
        let written = &batches[i];
        assert_eq!(reused.rows(), written.rows());
        for &c in cols {
            let read = reused.column(c).unwrap();
            for r in 0..written.rows() {
                assert_eq!(
                    reused.present(c, r),
                    written.present(c, r),
                    "block {i} {} row {r}",
                    c.name()
                );
            }
            match written.column(c) {
                Some(w) if w.nulls < written.rows() => {
                    // (`assert!`: a failure would print megabytes.)
                    assert!(read.values == w.values, "block {i} {} values", c.name());
                    assert!(read.offsets == w.offsets, "block {i} {} offsets", c.name());
                    assert_eq!(read.nulls, w.nulls, "block {i} {}", c.name());
                }
                _ => assert_eq!(read.nulls, written.rows(), "block {i} {}", c.name()),
            }
        }
    }
}

/// Some core columns hold values, and fields of records outside the core go to `extra`.
#[test]
fn core_columns_and_extra() {
    let cap = captures()
        .into_iter()
        .find(|p| p.ends_with("softflowd-ipfix-biflow-nano.pcap"))
        .unwrap();
    let (_, batches) = decode_capture(&cap);
    let mut all = Batch::new();
    for b in &batches {
        all.append(b);
    }
    let rows = all.rows();
    let with = |c| (0..rows).filter(|r| all.u64(c, *r).is_some()).count();
    let flows = (0..rows)
        .filter(|r| all.flags(*r) & netflow_store::columns::flags::OPTIONS == 0)
        .count();
    assert!(flows > 0);
    for c in [
        Column::Bytes,
        Column::Packets,
        Column::ReverseBytes,
        Column::Protocol,
        Column::StartMs,
        Column::EndMs,
    ] {
        assert_eq!(with(c), flows, "{}", c.name());
    }
    assert!(
        (0..rows).all(|r| all.addr(Column::SrcAddr, r, false).is_some()
            || all.flags(r) & netflow_store::columns::flags::OPTIONS != 0)
    );
}

/// Batches appended one to another hold the same rows.
#[test]
fn appended_batches_keep_every_row() {
    for cap in captures() {
        let (_, batches) = decode_capture(&cap);
        let mut all = Batch::new();
        let mut want = Vec::new();
        for b in &batches {
            all.append(b);
            for r in 0..b.rows() {
                let nulls: Vec<bool> = Column::ALL.iter().map(|c| b.u64(*c, r).is_none()).collect();
                want.push((b.record_fields(r), b.flags(r), nulls));
            }
        }
        assert_eq!(all.rows(), want.len());
        for (r, w) in want.iter().enumerate() {
            let nulls: Vec<bool> = Column::ALL
                .iter()
                .map(|c| all.u64(*c, r).is_none())
                .collect();
            assert_eq!(
                (all.record_fields(r), all.flags(r), nulls),
                *w,
                "{} row {r}",
                cap.display()
            );
        }
    }
}

/// Three blocks (of a real capture) and a footer.
fn three_block_file(path: &Path) -> (Vec<u8>, Vec<u64>) {
    let cap = captures()
        .into_iter()
        .find(|p| p.ends_with("softflowd-v9.pcap"))
        .unwrap();
    let (_, batches) = decode_capture(&cap);
    let batches: Vec<&Batch> = batches.iter().filter(|b| b.rows() > 0).take(3).collect();
    let mut w = ColumnWriter::new(Vec::new()).unwrap();
    let mut rows = Vec::new();
    for b in &batches {
        w.write_block(b).unwrap();
        rows.push(b.rows() as u64);
    }
    let bytes = w.finish().unwrap();
    std::fs::write(path, &bytes).unwrap();
    (bytes, rows)
}

fn read_all(f: &ColumnFile) -> (u64, usize) {
    let mut rows = 0;
    let mut bad = 0;
    for i in 0..f.block_count() {
        match f.read_block(i, Column::ALL) {
            Ok(b) => {
                for r in 0..b.rows() {
                    let _ = b.record_fields(r);
                }
                rows += b.rows() as u64
            }
            Err(_) => bad += 1,
        }
    }
    (rows, bad)
}

#[test]
fn a_file_cut_anywhere_reads_its_complete_blocks() {
    let path = tmp("cut.nfcol");
    let (bytes, rows) = three_block_file(&path);
    let f = ColumnFile::open(&path).unwrap();
    assert_eq!(f.block_count(), 3);
    let ends: Vec<u64> = f.blocks().skip(1).map(|b| b.offset).collect();
    let footer_at = bytes.len() as u64 - (8 + 3 * 28 + 16);
    let cut_path = tmp("cut-n.nfcol");
    // Every byte near the boundaries, every 7th elsewhere.
    let near = |c: u64| {
        c < 64
            || [ends[0], ends[1], footer_at, bytes.len() as u64]
                .iter()
                .any(|e| c.abs_diff(*e) < 48)
    };
    for cut in (0..bytes.len()).filter(|c| near(*c as u64) || c % 7 == 0) {
        std::fs::write(&cut_path, &bytes[..cut]).unwrap();
        let Ok(f) = ColumnFile::open(&cut_path) else {
            assert!(cut < 16, "cut at {cut} not readable");
            continue;
        };
        let complete_blocks = [ends[0], ends[1], footer_at]
            .iter()
            .filter(|e| **e <= cut as u64)
            .count();
        let want: u64 = rows[..complete_blocks].iter().sum();
        assert_eq!(read_all(&f), (want, 0), "cut at {cut}");
        assert!(!f.is_complete());
        // Something cut (not at a block boundary) is reported with its offset.
        if cut as u64 > 16 && ![ends[0], ends[1], footer_at].contains(&(cut as u64)) {
            let p = &f.problems()[0];
            assert!(p.offset >= 16 && p.offset < cut as u64, "{p}");
            assert!(p.to_string().contains("cut"), "{p}");
        }
    }
}

#[test]
fn damage_is_reported_with_its_offset_and_the_rest_is_read() {
    let path = tmp("damaged.nfcol");
    let (bytes, rows) = three_block_file(&path);
    let f = ColumnFile::open(&path).unwrap();
    let offs: Vec<u64> = f.blocks().map(|b| b.offset).collect();

    // A flipped byte in the middle block's column data: that block fails, the others read.
    let mut d = bytes.clone();
    let at = (offs[2] - 10) as usize;
    d[at] ^= 0x55;
    std::fs::write(&path, &d).unwrap();
    let f = ColumnFile::open(&path).unwrap();
    assert_eq!(f.block_count(), 3);
    assert_eq!(read_all(&f), (rows[0] + rows[2], 1));
    let e = f.read_block(1, Column::ALL).unwrap_err();
    assert!(
        e.to_string().contains("damaged.nfcol: at byte offset"),
        "{e}"
    );

    // A flipped byte in the middle block's header: reported, skipped, the third found again.
    let mut d = bytes.clone();
    d[offs[1] as usize + 5] ^= 0x01;
    std::fs::write(&path, &d).unwrap();
    let f = ColumnFile::open(&path).unwrap();
    assert_eq!(read_all(&f), (rows[0] + rows[2], 0));
    assert_eq!(f.problems()[0].offset, offs[1]);

    // Garbage: never a panic.
    let mut state = 0x1234_5678_u64;
    for round in 0..300 {
        let mut d = bytes.clone();
        for _ in 0..1 + round % 8 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let i = 16 + (state as usize) % (d.len() - 16);
            d[i] = (state >> 32) as u8;
        }
        std::fs::write(&path, &d).unwrap();
        let f = ColumnFile::open(&path).unwrap();
        let _ = read_all(&f);
    }
    // Not a columns file at all.
    std::fs::write(&path, b"{\"not\": \"columns\"}\n").unwrap();
    let e = ColumnFile::open(&path).unwrap_err();
    assert!(e.to_string().contains("not a netflow columns file"), "{e}");
}

#[test]
fn appending_after_a_crash_cuts_the_torn_block() {
    let path = tmp("append.nfcol");
    let cap = captures()
        .into_iter()
        .find(|p| p.ends_with("softflowd-ipfix.pcap"))
        .unwrap();
    let (_, batches) = decode_capture(&cap);
    let batches: Vec<&Batch> = batches.iter().filter(|b| b.rows() > 0).take(3).collect();
    let _ = std::fs::remove_file(&path);
    use std::io::Write;
    // Two blocks, then half of a third (a kill -9 while writing it).
    let (mut file, _, cut) = open_for_append(&path).unwrap();
    assert!(cut.is_none());
    for b in &batches[..2] {
        file.write_all(&encode_block(b).bytes).unwrap();
    }
    let torn = encode_block(batches[2]).bytes;
    file.write_all(&torn[..torn.len() / 2]).unwrap();
    drop(file);
    let f = ColumnFile::open(&path).unwrap();
    assert_eq!(f.block_count(), 2);
    assert_eq!(f.problems().len(), 1);
    // The restarted writer cuts it and goes on.
    let (mut file, _, cut) = open_for_append(&path).unwrap();
    assert!(cut.unwrap().contains("cut"));
    file.write_all(&torn).unwrap();
    drop(file);
    let f = ColumnFile::open(&path).unwrap();
    assert!(f.problems().is_empty(), "{:?}", f.problems());
    let want: u64 = batches.iter().map(|b| b.rows() as u64).sum();
    assert_eq!(read_all(&f), (want, 0));
}

/// `bytes`, one block (`info` its summary), as the only block of a file,
/// read back whole.
fn read_one_block(bytes: &[u8], info: BlockInfo, name: &str) -> Batch {
    let path = tmp(name);
    let mut file = file_header().to_vec();
    let at = file.len() as u64;
    file.extend_from_slice(bytes);
    file.extend_from_slice(&footer(&[BlockInfo { offset: at, ..info }]));
    std::fs::write(&path, file).unwrap();
    let f = ColumnFile::open(&path).unwrap();
    assert!(f.problems().is_empty(), "{:?}", f.problems());
    f.read_block(0, Column::ALL).unwrap()
}

/// One encoder for many blocks (as the collector's writer uses it) makes
/// blocks that read back as a new encoder's for each: nothing of a larger
/// block is left in its buffers. Their bytes are the same too, but where
/// the reused encoder stored a column as is without trying LZ4 (it did
/// not shrink it in an earlier block): then its block is longer, never
/// otherwise different.
#[test]
fn a_reused_encoder_encodes_each_block_as_a_new_one() {
    let mut batches: Vec<Batch> = captures()
        .iter()
        .flat_map(|c| decode_capture(c).1)
        .collect();
    let mut mixed = Batch::new();
    for b in &batches {
        mixed.append(b);
    }
    batches.insert(0, mixed.clone());
    batches.insert(batches.len() / 2, mixed);
    let mut reused = netflow_store::columns::BlockEncoder::default();
    let mut longer = 0;
    for (i, b) in batches.iter().enumerate() {
        let fresh = encode_block(b);
        let (bytes, info) = reused.encode(b);
        if bytes.len() == fresh.bytes.len() {
            assert!(bytes == &fresh.bytes[..], "block {i}");
        } else {
            assert!(bytes.len() > fresh.bytes.len(), "block {i}");
            longer += 1;
            assert!(
                read_one_block(bytes, info, "reused.nfcol")
                    == read_one_block(&fresh.bytes, fresh.info, "fresh.nfcol"),
                "block {i} reads back differently"
            );
        }
        assert_eq!(
            (info.rows, info.min_time_ms, info.max_time_ms),
            (
                fresh.info.rows,
                fresh.info.min_time_ms,
                fresh.info.max_time_ms
            )
        );
    }
    // The captures' blocks do have columns LZ4 does not shrink (one or
    // two records a block).
    assert!(longer > 0, "no block stored a column as is without trying");
}

/// The flows-layout names of the fields each column of version 2 holds
/// (as the decoder names them in v5, v9 and IPFIX records).
const V2_COLUMNS: [(Column, &[&str]); 6] = [
    (
        Column::SrcMask,
        &[
            "SRC_MASK",
            "IPV6_SRC_MASK",
            "sourceIPv4PrefixLength",
            "sourceIPv6PrefixLength",
        ],
    ),
    (
        Column::DstMask,
        &[
            "DST_MASK",
            "IPV6_DST_MASK",
            "destinationIPv4PrefixLength",
            "destinationIPv6PrefixLength",
        ],
    ),
    (
        Column::IcmpType,
        &["ICMP_TYPE", "icmpTypeCodeIPv4", "icmpTypeCodeIPv6"],
    ),
    (Column::FlowLabel, &["IPV6_FLOW_LABEL", "flowLabelIPv6"]),
    (Column::EndReason, &["flowEndReason"]),
    (
        Column::Vlan,
        &["SRC_VLAN", "DST_VLAN", "vlanId", "postVlanId"],
    ),
];

/// Check the version 2 columns of a row against its flows line: a row
/// with one of a column's fields has its value there (and not in
/// `extra`; unless `strict`, a field may be in `extra` instead, as one
/// too wide for its column is), a row without has none. Counts the values
/// per column.
fn check_v2_columns(
    b: &Batch,
    row: usize,
    want: &Json,
    ctx: &str,
    seen: &mut [usize; 6],
    strict: bool,
) {
    for (i, (c, names)) in V2_COLUMNS.iter().enumerate() {
        let given: Vec<&Json> = names.iter().filter_map(|n| want["fields"].get(n)).collect();
        match given.as_slice() {
            [] => assert_eq!(b.u64(*c, row), None, "{ctx}: {}", c.name()),
            [v] => {
                let extra = b.extra(row).unwrap_or("");
                let in_extra = names.iter().any(|n| extra.contains(&format!("\"{n}\"")));
                match b.u64(*c, row) {
                    // Its column, not `extra`.
                    Some(x) => {
                        assert_eq!(Json::from(x), **v, "{ctx}: {}", c.name());
                        assert!(!in_extra, "{ctx}: {} also in extra: {extra}", c.name());
                        seen[i] += 1;
                    }
                    // A field that does not fit the column (wider): `extra`.
                    None => assert!(in_extra && !strict, "{ctx}: {} not in its column", c.name()),
                }
            }
            _ => {}
        }
    }
}

/// The fields version 2 stores in columns of their own: in them (not in
/// `extra`) for every capture record that has one, as its flows line
/// gives the value; every such column used by some capture but the flow
/// label (no capture has one: see `v2_columns_of_a_built_packet`).
#[test]
fn v2_columns_hold_their_fields() {
    let mut seen = [0usize; 6];
    for cap in captures() {
        let (lines, batches) = decode_capture(&cap);
        let mut expect = lines.iter();
        for b in &batches {
            for row in 0..b.rows() {
                let want = expect.next().unwrap();
                let ctx = format!("{} row {row}: {want}", cap.display());
                // The captures' fields all fit their columns.
                check_v2_columns(b, row, want, &ctx, &mut seen, true);
            }
        }
    }
    for (i, (c, _)) in V2_COLUMNS.iter().enumerate() {
        if *c != Column::FlowLabel {
            assert!(seen[i] > 100, "{}: {} values", c.name(), seen[i]);
        }
    }
}

/// A hand-built IPFIX packet with every element of the version 2 columns
/// (IPv4 and IPv6 ones, a second occurrence, one too wide for its column):
/// each comes back as its flows line has it, set at a time and record at
/// a time, through a file.
#[test]
fn v2_columns_of_a_built_packet() {
    use netflow::encode::MessageBuilder;
    use netflow::wire::ipfix::IpfixHeader;
    use netflow::{FieldSpec, OwnedValue as V, Protocol, Template, TemplateKind};
    let f = |id, len| FieldSpec::new(0, id, len);
    let t6 = [
        f(27, 16),
        f(28, 16),
        f(29, 1),
        f(30, 1),
        f(139, 2),
        f(31, 4),
        f(136, 1),
        f(59, 2),
        f(9, 1),
    ];
    let t4 = [
        f(8, 4),
        f(12, 4),
        f(9, 1),
        f(13, 2),
        f(32, 2),
        f(58, 2),
        f(58, 2),
    ];
    let t6 = Template::compile(Protocol::Ipfix, 300, TemplateKind::Data, 0, &t6).unwrap();
    let t4 = Template::compile(Protocol::Ipfix, 301, TemplateKind::Data, 0, &t4).unwrap();
    let mut out = Vec::new();
    let mut m = MessageBuilder::ipfix(
        &mut out,
        IpfixHeader {
            export_time: 1_700_000_000,
            sequence: 5,
            observation_domain: 3,
            ..Default::default()
        },
    );
    m.template(&t6).unwrap();
    m.template(&t4).unwrap();
    for i in 0..5u64 {
        m.values(
            &t6,
            &[
                V::Ipv6(std::net::Ipv6Addr::LOCALHOST),
                V::Ipv6(std::net::Ipv6Addr::UNSPECIFIED),
                V::Unsigned(48 + i),
                V::Unsigned(64 + i),
                V::Unsigned(0x8000 + i),
                V::Unsigned(0xf_ffff - i),
                V::Unsigned(1 + i),
                V::Unsigned(4000 + i),
                V::Unsigned(24),
            ],
        )
        .unwrap();
    }
    for i in 0..3u64 {
        m.values(
            &t4,
            &[
                V::Ipv4([10, 0, 0, i as u8].into()),
                V::Ipv4([192, 0, 2, i as u8].into()),
                V::Unsigned(8 + i),
                V::Unsigned(16 + i),
                V::Unsigned(0x0303 + i),
                V::Unsigned(100 + i),
                V::Unsigned(200 + i),
            ],
        )
        .unwrap();
    }
    m.finish().unwrap();
    let mut decoder = Decoder::default();
    let exporter: SocketAddr = "192.0.2.9:4739".parse().unwrap();
    let decoded = decoder.decode(ExporterId(exporter), &out, 1, 0).unwrap();
    let p = &decoded.packet;
    assert_eq!(p.record_count(), 8);
    let export = Export {
        received: 1_700_000_000.5,
        exporter,
        header: &p.header,
        sets: &p.data_sets,
    };
    let mut text = Vec::new();
    write_export(Format::Flows, &mut text, &export);
    let lines: Vec<Json> = String::from_utf8(text)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut builder = BatchBuilder::new();
    assert_eq!(builder.add_export(&export), 8);
    let path = tmp("v2-built.nfcol");
    let mut w = ColumnWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    w.write_block(&builder.take()).unwrap();
    w.finish().unwrap();
    let f = ColumnFile::open(&path).unwrap();
    assert_eq!(f.version(), netflow_store::columns::VERSION);
    let b = f.read_block(0, Column::ALL).unwrap();
    assert_eq!(b.rows(), 8);
    let mut seen = [0usize; 6];
    for (row, want) in lines.iter().enumerate() {
        let ctx = format!("row {row}: {want}");
        assert_eq!(Json::Object(b.record_fields(row)), want["fields"], "{ctx}");
        check_v2_columns(&b, row, want, &ctx, &mut seen, false);
    }
    // Every column took its field from every row that has it once: the
    // masks and ICMP of both families, the flow label, the end reason and
    // postVlanId of the IPv6 rows. Not the second vlanId ("vlanId#2", in
    // `extra`), not the 2-byte destination prefix length (wider than its
    // column).
    assert_eq!(b.u64(Column::FlowLabel, 0), Some(0xf_ffff));
    assert_eq!(b.u64(Column::IcmpType, 5), Some(0x0303));
    assert_eq!(b.u64(Column::DstMask, 5), None);
    assert!(
        b.extra(5).unwrap().contains("destinationIPv4PrefixLength"),
        "{:?}",
        b.extra(5)
    );
    // The IPv6 rows' sourceIPv4PrefixLength after sourceIPv6PrefixLength: `extra`.
    assert_eq!(b.u64(Column::SrcMask, 0), Some(48));
    assert!(
        b.extra(0).unwrap().contains("sourceIPv4PrefixLength"),
        "{:?}",
        b.extra(0)
    );
    assert_eq!(seen[3], 5, "flow labels");
}

/// Files written by earlier versions (`testdata/columns/v1-captures.nfcol`,
/// `v2-captures.nfcol` to `v8-captures.nfcol`, see the README there): read by this version,
/// every record comes back as its flows line (version 1 has the fields of
/// the version 2 columns in `extra`); appended to, each becomes a file of
/// this version whose old rows read the same and whose new rows have those
/// fields in their columns (and this version's codecs).
#[test]
fn earlier_versions_read_the_same_and_take_this_versions_blocks() {
    earlier_version_reads_the_same(1, "v1-captures.nfcol");
    earlier_version_reads_the_same(2, "v2-captures.nfcol");
    earlier_version_reads_the_same(3, "v3-captures.nfcol");
    earlier_version_reads_the_same(4, "v4-captures.nfcol");
    earlier_version_reads_the_same(5, "v5-captures.nfcol");
    earlier_version_reads_the_same(6, "v6-captures.nfcol");
    earlier_version_reads_the_same(7, "v7-captures.nfcol");
    earlier_version_reads_the_same(8, "v8-captures.nfcol");
}

fn earlier_version_reads_the_same(version: u16, name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata");
    let fixture = dir.join("columns").join(name);
    let order = [
        "pmacct-v9.pcap",
        "softflowd-v9-ether.pcap",
        "softflowd-ipfix-ether-milli.pcap",
        "softflowd-v5.pcap",
        "pmacct-ipfix.pcap",
        "softflowd-ipfix-biflow-nano.pcap",
        // From version 8 on: a v7 capture too (whose own fields version 9
        // gives columns).
        "fprobe-v7.pcap",
    ];
    let captures = if version >= 8 { 7 } else { 6 };
    let lines: Vec<Json> = order[..captures]
        .iter()
        .flat_map(|c| decode_capture(&dir.join("captures").join(c)).0)
        .collect();
    let fields_of = |f: &ColumnFile| -> Vec<(Json, Option<String>)> {
        let mut out = Vec::new();
        for i in 0..f.block_count() {
            let b = f.read_block(i, Column::ALL).unwrap();
            for r in 0..b.rows() {
                out.push((
                    Json::Object(b.record_fields(r)),
                    b.extra(r).map(String::from),
                ));
            }
        }
        out
    };
    let old = ColumnFile::open(&fixture).unwrap();
    assert_eq!(old.version(), version);
    assert!(old.is_complete() && old.problems().is_empty());
    let rows = fields_of(&old);
    assert_eq!(rows.len(), lines.len());
    let (mut masks_in_extra, mut macs_in_extra, mut v7_in_extra) = (0, 0, 0);
    for (r, ((got, extra), want)) in rows.iter().zip(&lines).enumerate() {
        assert_eq!(*got, want["fields"], "row {r}");
        masks_in_extra += usize::from(extra.as_deref().is_some_and(|e| e.contains("SRC_MASK")));
        macs_in_extra += usize::from(
            extra
                .as_deref()
                .is_some_and(|e| e.contains("IN_SRC_MAC") || e.contains("sourceMacAddress")),
        );
        v7_in_extra += usize::from(
            extra
                .as_deref()
                .is_some_and(|e| e.contains("FLAGS1") && e.contains("ROUTER_SC")),
        );
    }
    // Before version 9 the v7 record's own fields are in `extra`.
    if version == 8 {
        assert_eq!(v7_in_extra, 234, "every fprobe-v7 record");
    }
    // Before version 6 the MACs of pmacct's records are in `extra`.
    if version < 6 {
        assert!(macs_in_extra > 500, "{macs_in_extra}");
    } else {
        assert_eq!(macs_in_extra, 0);
    }
    if version == 1 {
        assert!(
            masks_in_extra > 100,
            "{masks_in_extra}: not a version 1 file?"
        );
    } else {
        assert_eq!(masks_in_extra, 0);
    }

    // Appended to: this version in the header, the old rows as before.
    let path = tmp(&format!("v{version}-appended.nfcol"));
    std::fs::copy(&fixture, &path).unwrap();
    let (mut file, _, cut) = open_for_append(&path).unwrap();
    assert!(cut.is_none());
    let (mut new_lines, mut batches) = decode_capture(&dir.join("captures/pmacct-v9.pcap"));
    let (v7_lines, v7_batches) = decode_capture(&dir.join("captures/fprobe-v7.pcap"));
    new_lines.extend(v7_lines);
    batches.extend(v7_batches);
    use std::io::Write;
    for b in batches.iter().filter(|b| b.rows() > 0) {
        file.write_all(&encode_block(b).bytes).unwrap();
    }
    drop(file);
    let f = ColumnFile::open(&path).unwrap();
    assert_eq!(f.version(), netflow_store::columns::VERSION);
    assert!(f.problems().is_empty(), "{:?}", f.problems());
    let all = fields_of(&f);
    assert_eq!(all.len(), rows.len() + new_lines.len());
    assert_eq!(all[..rows.len()], rows[..]);
    let (mut macs, mut v7) = (0, 0);
    for ((got, extra), want) in all[rows.len()..].iter().zip(&new_lines) {
        assert_eq!(*got, want["fields"]);
        assert!(
            !extra.as_deref().unwrap_or("").contains("SRC_MASK"),
            "{extra:?}"
        );
        // This version's MAC and v7 columns, not `extra`.
        let extra = extra.as_deref().unwrap_or("");
        assert!(!extra.contains("MAC"), "{extra:?}");
        assert!(
            !extra.contains("FLAGS") && !extra.contains("ROUTER_SC"),
            "{extra:?}"
        );
        macs += usize::from(want["fields"].get("IN_SRC_MAC").is_some());
        v7 += usize::from(want["fields"].get("ROUTER_SC").is_some());
    }
    assert!(macs > 100, "{macs}");
    assert_eq!(v7, 234, "fprobe-v7's records");
}
