#!/usr/bin/python3
"""Writes the fuzz_pipeline seed corpus (tests/fuzz/corpus/fuzz_pipeline/): valid frames for
the fixed snapshot of fuzz_pipeline.cc (DR, GRE, source-ip, unresolved neighbour, IPv6, ICMP
errors, fragments, VLAN, ARP, too big for GRE), in its input format: a flags byte, then frames
with 2-byte big-endian lengths. Run from anywhere; rewrites the files."""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
from labkit.frames import eth as build_eth, icmp, ipv4, ipv6, tcp, udp  # noqa: E402

PORT_MAC = bytes.fromhex("020000000001")
ROUTER_MAC = bytes.fromhex("0200000000fe")


def eth(payload, ethertype=0x0800, vlan=None, dst=PORT_MAC):
    return build_eth(payload, ethertype, dst, ROUTER_MAC, vlan=vlan)


def seed(frames, flags=0):
    return bytes([flags]) + b"".join(struct.pack("!H", len(f)) + f for f in frames)


C = "192.0.2.7"
dr = eth(ipv4(C, "10.100.0.1", 6, tcp(40000, 80)))
dr_ack = eth(ipv4(C, "10.100.0.1", 6, tcp(40000, 80, 0x10, b"hello")))
gre = eth(ipv4(C, "10.100.0.1", 17, udp(5555, 53, b"q" * 40)))
src_ip = eth(ipv4(C, "10.100.0.2", 6, tcp(40001, 443)))
unresolved = eth(ipv4(C, "10.100.0.3", 6, tcp(40002, 80)))
v6_dr = eth(ipv6("2001:db8:9::7", "2001:db8::1", 6, tcp(40003, 443)), 0x86DD)
v6_nobackend = eth(ipv6("2001:db8:9::7", "2001:db8::1", 17, udp(40004, 53)), 0x86DD)
# An ICMP frag-needed from a router about a packet the backend sent (VIP:80 -> client).
quoted = ipv4("10.100.0.1", C, 6, tcp(80, 40000, 0x12))[:28]
icmp_err = eth(ipv4("198.51.100.1", "10.100.0.1", 1, icmp(3, 4, quoted, 1400)))
echo = eth(ipv4(C, "10.100.0.1", 1, icmp(8, 0, b"ping")))
to_host = eth(ipv4(C, "10.0.0.11", 6, tcp(40005, 22)))
no_port = eth(ipv4(C, "10.100.0.1", 6, tcp(40006, 8080)))
frag = eth(ipv4(C, "10.100.0.1", 17, b"x" * 16, df=False, frag=10))
vlan = eth(ipv4(C, "10.100.0.1", 6, tcp(40007, 80)), 0x0800, vlan=100)
arp = eth(bytes(28), 0x0806, dst=b"\xff" * 6)
big_gre = eth(ipv4(C, "10.100.0.1", 17, udp(5556, 53, b"b" * 1380)))
big_gre_nodf = eth(ipv4(C, "10.100.0.1", 17, udp(5557, 53, b"b" * 1380), df=False))
other_mac = eth(ipv4(C, "10.100.0.1", 6, tcp(40008, 80)), dst=bytes.fromhex("02000000aaaa"))

seeds = {
    "dr": seed([dr]),
    "dr_flow": seed([dr, dr_ack, dr_ack]),
    "gre": seed([gre]),
    "gre_no_headroom": seed([gre], flags=4),
    "mixed": seed([dr, gre, src_ip, unresolved, v6_dr, v6_nobackend, icmp_err, echo, to_host,
                   no_port, frag, vlan, arp, other_mac]),
    "icmp_error": seed([dr, icmp_err]),
    "too_big": seed([big_gre, big_gre_nodf]),
    "ipv6": seed([v6_dr, v6_nobackend]),
    "trust_promisc": seed([other_mac, dr], flags=3),
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_pipeline")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
