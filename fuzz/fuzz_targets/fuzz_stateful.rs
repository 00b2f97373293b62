//! A sequence of datagrams through one `Decoder` with two exporters, so
//! templates from one datagram meet (mutated) data in the next.
//!
//! Input: `config` byte, then chunks of `flags` (bit 0: exporter B; bits 1..7:
//! clock advance in units of 100 ms), a big-endian u16 length, and that many
//! bytes (cut short at the end of the input). `fuzz/seed-corpus.sh` writes this format.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netflow::ExporterId;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&config, mut rest)) = data.split_first() else {
        return;
    };
    let mut decoder = common::decoder_for(config);
    let limits = if config & 0x80 == 0 {
        netflow::PendingLimits::default()
    } else {
        netflow::PendingLimits {
            max_sets: (config as usize >> 2) & 7,
            max_bytes: 256 << ((config >> 5) & 3),
            max_bytes_per_exporter: 128 << ((config >> 5) & 3),
            max_age_ms: 1000,
        }
    };
    let exporters: [ExporterId; 2] = [
        ExporterId("192.0.2.1:2055".parse().unwrap()),
        ExporterId("[2001:db8::1]:4739".parse().unwrap()),
    ];
    let mut now = 0u64;
    let mut tag = 0u64;
    // Sets that went missing, and those handed back (replayed or dropped).
    let (mut missing, mut returned) = (0usize, 0usize);
    while rest.len() >= 3 {
        let flags = rest[0];
        let len = u16::from_be_bytes([rest[1], rest[2]]) as usize;
        let body = &rest[3..];
        let (datagram, next) = body.split_at(len.min(body.len()));
        rest = next;
        now += (flags >> 1) as u64 * 100;
        tag += 1;
        let exporter = exporters[(flags & 1) as usize];
        let held_before = decoder.pending.len();
        let mut all_returned = true;
        match decoder.decode(exporter, datagram, tag, now) {
            Ok(d) => {
                common::walk_decoded(&d);
                // Nothing appears from nowhere: what is held now was held
                // before or came in this datagram.
                assert!(decoder.pending.len() <= held_before + d.packet.missing.len());
                missing += d.packet.missing.len();
                returned += d.replayed.len() + d.dropped.len();
            }
            Err(e) => {
                let _ = e.to_string();
                // Sets that expired meanwhile: fetch them now, or let the next Decoded report them.
                if tag % 2 == 0 {
                    returned += decoder.take_dropped().len();
                } else {
                    all_returned = false;
                }
            }
        }
        common::check_pending(&decoder, &limits);
        common::check_cache(&decoder.cache);
        for s in decoder.pending.iter() {
            assert!(now - s.received_ms <= limits.max_age_ms, "expired set kept");
        }
        // Every missing set is replayed, dropped or still pending (stats and
        // what the caller was handed agree).
        let st = decoder.pending.stats();
        let counted =
            (st.replayed + st.dropped_age + st.dropped_capacity + st.dropped_exporter_capacity)
                as usize;
        assert_eq!(
            counted + decoder.pending.len(),
            missing,
            "pending sets vanished"
        );
        if all_returned {
            assert_eq!(returned, counted, "sets dropped without being handed back");
        }
    }
    let held = decoder.pending.len();
    assert_eq!(decoder.pending.drain().len(), held);
    assert_eq!(decoder.pending.bytes(), 0);
});
