"""1. OSPF adjacency (OSPFv2 and OSPFv3) with every LB host and an ECMP route with one nexthop
per LB host for every IPv4 and IPv6 VIP; the VIP is gone from the router when no LB host announces it, and back when they do."""
import time

from labkit import frr
from labkit.checks import expect, measure_nexthops_each
from labkit.testbed import HEALTH
from labkit.topology import ALL_VIPS, VIP_DR, VIP_DR6, lb_addr

NEEDS_CTL = False


def run(lab):
  nbrs = frr.ospf_neighbors()
  full = [a for a, s in nbrs.items() if s.startswith('Full')]
  expect(len(full) == lab.n_lbs, f'router neighbours {nbrs}, wanted {lab.n_lbs} Full')
  nbrs6 = frr.ospf6_neighbors()
  full6 = [a for a, s in nbrs6.items() if s.startswith('Full')]
  expect(len(full6) == lab.n_lbs, f'router OSPFv3 neighbours {nbrs6}, wanted {lab.n_lbs} Full')
  want = sorted(lb_addr(i) for i in lab.lbs)
  for vip in ALL_VIPS:
    expect(frr.nexthops(vip) == want, f'{vip} nexthops {frr.nexthops(vip)}, wanted {want}')
  # No LB host announces a VIP whose service has no healthy backend: stop every backend.
  t0 = time.monotonic()
  lab.stop_backends(lab.backends)
  left_lo = max(lab.wait_announced(i, False, timeout=10, t0=t0) for i in lab.lbs)
  gone = measure_nexthops_each(ALL_VIPS, 0, t0, timeout=10)
  reasons = set()
  if lab.has_ctl():
    for i in lab.lbs:
      vips = lab.health(i).get('vips', {})
      expect(all(not vips.get(v, {}).get('announced', True) for v in ALL_VIPS),
             f'lb{i}: ecmplbctl show says announced: {vips}')
      reasons |= {vips[v].get('reason', '?') for v in ALL_VIPS}
  t1 = time.monotonic()
  for j in lab.backends:
    lab.start_backend(j)
  back = measure_nexthops_each(ALL_VIPS, lab.n_lbs, t1, timeout=15)
  for vip in ALL_VIPS:
    expect(frr.nexthops(vip) == want, f'after re-announcing: {vip} {frr.nexthops(vip)}')
  return (f'ospf-ecmp: {len(full)}/{lab.n_lbs} OSPFv2 and {len(full6)}/{lab.n_lbs} OSPFv3 adjacencies '
          f'Full, each of {len(ALL_VIPS)} VIPs (IPv4, IPv6) has {len(want)} nexthops; '
          f'every backend\'s server stopped -> VIPs off every LB host\'s lo in {left_lo * 1000:.0f} ms, '
          f'gone from the router in {gone[VIP_DR] * 1000:.0f} ms (IPv4) / '
          f'{gone[VIP_DR6] * 1000:.0f} ms (IPv6) ({"; ".join(sorted(reasons)) or "?"}); '
          f'backends started -> re-added in {back[VIP_DR] * 1000:.0f} / {back[VIP_DR6] * 1000:.0f} ms (health checks every '
          f'{HEALTH["interval_ms"]} ms, fall {HEALTH["fall"]}, rise {HEALTH["rise"]})')
