#!/usr/bin/python3
"""The malformed-traffic corpus: tricky and broken Ethernet frames, with valid VIP traffic
interleaved, written to a pcap file for the daemon's data port (net_pcap rx_pcap=...).

Usage: malformed_corpus.py OUT.pcap [--seed N] [--config OUT.json] [--manifest OUT.json]

--config writes the daemon configuration the corpus is made for (services, host address; the
data port's MAC is net_pcap0's, 02:70:63:61:70:00); --manifest writes, per frame, the verdict
class the daemon must give it. Deterministic: the same seed gives the same bytes.

Each frame carries its verdict class, the counter of `ecmplbctl stats` it must land in:
  forward_dr, forward_gre, icmp_frag_needed_sent, drop_*   that worker counter;
  kernel        exception, exception_rate_limited or exception_priority_limited (the
                exception budget decides which);
  parse:REASON  drop_parse, reason REASON (the worker's "parse" counters);
  fragment_orphan  a later fragment whose first fragment never comes: held, then dropped
                (fragment_timeout), or dropped at once when the hold is full
                (fragment_hold_full); while held, counted by fragment_held - fragment_released;
  any           seeded random garbage and mutations: exactly one verdict, unknown which.
The classes come from the frames' construction (this file is the test's oracle, kept apart
from the parser it checks): truncations of valid frames at every length (TCP with IP and TCP
options, UDP, ICMP error, GRE inside IPv4, IPv6, VLAN), bad IHL / total length / version /
checksum / TCP data offset / UDP length, IPv4 options, fragments, VLAN, QinQ, ICMP errors with
whole, truncated and bogus quotes, GRE packets, IPv6 extension headers, ARP, OSPF, BFD,
non-IP EtherTypes, frames for another MAC, and random garbage.
"""
import argparse
import json
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
from labkit.frames import (ETH_ARP, ETH_IPV4, ETH_IPV6, ETH_QINQ, ETH_VLAN, GRE, ICMP,  # noqa: E402
                           ICMPV6, TCP, UDP, arp_request, eth, gre, icmp, ipv4, ipv6, ipv6_ext,
                           ipv6_frag, mac, tcp, udp, write_pcap)

PORT_MAC = mac("02:70:63:61:70:00")   # net_pcap0's MAC (the first pcap port of the process)
PEER_MAC = mac("02:00:00:00:00:fe")   # the router in front of the LB
OTHER_MAC = mac("02:00:00:00:aa:aa")  # some other host on the segment
BCAST = b"\xff" * 6
HOST = "10.97.0.11"
HOST6 = "2001:db8:97::11"
VIP, VIP_UNRESOLVED, NOT_VIP = "10.97.1.1", "10.97.1.3", "10.97.5.5"
VIP6, NOT_VIP6 = "2001:db8:97::1", "2001:db8:97::99"
DR_BACKENDS = ["10.97.0.21", "10.97.0.22"]
GRE_BACKEND = "10.97.0.23"
UNRESOLVED_BACKEND = "10.97.0.25"
DR6_BACKEND = "2001:db8:97::21"
# The backends whose MAC the test puts in the TAP's neighbour table (UNRESOLVED_BACKEND stays
# unresolved: drop_neighbor_unresolved).
RESOLVED = DR_BACKENDS + [GRE_BACKEND, DR6_BACKEND]
KERNEL = "kernel"
ANY = "any"


def config(tap, socket):
    """The daemon configuration the corpus is made for."""
    return {
        "host": {"address": HOST, "prefix_length": 24, "address6": HOST6, "prefix_length6": 64,
                 "exception_interface": tap,
                 "control_socket": socket, "announce": False, "drain_s": 0, "mtu": 1500},
        "conntrack": {"capacity": 65536},
        # The test holds each worker still for seconds (a stats read); a first fragment read
        # just before the stall must still be known when its later one comes after it.
        "fragments": {"timeout_s": 30},
        "services": [
            {"vip": VIP, "port": 80, "protocol": "tcp", "forward": "dr", "table_size": 251,
             "backends": [{"id": i + 1, "address": a} for i, a in enumerate(DR_BACKENDS)]},
            {"vip": VIP, "port": 53, "protocol": "udp", "forward": "gre", "table_size": 251,
             "backends": [{"id": 1, "address": GRE_BACKEND}]},
            {"vip": VIP_UNRESOLVED, "port": 80, "protocol": "tcp", "forward": "dr",
             "table_size": 251, "backends": [{"id": 1, "address": UNRESOLVED_BACKEND}]},
            {"vip": VIP6, "port": 443, "protocol": "tcp", "forward": "dr", "table_size": 251,
             "backends": [{"id": 1, "address": DR6_BACKEND}]},
            {"vip": VIP6, "port": 53, "protocol": "udp", "forward": "dr", "table_size": 251,
             "backends": []},
        ],
    }


def e4(packet, dst=PORT_MAC, **kw):
    return eth(packet, ETH_IPV4, dst, PEER_MAC, **kw)


def e6(packet, dst=PORT_MAC, **kw):
    return eth(packet, ETH_IPV6, dst, PEER_MAC, **kw)


def client(i):
    return "192.0.2.%d" % (1 + i % 250)


def truncations(frame, valid, l2, ip_family, ihl=20):
    """Every strict prefix of `frame` (an unpadded frame whose IP packet ends at its end),
    with the parse result the daemon must give it; `valid` is the class of the whole frame."""
    out = []
    for n in range(len(frame)):
        if n < 14:
            why = "truncated_ethernet"
        elif l2 == 18 and n < 18:
            why = "truncated_vlan"
        elif n < l2 + (20 if ip_family == 4 else 40) or n < l2 + ihl:
            why = "truncated_ip"
        else:
            why = "bad_ip_total_length"  # the IP length field claims more than the frame
        out.append(("parse:" + why, frame[:n]))
    out.append((valid, frame))
    return out


def valid_flows():
    """Valid VIP traffic, interleaved with the rest: its class and frame, round robin."""
    flows = []
    for i in range(8):
        c = client(i)
        flows.append(("forward_dr", e4(ipv4(c, VIP, TCP, tcp(40000 + i, 80, 0x02)))))
        flows.append(("forward_dr", e4(ipv4(c, VIP, TCP, tcp(40000 + i, 80, 0x10, b"x" * 64)))))
        flows.append(("forward_gre", e4(ipv4(c, VIP, UDP, udp(50000 + i, 53, b"q" * 32)))))
        flows.append(("forward_dr", e6(ipv6("2001:db8:c::%x" % (i + 1), VIP6, TCP,
                                            tcp(41000 + i, 443, 0x10, b"y" * 20)))))
    return flows


def tricky():
    """Well-formed but unusual frames, each with its verdict."""
    c = client(100)
    quoted_dr = ipv4(VIP, c, TCP, tcp(80, 40000, 0x12))         # what a DR backend sent
    quoted_gre = ipv4(VIP, c, UDP, udp(53, 50000, b"a" * 8))
    quoted_none = ipv4(VIP, c, TCP, tcp(9999, 40000, 0x12))
    quoted6 = ipv6(VIP6, "2001:db8:c::1", TCP, tcp(443, 41000, 0x12))
    router, router6 = "198.51.100.1", "2001:db8:ff::1"
    inner = ipv4(c, VIP, TCP, tcp(40001, 80))
    f = [
        ("forward_dr", e4(ipv4(c, VIP, TCP, tcp(40100, 80), options=b"\x01" * 4))),  # IHL 6
        ("forward_dr", e4(ipv4(c, VIP, TCP, tcp(40101, 80), options=b"\x01" * 40))),  # IHL 15
        ("forward_dr", e4(ipv4(c, VIP, TCP, tcp(40102, 80), options=b"\x94\x04\0\0"))),  # RA
        ("forward_dr", e4(ipv4(c, VIP, TCP, tcp(40103, 80, options=b"\x01" * 40)))),  # offset 15
        ("forward_dr", e4(ipv4(c, VIP, TCP, tcp(40104, 80)), vlan=100)),
        ("forward_dr", e4(ipv4(c, VIP, TCP, tcp(40105, 80)), vlan=0)),  # priority tag
        ("forward_dr", e4(ipv4(c, VIP, TCP, tcp(40106, 80))) + b"\0" * 20),  # trailing padding
        ("forward_dr", e4(ipv4(c, VIP, TCP, tcp(40107, 80)), dst=BCAST)),
        ("forward_dr", e4(ipv4(c, VIP, TCP, tcp(40108, 80)), dst=mac("01:00:5e:00:00:01"))),
        ("forward_dr", e4(ipv4(c, VIP, TCP, tcp(40109, 80), df=False))),
        ("forward_dr", e4(ipv4(c, VIP, TCP, tcp(40110, 80, 0x02), ttl=0))),
        ("forward_dr", e4(ipv4(c, VIP, TCP, tcp(40111, 80, 0x04)))),  # RST
        ("drop_other_mac", e4(ipv4(c, VIP, TCP, tcp(40112, 80)), dst=OTHER_MAC)),
        ("drop_other_mac", eth(arp_request(PEER_MAC, c, HOST), ETH_ARP, OTHER_MAC, PEER_MAC)),
        # Fragments: first ones (ports present; a UDP length beyond this fragment is fine),
        # later ones that follow a first one (matching addresses, protocol and IP ID: the
        # first one's backend), and later ones whose first one never comes (held, then dropped:
        # fragment_orphan), to other hosts.
        ("forward_gre", e4(ipv4(c, VIP, UDP, udp(50100, 53, b"f" * 32, length=1000), df=False,
                                mf=True, ident=0x6001))),
        ("forward_gre", e4(ipv4(c, VIP, UDP, b"f" * 40, df=False, frag=5, mf=True,
                                ident=0x6001))),
        ("forward_dr", e4(ipv4(c, VIP, TCP, tcp(40113, 80), df=False, mf=True, ident=0x6002))),
        ("forward_dr", e4(ipv4(c, VIP, TCP, b"f" * 40, df=False, frag=185, ident=0x6002))),
        ("fragment_orphan", e4(ipv4(c, VIP, UDP, b"f" * 40, df=False, frag=5, mf=True,
                                    ident=0x7001))),
        ("fragment_orphan", e4(ipv4(c, VIP, TCP, b"f" * 40, df=False, frag=185, ident=0x7002))),
        ("fragment_orphan", e4(ipv4(c, VIP, TCP, b"", df=False, frag=8191, ident=0x7003))),
        (KERNEL, e4(ipv4(c, NOT_VIP, UDP, b"f" * 40, df=False, frag=5))),
        # GRE: a GRE service's frame beyond the MTU once encapsulated (DF: ICMP back to the
        # client; without: dropped), GRE packets to a VIP, to the host, elsewhere.
        ("icmp_frag_needed_sent", e4(ipv4(c, VIP, UDP, udp(50101, 53, b"b" * 1460)))),
        ("drop_too_big", e4(ipv4(c, VIP, UDP, udp(50102, 53, b"b" * 1460), df=False))),
        ("forward_gre", e4(ipv4(c, VIP, UDP, udp(50103, 53, b"b" * 1440)))),  # just fits
        ("drop_vip_no_service", e4(ipv4(c, VIP, GRE, gre(inner)))),
        (KERNEL, e4(ipv4(c, HOST, GRE, gre(inner)))),
        (KERNEL, e4(ipv4(c, NOT_VIP, GRE, gre(e4(inner), proto=0x6558)))),  # Ethernet in GRE
        # Services: no listener, no backend, unresolved backend.
        ("drop_vip_no_service", e4(ipv4(c, VIP, TCP, tcp(40114, 8080)))),
        ("drop_vip_no_service", e4(ipv4(c, VIP, UDP, udp(50104, 54)))),
        ("drop_vip_no_service", e4(ipv4(c, VIP, 132, b"\0" * 32))),  # SCTP
        ("drop_vip_no_service", e6(ipv6("2001:db8:c::9", VIP6, TCP, tcp(41100, 80)))),
        ("drop_no_backend", e6(ipv6("2001:db8:c::9", VIP6, UDP, udp(51100, 53)))),
        ("drop_neighbor_unresolved", e4(ipv4(c, VIP_UNRESOLVED, TCP, tcp(40115, 80)))),
        # ICMP errors: steered to the quoted flow's backend, or not.
        ("forward_dr", e4(ipv4(router, VIP, ICMP, icmp(3, 4, quoted_dr[:28], 1400)))),
        ("forward_dr", e4(ipv4(router, VIP, ICMP, icmp(3, 1, quoted_dr)))),  # whole quote
        ("forward_gre", e4(ipv4(router, VIP, ICMP, icmp(3, 3, quoted_gre[:28])))),
        ("drop_icmp_unmatched", e4(ipv4(router, VIP, ICMP, icmp(3, 4, quoted_none[:28])))),
        ("drop_icmp_unmatched", e4(ipv4(router, VIP, ICMP, icmp(3, 4, quoted_dr[:27])))),
        ("drop_icmp_unmatched", e4(ipv4(router, VIP, ICMP, icmp(3, 4, quoted_dr[:20])))),
        ("drop_icmp_unmatched", e4(ipv4(router, VIP, ICMP, icmp(3, 4, quoted_dr[:8])))),
        ("drop_icmp_unmatched", e4(ipv4(router, VIP, ICMP, icmp(3, 4, b"")))),
        ("drop_icmp_unmatched", e4(ipv4(router, VIP, ICMP, icmp(3, 4, b"\x65" + quoted_dr[1:28])))),
        ("drop_icmp_unmatched", e4(ipv4(router, VIP, ICMP, icmp(3, 4, b"\x44" + quoted_dr[1:28])))),
        ("forward_dr", e6(ipv6(router6, VIP6, ICMPV6, icmp(2, 0, quoted6[:48], 1280)))),
        ("drop_icmp_unmatched", e6(ipv6(router6, VIP6, ICMPV6, icmp(2, 0, quoted6[:47], 1280)))),
        ("drop_icmp_unmatched", e6(ipv6(router6, VIP6, ICMPV6, icmp(1, 4, quoted6[:40])))),
        ("drop_icmp_unmatched", e6(ipv6(router6, VIP6, ICMPV6, icmp(1, 4, quoted_dr[:28])))),
        (KERNEL, e4(ipv4(router, VIP, ICMP, icmp(11, 0, quoted_dr[:28])))),  # time exceeded
        (KERNEL, e4(ipv4(c, VIP, ICMP, icmp(8, 0, b"ping")))),
        (KERNEL, e4(ipv4(c, HOST, ICMP, icmp(8, 0, b"ping")))),
        (KERNEL, e6(ipv6("2001:db8:c::9", VIP6, ICMPV6, icmp(128, 0, b"ping")))),
        # IPv6 extension headers are walked to the transport header (hop-by-hop, routing,
        # destination options, fragment); a later fragment waits for its first one.
        ("forward_dr", e6(ipv6("2001:db8:c::9", VIP6, 0, ipv6_ext(TCP) + tcp(41101, 443)))),
        ("forward_dr", e6(ipv6("2001:db8:c::9", VIP6, 43,
                               ipv6_ext(TCP, b"\0\0" + b"\0" * 20) + tcp(41102, 443)))),
        ("forward_dr", e6(ipv6("2001:db8:c::9", VIP6, 60,
                               ipv6_ext(60) + ipv6_ext(TCP) + tcp(41103, 443)))),
        ("forward_dr", e6(ipv6("2001:db8:c::9", VIP6, 44,
                               ipv6_frag(TCP, 0, True, ident=0x6003) + tcp(41104, 443)))),
        ("forward_dr", e6(ipv6("2001:db8:c::9", VIP6, 44,
                               ipv6_frag(TCP, 100, False, ident=0x6003) + b"\0" * 16))),
        ("fragment_orphan", e6(ipv6("2001:db8:c::9", VIP6, 44,
                                    ipv6_frag(UDP, 100, ident=0x7004) + b"\0" * 16))),
        ("parse:bad_extension_header", e6(ipv6("2001:db8:c::9", VIP6, 60,
                                               ipv6_ext(0) + ipv6_ext(TCP) + tcp(41106, 443)))),
        ("parse:incomplete_header_chain", e6(ipv6("2001:db8:c::9", VIP6, 44,
                                                  ipv6_frag(TCP, 0, True, ident=0x6004) +
                                                  tcp(41107, 443)[:12]))),
        ("drop_vip_no_service", e6(ipv6("2001:db8:c::9", VIP6, 59, b""))),  # no next header
        (KERNEL, e6(ipv6("2001:db8:c::9", NOT_VIP6, 0, ipv6_ext(TCP) + tcp(41105, 443)))),
        (KERNEL, e6(ipv6("fe80::1", "ff02::1", ICMPV6, icmp(134, 0, b"\0" * 8)),
                    dst=mac("33:33:00:00:00:01"))),
        # To the host itself: the kernel's, or dropped in the worker when unsolicited.
        (KERNEL, eth(arp_request(PEER_MAC, c, HOST), ETH_ARP, BCAST, PEER_MAC)),
        (KERNEL, eth(arp_request(PEER_MAC, c, "10.97.0.99"), ETH_ARP, BCAST, PEER_MAC)),
        (KERNEL, eth(arp_request(PEER_MAC, c, HOST)[:10], ETH_ARP, BCAST, PEER_MAC)),  # short
        (KERNEL, e4(ipv4("10.97.0.1", "224.0.0.5", 89, b"\x02\x01" + b"\0" * 42, ttl=1),
                    dst=mac("01:00:5e:00:00:05"))),  # OSPF hello
        (KERNEL, e4(ipv4("10.97.0.1", HOST, UDP, udp(49152, 3784, b"\0" * 24), ttl=255))),
        (KERNEL, e4(ipv4("10.97.0.1", HOST, TCP, tcp(40116, 179, 0x02)))),  # BGP
        (KERNEL, e4(ipv4(DR_BACKENDS[0], HOST, TCP, tcp(80, 40117, 0x12)))),  # health reply
        ("drop_unsolicited", e4(ipv4(c, HOST, TCP, tcp(40118, 22, 0x02)))),
        ("drop_unsolicited", e4(ipv4(c, HOST, UDP, udp(50105, 161)))),
        # The host's IPv6 side: OSPFv3 from a link-local address (hop limit 1), neighbour
        # discovery (hop limit 255) to its solicited-node group, unsolicited TCP to address6.
        (KERNEL, e6(ipv6("fe80::1", "ff02::5", 89, b"\x03\x01" + b"\0" * 38, hop_limit=1),
                    dst=mac("33:33:00:00:00:05"))),
        (KERNEL, e6(ipv6("fe80::1", "ff02::1:ff00:11", ICMPV6,
                         icmp(135, 0, bytes.fromhex("20010db8009700000000000000000011"))),
                    dst=mac("33:33:ff:00:00:11"))),
        ("drop_unsolicited", e6(ipv6("2001:db8:c::9", HOST6, TCP, tcp(41120, 22, 0x02)))),
        (KERNEL, e4(ipv4(c, NOT_VIP, TCP, tcp(40119, 80)))),
        # Not IP, or IP in an EtherType we do not parse.
        (KERNEL, eth(b"\0" * 46, 0x88CC, mac("01:80:c2:00:00:0e"), PEER_MAC)),  # LLDP
        (KERNEL, eth(b"\xaa\xaa\x03" + b"\0" * 43, 46, BCAST, PEER_MAC)),  # 802.3 length
        (KERNEL, eth(ipv4(c, VIP, TCP, tcp(40120, 80)), 0x8847, PORT_MAC, PEER_MAC)),  # MPLS
        # QinQ: an S-tag (0x88A8, or the old 0x9100) is refused, and so is a second tag.
        ("parse:unsupported_vlan", eth(ipv4(c, VIP, TCP, tcp(40121, 80)), ETH_IPV4, PORT_MAC,
                                       PEER_MAC, tags=((ETH_QINQ, 5), (ETH_VLAN, 6)))),
        ("parse:unsupported_vlan", eth(ipv4(c, VIP, TCP, tcp(40125, 80)), ETH_IPV4, PORT_MAC,
                                       PEER_MAC, tags=((0x9100, 5),))),
        ("parse:unsupported_vlan", eth(ipv4(c, VIP, TCP, tcp(40122, 80)), ETH_IPV4, PORT_MAC,
                                       PEER_MAC, tags=((ETH_VLAN, 10), (ETH_VLAN, 20)))),
        ("parse:unsupported_vlan", eth(ipv4(c, VIP, TCP, tcp(40123, 80)), ETH_IPV4, PORT_MAC,
                                       PEER_MAC, tags=((ETH_VLAN, 10), (ETH_QINQ, 20)))),
        ("parse:unsupported_vlan", eth(ipv4(c, VIP, TCP, tcp(40124, 80)), ETH_IPV4, PORT_MAC,
                                       PEER_MAC, tags=((ETH_VLAN, 10), (0x9100, 20)))),
        ("parse:unsupported_vlan", eth(b"", ETH_QINQ, PORT_MAC, PEER_MAC,
                                       tags=((ETH_VLAN, 10),))),
    ]
    return f


def malformed():
    """Broken headers, one field at a time, each with the parse result it must get."""
    c = client(200)
    seg = tcp(40200, 80, 0x18, b"d" * 16)
    f = []
    for ihl in range(5):
        f.append(("parse:bad_ip_header_length", e4(ipv4(c, VIP, TCP, seg, ihl=ihl))))
    f += [
        ("parse:truncated_ip", e4(ipv4(c, VIP, TCP, b"", ihl=15, total=20))),  # 60 > 34 bytes
        ("parse:bad_ip_total_length", e4(ipv4(c, VIP, TCP, seg, ihl=6, total=20))),
        ("parse:bad_ip_total_length", e4(ipv4(c, VIP, TCP, seg, total=19))),
        ("parse:bad_ip_total_length", e4(ipv4(c, VIP, TCP, seg, total=0))),
        ("parse:bad_ip_total_length", e4(ipv4(c, VIP, TCP, seg, total=20 + len(seg) + 1))),
        ("parse:bad_ip_total_length", e4(ipv4(c, VIP, TCP, seg, total=0xFFFF))),
        ("parse:bad_ip_checksum", e4(ipv4(c, VIP, TCP, seg, bad_checksum=True))),
        ("parse:bad_ip_checksum", e4(ipv4(c, VIP, UDP, udp(50200, 53), bad_checksum=True))),
        ("parse:bad_ip_checksum", e4(ipv4(c, VIP, TCP, seg, options=b"\x01" * 8,
                                          bad_checksum=True))),
        ("parse:bad_ip_version", e4(ipv4(c, VIP, TCP, seg, version=6))),
        ("parse:bad_ip_version", e4(ipv4(c, VIP, TCP, seg, version=0))),
        ("parse:bad_ip_version", e4(ipv4(c, VIP, TCP, seg, version=15))),
        ("parse:bad_ip_version", e6(ipv4(c, VIP, TCP, seg + b"\0" * 20))),  # v4 in 0x86DD
        ("parse:bad_ip_version", e6(ipv6("2001:db8:c::9", VIP6, TCP, seg, version=4))),
        ("parse:bad_ip_total_length", e6(ipv6("2001:db8:c::9", VIP6, TCP, seg,
                                              payload_len=len(seg) + 1))),
        ("parse:bad_ip_total_length", e6(ipv6("2001:db8:c::9", VIP6, TCP, seg,
                                              payload_len=0xFFFF))),
        ("parse:truncated_l4", e6(ipv6("2001:db8:c::9", VIP6, TCP, seg[:19]))),
        ("parse:truncated_l4", e6(ipv6("2001:db8:c::9", VIP6, UDP, b"\0" * 7))),
        ("parse:truncated_l4", e6(ipv6("2001:db8:c::9", VIP6, ICMPV6, b"\x01\x00"))),
        ("parse:truncated_l4", e4(ipv4(c, VIP, TCP, seg[:10]))),
        ("parse:truncated_l4", e4(ipv4(c, VIP, UDP, b"\0" * 4))),
        ("parse:truncated_l4", e4(ipv4(c, VIP, ICMP, b"\x03\x04\0\0"))),
        ("parse:truncated_l4", e4(ipv4(c, VIP, TCP, tcp(40201, 80, data_offset=15)))),
        ("parse:truncated_l4", e4(ipv4(c, VIP, TCP, seg, total=30))),  # frame longer than IP
        ("parse:bad_udp_length", e4(ipv4(c, VIP, UDP, udp(50201, 53, b"u" * 8, length=9 + 8)))),
        ("parse:bad_udp_length", e6(ipv6("2001:db8:c::9", VIP6, UDP, udp(51200, 53,
                                                                      length=9)))),
        ("parse:truncated_vlan", eth(b"\0\x05\x08", ETH_VLAN, PORT_MAC, PEER_MAC)[:17]),
        ("parse:truncated_vlan", eth(b"", ETH_VLAN, PORT_MAC, PEER_MAC)),
        ("parse:truncated_ip", e4(b"")),
        ("parse:truncated_ip", e6(b"\x60" + b"\0" * 38)),
    ]
    for off in range(5):
        f.append(("parse:bad_tcp_header_length", e4(ipv4(c, VIP, TCP, tcp(40202, 80,
                                                                       data_offset=off)))))
    for length in range(8):
        f.append(("parse:bad_udp_length", e4(ipv4(c, VIP, UDP, udp(50202, 53, b"u" * 8,
                                                                   length=length)))))
    # Every truncation of a few valid frames.
    c2 = client(201)
    inner = ipv4(c2, VIP, TCP, tcp(40203, 80))
    quoted = ipv4(VIP, c2, TCP, tcp(80, 40204, 0x12))
    f += truncations(e4(ipv4(c2, VIP, TCP, tcp(40205, 80, 0x18, b"t" * 20, options=b"\x01" * 12),
                             options=b"\x01" * 8)), "forward_dr", 14, 4, ihl=28)
    f += truncations(e4(ipv4(c2, VIP, UDP, udp(50203, 53, b"u" * 24))), "forward_gre", 14, 4)
    f += truncations(e4(ipv4("198.51.100.1", VIP, ICMP, icmp(3, 4, quoted[:28], 1400))),
                     "forward_dr", 14, 4)
    f += truncations(e4(ipv4(c2, HOST, GRE, gre(inner))), KERNEL, 14, 4)
    f += truncations(e6(ipv6("2001:db8:c::2", VIP6, TCP, tcp(41200, 443, 0x18, b"s" * 12))),
                     "forward_dr", 14, 6)
    f += truncations(e4(ipv4(c2, VIP, TCP, tcp(40206, 80)), vlan=42), "forward_dr", 18, 4)
    return f


def garbage(rng, base):
    """Seeded random frames and mutations of `base`'s frames: class `any`."""
    f = []
    for _ in range(60):
        f.append(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200))))
    for _ in range(60):  # an Ethernet header for us, then random bytes as IPv4/IPv6/VLAN
        et = rng.choice([ETH_IPV4, ETH_IPV6, ETH_VLAN])
        f.append(eth(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 120))), et,
                     PORT_MAC, PEER_MAC))
    for _ in range(120):  # a few bytes of a valid frame changed
        b = bytearray(rng.choice(base))
        for _ in range(rng.randrange(1, 5)):
            if b:
                b[rng.randrange(len(b))] = rng.randrange(256)
        f.append(bytes(b))
    return [(ANY, x) for x in f]


def build(seed=1):
    """The corpus: [(class, frame)], malformed and tricky frames with one valid VIP frame
    after every three."""
    rng = random.Random(seed)
    flows = valid_flows()
    rest = tricky() + malformed()
    rest += garbage(rng, [fr for _, fr in flows + rest if len(fr) > 14])
    rng.shuffle(rest)
    out = []
    for i, item in enumerate(rest):
        out.append(item)
        if i % 3 == 2:
            out.append(flows[(i // 3) % len(flows)])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pcap")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--config", help="also write the daemon configuration here")
    ap.add_argument("--tap", default="ecmplb0", help="exception TAP name in --config")
    ap.add_argument("--socket", default="/run/ecmplb/ecmplb.sock", help="control socket in --config")
    ap.add_argument("--manifest", help="also write each frame's verdict class here (JSON)")
    a = ap.parse_args()
    corpus = build(a.seed)
    write_pcap(a.pcap, [fr for _, fr in corpus])
    if a.config:
        with open(a.config, "w") as f:
            json.dump(config(a.tap, a.socket), f, indent=2)
    if a.manifest:
        with open(a.manifest, "w") as f:
            json.dump([cls for cls, _ in corpus], f)
    classes = {}
    for cls, _ in corpus:
        classes[cls] = classes.get(cls, 0) + 1
    print("%d frames (seed %d): %s" % (len(corpus), a.seed, json.dumps(classes, sort_keys=True)))


if __name__ == "__main__":
    main()
