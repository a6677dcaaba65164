#!/usr/bin/python3
"""gre_decap.py: user-space GRE decapsulation for a lab backend (this kernel has no GRE).

Stands in for a backend's `ip tunnel ... mode gre`: a raw socket for IP protocol 47 receives
every GRE packet addressed to this namespace (outer IPv4 header included); the helper checks
the GRE header (version 0, protocol 0x0800 IPv4, optional checksum/key/sequence fields) and
writes the inner IPv4 packet into a TUN device (IFF_TUN|IFF_NO_PI), so the kernel delivers it
to the VIP on lo and the reply goes straight to the client.
Prints counters on SIGTERM or when --stats-file is given, rewrites that file every second.
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


def decap(pkt):
  """Returns the inner IPv4 packet of an IPv4/GRE packet, or None (with a reason)."""
  if len(pkt) < 20 or pkt[0] >> 4 != 4:
    return None, 'not_ipv4'
  ihl = (pkt[0] & 0x0f) * 4
  if ihl < 20 or len(pkt) < ihl + 4:
    return None, 'short'
  flags, proto = struct.unpack_from('!HH', pkt, ihl)
  if flags & 0x0007 != 0:
    return None, 'gre_version'
  if proto != 0x0800:
    return None, 'not_ipv4_inner'
  off = ihl + 4
  if flags & 0x8000:  # checksum + reserved
    off += 4
  if flags & 0x2000:  # key
    off += 4
  if flags & 0x1000:  # sequence number
    off += 4
  inner = pkt[off:]
  if len(inner) < 20 or inner[0] >> 4 != 4:
    return None, 'bad_inner'
  return inner, None


def main():
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument('--tun', default='gre0')
  ap.add_argument('--stats-file')
  args = ap.parse_args()
  tun = open_tun(args.tun)
  # The TUN carries no routes of its own; a link-local address keeps loose rp_filter happy.
  subprocess.run(['ip', 'addr', 'add', '169.254.47.1/32', 'dev', args.tun], check=True)
  subprocess.run(['ip', 'link', 'set', args.tun, 'up'], check=True)
  raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, 47)
  stats = {'decapsulated': 0}
  stop = []
  signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
  print(f'gre_decap: {args.tun} ready', flush=True)
  last = 0.0
  while not stop:
    r, _, _ = select.select([raw], [], [], 0.2)
    if r:
      pkt = raw.recv(65535)
      inner, why = decap(pkt)
      if inner is None:
        stats[why] = stats.get(why, 0) + 1
      else:
        os.write(tun, inner)
        stats['decapsulated'] += 1
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
  print(f'gre_decap: stopped {json.dumps(stats)}', flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
