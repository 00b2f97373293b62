//! The columns format: every record of the real exporter captures stored
//! and read back equal to its `--format flows` line (the independent
//! layout), and damaged, cut and appended-to files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use netflow::{Decoder, ExporterId};
use netflow_store::columns::{
    encode_block, open_for_append, Batch, BatchBuilder, Column, ColumnFile, ColumnWriter,
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
    let dir = std::env::temp_dir().join(format!("netflow-columns-{}", std::process::id()));
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

/// One encoder for many blocks (as the collector's writer uses it) makes
/// the bytes a new encoder makes for each: nothing of a larger block is
/// left in its buffers.
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
    for (i, b) in batches.iter().enumerate() {
        let fresh = encode_block(b);
        let (bytes, info) = reused.encode(b);
        assert!(bytes == &fresh.bytes[..], "block {i}");
        assert_eq!(
            (info.rows, info.min_time_ms, info.max_time_ms),
            (
                fresh.info.rows,
                fresh.info.min_time_ms,
                fresh.info.max_time_ms
            )
        );
    }
}
