#!/usr/bin/env python3
"""Receive UDP datagrams on a loopback port and write them to a `.payloads`
file (`[kind u8 = 1][length u32 big-endian][payload]`, the format of
`crates/netflow/examples/decode_loop` and
`crates/netflow-store/examples/build_costs`), until no datagram came for
--idle seconds after the first. For fixed inputs made by the generator:

    python3 bench/capture_payloads.py --port 19990 --out gen-v9.payloads &
    netflow generate --target 127.0.0.1:19990 --version 9 --rate 20000 \\
        --count 4000 --seed 1 --start-time 1700000000
    wait

Keep --rate low enough for Python to keep up (it says how many datagrams it
wrote; compare with the generator's `packets`).
"""
import argparse
import socket
import struct
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True, help="UDP port on 127.0.0.1")
    ap.add_argument("--out", required=True, help=".payloads file to write")
    ap.add_argument("--wait", type=float, default=10.0,
                    help="seconds to wait for the first datagram (default 10)")
    ap.add_argument("--idle", type=float, default=1.0,
                    help="stop after this many seconds without a datagram (default 1)")
    args = ap.parse_args()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
    s.bind(("127.0.0.1", args.port))
    s.settimeout(args.wait)
    count = 0
    with open(args.out, "wb") as out:
        try:
            while True:
                d = s.recv(65535)
                out.write(struct.pack(">BI", 1, len(d)) + d)
                count += 1
                s.settimeout(args.idle)
        except socket.timeout:
            pass
    print(f"{args.out}: {count} datagrams", file=sys.stderr)
    return 0 if count else 1


if __name__ == "__main__":
    sys.exit(main())
