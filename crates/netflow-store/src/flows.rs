//! [`Format::Flows`](crate::Format::Flows): one flat JSON object per record,
//! compact, keys in this order:
//!
//! ```text
//! {"received":1700000000.123,"exporter":"127.0.0.1:2055","version":9,"domain":0,
//!  "template_id":256,"options":false,"export_time":1553946008,"sequence":1,"fields":{...}}
//! ```
//!
//! `received` is the receive time (seconds, float); `domain` the v9 source id
//! or IPFIX observation domain (`null` for v1/v5/v7); `template_id` 0 for
//! v1/v5/v7; `sequence` `null` for v1; `fields` as
//! [`netflow::serde_impl::RecordSer`] writes them with name keys (addresses
//! as text, MACs `aa:bb:..`, octet arrays as hex). Options records are
//! included with `"options": true`.

use netflow::serde_impl::{KeyMode, RecordSer};
use netflow::Record;
use serde::ser::{SerializeMap, Serializer};

use crate::Export;

/// Append one line per record of `export`; returns the number of lines.
pub(crate) fn write_records(out: &mut Vec<u8>, export: &Export<'_>) -> usize {
    let mut n = 0;
    for set in export.sets {
        for record in set.records() {
            write_one(out, export, set.template_id(), set.is_options(), &record);
            out.push(b'\n');
            n += 1;
        }
    }
    n
}

fn write_one(
    out: &mut Vec<u8>,
    export: &Export<'_>,
    template_id: u16,
    options: bool,
    record: &Record<'_>,
) {
    let h = export.header;
    let mut ser = serde_json::Serializer::new(&mut *out);
    let result = (|| {
        let mut map = ser.serialize_map(None)?;
        map.serialize_entry("received", &export.received)?;
        map.serialize_entry("exporter", &export.exporter.to_string())?;
        map.serialize_entry("version", &h.version())?;
        map.serialize_entry("domain", &h.domain())?;
        map.serialize_entry("template_id", &template_id)?;
        map.serialize_entry("options", &options)?;
        map.serialize_entry("export_time", &h.export_time())?;
        map.serialize_entry("sequence", &h.sequence())?;
        map.serialize_entry(
            "fields",
            &RecordSer {
                record,
                keys: KeyMode::Name,
            },
        )?;
        map.end()
    })();
    // Writing into a Vec cannot fail, and every value serializes.
    debug_assert!(result.is_ok());
}
