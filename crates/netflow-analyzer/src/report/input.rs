//! Feeding stored files into a [`ReportBuilder`]: one [`Entry`] per stored
//! export datagram from [`FlowReader`] (both stored layouts, every version).
//!
//! Per entry, the header goes to the sequence accounting and each flow to the
//! aggregates. A flow is placed in time by its start
//! ([`Flow::start_ms`](crate::Flow::start_ms)) when the record allows
//! deriving it, else by the export time in its datagram's header (the
//! exporter's clock), else by the receive time. A start more than
//! [`MAX_CLOCK_SKEW_SECONDS`] away from that export (or receive) time is not
//! used either: one record with a garbage timestamp must not stretch the chart
//! over years. The export time, not the receive time, is the reference, so
//! old exports replayed into a collector today keep their own times.
//!
//! Known limits of the stored layouts for the sequence accounting:
//! - `--format flows` writes no line for a datagram without data records, so
//!   a v9 template-only export packet (which the v9 sequence counts) looks
//!   lost; such streams are marked in [`ExporterHealth::from_flows_layout`](super::ExporterHealth).
//! - v5 engine type/id are not in [`HeaderInfo`], so all engines of one v5
//!   exporter are one stream here.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;

use netflow::wire::{ipfix, v1, v5, v7, v9};
use netflow::Header;

use super::{FlowFacts, ReportBuilder, ReportData};
use crate::{Entry, FlowReader, HeaderInfo};

/// A flow start further than this from its datagram's export time is not trusted.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 86_400;

/// A file that could not be read or written.
#[derive(Debug)]
pub struct FileError {
    pub path: String,
    /// `"read"` or `"write"`.
    pub action: &'static str,
    pub error: std::io::Error,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot {} {}: {}", self.action, self.path, self.error)
    }
}

impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl ReportData {
    /// Read every file (plain or gzip, either stored layout) and aggregate.
    /// A file that cannot be opened is an error; bad lines and a file cut
    /// short (corrupt gzip) are counted and shown in the report.
    pub fn from_files<P: AsRef<Path>>(paths: &[P], title: &str) -> Result<ReportData, FileError> {
        let mut builder = ReportBuilder::default();
        let mut names = Vec::with_capacity(paths.len());
        for path in paths {
            let name = path.as_ref().display().to_string();
            let reader = FlowReader::open(path).map_err(|error| FileError {
                path: name.clone(),
                action: "read",
                error,
            })?;
            builder.add_reader(&name, reader);
            names.push(name);
        }
        Ok(builder.finish(title, &names))
    }

    /// Read standard input (plain or gzip).
    pub fn from_stdin(title: &str) -> Result<ReportData, FileError> {
        let mut builder = ReportBuilder::default();
        let reader = FlowReader::from_reader(std::io::stdin()).map_err(|error| FileError {
            path: "stdin".to_string(),
            action: "read",
            error,
        })?;
        builder.add_reader("stdin", reader);
        Ok(builder.finish(title, &["stdin".to_string()]))
    }
}

/// `netflow analyzer report`: read `files` (stdin when empty), write the page
/// to `output`. The page is written to a temporary file beside `output` and
/// renamed, so a browser never opens half a page. Returns a one-line summary.
pub fn write_report<P: AsRef<Path>>(
    files: &[P],
    output: &Path,
    title: &str,
) -> Result<String, FileError> {
    let data = if files.is_empty() {
        ReportData::from_stdin(title)?
    } else {
        ReportData::from_files(files, title)?
    };
    let html = super::render(&data);
    let write_error = |error| FileError {
        path: output.display().to_string(),
        action: "write",
        error,
    };
    let mut tmp_name = output.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = output.with_file_name(tmp_name);
    std::fs::write(&tmp, html.as_bytes()).map_err(write_error)?;
    std::fs::rename(&tmp, output).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        write_error(e)
    })?;
    let t = &data.totals;
    Ok(format!(
        "wrote {} ({}): {} flows, {}, {} packets, {} exports from {} exporters, {} buckets of {}; {} unparsable lines",
        output.display(),
        super::units::bytes(html.len() as u64),
        t.flows,
        super::units::bytes(t.bytes),
        t.packets,
        t.exports,
        t.exporters,
        data.timeline.buckets.len(),
        super::units::duration(data.timeline.bucket_seconds),
        data.unparsable_lines,
    ))
}

impl ReportBuilder {
    /// Consume a reader: every entry, then its bad-line counts (under `name`).
    pub fn add_reader(&mut self, name: &str, mut reader: FlowReader) {
        for entry in reader.by_ref() {
            self.add_entry(&entry);
        }
        let stats = reader.stats();
        let quoted = stats.errors.len() as u64;
        for (line, message) in &stats.errors {
            self.add_bad_line(name, *line, message.clone());
        }
        // Bad lines past the ones the reader quotes are counted without text.
        self.add_unquoted_problems(stats.bad_lines.saturating_sub(quoted));
        if stats.bad_records > 0 {
            self.add_problem(
                name,
                0,
                format!(
                    "{} records inside readable lines were not objects and were skipped",
                    stats.bad_records
                ),
            );
        }
        if let Some(e) = reader.io_error() {
            self.add_problem(name, stats.lines + 1, format!("reading stopped: {e}"));
        }
    }

    /// One stored datagram: its header and its flows.
    pub fn add_entry(&mut self, entry: &Entry) {
        let records = entry.flows.len() as u64 + entry.options_records as u64;
        let exporter = entry
            .exporter
            .unwrap_or(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)));
        if let Some(header) = to_header(&entry.header, records) {
            // The flows layout has no header count (see HeaderInfo::count).
            let flows_layout = entry.header.count.is_none();
            self.add_export(
                entry.received,
                exporter,
                &header,
                records,
                true,
                flows_layout,
            );
        } else {
            self.add_unknown_version_export();
        }
        let reference = entry
            .header
            .export_time
            .filter(|t| *t > 0)
            .map(|t| t.min(i64::MAX as u64) as i64)
            .unwrap_or(entry.received.floor() as i64);
        for flow in &entry.flows {
            let start = flow.start_ms.map(|ms| ms.div_euclid(1000));
            let (time, start_known) = match start {
                Some(s) if s.abs_diff(reference) <= MAX_CLOCK_SKEW_SECONDS as u64 => (s, true),
                _ => (reference, false),
            };
            self.add_flow(&FlowFacts {
                time,
                start_known,
                src: flow.src,
                dst: flow.dst,
                protocol: flow.protocol,
                src_port: flow.src_port,
                dst_port: flow.dst_port,
                bytes: flow.bytes,
                packets: flow.packets,
                reverse_bytes: flow.reverse_bytes.unwrap_or(0),
                reverse_packets: flow.reverse_packets.unwrap_or(0),
            });
        }
    }
}

/// The wire header the sequence tracker needs, from what the stored line kept.
/// `records` stands in for a missing v1/v5/v7 `count` (flows layout).
fn to_header(h: &HeaderInfo, records: u64) -> Option<Header> {
    let count = h
        .count
        .map(|c| c.min(u16::MAX as u32) as u16)
        .unwrap_or(records.min(u16::MAX as u64) as u16);
    let export_time = h.export_time.unwrap_or(0).min(u32::MAX as u64) as u32;
    // The flows layout keeps no uptime. An uptime that follows the export
    // time (a constant boot time) orders datagrams by export time and never
    // looks like a reboot; the wrapping cast is read as an uptime wrap.
    let uptime = h.uptime_ms.unwrap_or((export_time as u64 * 1000) as u32);
    let sequence = h.sequence.unwrap_or(0);
    Some(match h.version {
        1 => Header::V1(v1::V1Header {
            version: 1,
            count,
            uptime,
            timestamp: export_time,
            ..Default::default()
        }),
        5 => Header::V5(v5::V5Header {
            version: 5,
            count,
            uptime,
            timestamp: export_time,
            sequence,
            sampling_interval: h.sampling_interval.unwrap_or(0),
            ..Default::default()
        }),
        7 => Header::V7(v7::V7Header {
            version: 7,
            count,
            uptime,
            timestamp: export_time,
            sequence,
            ..Default::default()
        }),
        9 => Header::V9(v9::V9Header {
            version: 9,
            count,
            uptime,
            timestamp: export_time,
            sequence,
            source_id: h.domain.unwrap_or(0),
        }),
        10 => Header::Ipfix(ipfix::IpfixHeader {
            version: 10,
            length: 0,
            export_time,
            sequence,
            observation_domain: h.domain.unwrap_or(0),
        }),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Flow, HeaderInfo};

    fn entry(received: f64, export_time: Option<u64>, start_ms: Option<i64>) -> Entry {
        Entry {
            line: 1,
            key: String::new(),
            received,
            exporter: Some("192.0.2.1:2055".parse().unwrap()),
            header: HeaderInfo {
                version: 9,
                count: Some(1),
                sequence: Some(0),
                domain: Some(0),
                export_time,
                uptime_ms: Some(1000),
                sampling_interval: None,
            },
            flows: vec![Flow {
                received,
                exporter: None,
                version: 9,
                src: None,
                dst: None,
                src_port: None,
                dst_port: None,
                protocol: Some(6),
                bytes: 10,
                packets: 1,
                has_bytes: true,
                has_packets: true,
                reverse_bytes: None,
                reverse_packets: None,
                first_switched: None,
                last_switched: None,
                time_base: None,
                start_ms,
                end_ms: None,
                ip_version: None,
            }],
            options_records: 0,
        }
    }

    fn placed(e: Entry) -> (i64, u64) {
        let mut b = ReportBuilder::default();
        b.add_entry(&e);
        let r = b.finish("", &[]);
        (r.first_flow.unwrap(), r.flows_timed_by_receive)
    }

    #[test]
    fn flows_are_placed_by_start_then_export_then_receive_time() {
        let now = 1_800_000_000.0;
        let old = 1_500_000_000u64;
        // A replayed old export: its own start time, a year before receipt.
        assert_eq!(
            placed(entry(now, Some(old), Some(old as i64 * 1000 - 5_500))),
            (old as i64 - 6, 0)
        );
        // A garbage start (1970) against a sane export time: the export time.
        assert_eq!(placed(entry(now, Some(old), Some(1_000))), (old as i64, 1));
        // No start and no export time: the receive time.
        assert_eq!(placed(entry(now, None, None)), (now as i64, 1));
    }
}
