"""Ethernet frames as bytes, built field by field, and a pcap file writer: the stdlib only.

Used by tests/fuzz/make_seeds.py (the fuzz_pipeline seed corpus) and
tests/daemon/malformed_corpus.py (the malformed-traffic pcap replayed through the daemon).
The builders take every header field that a test may want wrong as an argument (IHL, total
length, version, checksum, TCP data offset, UDP length) and compute it right by default.
"""
import ipaddress
import struct

ETH_IPV4, ETH_IPV6, ETH_ARP, ETH_VLAN, ETH_QINQ = 0x0800, 0x86DD, 0x0806, 0x8100, 0x88A8
TCP, UDP, ICMP, GRE, ICMPV6 = 6, 17, 1, 47, 58


def csum(b):
    """The Internet checksum of b."""
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def v4(a):
    return bytes(int(x) for x in a.split("."))


def v6(a):
    return ipaddress.IPv6Address(a).packed


def mac(a):
    return bytes.fromhex(a.replace(":", ""))


def eth(payload, ethertype, dst, src, vlan=None, tags=()):
    """An Ethernet frame; vlan: one 802.1Q tag's TCI; tags: (TPID, TCI) pairs in wire order."""
    if vlan is not None:
        tags = ((ETH_VLAN, vlan),)
    tag = b"".join(struct.pack("!HH", tpid, tci) for tpid, tci in tags)
    return dst + src + tag + struct.pack("!H", ethertype) + payload


def ipv4(src, dst, proto, payload, df=True, frag=0, mf=False, ttl=64, options=b"", ihl=None,
         total=None, version=4, bad_checksum=False, ident=1):
    """An IPv4 packet; ihl/total/version override the computed fields; options are padded to
    a multiple of 4 bytes."""
    options += b"\0" * (-len(options) % 4)
    hlen = 20 + len(options)
    flags = (0x4000 if df else 0) | (0x2000 if mf else 0) | frag
    h = struct.pack("!BBHHHBBH4s4s", (version << 4) | (hlen // 4 if ihl is None else ihl), 0,
                    hlen + len(payload) if total is None else total, ident, flags, ttl, proto, 0,
                    v4(src), v4(dst)) + options
    c = csum(h) ^ (0x5555 if bad_checksum else 0)
    return h[:10] + struct.pack("!H", c) + h[12:] + payload


def ipv6(src, dst, nh, payload, hop_limit=64, payload_len=None, version=6):
    plen = len(payload) if payload_len is None else payload_len
    return struct.pack("!IHBB16s16s", version << 28, plen, nh, hop_limit, v6(src),
                       v6(dst)) + payload


def ipv6_ext(nh, body=b""):
    """One IPv6 extension header (hop-by-hop, routing, destination options): next header nh,
    body padded to a multiple of 8 bytes with the 2-byte header."""
    body += b"\0" * (-(len(body) + 2) % 8)
    return struct.pack("!BB", nh, (len(body) + 2) // 8 - 1) + body


def ipv6_frag(nh, offset=0, more=False, ident=7):
    return struct.pack("!BBHI", nh, 0, (offset << 3) | (1 if more else 0), ident)


def tcp(sport, dport, flags=0x02, data=b"", options=b"", data_offset=None):
    options += b"\0" * (-len(options) % 4)
    off = (20 + len(options)) // 4 if data_offset is None else data_offset
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, off << 4, flags, 65535, 0,
                       0) + options + data


def udp(sport, dport, data=b"", length=None):
    return struct.pack("!HHHH", sport, dport, 8 + len(data) if length is None else length,
                       0) + data


def icmp(t, code, data, rest=0):
    return struct.pack("!BBHI", t, code, 0, rest) + data


def gre(inner, proto=ETH_IPV4):
    """A bare GRE header (no flags) and its payload."""
    return struct.pack("!HH", 0, proto) + inner


def arp_request(sender_mac, sender_ip, target_ip):
    return struct.pack("!HHBBH6s4s6s4s", 1, ETH_IPV4, 6, 4, 1, sender_mac, v4(sender_ip),
                       b"\0" * 6, v4(target_ip))


def write_pcap(path, frames, snaplen=65535):
    """Writes frames (bytes each) to a classic little-endian pcap file, Ethernet link type,
    one microsecond apart."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", i // 1000000, i % 1000000, len(fr), len(fr)) + fr)
