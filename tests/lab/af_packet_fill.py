#!/usr/bin/python3
"""af_packet_fill.py: fills the receive ring of the data port's unpolled af_packet socket.

Works around an ecmplb issue (see Lab.fill_unpolled_ring in lab.py):
net_af_packet opens one packet socket per queue pair and joins them in a PACKET_FANOUT_HASH
group with ROLLOVER; ecmplb asks for one TX queue more than it has workers (the exception
path), so qpairs = workers + 1 and one socket is never read. Until its ring is full, every flow
the kernel hashes onto it is lost (OSPF hellos from the router, some client flows). Once it is
full, ROLLOVER hands those flows to the polled sockets. This helper sends COUNT junk frames
(distinct UDP flows, deliberately bad IPv4 header checksum so ecmplb drops the ones it does
read) out of IFACE, the switch side of an LB host's data veth, so the ring fills at once.
"""
import argparse
import socket
import struct
import sys


def main():
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument('--iface', required=True)
  ap.add_argument('--dst-mac', required=True)
  ap.add_argument('--count', type=int, default=3000)
  args = ap.parse_args()
  dst = bytes.fromhex(args.dst_mac.replace(':', ''))
  src = bytes.fromhex('02000000fe01')
  s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
  s.bind((args.iface, 0))
  sent = 0
  for i in range(min(args.count, 65000)):
    udp = struct.pack('!HHHH', 1024 + i, 9, 8 + 18, 0) + b'ecmplb-lab-fill...'
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0xdead,
                     socket.inet_aton('192.0.2.1'), socket.inet_aton('192.0.2.2'))
    try:
      s.send(dst + src + b'\x08\x00' + ip + udp)
      sent += 1
    except OSError:
      pass
  print(f'af_packet_fill: {sent} frames sent on {args.iface}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
