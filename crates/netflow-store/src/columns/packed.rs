//! Packed planes: the stored form of a column whose directory entry has
//! the [`PACKED`] flag (columns format version 8).
//!
//! A column's encoder input (its bitmaps and byte planes, as its codec lays
//! them out) is cut into segments, each a bitmap or one byte plane. A
//! segment whose bytes take few values in no long runs (the generator's
//! protocols, masks, interface numbers, the first bytes of its IPv4
//! addresses; a real exporter's ToS, TCP flags, masks) is stored as a
//! dictionary and an index of 1 to 4 bits a byte ("body"); a segment of
//! one value as that value. LZ4 took 1.3 to 1.7 ns a byte of those planes
//! and kept 31 to 79 % of them; an index of `b` bits keeps `b / 8` and
//! takes a fraction of the time (BENCHMARKS.md, session 20). The other
//! segments ("the rest") and the bodies are then stored together as an LZ4
//! block or as they are: LZ4 still finds what repeats in the indexes of a
//! real exporter's records (the test captures' AS numbers, masks and
//! protocols: 6 % larger without it), and an encoder that finds them
//! random stops trying for a few blocks (as for any column).
//!
//! ```text
//! packed  = segments u16 | codec u8 (0: data as is, 1: data as an LZ4 block)
//!           | segments x (len u32 | bits u8 | dictionary) | data
//!   bits 0: every byte of the segment is the dictionary's one byte;
//!   bits 1 to 4: a dictionary of 2^bits bytes, and a body of
//!     ceil(len / 8) x bits bytes: each 8 bytes of the segment (the last
//!     group padded with index 0) as 8 indexes, byte k at bits k x bits ..,
//!     in a little-endian integer of `bits` bytes;
//!   bits 8: the segment is in the rest (no dictionary);
//! data    = the bodies of the segments of 1 to 4 bits, in segment order,
//!           then the segments of bits 8 in order; as is, or as one LZ4
//!           block to the end of the stored bytes.
//! ```
//!
//! The lengths add up to the column's raw length; the reader checks every
//! length before it copies, so a damaged or crafted column is refused,
//! never read out of bounds.

/// Directory flags bit: the stored bytes are a packed form.
pub(super) const PACKED: u8 = 2;

/// A segment kept whole (in the rest).
const REST: u8 = 8;
/// Largest index width: 16 values.
const MAX_BITS: u8 = 4;
/// A segment shorter than this goes to the rest (the dictionary and header
/// would be most of it).
const MIN_PACKED: usize = 256;
/// Segment lengths are `u32`; the reader refuses more segments than this
/// (a column has at most 1 + 16 + 8 of them).
const MAX_SEGMENTS: usize = 64;

/// Buffers of a packer, kept between columns and blocks.
#[derive(Debug, Default)]
pub(super) struct Packer {
    head: Vec<u8>,
    bodies: Vec<u8>,
    rest: Vec<u8>,
}

/// What [`Packer::pack`] did.
pub(super) struct Packed {
    /// End of the packed form in `out`.
    pub end: usize,
    /// LZ4 was tried on the data and kept no less than
    /// `incompressible / 16` of it.
    pub incompressible: bool,
}

impl Packer {
    /// `input` cut into segments of `lens` (which add up to its length),
    /// packed into `out` from `at` on (`out` grown as needed). The data
    /// (bodies and rest) is tried with LZ4 when `try_lz4`. `None` when no segment packs (the
    /// caller stores the column as before).
    pub(super) fn pack(
        &mut self,
        input: &[u8],
        lens: &[usize],
        try_lz4: bool,
        incompressible: usize,
        out: &mut Vec<u8>,
        at: usize,
    ) -> Option<Packed> {
        debug_assert_eq!(lens.iter().sum::<usize>(), input.len());
        self.head.clear();
        self.bodies.clear();
        self.rest.clear();
        let mut packed_any = false;
        let mut from = 0;
        let mut count = 0u16;
        for &len in lens.iter().filter(|l| **l > 0) {
            let segment = &input[from..from + len];
            from += len;
            count += 1;
            let packed = match plan(segment) {
                REST => None,
                bits => self.pack_segment(segment, bits),
            };
            if packed.is_some() {
                packed_any = true;
            } else {
                self.head.extend_from_slice(&(len as u32).to_le_bytes());
                self.head.push(REST);
                self.rest.extend_from_slice(segment);
            }
        }
        if !packed_any {
            return None;
        }
        // The data: the bodies, then the rest; an LZ4 block when smaller.
        self.bodies.extend_from_slice(&self.rest);
        let region = &self.bodies;
        let room = lz4_flex::block::get_maximum_output_size(region.len());
        let head_len = 3 + self.head.len();
        let data_at = at + head_len;
        if out.len() < data_at + room {
            out.resize(data_at + room, 0);
        }
        let mut incompressible_data = false;
        let mut codec = 0u8;
        let mut end = data_at + region.len();
        if try_lz4 && !region.is_empty() {
            let n = lz4_flex::block::compress_into(region, &mut out[data_at..])
                .expect("the output is sized by get_maximum_output_size");
            incompressible_data = n * 16 > region.len() * incompressible;
            if n < region.len() {
                codec = 1;
                end = data_at + n;
            }
        }
        if codec == 0 {
            out[data_at..end].copy_from_slice(region);
        }
        out[at..at + 2].copy_from_slice(&count.to_le_bytes());
        out[at + 2] = codec;
        out[at + 3..data_at].copy_from_slice(&self.head);
        Some(Packed {
            end,
            incompressible: incompressible_data,
        })
    }

    /// `segment` as a dictionary and an index of `bits` bits a byte (more if
    /// the plan's sample missed values, at most [`MAX_BITS`]), its header
    /// entry and body appended; `None` (nothing appended) when it takes
    /// more values.
    fn pack_segment(&mut self, segment: &[u8], bits: u8) -> Option<()> {
        if bits == 0 {
            let value = segment[0];
            if is_all(segment, value) {
                self.head
                    .extend_from_slice(&(segment.len() as u32).to_le_bytes());
                self.head.extend_from_slice(&[0, value]);
                return Some(());
            }
            return None;
        }
        let body_at = self.bodies.len();
        let mut bits = bits;
        loop {
            let mut dict = [0u8; 16];
            let fits = match bits {
                1 => pack_bits::<1>(segment, &mut dict, &mut self.bodies),
                2 => pack_bits::<2>(segment, &mut dict, &mut self.bodies),
                3 => pack_bits::<3>(segment, &mut dict, &mut self.bodies),
                _ => pack_bits::<4>(segment, &mut dict, &mut self.bodies),
            };
            if fits {
                self.head
                    .extend_from_slice(&(segment.len() as u32).to_le_bytes());
                self.head.push(bits);
                self.head.extend_from_slice(&dict[..1 << bits]);
                return Some(());
            }
            self.bodies.truncate(body_at);
            // The sample saw fewer values than there are: once more with
            // room for 16, then give up.
            if bits == MAX_BITS {
                return None;
            }
            bits = MAX_BITS;
        }
    }
}

/// How to store `segment`, from a sample of 16 windows of 32 bytes: 0 (one
/// value), 1 to 4 (the bits of an index for the values seen), or
/// [`REST`]: more than 16 values, or runs (a quarter or fewer of the
/// sampled neighbours differ), where LZ4 stores a run in a few bytes and
/// takes it faster than an index is made.
fn plan(segment: &[u8]) -> u8 {
    const WINDOWS: usize = 16;
    const WINDOW: usize = 32;
    if segment.len() < MIN_PACKED {
        return REST;
    }
    let mut seen = [0u64; 4];
    let mut changes = 0;
    let step = (segment.len() - WINDOW) / (WINDOWS - 1);
    for w in 0..WINDOWS {
        let window = &segment[w * step..w * step + WINDOW];
        for &b in window {
            seen[usize::from(b >> 6)] |= 1 << (b & 63);
        }
        changes += window.windows(2).filter(|p| p[0] != p[1]).count();
    }
    let distinct: u32 = seen.iter().map(|s| s.count_ones()).sum();
    match distinct {
        1 => 0,
        _ if distinct > 16 || changes * 4 <= WINDOWS * (WINDOW - 1) => REST,
        2 => 1,
        3..=4 => 2,
        5..=8 => 3,
        _ => 4,
    }
}

/// Whether every byte of `bytes` is `value`: 4 KiB at a time without a
/// branch inside (`all` stops at each byte and is not vectorized: four
/// times slower on the planes of one value, BENCHMARKS.md session 20).
fn is_all(bytes: &[u8], value: u8) -> bool {
    bytes
        .chunks(4096)
        .all(|chunk| chunk.iter().fold(0u8, |acc, &b| acc | (b ^ value)) == 0)
}

/// `segment`'s indexes of `B` bits appended to `body`, the dictionary
/// (values in the order first seen) in `dict`; false when it takes more
/// than `2^B` values (`body` then holds a part: the caller truncates it).
fn pack_bits<const B: usize>(segment: &[u8], dict: &mut [u8; 16], body: &mut Vec<u8>) -> bool {
    // Index of each byte value; 0xff: not in the dictionary yet.
    let mut index = [0xffu8; 256];
    let mut values = 0usize;
    let groups = segment.len().div_ceil(8);
    let at = body.len();
    body.resize(at + groups * B, 0);
    let out = &mut body[at..];
    // The last group padded with the first byte (index 0).
    let mut last = [segment[0]; 8];
    let tail = segment.len() / 8 * 8;
    last[..segment.len() - tail].copy_from_slice(&segment[tail..]);
    let chunks = segment
        .chunks_exact(8)
        .chain((tail < segment.len()).then_some(&last[..]));
    for (group, o) in chunks.zip(out.chunks_exact_mut(B)) {
        let mut acc = 0u64;
        let mut unknown = 0u8;
        for (k, &b) in group.iter().enumerate() {
            let i = index[usize::from(b)];
            unknown |= i;
            acc |= u64::from(i & 15) << (k * B);
        }
        if unknown & 0x80 != 0 {
            acc = 0;
            for (k, &b) in group.iter().enumerate() {
                if index[usize::from(b)] == 0xff {
                    if values == 1 << B {
                        return false;
                    }
                    index[usize::from(b)] = values as u8;
                    dict[values] = b;
                    values += 1;
                }
                acc |= u64::from(index[usize::from(b)]) << (k * B);
            }
        }
        o.copy_from_slice(&acc.to_le_bytes()[..B]);
    }
    true
}

/// The indexes of `B` bits in `body` through `dict` into `out` (whose
/// length is the segment's; `body` holds ceil(len / 8) x B bytes).
fn unpack_bits<const B: usize>(body: &[u8], dict: &[u8; 16], out: &mut [u8]) {
    let mask = (1u64 << B) - 1;
    let mut groups = body.chunks_exact(B);
    let word = |g: &[u8]| {
        let mut w = [0u8; 8];
        w[..B].copy_from_slice(g);
        u64::from_le_bytes(w)
    };
    let mut chunks = out.chunks_exact_mut(8);
    for (o, g) in (&mut chunks).zip(&mut groups) {
        let acc = word(g);
        for (k, x) in o.iter_mut().enumerate() {
            *x = dict[((acc >> (k * B)) & mask) as usize];
        }
    }
    let o = chunks.into_remainder();
    if let Some(g) = groups.next() {
        let acc = word(g);
        for (k, x) in o.iter_mut().enumerate() {
            *x = dict[((acc >> (k * B)) & mask) as usize];
        }
    }
}

/// A packed form `stored` read into `raw` (whose length is the column's
/// raw length), with `scratch` as room for the data after LZ4. The error
/// says what does not fit.
pub(super) fn unpack(stored: &[u8], raw: &mut [u8], scratch: &mut Vec<u8>) -> Result<(), String> {
    let short = || "packed form cut short".to_string();
    let count = usize::from(u16::from_le_bytes(
        stored
            .get(..2)
            .ok_or_else(short)?
            .try_into()
            .expect("2 bytes"),
    ));
    let codec = *stored.get(2).ok_or_else(short)?;
    if count > MAX_SEGMENTS {
        return Err(format!("packed form of {count} segments"));
    }
    if codec > 1 {
        return Err(format!("packed form's data codec {codec}"));
    }
    // (len, bits, dictionary) of each segment.
    let mut segments = [(0usize, 0u8, [0u8; 16]); MAX_SEGMENTS];
    let mut at = 3;
    let (mut total, mut body_len, mut rest_len) = (0usize, 0usize, 0usize);
    for s in segments.iter_mut().take(count) {
        let head = stored.get(at..at + 5).ok_or_else(short)?;
        let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
        let bits = head[4];
        at += 5;
        match bits {
            REST => rest_len += len,
            0..=MAX_BITS => {
                let n = 1usize << bits;
                s.2[..n].copy_from_slice(stored.get(at..at + n).ok_or_else(short)?);
                at += n;
                body_len += len.div_ceil(8) * usize::from(bits);
            }
            _ => return Err(format!("packed segment of {bits} bits")),
        }
        total += len;
        *s = (len, bits, s.2);
    }
    if total != raw.len() {
        return Err(format!(
            "packed segments of {total} bytes, expected {}",
            raw.len()
        ));
    }
    let stored_data = &stored[at.min(stored.len())..];
    let data_len = body_len + rest_len;
    let data: &[u8] = if codec == 1 {
        if scratch.len() < data_len {
            scratch.resize(data_len, 0);
        }
        match lz4_flex::block::decompress_into(stored_data, &mut scratch[..data_len]) {
            Ok(n) if n == data_len => &scratch[..data_len],
            Ok(n) => {
                return Err(format!(
                    "packed data of {n} bytes after LZ4, expected {data_len}"
                ))
            }
            Err(e) => return Err(format!("packed data: LZ4: {e}")),
        }
    } else if stored_data.len() == data_len && at <= stored.len() {
        stored_data
    } else {
        return Err(format!(
            "packed data of {} bytes, expected {data_len}",
            stored.len().saturating_sub(at)
        ));
    };
    let (bodies, rest) = data.split_at(body_len);
    let (mut out_at, mut body_at, mut rest_at) = (0, 0, 0);
    for &(len, bits, dict) in &segments[..count] {
        let out = &mut raw[out_at..out_at + len];
        out_at += len;
        if bits == REST {
            out.copy_from_slice(&rest[rest_at..rest_at + len]);
            rest_at += len;
            continue;
        }
        let body = &bodies[body_at..body_at + len.div_ceil(8) * usize::from(bits)];
        match bits {
            0 => out.fill(dict[0]),
            1 => unpack_bits::<1>(body, &dict, out),
            2 => unpack_bits::<2>(body, &dict, out),
            3 => unpack_bits::<3>(body, &dict, out),
            _ => unpack_bits::<4>(body, &dict, out),
        }
        body_at += body.len();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(input: &[u8], lens: &[usize], try_lz4: bool) -> Option<Vec<u8>> {
        let mut out = vec![0xAA; 3];
        let packed = Packer::default().pack(input, lens, try_lz4, 15, &mut out, 3)?;
        out.truncate(packed.end);
        Some(out.split_off(3))
    }

    fn unpacked(stored: &[u8], len: usize) -> Result<Vec<u8>, String> {
        let mut raw = vec![0x55; len];
        unpack(stored, &mut raw, &mut Vec::new()).map(|_| raw)
    }

    /// Bytes of `len` drawn from `values`, no two neighbours alike more
    /// often than chance (a xorshift).
    fn random_of(values: &[u8], len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                values[(seed % values.len() as u64) as usize]
            })
            .collect()
    }

    #[test]
    fn segments_by_hand() {
        // A bitmap of 3 bytes (rest), a plane of 300 bytes of 6 and 17
        // (1 bit), a plane of 300 bytes of 9 (one value).
        let mut plane = vec![6u8; 300];
        for i in (0..300).filter(|i| i % 3 == 1 || i % 5 == 0) {
            plane[i] = 17;
        }
        let input: Vec<u8> = [&[0xff, 0xff, 0x0f][..], &plane, &[9u8; 300]].concat();
        let stored = pack(&input, &[3, 300, 300], false).expect("packs");
        let mut want = vec![3, 0, 0]; // three segments, the data as is
        want.extend_from_slice(&[3, 0, 0, 0, REST]);
        want.extend_from_slice(&[44, 1, 0, 0, 1, 17, 6]); // 300, 1 bit, dictionary 17 6 (first seen first)
        want.extend_from_slice(&[44, 1, 0, 0, 0, 9]); // 300, one value: 9
                                                      // Plane bytes 0..8: 17 17 6 6 17 17 6 17 -> indexes 0 0 1 1 0 0 1 0: bits 2, 3, 6.
        assert_eq!(&plane[..8], &[17, 17, 6, 6, 17, 17, 6, 17]);
        let mut body = Vec::new();
        for group in plane.chunks(8) {
            let mut byte = 0u8;
            for (k, &b) in group.iter().enumerate() {
                byte |= u8::from(b == 6) << k;
            }
            body.push(byte);
        }
        assert_eq!(body[0], 0b0100_1100);
        assert_eq!(body.len(), 38);
        want.extend_from_slice(&body);
        want.extend_from_slice(&[0xff, 0xff, 0x0f]);
        assert_eq!(stored, want);
        assert_eq!(unpacked(&stored, input.len()).unwrap(), input);
    }

    #[test]
    fn every_width_reads_back() {
        for (values, bits) in [
            (&[1u8, 2][..], 1u8),
            (&[1, 2, 3], 2),
            (&[0, 10, 20, 30, 40, 50, 60], 3),
            (&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 4),
        ] {
            for len in [256, 257, 263, 1000, 4099] {
                let input = random_of(values, len, len as u64 + 1);
                assert_eq!(plan(&input), bits, "{values:?}");
                let stored = pack(&input, &[len], true).expect("packs");
                assert_eq!(stored[3 + 4], bits);
                // Header, dictionary, body: nothing else.
                let body = len.div_ceil(8) * usize::from(bits);
                assert_eq!(stored.len(), 3 + 5 + (1 << bits) + body, "{values:?} {len}");
                assert_eq!(unpacked(&stored, len).unwrap(), input, "{values:?} {len}");
            }
        }
    }

    #[test]
    fn values_the_sample_missed_widen_the_index_or_go_to_the_rest() {
        // Two values where the sample looks, a third and fourth elsewhere.
        let mut input = random_of(&[1, 2], 4096, 7);
        input[40] = 3;
        input[2000] = 4;
        assert_eq!(plan(&input), 1);
        let stored = pack(&input, &[4096], false).unwrap();
        assert_eq!(stored[3 + 4], MAX_BITS);
        assert_eq!(unpacked(&stored, 4096).unwrap(), input);
        // 17 values: into the rest, and nothing else packs: None.
        for (i, v) in (3..18).enumerate() {
            input[41 + i] = v;
        }
        assert_eq!(plan(&input), 1);
        assert!(pack(&input, &[4096], true).is_none());
        // A plane of one value but one byte: not one value, to the rest.
        let mut one = vec![5u8; 1000];
        one[999] = 6;
        assert_eq!(plan(&one), 0);
        assert!(pack(&one, &[1000], true).is_none());
    }

    #[test]
    fn runs_and_many_values_stay_for_lz4() {
        let runs: Vec<u8> = (0..4000).map(|i| (i / 30 % 3) as u8).collect();
        assert_eq!(plan(&runs), REST);
        let many: Vec<u8> = (0..4000).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(plan(&many), REST);
        assert_eq!(plan(&[1, 2, 1, 2]), REST, "short");
        // With one packed segment, the rest is LZ4 when that is smaller.
        let input: Vec<u8> = [&runs[..], &[7u8; 500]].concat();
        let stored = pack(&input, &[4000, 500], true).unwrap();
        assert_eq!(stored[2], 1, "LZ4 data");
        assert!(stored.len() < 600);
        assert_eq!(unpacked(&stored, 4500).unwrap(), input);
        let stored = pack(&input, &[4000, 500], false).unwrap();
        assert_eq!(stored[2], 0, "data as is");
        assert_eq!(unpacked(&stored, 4500).unwrap(), input);
    }

    #[test]
    fn damaged_forms_are_refused() {
        let input: Vec<u8> = [random_of(&[1, 2, 3], 1000, 3), random_of(&[1, 9], 300, 5)].concat();
        let stored = pack(&input, &[1000, 300], true).unwrap();
        assert_eq!(unpacked(&stored, 1300).unwrap(), input);
        // Every cut and every wrong raw length: an error, no panic.
        for cut in 0..stored.len() {
            assert!(unpacked(&stored[..cut], 1300).is_err(), "cut at {cut}");
        }
        assert!(unpacked(&stored, 1299).is_err());
        assert!(unpacked(&stored, 1301).is_err());
        // Every byte changed to every value: read or refused, never a panic.
        let mut refused = 0;
        for i in 0..stored.len().min(40) {
            for v in 0..=255u8 {
                let mut bad = stored.clone();
                bad[i] = v;
                refused += usize::from(unpacked(&bad, 1300).is_err());
            }
        }
        assert!(refused > 1000, "{refused}");
    }
}
