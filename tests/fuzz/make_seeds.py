#!/usr/bin/python3
"""Writes two seed corpora. tests/fuzz/corpus/fuzz_pipeline/: valid frames for the fixed snapshot
of fuzz_pipeline.cc (DR, GRE, source-ip, unresolved neighbour, IPv6, ICMP errors, fragments,
VLAN, ARP, too big for GRE, IPIP and GUE), in its input format: a flags byte, then frames with 2-byte
big-endian lengths. tests/fuzz/corpus/fuzz_sync_message/: flow-sync bodies for the fixed
snapshot of fuzz_sync_message.cc (IPv4 and IPv6 entries, known and unknown services and
backends, empty), clear messages (header + body, header only) and truncated ones, in the wire
format of conntrack/sync_message.h. Run from anywhere; rewrites the files."""
import ipaddress
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
from labkit.frames import (eth as build_eth, icmp, ipv4, ipv6, ipv6_ext, ipv6_frag, tcp,  # noqa: E402
                           udp)

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
ipip = eth(ipv4(C, "10.100.0.3", 17, udp(5558, 53, b"i" * 40)))
gue = eth(ipv4(C, "10.100.0.3", 6, tcp(40009, 443)))
v6_gue = eth(ipv6("2001:db8:9::7", "2001:db8::1", 6, tcp(40010, 80)), 0x86DD)
big_gue = eth(ipv4(C, "10.100.0.3", 6, tcp(40011, 443, 0x10, b"g" * 1340)))
# A fragmented UDP datagram (first fragment, two later ones; IPv4 and IPv6 with extension
# headers), and a later fragment whose first one never comes.
frag_first = eth(ipv4(C, "10.100.0.1", 17, udp(5560, 53, b"d" * 24, length=8 + 72), df=False,
                      mf=True, ident=0x4242))
frag_mid = eth(ipv4(C, "10.100.0.1", 17, b"d" * 24, df=False, frag=4, mf=True, ident=0x4242))
frag_last = eth(ipv4(C, "10.100.0.1", 17, b"d" * 24, df=False, frag=7, ident=0x4242))
frag_orphan = eth(ipv4(C, "10.100.0.1", 17, b"o" * 24, df=False, frag=7, ident=0x4343))
V6C = "2001:db8:9::7"
v6_frag_first = eth(ipv6(V6C, "2001:db8::1", 0, ipv6_ext(44) + ipv6_frag(6, 0, True, 77) +
                         tcp(40012, 443, 0x10, b"f" * 16)), 0x86DD)
v6_frag_last = eth(ipv6(V6C, "2001:db8::1", 44, ipv6_frag(6, 5, False, 77) + b"f" * 16), 0x86DD)

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
    "tunnels": seed([ipip, gue, v6_gue, big_gue, ipip, gue]),
    "ipv6_tunnels": seed([eth(ipv6("2001:db8:9::7", "2001:db8::2", 17, udp(5561, 53, b"t" * 30)),
                              0x86DD),
                          eth(ipv4(C, "10.100.0.4", 6, tcp(40013, 80))),
                          eth(ipv4(C, "10.100.0.4", 17, udp(5562, 53, b"t" * 30)))]),
    "ipv6_tunnels_headroom40": seed([eth(ipv4(C, "10.100.0.4", 6, tcp(40014, 80))),
                                     eth(ipv4(C, "10.100.0.3", 17, udp(5563, 53, b"t" * 8)))],
                                    flags=8),
    "fragments": seed([frag_last, frag_first, frag_mid, frag_orphan, v6_frag_last, v6_frag_first,
                       frag_first, frag_last], flags=1),
}
corpora = {"fuzz_pipeline": seeds}


# fuzz_sync_message: conntrack/sync_message.h's body (a 2-byte count, then entries: flags =
# state << 4 | family, proto, vip, vport, client, cport, backend, bport, age_s,
# assigned_age_s; big-endian) and clear header ("ELBS", version 1, type, key id, flags 0,
# sender id, epoch, seq).
ESTABLISHED, CLOSING = 1, 2


def entry(vip, vport, proto, client, cport, backend, state=ESTABLISHED, age=5, assigned=5,
          bport=0):
    a = [ipaddress.ip_address(x).packed for x in (vip, client, backend)]
    family = 6 if len(a[0]) == 16 else 4
    return (bytes([state << 4 | family, proto]) + a[0] + struct.pack("!H", vport) + a[1] +
            struct.pack("!H", cport) + a[2] + struct.pack("!HII", bport, age, assigned))


def body(entries):
    return struct.pack("!H", len(entries)) + b"".join(entries)


def header(msg_type=1, key_id=1, sender="10.0.0.12", epoch=200, seq=1):
    return (b"ELBS" + bytes([1, msg_type, key_id, 0]) + ipaddress.ip_address(sender).packed +
            struct.pack("!QQ", epoch, seq))


V4A = entry("10.100.0.1", 80, 6, "192.0.2.7", 40000, "10.0.0.21")
V4B = entry("10.100.0.1", 80, 6, "192.0.2.8", 40001, "10.0.0.22", state=CLOSING, age=10, assigned=30)
V4_UDP = entry("10.100.0.1", 53, 17, "192.0.2.9", 5353, "192.168.7.22", age=100, assigned=100)
V6A = entry("2001:db8::1", 443, 6, "2001:db8:9::7", 40002, "2001:db8::21")
V6B = entry("2001:db8::1", 443, 6, "2001:db8:9::8", 40003, "2001:db8::22", state=CLOSING, age=1)
UNKNOWN_SERVICE = entry("10.100.0.9", 80, 6, "192.0.2.10", 40004, "10.0.0.21")
UNKNOWN_BACKEND = entry("10.100.0.1", 80, 6, "192.0.2.11", 40005, "10.0.0.99")
EXPIRED = entry("10.100.0.1", 80, 6, "192.0.2.12", 40006, "10.0.0.21", age=100000)
V4_BODY = body([V4A, V4B, V4_UDP])
corpora["fuzz_sync_message"] = {
    "body_ipv4": V4_BODY,
    "body_ipv4_many": body([entry("10.100.0.1", 80, 6, "198.51.100.%d" % (i + 1), 41000 + i,
                                  "10.0.0.2%d" % (1 + i % 2)) for i in range(20)]),
    "body_ipv6": body([V6A, V6B]),
    "body_mixed": body([V4A, V6A, UNKNOWN_SERVICE, UNKNOWN_BACKEND, EXPIRED, V4B]),
    "body_empty": body([]),
    "body_truncated": V4_BODY[:-9],
    "message_ipv4": header(seq=7) + V4_BODY,
    "message_ipv6_bulk_chunk": header(msg_type=3, key_id=2, seq=9 << 24) + body([V6A]),
    "header_only": header(msg_type=2),
    "header_truncated": header()[:20],
}

for target, files in corpora.items():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", target)
    os.makedirs(out, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
