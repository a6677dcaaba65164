#!/usr/bin/python3
"""tunnel_decap.py: user-space decapsulation for a lab backend (this kernel has no GRE, IPIP or
fou modules).

Stands in for a backend's `ip tunnel ... mode gre` / `mode ipip`, `ip6gre` / `ip6tnl` and a
`fou` GUE receive port, for IPv4 and IPv6 outer headers: raw sockets for IP protocols 47 (GRE),
4 (IPv4 inside) and 41 (IPv6 inside) receive every such packet addressed to this namespace
(IPv4: outer header included; IPv6: the payload after it), and a dual-stack UDP socket on the
GUE port (6080 by default) receives GUE variant 1 payloads (the inner IP packet right after
the UDP header). The helper checks each tunnel header (GRE: version 0, protocol 0x0800 or
0x86DD, optional checksum/key/sequence fields) and writes the inner IPv4 or IPv6 packet into a
TUN device (IFF_TUN|IFF_NO_PI: the kernel reads the version nibble), so the kernel delivers it
to the VIP on lo and the reply goes straight to the client.
Counts per tunnel ("gre", "ipip", "gue"; "decapsulated" is their sum; "outer6" the ones that
came with an IPv6 outer header) and per refusal; prints them on SIGTERM, and with
--stats-file rewrites that file every second.
"""
import argparse
import fcntl
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

TUNSETIFF = 0x400454ca
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name):
  fd = os.open('/dev/net/tun', os.O_RDWR)
  fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', name.encode(), IFF_TUN | IFF_NO_PI))
  return fd


def outer_payload(pkt):
  """The payload of an outer IPv4 packet (what a raw socket hands over), or None."""
  if len(pkt) < 20 or pkt[0] >> 4 != 4:
    return None, 'not_ipv4'
  ihl = (pkt[0] & 0x0f) * 4
  if ihl < 20 or len(pkt) < ihl:
    return None, 'short'
  return pkt[ihl:], None


def inner_ip(inner, version=None):
  """inner if it is an IPv4 or IPv6 packet (of `version` when given)."""
  if len(inner) < 20 or inner[0] >> 4 not in (4, 6) or (version and inner[0] >> 4 != version):
    return None, 'bad_inner'
  if inner[0] >> 4 == 6 and len(inner) < 40:
    return None, 'bad_inner'
  return inner, None


def gre_payload(payload):
  """The inner IP packet after a GRE header."""
  if len(payload) < 4:
    return None, 'short'
  flags, proto = struct.unpack_from('!HH', payload, 0)
  if flags & 0x0007 != 0:
    return None, 'gre_version'
  if proto not in (0x0800, 0x86DD):
    return None, 'not_ip_inner'
  off = 4
  if flags & 0x8000:  # checksum + reserved
    off += 4
  if flags & 0x2000:  # key
    off += 4
  if flags & 0x1000:  # sequence number
    off += 4
  return inner_ip(payload[off:], 4 if proto == 0x0800 else 6)


def decap_gre(pkt):
  """Returns the inner packet of an IPv4/GRE packet, or None (with a reason)."""
  payload, why = outer_payload(pkt)
  if payload is None:
    return None, why
  return gre_payload(payload)


def decap_ipip(pkt):
  """The inner IPv4 packet of an IPv4-in-IPv4 packet (protocol 4)."""
  payload, why = outer_payload(pkt)
  if payload is None:
    return None, why
  return inner_ip(payload, 4)


def decap_ipip6(pkt):
  """The inner IPv6 packet of an IPv6-in-IPv4 packet (protocol 41)."""
  payload, why = outer_payload(pkt)
  if payload is None:
    return None, why
  return inner_ip(payload, 6)


def decap_gue(payload):
  """GUE variant 1: the UDP payload is the inner IP packet (first nibble 4 or 6)."""
  if payload and payload[0] >> 6 == 0:
    return None, 'gue_variant0'
  return inner_ip(payload)


def main():
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument('--tun', default='tnl0')
  ap.add_argument('--gue-port', type=int, default=6080)
  ap.add_argument('--stats-file')
  args = ap.parse_args()
  tun = open_tun(args.tun)
  # The TUN carries no routes of its own; a link-local address keeps loose rp_filter happy.
  subprocess.run(['ip', 'addr', 'add', '169.254.47.1/32', 'dev', args.tun], check=True)
  subprocess.run(['ip', 'link', 'set', args.tun, 'up'], check=True)
  raw = lambda family, proto: socket.socket(family, socket.SOCK_RAW, proto)
  gue = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
  gue.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
  gue.bind(('::', args.gue_port))
  # socket -> (tunnel, decapsulation, outer family); an IPv6 raw socket hands over the payload.
  kinds = {raw(socket.AF_INET, 47): ('gre', decap_gre, 4),
           raw(socket.AF_INET, 4): ('ipip', decap_ipip, 4),
           raw(socket.AF_INET, 41): ('ipip', decap_ipip6, 4),
           raw(socket.AF_INET6, 47): ('gre', gre_payload, 6),
           raw(socket.AF_INET6, 4): ('ipip', lambda p: inner_ip(p, 4), 6),
           raw(socket.AF_INET6, 41): ('ipip', lambda p: inner_ip(p, 6), 6),
           gue: ('gue', decap_gue, None)}
  stats = {'decapsulated': 0, 'gre': 0, 'ipip': 0, 'gue': 0, 'outer6': 0}
  stop = []
  signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
  print(f'tunnel_decap: {args.tun} ready (GRE, IPIP, GUE on UDP {args.gue_port})', flush=True)
  last = 0.0
  while not stop:
    r, _, _ = select.select(list(kinds), [], [], 0.2)
    for sock in r:
      kind, decap, outer = kinds[sock]
      data, src = sock.recvfrom(65535)
      inner, why = decap(data)
      if inner is None:
        stats[f'{kind}_{why}'] = stats.get(f'{kind}_{why}', 0) + 1
      else:
        os.write(tun, inner)
        stats[kind] += 1
        stats['decapsulated'] += 1
        # GUE: an IPv6 sender is IPv6 outer (IPv4 ones arrive as ::ffff:a.b.c.d).
        if outer == 6 or (outer is None and not src[0].startswith('::ffff:')):
          stats['outer6'] += 1
    now = time.monotonic()
    if args.stats_file and now - last >= 1.0:
      last = now
      tmp = args.stats_file + '.tmp'
      with open(tmp, 'w') as f:
        json.dump(stats, f)
      os.replace(tmp, args.stats_file)
  if args.stats_file:
    with open(args.stats_file, 'w') as f:
      json.dump(stats, f)
  print(f'tunnel_decap: stopped {json.dumps(stats)}', flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
