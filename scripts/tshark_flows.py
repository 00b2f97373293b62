#!/usr/bin/env python3
"""Ground-truth flow records of a NetFlow/IPFIX capture, as decoded by tshark.

Usage:
    tshark_flows.py [--port N] [--summary] CAPTURE.pcap > CAPTURE.tshark.jsonl

Runs `tshark -n -r CAPTURE -d udp.port==N,cflow -T json -x` (standard library only)
and prints one JSON object per flow record that tshark decoded (NetFlow v1/v5/v7 PDUs,
NetFlow v9 / IPFIX data records and options data records), in capture order:

    {"datagram": 0,            # 0-based index among the UDP datagrams of the capture
     "version": 9,             # NetFlow version from the export header (10 = IPFIX)
     "kind": "flow",           # "flow" (v1/v5/v7/data template) or "options" (options data)
     "template_id": 1024,      # v9/IPFIX only (null for v1/v5/v7)
     "header": {...},          # export header, raw integers (see HEADER_FIELDS)
     "fields": {"8": "10.0.0.1", "1": 616, "29305:1": 41160, "scope:2": 0, ...}}

Field keys: the IPFIX / NetFlow v9 information element id as a string; enterprise
specific elements "PEN:ID" (e.g. "29305:1" = reverse octetDeltaCount, RFC 5103);
NetFlow v9 options *scope* fields "scope:N" (N = v9 scope type 1 System, 2 Interface,
3 Line card, 4 Cache, 5 Template; they live in their own number space).  NetFlow
v1/v5/v7 fixed-record fields use the v9/IANA ids of the same meaning (srcaddr 8,
dstaddr 12, nexthop 15, input 10, output 14, dPkts 2, dOctets 1, First 22, Last 21,
srcport 7, dstport 11, tcp_flags 6, prot 4, tos 5, src_as 16, dst_as 17,
src_mask 9, dst_mask 13); v7's own flags byte and router shortcut have no such id and
are keyed "FLAGS1" and "ROUTER_SC" (v7's second flags field is padding to tshark).

Values are taken from the raw bytes tshark reports for the field (`-x` gives every
field's bytes, frame offset and length), never from tshark's display text, and
normalized as:
    unsigned integers of any length (reduced-size too)   -> JSON number
    ALL timestamps                                     -> JSON number, the raw integer
        on the wire: v1/v5/v9 First/Last (21/22) = milliseconds of sysUptime (tshark
        displays them as seconds, e.g. "7.063000000" for raw 7063 - we do not convert
        back from that, we read the 4 raw bytes); dateTimeSeconds/Milliseconds (150-153,
        160 ...) = seconds/ms since 1970; dateTimeMicro/Nanoseconds (154-157) = the
        64-bit NTP-format integer (seconds since 1900 << 32 | fraction)
    IPv4 / IPv6 addresses                              -> text ("192.0.2.1", "2001:db8::1",
                                                          IPv6 in RFC 5952 form)
    MAC addresses                                      -> "aa:bb:cc:dd:ee:ff"
    octetArray, string, anything else                  -> lowercase hex of the wire bytes
        (strings included: e.g. interfaceName keeps its NUL padding, "696e70...0000")

Cross-checks (any failure aborts with exit status 2, so a wrong mapping can never
silently produce a wrong expectation):
  * v9/IPFIX: every emitted field sits exactly where tshark's own decoding of the
    template (Template/Options Template sets) says that element is, with the same
    length; the tshark field name must be mapped to that element id in NAME_TO_IDS.
  * v1/v5/v7: every emitted field sits at the fixed offset/length of the record layout.
  * the raw bytes equal the frame bytes at that offset;
  * where tshark's display text is a plain decimal integer / an address / a MAC /
    relative seconds, it must agree with the normalized value.

Fields that are left out (printed as a warning summary on stderr, never guessed):
  * elements tshark does not decode into a single field of the template's length
    (e.g. if it splits one element into several sub-fields, or shows it only as a
    generated field without raw bytes);
  * tshark field names that are not in NAME_TO_IDS;
  * padding (v1/v5/v7 pad1/pad2/reserved, v9/IPFIX set padding).
  In the captures made by scripts/make-captures.sh nothing is left out (--summary
  prints per-element counts and the unmapped list; it is empty for all of them).

The NetFlow v9 options templates of softflowd use scope "Interface" (scope:2); IPFIX
options templates use ordinary IEs as scope (e.g. 143 meteringProcessId).
"""

import argparse
import collections
import datetime
import ipaddress
import json
import re
import subprocess
import sys

# ----------------------------------------------------------------------------------------
# tshark field name -> element keys it may carry.  One tshark name can stand for several
# elements (e.g. cflow.abstimestart for 150/152/154/156, cflow.octets for 1 and the RFC 5103
# reverse 29305:1); the template decides which one, and the name must be compatible.
# Built from the fields that appear in the captures of testdata/captures (softflowd 1.1.0,
# pmacct 1.7.7) as decoded by tshark 4.0.
REV = "29305:"  # RFC 5103 reverse-information-element PEN
NAME_TO_IDS = {
    "cflow.octets": {"1", REV + "1"},  # tshark uses the same names for the reverse elements
    "cflow.packets": {"2", REV + "2"},
    "cflow.protocol": {"4"},
    "cflow.tos": {"5", REV + "5"},
    "cflow.tcpflags": {"6", REV + "6"},
    "cflow.srcport": {"7"},
    "cflow.srcaddr": {"8"},
    "cflow.srcmask": {"9"},
    "cflow.inputint": {"10"},
    "cflow.dstport": {"11"},
    "cflow.dstaddr": {"12"},
    "cflow.dstmask": {"13"},
    "cflow.outputint": {"14"},
    "cflow.nexthop": {"15"},
    "cflow.srcas": {"16"},
    # v7 only: the record's flags byte (offset 36) and the router shortcut (48)
    "cflow.flags": {"FLAGS1"},
    "cflow.routersc": {"ROUTER_SC"},
    "cflow.dstas": {"17"},
    # v1/v5/v9 FIRST/LAST_SWITCHED, and softflowd's IPFIX without -A (it uses 21/22 there
    # too, plus systemInitTimeMilliseconds 160 in its options record)
    "cflow.timeend": {"21"},
    "cflow.timestart": {"22"},
    "cflow.srcaddrv6": {"27"},
    "cflow.dstaddrv6": {"28"},
    "cflow.srcmaskv6": {"29"},
    "cflow.dstmaskv6": {"30"},
    "cflow.icmp_type_code_ipv4": {"32", REV + "32"},
    "cflow.sampling_interval": {"34"},
    "cflow.sampling_algorithm": {"35"},
    "cflow.sampler_id": {"48"},
    "cflow.sampler_mode": {"49"},
    "cflow.sampler_random_interval": {"50"},
    "cflow.srcmac": {"56"},
    "cflow.post_dstmac": {"57"},  # softflowd -T ether exports the dst MAC as 57 (v9 DST_MAC)
    "cflow.vlanid": {"58"},
    "cflow.post_vlanid": {"59"},  # softflowd -T ether/vlan: 59 (v9 DST_VLAN)
    "cflow.ip_version": {"60"},
    "cflow.direction": {"61"},
    "cflow.dstmac": {"80"},
    "cflow.if_name": {"82"},
    "cflow.flow_end_reason": {"136"},
    "cflow.mp_id": {"143"},
    "cflow.flow_exporter": {"144"},
    # dateTime* start/end; tshark 4.0 also shows a v9 FIRST/LAST_SWITCHED (22/21) whose raw
    # value is 0 under these names ("Jan 1, 1970"); the raw bytes are still the ms value.
    "cflow.abstimestart": {"150", "152", "154", "156", "22"},
    "cflow.abstimeend": {"151", "153", "155", "157", "21"},
    "cflow.sys_init_time": {"160"},
    "cflow.selector_algorithm": {"304"},
    "cflow.sampling_packet_interval": {"305"},
    "cflow.sampling_packet_space": {"306"},
    # v9 options scope fields (RFC 3954 section 6.1 scope types).  Only scope_interface
    # occurs in our captures; the others are tshark's names for the remaining types.
    "cflow.scope_system": {"scope:1"},
    "cflow.scope_interface": {"scope:2"},
    "cflow.scope_linecard": {"scope:3"},
    "cflow.scope_cache": {"scope:4"},
    "cflow.scope_template": {"scope:5"},
}

# Elements tshark shows as two 1-byte fields (type, code) instead of one 2-byte field: the
# value emitted is the 2-byte big-endian integer made of the two raw bytes (type << 8 | code).
# (tshark 4.0 does this for icmpTypeCodeIPv6, 139, but not for 32, icmp_type_code_ipv4.)
COMPOSITE = {
    ("cflow.icmp_ipv6_type", "cflow.icmp_ipv6_code"): {"139", REV + "139"},
}
COMPOSITE_PARTS = {n for pair in COMPOSITE for n in pair}

# NetFlow v1/v5/v7 fixed record layouts: record offset -> (key, length).  Padding omitted.
V1_LAYOUT = {0: ("8", 4), 4: ("12", 4), 8: ("15", 4), 12: ("10", 2), 14: ("14", 2), 16: ("2", 4),
             20: ("1", 4), 24: ("22", 4), 28: ("21", 4), 32: ("7", 2), 34: ("11", 2), 38: ("4", 1),
             39: ("5", 1), 40: ("6", 1)}
V5_LAYOUT = {0: ("8", 4), 4: ("12", 4), 8: ("15", 4), 12: ("10", 2), 14: ("14", 2), 16: ("2", 4),
             20: ("1", 4), 24: ("22", 4), 28: ("21", 4), 32: ("7", 2), 34: ("11", 2), 37: ("6", 1),
             38: ("4", 1), 39: ("5", 1), 40: ("16", 2), 42: ("17", 2), 44: ("9", 1), 45: ("13", 1)}
# v7 (Catalyst 5000 NetFlow Feature Card): the v5 record plus flags (36), a second flags
# field (46, which tshark shows as padding, so it is left out) and router_sc (48); the keys
# of the two v7-only fields are the names our decoder gives them.
V7_LAYOUT = dict(V5_LAYOUT)
V7_LAYOUT.update({36: ("FLAGS1", 1), 48: ("ROUTER_SC", 4)})
# version: (header len, record len, layout)
FIXED = {1: (16, 48, V1_LAYOUT), 5: (24, 48, V5_LAYOUT), 7: (24, 52, V7_LAYOUT)}
PADDING_NAMES = {"cflow.padding", "cflow.reserved"}

# Element value types (IANA "abstract data type"), for the elements keyed above.  Anything
# not listed is emitted as hex.  Reverse elements (29305:N) take the type of N.
IPV4 = {"8", "12", "15", "18", "44", "45", "47", "130", "225", "226", "ROUTER_SC"}
IPV6 = {"27", "28", "62", "63", "131", "281", "282"}
MAC = {"56", "57", "80", "81", "365", "414"}
UNSIGNED = {"FLAGS1"} | {str(i) for i in (1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 13, 14, 16, 17, 21, 22, 29, 30, 31, 32,
                              34, 35, 38, 39, 40, 41, 42, 48, 49, 50, 55, 58, 59, 60, 61, 85, 86, 136, 137,
                              138, 139, 143, 144, 145, 148, 149, 150, 151, 152, 153, 154, 155, 156, 157,
                              160, 176, 177, 178, 179, 243, 245, 254, 302, 304, 305, 306, 307, 308,
                              309, 310)}
# everything else (strings such as 82 interfaceName, octetArrays, floats) -> hex.  Checked
# against data/iana/ipfix-information-elements.xml: every id above is unsignedN/dateTime*.

HEADER_FIELDS = {  # tshark header field -> header key (raw integer)
    "cflow.version": "version",
    "cflow.count": "count",
    "cflow.len": "length",
    "cflow.sysuptime": "sys_uptime",
    "cflow.unix_secs": "unix_secs",
    "cflow.exporttime": "export_time",
    "cflow.sequence": "sequence",
    "cflow.engine_type": "engine_type",
    "cflow.engine_id": "engine_id",
    "cflow.source_id": "source_id",
    "cflow.od_id": "observation_domain_id",
}


class Obj(list):
    """A JSON object as an ordered list of (key, value) pairs (tshark repeats keys)."""


class Fail(Exception):
    pass


def base_key(key):
    return key[len(REV):] if key.startswith(REV) else key


def normalize(key, raw):
    k = base_key(key)
    if k.startswith("scope:"):
        return int.from_bytes(raw, "big") if len(raw) <= 8 else raw.hex()
    if k in IPV4 and len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    if k in IPV6 and len(raw) == 16:
        return str(ipaddress.IPv6Address(raw))
    if k in MAC and len(raw) == 6:
        return ":".join("%02x" % b for b in raw)
    if k in UNSIGNED and 1 <= len(raw) <= 8:
        return int.from_bytes(raw, "big")
    return raw.hex()


MONTHS = {m: i + 1 for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())}
NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01


def abs_time_ns(display):
    """tshark absolute time text ("Nov 14, 2023 22:13:27.365545999 UTC") -> ns since 1970."""
    m = re.fullmatch(r"(\w{3}) +(\d+), (\d{4}) (\d\d):(\d\d):(\d\d)\.(\d{9}) UTC", display)
    if not m:
        return None
    mon, day, year, hh, mm, ss, frac = m.groups()
    days = (datetime.date(int(year), MONTHS[mon], int(day)) - datetime.date(1970, 1, 1)).days
    return ((days * 24 + int(hh)) * 60 + int(mm)) * 60 * 10**9 + int(ss) * 10**9 + int(frac)


def check_abs_time(key, display, value):
    """The dateTime* elements: tshark's date text must match our raw integer."""
    k = base_key(key)
    ns = abs_time_ns(display)
    if ns is None:
        raise Fail("%s: unexpected time text %r" % (key, display))
    if k in ("150", "151"):
        want, tol = value * 10**9, 0
    elif k in ("152", "153", "160"):
        want, tol = value * 10**6, 0
    elif k in ("154", "155", "156", "157"):
        want = ((value >> 32) - NTP_EPOCH_OFFSET) * 10**9 + ((value & 0xFFFFFFFF) * 10**9 >> 32)
        tol = 1000 if k in ("154", "155") else 1  # tshark rounds micro fractions differently
    elif k in ("21", "22") and value == 0:
        want, tol = 0, 0
    else:
        raise Fail("%s: unexpected absolute time field" % key)
    if abs(ns - want) > tol:
        raise Fail("%s: display %s != raw value %d" % (key, display, value))


def check_display(name, display, value, raw, key=None):
    """Where tshark's display text is unambiguous, it must agree with our value."""
    if display is None or not isinstance(display, str):
        return
    if name in ("cflow.abstimestart", "cflow.abstimeend", "cflow.sys_init_time"):
        check_abs_time(key, display, value)
        return
    if isinstance(value, int) and re.fullmatch(r"\d+", display):
        if int(display) != value:
            raise Fail("%s: display %s != raw value %d" % (name, display, value))
    elif isinstance(value, int) and re.fullmatch(r"0x[0-9a-f]+", display):
        if int(display, 16) != value:
            raise Fail("%s: display %s != raw value %d" % (name, display, value))
    elif isinstance(value, int) and name in ("cflow.timestart", "cflow.timeend"):
        m = re.fullmatch(r"(\d+)\.(\d{3})000000", display)
        if not m or int(m.group(1)) * 1000 + int(m.group(2)) != value:
            raise Fail("%s: display %s != raw ms %d" % (name, display, value))
    elif isinstance(value, str) and re.fullmatch(r"[0-9.]+|[0-9a-f:]+", display) and ("." in value or ":" in value):
        if display != value:
            raise Fail("%s: display %s != %s" % (name, display, value))


# ----------------------------------------------------------------------------------------
def leaves(obj, out):
    """Collect (name, raw_bytes, offset, length, display) of all byte-backed fields in obj."""
    pending = {}
    for k, v in obj:
        if isinstance(v, Obj):
            leaves(v, out)
        elif k.endswith("_raw") and isinstance(v, list) and len(v) == 5 and isinstance(v[0], str):
            hexstr, off, length, bitmask, _ftype = v
            name = k[:-4]
            if bitmask != 0:  # a bit-field view (e.g. cflow.tcpflags.syn) of a field
                continue
            entry = [name, bytes.fromhex(hexstr), off, length, None]
            out.append(entry)
            pending[name] = entry
        elif isinstance(v, str) and k in pending:
            pending.pop(k)[4] = v
    return out


def children(obj, prefix):
    return [v for k, v in obj if isinstance(v, Obj) and k.startswith(prefix)]


def get(obj, name, default=None):
    for k, v in obj:
        if k == name:
            return v
    return default


def pos_of(obj, name):
    """(frame offset, length) of a field.  For bit-masked fields tshark's raw hex is the
    masked value, not the bytes, so callers read the frame bytes at this position."""
    v = get(obj, name + "_raw")
    return None if v is None else (v[1], v[2])


def header_of(cflow, version, frame):
    h = {}
    for k, v in cflow:
        if k == "cflow.timestamp_raw" and version in (1, 5, 7):
            b = bytes.fromhex(v[0])
            h["unix_secs"] = int.from_bytes(b[:4], "big")
            h["unix_nsecs"] = int.from_bytes(b[4:8], "big")
        elif k == "cflow.timestamp_tree":
            h.update(header_of(v, version, frame))
        elif k.endswith("_raw") and k[:-4] in HEADER_FIELDS:
            h[HEADER_FIELDS[k[:-4]]] = int(v[0], 16) if v[3] == 0 else None
    if version in (5, 7):  # sampling: 16 bits, 2-bit mode + 14-bit interval
        r = pos_of(cflow, "cflow.samplingmode")
        if r is not None and r[1] == 2:
            h["sampling_interval"] = int.from_bytes(frame[r[0]:r[0] + 2], "big")
    return {k: v for k, v in h.items() if v is not None}


class Extractor:
    def __init__(self):
        self.templates = {}
        self.found = collections.Counter()
        self.missing = collections.Counter()
        self.unmapped = collections.Counter()
        self.seen_names = collections.Counter()

    # -- templates ------------------------------------------------------------------
    def learn_templates(self, fs, version, domain, frame):
        for tmpl in children(fs, "Template (") + children(fs, "Options Template ("):
            tid = int(get(tmpl, "cflow.template_id"))
            fields = []
            for label, fdef in tmpl:
                if not (isinstance(fdef, Obj) and label.startswith("Field (")):
                    continue
                scope = "[Scope]" in label
                length = int(get(fdef, "cflow.template_field_length"))
                if version == 9:
                    if get(fdef, "cflow.scope_field_type") is not None:
                        key = "scope:%d" % int(get(fdef, "cflow.scope_field_type"))
                    else:
                        key = str(int(get(fdef, "cflow.template_field_type")))
                else:
                    ftype = int(get(fdef, "cflow.template_ipfix_field_type"))
                    pen = get(fdef, "cflow.template_ipfix_field_pen")
                    key = str(ftype) if pen is None else "%d:%d" % (int(pen), ftype)
                    # cross-check against the wire
                    r = pos_of(fdef, "cflow.template_ipfix_field_type")
                    wire = int.from_bytes(frame[r[0]:r[0] + 2], "big")
                    if wire & 0x7FFF != ftype or bool(wire & 0x8000) != (pen is not None):
                        raise Fail("template field type mismatch at offset %d" % r[0])
                fields.append((key, length, scope))
            self.templates[(domain, tid)] = fields

    # -- data records -----------------------------------------------------------------
    def record_fields(self, rec, layout, frame):
        """layout: list of (key, offset, length) for this record."""
        lv = leaves(rec, [])
        at = collections.defaultdict(list)
        for e in lv:
            at[(e[2], e[3])].append(e)
        fields = {}
        for key, off, length in layout:
            cands = at.get((off, length), [])
            good = [e for e in cands if key in NAME_TO_IDS.get(e[0], ())]
            bad = [e for e in cands if e[0] in NAME_TO_IDS and key not in NAME_TO_IDS[e[0]]]
            if bad and not good:
                raise Fail("tshark field %s at offset %d is mapped to %s, template says %s"
                           % (bad[0][0], off, sorted(NAME_TO_IDS[bad[0][0]]), key))
            if not good and length == 2:
                good = self.composite(at, key, off, frame)
            if not good:
                names = sorted({e[0] for e in cands if e[0] not in PADDING_NAMES})
                if names:
                    self.unmapped[(key, tuple(names))] += 1
                else:
                    self.missing[key] += 1
                continue
            name, raw, _, _, display = good[0]
            if frame[off:off + length] != raw:
                raise Fail("%s: raw bytes differ from frame bytes at %d" % (name, off))
            value = normalize(key, raw)
            for e in good:
                if e[1] != raw:
                    raise Fail("two tshark fields at offset %d disagree" % off)
                check_display(e[0], e[4], value, raw, key)
            fields[key] = value
            self.found[key] += 1
            for e in good:
                self.seen_names[(e[0], key)] += 1
        # any mapped field tshark shows that the layout did not place -> inconsistency
        placed = {(off, length) for _, off, length in layout}
        for e in lv:
            if e[0] in COMPOSITE_PARTS and ((e[2], 2) in placed or (e[2] - 1, 2) in placed):
                continue
            if e[0] in NAME_TO_IDS and (e[2], e[3]) not in placed:
                raise Fail("tshark field %s at offset %d/%d is outside the template layout" % (e[0], e[2], e[3]))
        return fields

    def composite(self, at, key, off, frame):
        """A 2-byte element shown by tshark as two 1-byte fields (see COMPOSITE)."""
        for (n1, n2), keys in COMPOSITE.items():
            if key not in keys:
                continue
            a = [e for e in at.get((off, 1), []) if e[0] == n1]
            b = [e for e in at.get((off + 1, 1), []) if e[0] == n2]
            if a and b:
                for e in (a[0], b[0]):
                    check_display(e[0], e[4], e[1][0], e[1])
                combined = ["%s+%s" % (n1, n2), a[0][1] + b[0][1], off, 2, None]
                return [combined]
        return []

    def run(self, path, port):
        cmd = ["tshark", "-n", "-r", path, "-d", "udp.port==%d,cflow" % port, "-T", "json", "-x"]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
        packets = json.loads(out, object_pairs_hook=Obj)
        dgram = -1
        for pkt in packets:
            layers = get(get(pkt, "_source"), "layers")
            if get(layers, "udp") is None:
                continue
            dgram += 1
            frame = bytes.fromhex(get(layers, "frame_raw")[0])
            cflow = get(layers, "cflow")
            if cflow is None:
                continue
            version = int(get(cflow, "cflow.version"))
            header = header_of(cflow, version, frame)
            cflow_off = get(cflow, "cflow.version_raw")[1]
            if version in FIXED:
                hlen, rlen, lay = FIXED[version]
                for i, pdu in enumerate(children(cflow, "pdu ")):
                    base = cflow_off + hlen + i * rlen
                    layout = [(key, base + o, ln) for o, (key, ln) in sorted(lay.items())]
                    yield {"datagram": dgram, "version": version, "kind": "flow", "template_id": None,
                           "header": header, "fields": self.record_fields(pdu, layout, frame)}
                continue
            if version not in (9, 10):
                raise Fail("datagram %d: unsupported version %d" % (dgram, version))
            domain = header.get("source_id", header.get("observation_domain_id"))
            for fs in [v for k, v in cflow if isinstance(v, Obj) and re.match(r"(FlowSet|Set) \d+", k)]:
                fsid = int(get(fs, "cflow.flowset_id"))
                if fsid < 256:
                    self.learn_templates(fs, version, domain, frame)
                    continue
                if get(fs, "cflow.template_frame") is None:
                    continue  # tshark had no template: it decoded no records here
                tmpl = self.templates.get((domain, fsid))
                if tmpl is None:
                    raise Fail("datagram %d: tshark decoded set %d without a template we saw" % (dgram, fsid))
                kind = "options" if any(s for _, _, s in tmpl) else "flow"
                pos = get(fs, "cflow.flowset_id_raw")[1] + 4
                for rec in children(fs, "Flow "):
                    layout = []
                    for key, length, _ in tmpl:
                        if length == 0xFFFF:  # IPFIX variable length: read the prefix
                            length = frame[pos]
                            pos += 1
                            if length == 255:
                                length = int.from_bytes(frame[pos:pos + 2], "big")
                                pos += 2
                        layout.append((key, pos, length))
                        pos += length
                    yield {"datagram": dgram, "version": version, "kind": kind, "template_id": fsid,
                           "header": header, "fields": self.record_fields(rec, layout, frame)}


def detect_port(path):
    out = subprocess.run(["tshark", "-n", "-r", path, "-T", "fields", "-e", "udp.dstport"], check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.split()
    ports = collections.Counter(out)
    if not ports:
        raise Fail("no UDP datagrams in %s" % path)
    return int(ports.most_common(1)[0][0])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("capture")
    ap.add_argument("--port", type=int, help="UDP port to decode as cflow (default: most common dst port)")
    ap.add_argument("--summary", action="store_true", help="print per-element counts to stderr")
    args = ap.parse_args()
    ex = Extractor()
    try:
        port = args.port or detect_port(args.capture)
        n = 0
        for rec in ex.run(args.capture, port):
            sys.stdout.write(json.dumps(rec, sort_keys=False, separators=(",", ":")) + "\n")
            n += 1
    except Fail as e:
        print("tshark_flows.py: %s: %s" % (args.capture, e), file=sys.stderr)
        sys.exit(2)
    if ex.unmapped or ex.missing:
        for (key, names), c in sorted(ex.unmapped.items()):
            print("tshark_flows.py: left out element %s (tshark names %s) x%d" % (key, ",".join(names), c),
                  file=sys.stderr)
        for key, c in sorted(ex.missing.items()):
            print("tshark_flows.py: left out element %s (no tshark field with its bytes) x%d" % (key, c),
                  file=sys.stderr)
    if args.summary:
        print("%s: %d records; elements: %s" % (args.capture, n, dict(sorted(ex.found.items()))), file=sys.stderr)
        for (name, key), c in sorted(ex.seen_names.items()):
            print("  name %-40s -> %-10s x%d" % (name, key, c), file=sys.stderr)


if __name__ == "__main__":
    main()
