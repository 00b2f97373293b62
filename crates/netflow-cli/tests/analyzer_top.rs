//! `netflow analyzer top` on files written by `netflow collector` (both
//! JSON layouts and the columns format) from replayed captures, against sums computed here from tshark's
//! decode of the same captures (testdata/captures/*.tshark.jsonl).

mod analyzer_support;
mod common;
mod running;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use serde_json::Value;

use analyzer_support::{collect, tshark_records};

/// (flows, packets, bytes)
type Sums = (u64, u64, u64);

/// One tshark flow record, the fields `top` uses.
#[derive(Debug, Clone)]
struct TruthFlow {
    src: IpAddr,
    dst: IpAddr,
    /// None when the record has no port fields (IPFIX ICMP flows).
    sport: Option<u64>,
    dport: Option<u64>,
    proto: u64,
    packets: u64,
    bytes: u64,
    /// Absolute start (Unix ms) for v5: header export time - (uptime - FIRST_SWITCHED).
    start_ms: Option<i64>,
}

fn truth(capture: &str) -> Vec<TruthFlow> {
    tshark_records(capture)
        .into_iter()
        .filter(|r| r["kind"] == "flow")
        .map(|r| {
            let f = &r["fields"];
            let ip = |a: &str, b: &str| -> IpAddr {
                f.get(a)
                    .or_else(|| f.get(b))
                    .and_then(Value::as_str)
                    .unwrap()
                    .parse()
                    .unwrap()
            };
            let n = |k: &str| f[k].as_u64().unwrap_or(0);
            let h = &r["header"];
            let start_ms = (r["version"] == 5).then(|| {
                let export_ms = h["unix_secs"].as_i64().unwrap() * 1000
                    + h["unix_nsecs"].as_i64().unwrap() / 1_000_000;
                let age = (h["sys_uptime"].as_u64().unwrap() as u32)
                    .wrapping_sub(f["22"].as_u64().unwrap() as u32);
                export_ms - age as i64
            });
            TruthFlow {
                src: ip("8", "27"),
                dst: ip("12", "28"),
                sport: f.get("7").and_then(Value::as_u64),
                dport: f.get("11").and_then(Value::as_u64),
                proto: n("4"),
                packets: n("2"),
                bytes: n("1"),
                start_ms,
            }
        })
        .collect()
}

/// Truth sums per key text, keyed the way `top` prints keys.
fn sums(flows: &[TruthFlow], by: &str) -> BTreeMap<String, Sums> {
    let mut m: BTreeMap<String, Sums> = BTreeMap::new();
    for f in flows {
        let keys: Vec<String> = match by {
            "src" => vec![f.src.to_string()],
            "dst" => vec![f.dst.to_string()],
            "pair" => vec![format!("{} -> {}", f.src, f.dst)],
            // Each end once; records without ports take no part.
            "port" => {
                let mut k: Vec<String> = f.sport.iter().map(u64::to_string).collect();
                if let Some(d) = f.dport.filter(|d| Some(*d) != f.sport) {
                    k.push(d.to_string());
                }
                k
            }
            "proto" => vec![match f.proto {
                1 => "ICMP".to_string(),
                6 => "TCP".to_string(),
                17 => "UDP".to_string(),
                58 => "ICMPv6".to_string(),
                n => n.to_string(),
            }],
            _ => unreachable!(),
        };
        for k in keys {
            let e = m.entry(k).or_default();
            e.0 += 1;
            e.1 += f.packets;
            e.2 += f.bytes;
        }
    }
    m
}

fn total(flows: &[TruthFlow]) -> Sums {
    flows
        .iter()
        .fold((0, 0, 0), |t, f| (t.0 + 1, t.1 + f.packets, t.2 + f.bytes))
}

fn top_json(file: &Path, args: &[&str]) -> Value {
    let mut a = vec![
        "analyzer",
        "top",
        "-f",
        file.to_str().unwrap(),
        "--output",
        "json",
        "-n",
        "100000",
    ];
    a.extend_from_slice(args);
    let run = common::netflow(&a, None);
    run.assert_success();
    assert_eq!(run.stderr, "", "{a:?}");
    serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

fn rows(doc: &Value) -> BTreeMap<String, Sums> {
    doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_string(),
                (
                    r["flows"].as_u64().unwrap(),
                    r["packets"].as_u64().unwrap(),
                    r["bytes"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

fn doc_total(doc: &Value) -> Sums {
    let t = &doc["total"];
    (
        t["flows"].as_u64().unwrap(),
        t["packets"].as_u64().unwrap(),
        t["bytes"].as_u64().unwrap(),
    )
}

#[test]
fn top_sums_equal_tshark_sums_in_both_layouts() {
    let dir = common::tmp_dir("analyzer_top");
    for capture in ["softflowd-v5", "softflowd-ipfix", "pmacct-v9"] {
        let flows = truth(capture);
        assert!(flows.len() > 100, "{capture}");
        for layout in [&[][..], &["--format", "flows"], &["--format", "columns"]] {
            let file = collect(&dir, capture, layout);
            let what = format!("{capture} {layout:?}");
            for by in ["src", "dst", "pair", "port", "proto"] {
                for metric in ["bytes", "packets", "flows"] {
                    let doc = top_json(&file, &["--by", by, "--metric", metric]);
                    assert_eq!(rows(&doc), sums(&flows, by), "{what} --by {by}");
                    assert_eq!(doc_total(&doc), total(&flows), "{what}");
                    // Ranked by the metric, largest first, with consistent shares.
                    let values: Vec<u64> = doc["rows"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r[metric].as_u64().unwrap())
                        .collect();
                    assert!(
                        values.windows(2).all(|w| w[0] >= w[1]),
                        "{what} {by} {metric}"
                    );
                    let metric_total = doc["total"][metric].as_u64().unwrap() as f64;
                    let first = &doc["rows"][0];
                    let share = first["share_percent"].as_f64().unwrap();
                    assert!((share - values[0] as f64 * 100.0 / metric_total).abs() < 1e-9);
                }
            }
            // Filters.
            let https: Vec<TruthFlow> = flows
                .iter()
                .filter(|f| f.sport == Some(443) || f.dport == Some(443))
                .cloned()
                .collect();
            let doc = top_json(&file, &["--by", "pair", "--port", "443"]);
            assert_eq!(rows(&doc), sums(&https, "pair"), "{what} --port 443");
            let net: Vec<TruthFlow> = flows
                .iter()
                .filter(|f| {
                    let inside =
                        |a: IpAddr| matches!(a, IpAddr::V4(v) if v.octets()[..2] == [10, 0]);
                    f.proto == 17 && (inside(f.src) || inside(f.dst))
                })
                .cloned()
                .collect();
            assert!(!net.is_empty());
            let doc = top_json(
                &file,
                &["--by", "dst", "--host", "10.0.0.0/16", "--proto", "udp"],
            );
            assert_eq!(rows(&doc), sums(&net, "dst"), "{what} --host --proto");
            let doc = top_json(&file, &["--by", "exporter"]);
            assert_eq!(doc["rows"].as_array().unwrap().len(), 1, "{what}");
            assert_eq!(doc["rows"][0]["flows"].as_u64(), Some(flows.len() as u64));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// --since/--until on the flow start time, which the original layout of v5
/// gives (header export time and uptime); RFC 3339 and Unix seconds alike.
#[test]
fn top_time_window_uses_flow_start() {
    let dir = common::tmp_dir("analyzer_top_time");
    let flows = truth("softflowd-v5");
    for layout in [&[][..], &["--format", "columns"]] {
        let file = collect(&dir, "softflowd-v5", layout);
        let mut starts: Vec<i64> = flows.iter().map(|f| f.start_ms.unwrap()).collect();
        starts.sort();
        starts.dedup();
        // Bounds between two distinct start times, whole seconds away from both.
        let pick = |i: usize| {
            let (a, b) = (starts[i], starts[i + 1]);
            assert!(b - a > 2000 || i + 2 >= starts.len(), "pick other bounds");
            (a + b) / 2 / 1000
        };
        let wide = starts
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[1] - w[0] > 2000)
            .map(|(i, _)| i)
            .collect::<Vec<_>>();
        assert!(wide.len() >= 2, "the capture spans 107 s with gaps");
        let since_s = pick(wide[0]);
        let until_s = pick(wide[wide.len() - 1]);
        let inside: Vec<TruthFlow> = flows
            .iter()
            .filter(|f| {
                let t = f.start_ms.unwrap();
                t >= since_s * 1000 && t < until_s * 1000
            })
            .cloned()
            .collect();
        assert!(!inside.is_empty() && inside.len() < flows.len());
        let since_rfc = chrono_free_rfc3339(since_s);
        let doc = top_json(
            &file,
            &[
                "--by",
                "src",
                "--since",
                &since_rfc,
                "--until",
                &until_s.to_string(),
            ],
        );
        assert_eq!(rows(&doc), sums(&inside, "src"), "{layout:?}");
        assert_eq!(doc_total(&doc), total(&inside), "{layout:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Unix seconds as RFC 3339 UTC (civil-from-days, Howard Hinnant's algorithm).
fn chrono_free_rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[test]
fn rfc3339_helper_is_right() {
    // 1700000000 is 2023-11-14T22:13:20Z (testdata/captures/README.md).
    assert_eq!(chrono_free_rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
}

#[test]
fn top_table_and_csv_outputs() {
    let dir = common::tmp_dir("analyzer_top_formats");
    let file = collect(&dir, "softflowd-ipfix", &[]);
    let flows = truth("softflowd-ipfix");
    let by_src = sums(&flows, "src");
    let mut ranked: Vec<(&String, &Sums)> = by_src.iter().collect();
    ranked.sort_by(|a, b| b.1 .2.cmp(&a.1 .2).then(a.0.cmp(b.0)));
    let f = file.to_str().unwrap();
    let csv = common::netflow(
        &["analyzer", "top", "-f", f, "-n", "3", "--output", "csv"],
        None,
    );
    csv.assert_success();
    let lines: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(lines[0], "rank,key,flows,packets,bytes,share_percent");
    assert_eq!(lines.len(), 4);
    let t = total(&flows);
    for (i, line) in lines[1..].iter().enumerate() {
        let (key, s) = ranked[i];
        let want = format!("{},{key},{},{},{},", i + 1, s.0, s.1, s.2);
        assert!(line.starts_with(&want), "{line} vs {want}");
        let share: f64 = line.rsplit(',').next().unwrap().parse().unwrap();
        assert!((share - s.2 as f64 * 100.0 / t.2 as f64).abs() < 1e-3);
    }
    let table = common::netflow(&["analyzer", "top", "-f", f, "-n", "3"], None);
    table.assert_success();
    let first = table.stdout.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "Top 3 src by bytes of {} flows matched ({} read): {} packets, {} bytes ({})",
            t.0,
            t.0,
            t.1,
            t.2,
            format_args!("{:.2}K", t.2 as f64 / 1024.0)
        )
    );
    let row1 = table.stdout.lines().nth(2).unwrap();
    let cols: Vec<&str> = row1.split_whitespace().collect();
    assert_eq!(cols[0], "1");
    assert_eq!(cols[1], ranked[0].0);
    assert_eq!(cols[6], ranked[0].1 .2.to_string());
    // Missing input: the original's message, non-zero status.
    let missing = common::netflow(&["analyzer", "top", "-f", "/nonexistent/x.gz"], None);
    assert_eq!(missing.code, Some(1));
    assert!(
        missing
            .stderr
            .contains("File /nonexistent/x.gz does not exist!"),
        "{}",
        missing.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}
