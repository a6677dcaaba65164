"""1. OSPF adjacency with every LB host and an ECMP route with one nexthop per LB host; the
VIP is gone from the router when no LB host announces it, and back when they do."""
import time

from labkit import frr
from labkit.checks import expect, measure_nexthops
from labkit.testbed import HEALTH
from labkit.topology import VIP_DR, VIP_GRE, VIPS, lb_addr

NEEDS_CTL = False


def run(lab):
  nbrs = frr.ospf_neighbors()
  full = [a for a, s in nbrs.items() if s.startswith('Full')]
  expect(len(full) == lab.n_lbs, f'router neighbours {nbrs}, wanted {lab.n_lbs} Full')
  want = sorted(lb_addr(i) for i in lab.lbs)
  for vip in VIPS:
    expect(frr.nexthops(vip) == want, f'{vip} nexthops {frr.nexthops(vip)}, wanted {want}')
  # No LB host announces a VIP whose service has no healthy backend: stop every backend.
  t0 = time.monotonic()
  lab.stop_backends(lab.backends)
  left_lo = max(lab.wait_announced(i, False, timeout=10, t0=t0) for i in lab.lbs)
  gone = measure_nexthops(VIP_DR, 0, t0, timeout=10)
  measure_nexthops(VIP_GRE, 0, t0, timeout=10)
  reasons = set()
  if lab.has_ctl():
    for i in lab.lbs:
      vips = lab.health(i).get('vips', {})
      expect(all(not vips.get(v, {}).get('announced', True) for v in VIPS),
             f'lb{i}: ecmplbctl show says announced: {vips}')
      reasons |= {vips[v].get('reason', '?') for v in VIPS}
  t1 = time.monotonic()
  for j in lab.backends:
    lab.start_backend(j)
  back = measure_nexthops(VIP_DR, lab.n_lbs, t1, timeout=15)
  measure_nexthops(VIP_GRE, lab.n_lbs, t1, timeout=15)
  expect(frr.nexthops(VIP_DR) == want, f'after re-announcing: {frr.nexthops(VIP_DR)}')
  return (f'ospf-ecmp: {len(full)}/{lab.n_lbs} adjacencies Full, {VIP_DR} has {len(want)} nexthops; '
          f'every backend\'s server stopped -> VIPs off every LB host\'s lo in {left_lo * 1000:.0f} ms, '
          f'gone from the router in {gone * 1000:.0f} ms ({"; ".join(sorted(reasons)) or "?"}); '
          f'backends started -> re-added in {back * 1000:.0f} ms (health checks every '
          f'{HEALTH["interval_ms"]} ms, fall {HEALTH["fall"]}, rise {HEALTH["rise"]})')
