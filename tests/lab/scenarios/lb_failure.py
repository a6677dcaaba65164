"""4. 50 long-lived connections (a message every 100 ms) survive LB host lb<N> losing its
link: BFD drops its nexthop, the router rehashes its flows onto the surviving hosts, which
send them to the same backends (Maglev), so none is reset."""
import time

from labkit import topology, traffic
from labkit.checks import expect, expect_all_kept, measure_nexthops
from labkit.topology import VIP_DR

NEEDS_CTL = False


def run(lab):
  n = 50
  victim = lab.lbs[-1]
  p, sports = traffic.long_start(VIP_DR, n, duration=8)
  try:
    rx0 = topology.data_packets(victim)[0]
    time.sleep(2)
    rx = topology.data_packets(victim)[0] - rx0
    tracked = traffic.tracked_ports(lab, victim, VIP_DR)
    on_victim = len(tracked & set(sports)) if tracked is not None else None
    t0 = time.monotonic()
    topology.set_link(victim, False)
    dropped = measure_nexthops(VIP_DR, lab.n_lbs - 1, t0, timeout=15)
    conns = traffic.long_finish(p, timeout=60)
  finally:
    if p.poll() is None:
      p.kill()
  stall = expect_all_kept(conns, n)
  # 50 connections x 10 messages/s for 2 s: about 1000/N packets reach each LB host.
  expect(on_victim != 0 and rx >= 100, f'lb{victim} carried no connection ({rx} packets): nothing was tested')
  expect(dropped < 3.0, f'nexthop dropped after {dropped:.2f} s: BFD (300 ms) did not act, '
         'only the OSPF dead interval (4 s)')
  return (f'lb-failure: lb{victim} link down -> router dropped its nexthop in {dropped * 1000:.0f} ms '
          f'(target <= 1000, BFD 3x100 ms); {n}/{n} connections survived, 0 reset '
          f'({on_victim if on_victim is not None else "?"} had been on lb{victim}: ecmplbctl conns), '
          f'longest stall {stall:.0f} ms')
