//! Pieces of JSON written exactly as Python's `json.dumps` (default
//! arguments: `ensure_ascii=True`, `allow_nan=True`) and `repr` write them.

use std::fmt::Write as _;
use std::net::Ipv6Addr;

/// Python's `repr(float)`: the shortest text that reads back as the same
/// double, in fixed notation for decimal exponents -4..16 (always with a
/// fractional part: `1700000000.0`) and scientific notation otherwise
/// (`1e+16`, `1.5e-05`). Non-finite values as `json.dumps` writes them
/// (`NaN`, `Infinity`, `-Infinity`).
pub fn py_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    // `{:e}` gives the shortest round-trip digits: "-1.2345e6", "0e0".
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci
        .split_once('e')
        .expect("LowerExp always has an exponent");
    let exp: i32 = exp.parse().expect("LowerExp exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::from(sign);
    if (-4..16).contains(&exp) {
        if exp < 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    out
}

/// A JSON string as `json.dumps` writes it (ASCII only: everything outside
/// `' '..='~'` escaped, `\uXXXX` in lowercase hex, surrogate pairs above U+FFFF).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let mut rest = s;
    loop {
        // Runs of printable ASCII (most of every line: names, addresses)
        // are copied at once; only what is escaped goes char by char.
        let plain = rest
            .bytes()
            .position(|b| !(b' '..=b'~').contains(&b) || b == b'"' || b == b'\\')
            .unwrap_or(rest.len());
        out.extend_from_slice(&rest.as_bytes()[..plain]);
        // All before `plain` is ASCII: it is a char boundary.
        rest = &rest[plain..];
        let Some(c) = rest.chars().next() else { break };
        rest = &rest[c.len_utf8()..];
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            ' '..='~' => out.push(c as u8),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(Utf8Sink(out), "\\u{u:04x}");
                }
            }
        }
    }
    out.push(b'"');
}

/// `fmt::Write` into a byte vector.
pub(crate) struct Utf8Sink<'a>(pub &'a mut Vec<u8>);

impl std::fmt::Write for Utf8Sink<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Python's `repr(bytes)`: `b'eth0\xff\x00'` (double quotes when the bytes
/// hold `'` but no `"`).
pub fn py_bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut s = String::with_capacity(b.len() + 3);
    s.push('b');
    s.push(quote);
    for &x in b {
        match x {
            b'\\' => s.push_str("\\\\"),
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            _ if x as char == quote => {
                s.push('\\');
                s.push(quote);
            }
            0x20..=0x7e => s.push(x as char),
            _ => {
                let _ = write!(s, "\\x{x:02x}");
            }
        }
    }
    s.push(quote);
    s
}

/// The decimal text of a big-endian unsigned integer of any width (Python's
/// `int.from_bytes(b, "big")`), e.g. a 16-byte IPv6 address or a 6-byte MAC.
pub fn big_uint_decimal(b: &[u8]) -> String {
    let b = &b[b.iter().position(|&x| x != 0).unwrap_or(b.len())..];
    if b.len() <= 16 {
        let v = b.iter().fold(0u128, |acc, &x| (acc << 8) | x as u128);
        return v.to_string();
    }
    // Base 10^9 limbs, least significant first.
    const BASE: u64 = 1_000_000_000;
    let mut limbs: Vec<u64> = vec![0];
    for &x in b {
        let mut carry = x as u64;
        for limb in limbs.iter_mut() {
            let v = *limb * 256 + carry;
            *limb = v % BASE;
            carry = v / BASE;
        }
        while carry > 0 {
            limbs.push(carry % BASE);
            carry /= BASE;
        }
    }
    let mut s = limbs.last().expect("at least one limb").to_string();
    for limb in limbs.iter().rev().skip(1) {
        let _ = write!(s, "{limb:09}");
    }
    s
}

/// An IPv6 address as Python's `ipaddress.IPv6Address.compressed` (Python
/// 3.11): eight lowercase hex groups, the longest run (first on ties) of two
/// or more zero groups replaced by `::`; never the dotted IPv4 tail Rust's
/// `Display` uses for IPv4-mapped addresses.
pub fn py_ipv6(a: Ipv6Addr) -> String {
    let seg = a.segments();
    let (mut best_start, mut best_len) = (0usize, 0usize);
    let mut i = 0;
    while i < 8 {
        if seg[i] == 0 {
            let start = i;
            while i < 8 && seg[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                best_start = start;
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    let hex = |r: &[u16]| {
        r.iter()
            .map(|g| format!("{g:x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    if best_len < 2 {
        return hex(&seg);
    }
    format!(
        "{}::{}",
        hex(&seg[..best_start]),
        hex(&seg[best_start + best_len..])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_like_python() {
        for (x, want) in [
            (1700000000.123456, "1700000000.123456"),
            (1700000001.5, "1700000001.5"),
            (1700000000.0, "1700000000.0"),
            (1553946008.0, "1553946008.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (9999999999999998.0, "9999999999999998.0"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (123.456e-10, "1.23456e-08"),
            (1e300, "1e+300"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(py_float_repr(x), want, "{x:e}");
        }
    }

    #[test]
    fn strings_like_json_dumps() {
        let mut out = Vec::new();
        write_str(&mut out, "é\u{7f}\u{1}𝄞\"\\\n\t/");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""\u00e9\u007f\u0001\ud834\udd1e\"\\\n\t/""#
        );
    }

    #[test]
    fn strings_with_plain_runs_between_escapes_like_json_dumps() {
        // Expected: python3 -c 'import json; print(json.dumps("eth0 é/x\"y\\z\u2028 end"))'
        let mut out = Vec::new();
        write_str(&mut out, "eth0 é/x\"y\\z\u{2028} end");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""eth0 \u00e9/x\"y\\z\u2028 end""#
        );
    }

    #[test]
    fn bytes_repr_like_python() {
        assert_eq!(py_bytes_repr(b"eth0\xff\x00"), r"b'eth0\xff\x00'");
        assert_eq!(py_bytes_repr(b"it's\x00\""), r#"b'it\'s\x00"'"#);
        assert_eq!(py_bytes_repr(b"a'b"), r#"b"a'b""#);
    }

    #[test]
    fn big_integers() {
        assert_eq!(big_uint_decimal(&[]), "0");
        assert_eq!(big_uint_decimal(&[0, 0, 1, 0]), "256");
        assert_eq!(big_uint_decimal(&[0xff; 16]), u128::MAX.to_string());
        // 2^136 = 87112285931760246646623899502532662132736
        let mut b = vec![1u8];
        b.extend([0u8; 17]);
        assert_eq!(
            big_uint_decimal(&b),
            "87112285931760246646623899502532662132736"
        );
    }

    #[test]
    fn ipv6_like_python() {
        for (a, want) in [
            ("::ffff:1.2.3.4", "::ffff:102:304"),
            ("::1.2.3.4", "::102:304"),
            ("1:0:1:1:1:1:1:1", "1:0:1:1:1:1:1:1"),
            ("1:0:0:1:0:0:1:1", "1::1:0:0:1:1"),
            ("::", "::"),
            ("::1", "::1"),
            ("fe80::", "fe80::"),
            ("2001:db8::1", "2001:db8::1"),
        ] {
            assert_eq!(py_ipv6(a.parse().unwrap()), want);
        }
    }
}
