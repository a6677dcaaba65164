"""5. With lb<N> down, 200 long-lived connections run through the others; lb<N> comes back,
Linux ECMP rehashes about 1/N of them onto it (no resilient nexthop groups), and none is
reset because the returning host picks the same backends."""
import time

from labkit import frr, topology, traffic
from labkit.checks import expect, expect_all_kept, measure_nexthops
from labkit.topology import VIP_DR

NEEDS_CTL = False


def run(lab):
  n = 200
  victim = lab.lbs[-1]
  topology.set_link(victim, False)
  frr.wait_nexthops(VIP_DR, lab.n_lbs - 1, timeout=15)
  p, sports = traffic.long_start(VIP_DR, n, duration=12)
  try:
    time.sleep(2)
    rx0 = topology.data_packets(victim)[0]
    t0 = time.monotonic()
    topology.set_link(victim, True)
    readded = measure_nexthops(VIP_DR, lab.n_lbs, t0, timeout=30)
    conns = traffic.long_finish(p, timeout=90)
  finally:
    if p.poll() is None:
      p.kill()
  rx = topology.data_packets(victim)[0] - rx0
  tracked = traffic.tracked_ports(lab, victim, VIP_DR)  # it was down when they started: all moved there
  moved = len(tracked & set(sports)) if tracked is not None else None
  stall = expect_all_kept(conns, n)
  expect(moved != 0 and rx >= 100, f'no connection was rehashed onto lb{victim} ({rx} packets)')
  return (f'lb-return: lb{victim} back -> nexthop re-added in {readded:.1f} s; '
          f'{moved if moved is not None else "?"}/{n} connections rehashed onto it (ecmplbctl conns; '
          f'{rx} packets), {n}/{n} survived, 0 reset, longest stall {stall:.0f} ms')
