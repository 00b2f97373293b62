//! Human-readable numbers and times for the report: byte sizes in IEC binary
//! units (KiB, MiB: what `ls -h` and most dashboards mean), counts and bit
//! rates in SI units, timestamps in UTC.

use chrono::{DateTime, Utc};

/// `1536` -> `"1.50 KiB"`, `512` -> `"512 B"`. Three significant digits at most.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    scaled(n as f64, 1024.0, &UNITS, " ")
}

/// `1234567` -> `"1.23 M"`, `999` -> `"999"`.
pub fn count(n: u64) -> String {
    const UNITS: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];
    scaled(n as f64, 1000.0, &UNITS, " ").trim_end().to_string()
}

/// Bits per second: `bytes` transferred over `seconds`. `"8.00 kbit/s"`.
pub fn bit_rate(bytes: u64, seconds: f64) -> String {
    const UNITS: [&str; 7] = [
        "bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s", "Pbit/s", "Ebit/s",
    ];
    if seconds <= 0.0 {
        return "-".to_string();
    }
    scaled(bytes as f64 * 8.0 / seconds, 1000.0, &UNITS, " ")
}

/// Exact integer with thin-space thousands separators: `1234567` -> `"1 234 567"`
/// (U+202F, which does not break a table cell).
pub fn exact(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() * 2);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

/// `part / whole` as a percentage with one decimal (`"12.5 %"`), `"-"` when whole is 0.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".to_string();
    }
    let p = part as f64 * 100.0 / whole as f64;
    if p > 0.0 && p < 0.1 {
        "<0.1 %".to_string()
    } else {
        format!("{p:.1} %")
    }
}

fn scaled(mut x: f64, base: f64, units: &[&str], sep: &str) -> String {
    let mut unit = 0;
    while x >= base && unit + 1 < units.len() {
        x /= base;
        unit += 1;
    }
    if unit == 0 {
        // Whole units below the first step: no decimals for "512 B".
        return format!("{}{sep}{}", x.round() as u64, units[0]);
    }
    // Three significant digits; a value that rounds up to `base` moves up a unit.
    let text = if x < 9.995 {
        format!("{x:.2}")
    } else if x < 99.95 {
        format!("{x:.1}")
    } else if x < base - 0.5 || unit + 1 == units.len() {
        format!("{x:.0}")
    } else {
        return format!("1.00{sep}{}", units[unit + 1]);
    };
    format!("{text}{sep}{}", units[unit])
}

/// Seconds since the epoch -> `DateTime`, `None` outside chrono's range.
fn datetime(seconds: f64) -> Option<DateTime<Utc>> {
    if !seconds.is_finite() {
        return None;
    }
    let whole = seconds.floor();
    let nanos = ((seconds - whole) * 1e9).round().min(999_999_999.0) as u32;
    DateTime::from_timestamp(whole as i64, nanos)
}

/// `"2026-12-01 21:15:16 UTC"`.
pub fn timestamp(seconds: f64) -> String {
    match datetime(seconds) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        None => format!("{seconds} (out of range)"),
    }
}

/// RFC 3339 text for a `<time datetime=...>` attribute.
pub fn rfc3339(seconds: f64) -> String {
    datetime(seconds)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// A short time label with `format` (chrono strftime), UTC.
pub fn time_label(seconds: i64, format: &str) -> String {
    match DateTime::from_timestamp(seconds, 0) {
        Some(t) => t.format(format).to_string(),
        None => seconds.to_string(),
    }
}

/// A duration in words: `90` -> `"1 min 30 s"`, `86400` -> `"1 d"`.
pub fn duration(seconds: u64) -> String {
    const PARTS: [(u64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "min"), (1, "s")];
    if seconds == 0 {
        return "0 s".to_string();
    }
    let mut left = seconds;
    let mut words = Vec::new();
    for (size, name) in PARTS {
        if left >= size {
            words.push(format!("{} {name}", left / size));
            left %= size;
        }
        // Two parts are enough to read a span ("2 d 3 h", not "2 d 3 h 4 min 5 s").
        if words.len() == 2 {
            break;
        }
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_use_binary_units_with_three_digits() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.00 KiB");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(10 * 1024 + 512), "10.5 KiB");
        assert_eq!(bytes(1023 * 1024), "1023 KiB");
        // 1023.9 KiB rounds to 1024 KiB: shown as the next unit.
        assert_eq!(bytes(1024 * 1024 - 100), "1.00 MiB");
        assert_eq!(bytes(5 * 1024 * 1024 * 1024), "5.00 GiB");
        assert_eq!(bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn counts_and_rates_use_si_units() {
        assert_eq!(count(999), "999");
        assert_eq!(count(1_234_567), "1.23 M");
        assert_eq!(bit_rate(1000, 1.0), "8.00 kbit/s");
        assert_eq!(bit_rate(1, 0.0), "-");
        assert_eq!(exact(1_234_567), "1\u{202f}234\u{202f}567");
        assert_eq!(exact(12), "12");
        assert_eq!(percent(1, 8), "12.5 %");
        assert_eq!(percent(1, 100_000), "<0.1 %");
        assert_eq!(percent(0, 0), "-");
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(timestamp(1_700_000_000.0), "2023-11-14 22:13:20 UTC");
        assert_eq!(rfc3339(1_700_000_000.5), "2023-11-14T22:13:20Z");
        assert_eq!(time_label(1_700_000_000, "%H:%M"), "22:13");
        assert!(timestamp(f64::NAN).contains("out of range"));
        assert_eq!(duration(90), "1 min 30 s");
        assert_eq!(duration(86_400 + 7_200 + 5), "1 d 2 h");
        assert_eq!(duration(0), "0 s");
    }
}
