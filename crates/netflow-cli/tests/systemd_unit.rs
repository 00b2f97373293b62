//! `dist/netflow-collector.service` checked by systemd itself:
//! `systemd-analyze verify` (syntax, known keys and values, an executable
//! ExecStart) on a copy whose ExecStart points at the binary under test, and
//! `systemd-analyze security --offline=yes` (the sandbox's exposure). Then
//! the unit's own ExecStart arguments are run (on a free loopback port) and
//! stopped with the unit's KillSignal, which must flush and exit 0.
//!
//! systemd-analyze is required (Debian: `apt-get install systemd`); without
//! it these tests fail rather than pass silently.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const UNIT: &str = include_str!("../../../dist/netflow-collector.service");
const INSTALLED_BINARY: &str = "/usr/local/bin/netflow";

/// Security findings systemd-analyze may report for this unit, and why each is
/// inherent to a UDP collector on the host's network (weights of systemd 252):
/// - PrivateNetwork (0.5): it must receive from the host's network;
/// - RestrictAddressFamilies_AF_INET_INET6 (0.3): it needs UDP (and TCP for --metrics);
/// - IPAddressDeny (0.2): exporters can be anywhere (`--allow` filters in-process);
/// - ProcSubset (0.1): it reads /proc/net/udp for the kernel's drop counters;
/// - RootDirectoryOrRootImage (0.1): it runs the host's binary, no image;
/// - DeviceAllow (0.1): ProtectClock=yes itself allows reading the RTC.
const INHERENT: [&str; 6] = [
    "PrivateNetwork",
    "RestrictAddressFamilies_AF_INET_INET6",
    "IPAddressDeny",
    "ProcSubset",
    "RootDirectoryOrRootImage",
    "DeviceAllow",
];

/// Overall exposure allowed: the inherent findings above give 1.1 (systemd
/// 252 rounds to one decimal); 0.1 of margin for weight changes between
/// systemd versions. Any one weakening (a capability, no system call filter,
/// another address family, a static user) adds 0.3 or more.
const MAX_EXPOSURE: f64 = 1.2;

fn systemd_analyze() -> &'static str {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "systemd-analyze not found: install systemd (Debian/Ubuntu: apt-get install -y systemd) \
         to check dist/netflow-collector.service"
    );
    "systemd-analyze"
}

/// A fresh directory under the system temp dir.
fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "netflow-unit-{tag}-{}-{:?}",
        std::process::id(),
        Instant::now()
    ));
    let dir = PathBuf::from(
        dir.to_string_lossy()
            .replace([' ', '{', '}', ':', ','], "_"),
    );
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The unit with ExecStart pointing at the binary built for this test.
fn unit_for_test_binary(dir: &Path) -> PathBuf {
    assert_eq!(
        UNIT.matches(INSTALLED_BINARY).count(),
        1,
        "the unit's ExecStart should name {INSTALLED_BINARY} once"
    );
    let unit = UNIT.replace(INSTALLED_BINARY, env!("CARGO_BIN_EXE_netflow"));
    let path = dir.join("netflow-collector.service");
    std::fs::write(&path, unit).unwrap();
    path
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    let tool = systemd_analyze();
    let dir = temp_dir("verify");
    let unit = unit_for_test_binary(&dir);
    let out = Command::new(tool)
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // verify exits 0 even with "Unknown key ... ignoring" warnings: any line
    // naming our unit is a finding.
    let findings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("netflow-collector.service"))
        .collect();
    assert!(
        out.status.success() && findings.is_empty(),
        "systemd-analyze verify {} (exit {:?}):\n{text}",
        unit.display(),
        out.status.code()
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn unit_exposure_is_only_what_a_network_collector_needs() {
    let tool = systemd_analyze();
    let dir = temp_dir("security");
    let unit = unit_for_test_binary(&dir);
    let run = |extra: &[&str]| {
        let out = Command::new(tool)
            .args(["security", "--offline=yes", "--no-pager"])
            .args(extra)
            .arg(&unit)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "systemd-analyze security failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // Every finding with a non-zero exposure is one of the inherent ones.
    let findings: serde_json::Value = serde_json::from_str(&run(&["--json=short"])).unwrap();
    let exposed: Vec<String> = findings
        .as_array()
        .expect("a JSON array of checks")
        .iter()
        .filter(|c| {
            c["exposure"]
                .as_str()
                .and_then(|e| e.parse::<f64>().ok())
                .is_some_and(|e| e > 0.0)
        })
        .map(|c| c["json_field"].as_str().unwrap_or("?").to_string())
        .collect();
    let unexpected: Vec<&String> = exposed
        .iter()
        .filter(|f| !INHERENT.contains(&f.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "exposed beyond the inherent: {unexpected:?}"
    );
    // "→ Overall exposure level for netflow-collector.service: 1.1 OK 🙂"
    let text = run(&[]);
    let overall = text
        .lines()
        .find_map(|l| l.split("netflow-collector.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no overall exposure line in:\n{text}"));
    assert!(
        overall <= MAX_EXPOSURE,
        "overall exposure {overall} > {MAX_EXPOSURE}:\n{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The ExecStart arguments after the binary, with `--port` and `--host`
/// replaced so the test can run them.
fn exec_start_args(port: u16) -> Vec<String> {
    let line = UNIT
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    let mut words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    assert_eq!(words.remove(0), INSTALLED_BINARY);
    for (flag, value) in [("--port", port.to_string()), ("--host", "127.0.0.1".into())] {
        let at = words
            .iter()
            .position(|w| w == flag)
            .unwrap_or_else(|| panic!("ExecStart has no {flag}"));
        words[at + 1] = value;
    }
    words
}

#[test]
fn unit_command_runs_and_stops_cleanly_on_its_kill_signal() {
    assert!(
        UNIT.lines().any(|l| l.trim() == "KillSignal=SIGTERM"),
        "the unit should stop the collector with SIGTERM (it flushes on it)"
    );
    // Port 0: the kernel picks a free port when the collector binds and the
    // collector says which. (Picking one here and passing it on raced with
    // other sockets taking it before the collector bound it.)
    let dir = temp_dir("run");
    let mut child = Command::new(env!("CARGO_BIN_EXE_netflow"))
        .args(exec_start_args(0))
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            all.push_str(&line);
            all.push('\n');
            let _ = lines_tx.send(line);
        }
        all
    });
    // "netflow collector: listening on 127.0.0.1:PORT (receive buffer ..."
    let port: u16 = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the collector's listening line within 20 s");
        if let Some(rest) = line.split("listening on 127.0.0.1:").nth(1) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            break digits.parse().expect("a port after the address");
        }
    };
    assert_ne!(port, 0);
    // One v5 datagram (24-byte header + one 48-byte record), until it is written.
    let mut datagram = vec![0u8; 72];
    datagram[1] = 5;
    datagram[3] = 1;
    datagram[24..28].copy_from_slice(&[10, 0, 0, 1]);
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let written = || -> Option<PathBuf> {
        std::fs::read_dir(&dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                name.starts_with("flows.")
                    && name.ends_with(".gz")
                    && p.metadata().unwrap().len() > 0
            })
    };
    while written().is_none() && Instant::now() < deadline {
        sender.send_to(&datagram, ("127.0.0.1", port)).unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    // One more flow, 10.0.0.2, then SIGTERM (as systemd sends it on stop)
    // well within the 1-second flush interval: stopping must not lose it.
    datagram[24..28].copy_from_slice(&[10, 0, 0, 2]);
    sender.send_to(&datagram, ("127.0.0.1", port)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    let stderr = reader.join().unwrap();
    assert!(
        status.success(),
        "collector exited {status:?} on SIGTERM: {stderr}"
    );
    let file = written().expect("no flows.<unix-seconds>.gz written in the working directory");
    let mut text = String::new();
    use std::io::Read;
    flate2::read::MultiGzDecoder::new(std::fs::File::open(&file).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    // The original's layout stores IPv4 addresses as integers: 10.0.0.1 = 167772161.
    for (flow, as_int) in [("10.0.0.1", 167_772_161u32), ("10.0.0.2", 167_772_162)] {
        assert!(
            text.contains(&format!("\"IPV4_SRC_ADDR\": {as_int},")),
            "flow from {flow} not in {}: {text}",
            file.display()
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
