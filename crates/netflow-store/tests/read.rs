//! read_lines: plain JSON lines, single- and multi-member gzip.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use netflow_store::{lines_from, read_lines};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[test]
fn plain_and_gzip_files() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("netflow-store-read");
    std::fs::create_dir_all(&dir).unwrap();
    let lines = ["{\"a\": 1}", "{\"b\": 2}", "{\"c\": \"\\u00e9\"}"];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let plain = dir.join("plain.jsonl");
    std::fs::write(&plain, &text).unwrap();
    let members = dir.join("members.gz");
    let bytes: Vec<u8> = lines
        .iter()
        .flat_map(|l| gzip(format!("{l}\n").as_bytes()))
        .collect();
    std::fs::write(&members, bytes).unwrap();
    let crlf = dir.join("crlf.jsonl");
    std::fs::write(&crlf, text.replace('\n', "\r\n")).unwrap();
    for p in [&plain, &members, &crlf] {
        let got: Vec<String> = read_lines(p).unwrap().map(Result::unwrap).collect();
        assert_eq!(got, lines, "{}", p.display());
    }
    let empty = dir.join("empty");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(read_lines(&empty).unwrap().count(), 0);
    assert!(read_lines(dir.join("missing")).is_err());
    // Any reader: a gzip stream from memory.
    let got: Vec<String> = lines_from(std::io::Cursor::new(gzip(text.as_bytes())))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, lines);
    // A corrupt gzip member is an error, not a silent end.
    let mut broken = gzip(text.as_bytes());
    let n = broken.len();
    broken[n / 2] ^= 0xff;
    assert!(lines_from(std::io::Cursor::new(broken))
        .unwrap()
        .any(|l| l.is_err()));
    let _ = std::fs::remove_dir_all(&dir);
}
