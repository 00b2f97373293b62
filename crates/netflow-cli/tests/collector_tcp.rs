//! `netflow collector --tcp-listen`: IPFIX over TCP (RFC 7011 section 10.4)
//! on loopback. `netflow generate --transport tcp` and hand-built messages
//! over `std::net::TcpStream` send; the stored records, the per-session
//! (per peer address and port) counters and the `tcp ...` summary line are
//! checked. Every wait is for a condition (a status line, EOF), with
//! generous timeouts.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod running;

use running::{field, per_exporter, read_lines, word_after, Running, TIMEOUT};

fn tmp(name: &str) -> PathBuf {
    running::tmp_dir("collector-tcp", name)
}

/// Start a collector (flows format) with `--tcp-listen 127.0.0.1:0` and
/// `extra`; returns it and its TCP address.
fn start(file: &Path, extra: &[&str]) -> (Running, String) {
    let mut args = vec![
        "-o",
        file.to_str().unwrap(),
        "--format",
        "flows",
        "--tcp-listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let mut c = Running::start(&args);
    let line = c.wait_line("the tcp listening line", |l| {
        l.contains("listening on tcp ")
    });
    let addr = word_after(&line, "listening on tcp ");
    (c, addr)
}

/// The next status line satisfying `pred`.
fn wait_status(c: &mut Running, what: &str, pred: impl Fn(&str) -> bool) -> String {
    c.wait_line(what, |l| l.starts_with("status ") && pred(l))
}

/// SIGTERM and the exit (status 0 asserted); all of stderr.
fn stop(c: Running) -> Vec<String> {
    c.signal("-TERM");
    let (code, stderr) = c.wait_exit();
    assert_eq!(code, Some(0), "stderr:\n{}", stderr.join("\n"));
    stderr
}

/// The `tcp accepted ...` summary line.
fn tcp_line(stderr: &[String]) -> String {
    stderr
        .iter()
        .find(|l| l.starts_with("tcp accepted "))
        .unwrap_or_else(|| panic!("no tcp line:\n{}", stderr.join("\n")))
        .clone()
}

/// The `exporter ADDR ...` summary line of `addr`.
fn exporter_line(stderr: &[String], addr: &str) -> String {
    let prefix = format!("exporter {addr} ");
    stderr
        .iter()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no line for {addr}:\n{}", stderr.join("\n")))
        .clone()
}

// ---------------------------------------------------------------------------
// Hand-built IPFIX messages (RFC 7011 section 3).

/// A message: the 16-byte header (length filled in) and the sets.
fn message(domain: u32, sequence: u32, sets: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = sets.concat();
    let mut m = Vec::new();
    m.extend_from_slice(&10u16.to_be_bytes());
    m.extend_from_slice(&((16 + body.len()) as u16).to_be_bytes());
    m.extend_from_slice(&1_700_000_000u32.to_be_bytes());
    m.extend_from_slice(&sequence.to_be_bytes());
    m.extend_from_slice(&domain.to_be_bytes());
    m.extend_from_slice(&body);
    m
}

/// A template set (id 2) with one template: (element id, length) fields.
fn template_set(id: u16, fields: &[(u16, u16)]) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(&2u16.to_be_bytes());
    s.extend_from_slice(&((4 + 4 + 4 * fields.len()) as u16).to_be_bytes());
    s.extend_from_slice(&id.to_be_bytes());
    s.extend_from_slice(&(fields.len() as u16).to_be_bytes());
    for (e, l) in fields {
        s.extend_from_slice(&e.to_be_bytes());
        s.extend_from_slice(&l.to_be_bytes());
    }
    s
}

/// A data set of template `id` holding `records` (already encoded).
fn data_set(id: u16, records: &[u8]) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(&id.to_be_bytes());
    s.extend_from_slice(&((4 + records.len()) as u16).to_be_bytes());
    s.extend_from_slice(records);
    s
}

/// Template 256 "layout A": sourceIPv4Address (8, 4 bytes),
/// octetDeltaCount (1, 8 bytes).
const LAYOUT_A: [(u16, u16); 2] = [(8, 4), (1, 8)];
/// Template 256 "layout B": destinationTransportPort (11, 2 bytes),
/// packetDeltaCount (2, 4 bytes).
const LAYOUT_B: [(u16, u16); 2] = [(11, 2), (2, 4)];

/// `n` records of layout A: 10.0.0.i, octets 1000 + i.
fn records_a(n: u8) -> Vec<u8> {
    let mut r = Vec::new();
    for i in 1..=n {
        r.extend_from_slice(&[10, 0, 0, i]);
        r.extend_from_slice(&(1000 + u64::from(i)).to_be_bytes());
    }
    r
}

/// `n` records of layout B: port 5000 + i, packets 7 * i.
fn records_b(n: u8) -> Vec<u8> {
    let mut r = Vec::new();
    for i in 1..=n {
        r.extend_from_slice(&(5000 + u16::from(i)).to_be_bytes());
        r.extend_from_slice(&(7 * u32::from(i)).to_be_bytes());
    }
    r
}

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connects to the collector");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s
}

/// Wait until the collector closes `s` (EOF or reset), asserting it sent
/// nothing; the time it took.
fn wait_closed(s: &mut TcpStream) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("the collector sent {n} bytes"),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("no close within {TIMEOUT:?}: {e}"),
    }
    start.elapsed()
}

/// Flow records (not options) of the flows file, per exporter address.
fn flows_by_exporter(lines: &[serde_json::Value]) -> BTreeMap<String, Vec<serde_json::Value>> {
    let mut out: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for l in lines {
        if l["options"] == serde_json::Value::Bool(false) {
            out.entry(l["exporter"].as_str().unwrap().to_string())
                .or_default()
                .push(l["fields"].clone());
        }
    }
    out
}

// ---------------------------------------------------------------------------

#[test]
fn generate_over_tcp_stores_every_record_per_exporter() {
    let dir = tmp("generate");
    let file = dir.join("flows.gz");
    let (mut c, tcp) = start(&file, &[]);
    let (want, packets) = send_all(
        &mut c,
        &tcp,
        &[
            "--transport",
            "tcp",
            "--rate",
            "400",
            "--duration",
            "1",
            "--exporters",
            "3",
            "--template-refresh",
            "0.3",
        ],
        3,
    );
    let stderr = c.terminate();
    let lines = read_lines(&file);
    let stored = flows_by_exporter(&lines);
    for (addr, (p, records, options)) in &want {
        // The TCP peer (the generator's local address) is the exporter.
        let got = stored.get(addr).map_or(0, |v| v.len() as u64);
        assert_eq!(got, *records, "records of {addr}");
        let got_options = lines
            .iter()
            .filter(|l| l["exporter"] == addr.as_str() && l["options"] == true)
            .count() as u64;
        assert_eq!(got_options, *options, "options records of {addr}");
        let e = exporter_line(&stderr, addr);
        assert_eq!(field(&e, "packets"), Some(*p), "{e}");
        assert_eq!(field(&e, "records"), Some(*records), "{e}");
        assert_eq!(field(&e, "errors"), Some(0), "{e}");
        // The session ended: its templates are gone.
        assert_eq!(field(&e, "templates"), Some(0), "{e}");
    }
    let t = tcp_line(&stderr);
    assert_eq!(field(&t, "accepted"), Some(3), "{t}");
    assert_eq!(field(&t, "active"), Some(0), "{t}");
    assert_eq!(field(&t, "messages"), Some(packets), "{t}");
    assert_eq!(field(&t, "closed_on_error"), Some(0), "{t}");
}

#[test]
fn no_udp_listens_on_tcp_only() {
    let dir = tmp("no-udp");
    let file = dir.join("flows.gz");
    let mut c = Running::start_with(&[
        "--no-udp",
        "--tcp-listen",
        "127.0.0.1:0",
        "--stats",
        "0.1",
        "-o",
        file.to_str().unwrap(),
    ]);
    // The first listening line is the TCP one: no UDP socket was opened.
    assert!(
        c.stderr
            .iter()
            .all(|l| !l.contains("listening on ") || l.contains("listening on tcp ")),
        "{:?}",
        c.stderr
    );
    assert_eq!(c.addr, "tcp");
    let line = c.stderr.last().unwrap().clone();
    let tcp = word_after(&line, "listening on tcp ");
    let (_, packets) = send_all(
        &mut c,
        &tcp,
        &["--transport", "tcp", "--rate", "200", "--duration", "1"],
        1,
    );
    assert!(packets > 0);
    let stderr = stop(c);
    assert!(!stderr.iter().any(|l| l.contains("listening on 127.0.0.1")));
    // Nothing to listen on, or --no-udp with a UDP address: refused.
    for args in [
        &["collector", "--no-udp"][..],
        &[
            "collector",
            "--no-udp",
            "--tcp-listen",
            "127.0.0.1:0",
            "-p",
            "2055",
        ][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_netflow"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn generate_refuses_tcp_for_other_versions() {
    let out = Command::new(env!("CARGO_BIN_EXE_netflow"))
        .args(["generate", "--target", "127.0.0.1:9", "--transport", "tcp"])
        .args(["--version", "9", "--count", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("IPFIX only"));
}

#[test]
fn two_sessions_from_one_host_keep_separate_templates() {
    let dir = tmp("scopes");
    let file = dir.join("flows.gz");
    let (mut c, tcp) = start(&file, &[]);
    let mut a = connect(&tcp);
    let mut b = connect(&tcp);
    // Same host, same domain, same template id 256, two different layouts.
    a.write_all(&message(1, 0, &[template_set(256, &LAYOUT_A)]))
        .unwrap();
    b.write_all(&message(1, 0, &[template_set(256, &LAYOUT_B)]))
        .unwrap();
    wait_status(&mut c, "both templates", |l| field(l, "packets") == Some(2));
    a.write_all(&message(1, 0, &[data_set(256, &records_a(2))]))
        .unwrap();
    b.write_all(&message(1, 0, &[data_set(256, &records_b(3))]))
        .unwrap();
    wait_status(&mut c, "both data messages", |l| {
        field(l, "packets") == Some(4) && field(l, "records") == Some(5)
    });
    let (a_addr, b_addr) = (
        a.local_addr().unwrap().to_string(),
        b.local_addr().unwrap().to_string(),
    );
    drop((a, b));
    let stderr = c.terminate();
    let stored = flows_by_exporter(&read_lines(&file));
    let ra = &stored[&a_addr];
    assert_eq!(ra.len(), 2, "{ra:?}");
    assert_eq!(ra[0]["sourceIPv4Address"], "10.0.0.1", "{ra:?}");
    assert_eq!(ra[1]["octetDeltaCount"], 1002, "{ra:?}");
    assert!(ra[0].get("destinationTransportPort").is_none(), "{ra:?}");
    let rb = &stored[&b_addr];
    assert_eq!(rb.len(), 3, "{rb:?}");
    assert_eq!(rb[2]["destinationTransportPort"], 5003, "{rb:?}");
    assert_eq!(rb[2]["packetDeltaCount"], 21, "{rb:?}");
    assert!(rb[0].get("sourceIPv4Address").is_none(), "{rb:?}");
    assert_eq!(field(&tcp_line(&stderr), "accepted"), Some(2));
}

#[test]
fn framing_errors_close_only_their_session_and_are_counted() {
    let dir = tmp("framing");
    let file = dir.join("flows.gz");
    let (mut c, tcp) = start(&file, &[]);
    let mut good = connect(&tcp);
    let mut short = connect(&tcp);
    let mut v9 = connect(&tcp);
    good.write_all(&message(1, 0, &[template_set(256, &LAYOUT_A)]))
        .unwrap();
    wait_status(&mut c, "the template", |l| field(l, "packets") == Some(1));
    // A header whose length is under 16.
    let mut bad = message(1, 0, &[]);
    bad[2..4].copy_from_slice(&8u16.to_be_bytes());
    short.write_all(&bad).unwrap();
    wait_closed(&mut short);
    // A NetFlow v9 header: not IPFIX.
    let mut not_ipfix = message(1, 0, &[]);
    not_ipfix[0..2].copy_from_slice(&9u16.to_be_bytes());
    v9.write_all(&not_ipfix).unwrap();
    wait_closed(&mut v9);
    // The good session goes on.
    good.write_all(&message(1, 0, &[data_set(256, &records_a(4))]))
        .unwrap();
    wait_status(&mut c, "the data after the errors", |l| {
        field(l, "records") == Some(4)
    });
    let good_addr = good.local_addr().unwrap().to_string();
    let short_addr = short.local_addr().unwrap().to_string();
    let v9_addr = v9.local_addr().unwrap().to_string();
    drop((good, short, v9));
    let stderr = stop(c);
    let s = exporter_line(&stderr, &short_addr);
    assert!(s.contains("tcp_bad_length 1"), "{s}");
    let v = exporter_line(&stderr, &v9_addr);
    assert!(v.contains("tcp_not_ipfix 1"), "{v}");
    let g = exporter_line(&stderr, &good_addr);
    assert_eq!(field(&g, "records"), Some(4), "{g}");
    assert_eq!(field(&g, "errors"), Some(0), "{g}");
    let t = tcp_line(&stderr);
    assert_eq!(field(&t, "accepted"), Some(3), "{t}");
    assert_eq!(field(&t, "closed_on_error"), Some(2), "{t}");
    assert_eq!(flows_by_exporter(&read_lines(&file))[&good_addr].len(), 4);
}

#[test]
fn garbage_and_truncated_messages_close_the_session_without_harm() {
    let dir = tmp("garbage");
    let file = dir.join("flows.gz");
    let (mut c, tcp) = start(&file, &[]);
    // A valid header announcing 200 bytes, then the end of the connection.
    let mut cut = connect(&tcp);
    let mut m = message(1, 0, &[data_set(256, &records_a(10))]);
    m.truncate(40);
    cut.write_all(&m).unwrap();
    cut.shutdown(std::net::Shutdown::Write).unwrap();
    wait_closed(&mut cut);
    // Random bytes.
    let mut junk = connect(&tcp);
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let _ = junk.write_all(&bytes);
    wait_closed(&mut junk);
    // A well-framed IPFIX message whose sets are garbage: decoded with an
    // error, the session stays open.
    let mut bad_sets = connect(&tcp);
    let m = message(1, 0, &[vec![0, 2, 0, 3, 1, 2, 3, 4, 5, 6]]);
    bad_sets.write_all(&m).unwrap();
    bad_sets
        .write_all(&message(1, 1, &[template_set(256, &LAYOUT_B)]))
        .unwrap();
    bad_sets
        .write_all(&message(1, 2, &[data_set(256, &records_b(2))]))
        .unwrap();
    wait_status(&mut c, "the records after the bad sets", |l| {
        field(l, "records") == Some(2)
    });
    drop((cut, junk, bad_sets));
    let stderr = stop(c);
    let t = tcp_line(&stderr);
    assert_eq!(field(&t, "closed_on_error"), Some(2), "{t}");
    assert!(
        stderr.iter().any(|l| l.contains("tcp_truncated 1")),
        "{}",
        stderr.join("\n")
    );
}

#[test]
fn a_closed_session_loses_its_templates() {
    let dir = tmp("reconnect");
    let file = dir.join("flows.gz");
    let (mut c, tcp) = start(&file, &[]);
    let mut first = connect(&tcp);
    first
        .write_all(&message(1, 0, &[template_set(256, &LAYOUT_A)]))
        .unwrap();
    first
        .write_all(&message(1, 1, &[data_set(256, &records_a(1))]))
        .unwrap();
    wait_status(&mut c, "the first session's record", |l| {
        field(l, "records") == Some(1)
    });
    let first_addr = first.local_addr().unwrap().to_string();
    drop(first);
    // The same exporter again, data without a template: it waits (not
    // decoded with the first session's template).
    let mut second = connect(&tcp);
    second
        .write_all(&message(1, 2, &[data_set(256, &records_a(3))]))
        .unwrap();
    wait_status(&mut c, "a set waiting", |l| {
        field(l, "packets") == Some(3) && field(l, "waiting") == Some(1)
    });
    let second_addr = second.local_addr().unwrap().to_string();
    drop(second);
    // The second session ended with its set still waiting: dropped.
    wait_status(&mut c, "the waiting set dropped", |l| {
        field(l, "waiting") == Some(0) && field(l, "dropped") == Some(1)
    });
    let stderr = stop(c);
    let f = exporter_line(&stderr, &first_addr);
    assert_eq!(field(&f, "templates"), Some(0), "{f}");
    let s = exporter_line(&stderr, &second_addr);
    assert_eq!(field(&s, "records"), Some(0), "{s}");
    assert_eq!(field(&s, "dropped"), Some(1), "{s}");
    let stored = flows_by_exporter(&read_lines(&file));
    assert_eq!(stored[&first_addr].len(), 1);
    assert!(!stored.contains_key(&second_addr), "{stored:?}");
}

#[test]
fn denied_and_refused_connections_are_counted_and_closed() {
    let dir = tmp("denied");
    let file = dir.join("flows.gz");
    let (c, tcp) = start(&file, &["--allow", "10.0.0.0/8"]);
    let mut s = connect(&tcp);
    let _ = s.write_all(&message(1, 0, &[template_set(256, &LAYOUT_A)]));
    wait_closed(&mut s);
    let stderr = stop(c);
    let t = tcp_line(&stderr);
    assert_eq!(field(&t, "denied"), Some(1), "{t}");
    assert_eq!(field(&t, "accepted"), Some(0), "{t}");
    assert!(
        stderr.iter().any(|l| l == "denied 127.0.0.1 packets 1"
            || (l.starts_with("total ") && field(l, "denied") == Some(1))),
        "{}",
        stderr.join("\n")
    );

    let dir = tmp("refused");
    let file = dir.join("flows.gz");
    let (mut c, tcp) = start(&file, &["--tcp-max-sessions", "1"]);
    let mut first = connect(&tcp);
    first
        .write_all(&message(1, 0, &[template_set(256, &LAYOUT_A)]))
        .unwrap();
    wait_status(&mut c, "the first session", |l| {
        field(l, "packets") == Some(1)
    });
    let mut second = connect(&tcp);
    wait_closed(&mut second);
    drop(first);
    let stderr = stop(c);
    let t = tcp_line(&stderr);
    assert_eq!(field(&t, "refused"), Some(1), "{t}");
    assert_eq!(field(&t, "accepted"), Some(1), "{t}");
}

#[test]
fn idle_sessions_are_closed() {
    let dir = tmp("idle");
    let file = dir.join("flows.gz");
    let (c, tcp) = start(&file, &["--tcp-idle-timeout", "1s"]);
    let mut s = connect(&tcp);
    s.write_all(&message(1, 0, &[template_set(256, &LAYOUT_A)]))
        .unwrap();
    let took = wait_closed(&mut s);
    assert!(took >= Duration::from_millis(800), "closed after {took:?}");
    let stderr = stop(c);
    let t = tcp_line(&stderr);
    assert_eq!(field(&t, "idle_timeouts"), Some(1), "{t}");
}

/// A TCP connection from `port` of 127.0.0.1 (0: any), SO_REUSEADDR set.
fn connect_from(addr: &str, port: u16) -> TcpStream {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    s.set_reuse_address(true).unwrap();
    s.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
        .unwrap();
    let target: std::net::SocketAddr = addr.parse().unwrap();
    s.connect(&target.into()).unwrap();
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s
}

#[test]
fn reconnecting_from_the_same_port_starts_without_templates() {
    let dir = tmp("same-port");
    let file = dir.join("flows.gz");
    let (mut c, tcp) = start(&file, &["--tcp-idle-timeout", "0.5s"]);
    let mut first = connect_from(&tcp, 0);
    let port = first.local_addr().unwrap().port();
    first
        .write_all(&message(1, 0, &[template_set(256, &LAYOUT_A)]))
        .unwrap();
    // The collector closes first (idle), so the client's port is free again
    // at once (the TIME_WAIT is on the collector's side).
    wait_closed(&mut first);
    drop(first);
    // Same exporter address and port: a new session, no templates.
    let mut second = connect_from(&tcp, port);
    assert_eq!(second.local_addr().unwrap().port(), port);
    second
        .write_all(&message(1, 1, &[data_set(256, &records_a(2))]))
        .unwrap();
    wait_status(&mut c, "the data waiting", |l| {
        field(l, "packets") == Some(2) && field(l, "waiting") == Some(1)
    });
    // Its own template (another layout) then decodes it.
    second
        .write_all(&message(1, 2, &[template_set(256, &[(8, 4), (2, 8)])]))
        .unwrap();
    wait_status(&mut c, "the data replayed", |l| {
        field(l, "records") == Some(2) && field(l, "waiting") == Some(0)
    });
    drop(second);
    let stderr = stop(c);
    let stored = flows_by_exporter(&read_lines(&file));
    let r = &stored[&format!("127.0.0.1:{port}")];
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[1]["packetDeltaCount"], 1002, "{r:?}");
    assert!(r[1].get("octetDeltaCount").is_none(), "{r:?}");
    assert_eq!(field(&tcp_line(&stderr), "idle_timeouts"), Some(1));
}

// ---------------------------------------------------------------------------
// TLS (RFC 7011 10.4.2): a self-signed certificate made now.

/// A self-signed certificate for 127.0.0.1 and localhost: (cert, key) PEM files.
fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("rcgen makes a certificate");
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    (cert, key)
}

fn generate(tcp: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_netflow"))
        .args(["generate", "--target", tcp, "--version", "10"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("runs netflow generate")
}

/// Run `generate` (IPFIX to `tcp`, `args`), expect `exporters` exporters in
/// its report and wait until the collector decoded every message. Returns
/// the report per exporter (packets, records, options) and the messages sent.
fn send_all(
    c: &mut Running,
    tcp: &str,
    args: &[&str],
    exporters: usize,
) -> (BTreeMap<String, (u64, u64, u64)>, u64) {
    let out = generate(tcp, args);
    let sent = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "generate failed: {sent}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = per_exporter(&sent.lines().map(String::from).collect::<Vec<_>>());
    assert_eq!(want.len(), exporters, "{sent}");
    let packets: u64 = want.values().map(|w| w.0).sum();
    wait_status(c, "every message decoded", |l| {
        field(l, "packets") == Some(packets)
    });
    (want, packets)
}

#[test]
fn generate_over_tls_stores_every_record_per_exporter() {
    let dir = tmp("tls");
    let file = dir.join("flows.gz");
    let (cert, key) = self_signed(&dir, "server");
    let (mut c, tcp) = start(
        &file,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let (want, packets) = send_all(
        &mut c,
        &tcp,
        &[
            "--transport",
            "tls",
            "--tls-ca",
            cert.to_str().unwrap(),
            "--rate",
            "300",
            "--duration",
            "1",
            "--exporters",
            "2",
        ],
        2,
    );
    // A plain-TCP exporter on the TLS port: the handshake fails, counted;
    // the TLS sessions are not disturbed.
    let mut plain = connect(&tcp);
    let _ = plain.write_all(&message(1, 0, &[template_set(256, &LAYOUT_A)]));
    let mut rest = Vec::new();
    let _ = plain.read_to_end(&mut rest); // a TLS alert at most, then EOF
    let stderr = c.terminate();
    let stored = flows_by_exporter(&read_lines(&file));
    for (addr, (_, records, _)) in &want {
        assert_eq!(
            stored.get(addr).map_or(0, |v| v.len() as u64),
            *records,
            "records of {addr}"
        );
    }
    let t = tcp_line(&stderr);
    assert_eq!(field(&t, "accepted"), Some(3), "{t}");
    assert_eq!(field(&t, "tls_errors"), Some(1), "{t}");
    assert_eq!(field(&t, "messages"), Some(packets), "{t}");
}

#[test]
fn tls_client_certificates_are_required_with_a_client_ca() {
    let dir = tmp("tls-client-ca");
    let file = dir.join("flows.gz");
    let (cert, key) = self_signed(&dir, "server");
    let (client_cert, client_key) = self_signed(&dir, "client");
    let (mut c, tcp) = start(
        &file,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--tls-client-ca",
            client_cert.to_str().unwrap(),
        ],
    );
    let common = [
        "--transport",
        "tls",
        "--tls-ca",
        cert.to_str().unwrap(),
        "--count",
        "5",
        "--rate",
        "100",
    ];
    // Without a client certificate: nothing is stored (the generator may
    // or may not see the refusal, depending on the TLS version's timing).
    let _ = generate(&tcp, &common);
    wait_status(&mut c, "the refused session", |_| true);
    let deadline = Instant::now() + TIMEOUT;
    let with_cert = loop {
        let out = generate(
            &tcp,
            &[
                &common[..],
                &[
                    "--tls-cert",
                    client_cert.to_str().unwrap(),
                    "--tls-key",
                    client_key.to_str().unwrap(),
                ],
            ]
            .concat(),
        );
        if out.status.success() || Instant::now() > deadline {
            break out;
        }
    };
    let sent = String::from_utf8_lossy(&with_cert.stdout).into_owned();
    assert!(with_cert.status.success(), "{sent}");
    let want = per_exporter(&sent.lines().map(String::from).collect::<Vec<_>>());
    let (addr, (packets, records, _)) = want.iter().next().unwrap();
    wait_status(&mut c, "the authenticated session's messages", |l| {
        field(l, "packets") == Some(*packets)
    });
    let stderr = stop(c);
    let t = tcp_line(&stderr);
    assert_eq!(field(&t, "tls_errors"), Some(1), "{t}");
    assert_eq!(field(&t, "messages"), Some(*packets), "{t}");
    let stored = flows_by_exporter(&read_lines(&file));
    assert_eq!(stored.len(), 1, "{:?}", stored.keys());
    assert_eq!(stored[addr].len() as u64, *records);
}

#[test]
fn tcp_settings_from_the_config_file() {
    let dir = tmp("config");
    let file = dir.join("flows.gz");
    let config = dir.join("collector.toml");
    std::fs::write(
        &config,
        "tcp-listen = [\"127.0.0.1:0\"]\ntcp-idle-timeout = \"1s\"\ntcp-max-sessions = 4\n",
    )
    .unwrap();
    let mut c = Running::start(&[
        "-o",
        file.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    let line = c.wait_line("the tcp listening line", |l| {
        l.contains("listening on tcp ")
    });
    let tcp = line.split("listening on tcp ").nth(1).unwrap();
    let tcp = tcp.split_whitespace().next().unwrap();
    let mut s = connect(tcp);
    assert!(wait_closed(&mut s) >= Duration::from_millis(800));
    let stderr = stop(c);
    assert_eq!(field(&tcp_line(&stderr), "idle_timeouts"), Some(1));

    // TLS without its key is a usage error.
    let out = Command::new(env!("CARGO_BIN_EXE_netflow"))
        .args(["collector", "-p", "0", "--tcp-listen", "127.0.0.1:0"])
        .args(["--tls-client-ca", "/nonexistent.pem"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--tls-key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
