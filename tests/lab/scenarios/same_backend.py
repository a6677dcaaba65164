"""3. A flow's backend does not depend on which LB host the router picked: the same 200
5-tuples (fixed client ports, closed with RST so they can be reused) are sent through each LB
host alone in turn (the others withdraw their VIPs: all weights 0 through ecmplbctl), for the DR
and the GRE service of each family (IPv4 and IPv6); every flow must land on the same backend."""
from labkit import frr, traffic
from labkit.checks import expect, need_ctl
from labkit.common import count
from labkit.topology import ALL_VIPS, VIP_DR, VIP_DR6, lb_addr

NEEDS_CTL = True


def only_through(lab, i):
  """Makes every LB host but i withdraw its VIPs (Lab.serve) and waits until the router follows."""
  for k in sorted(lab.lbs, key=lambda k: k != i):  # announce on i first: never no route at all
    lab.serve(k, k == i)
  for vip in ALL_VIPS:
    frr.wait_nexthops(vip, 1, timeout=10)
    expect(frr.nexthops(vip) == [lb_addr(i)], f'router still has {frr.nexthops(vip)} for {vip}')


def run(lab):
  need_ctl(lab)
  n = 200
  base = 30000
  per_vip = {}
  for vip in ALL_VIPS:
    seen = {}
    for i in lab.lbs:
      only_through(lab, i)
      res = traffic.short(vip, n, concurrency=4, sport_base=base)
      bad = [r for r in res if not r['backend']]
      expect(not bad, f'{len(bad)} requests through lb{i} to {vip} failed: {bad[:3]}')
      seen[i] = [r['backend'] for r in res]
    differ = sum(1 for k in range(n) if len({seen[i][k] for i in lab.lbs}) > 1)
    expect(differ == 0, f'{vip}: {differ} of {n} flows reached different backends through different LB hosts')
    per_vip[vip] = count(seen[lab.lbs[0]])
    base += n
  for i in lab.lbs:
    lab.serve(i, True)
  lab.wait_routes(timeout=10)
  return (f'same-backend: {n} flows x {len(ALL_VIPS)} services (DR, GRE; IPv4, IPv6) each sent '
          f'through lb1..lb{lab.n_lbs} alone: 0 differ (backends {per_vip[VIP_DR]} IPv4 DR, '
          f'{per_vip[VIP_DR6]} IPv6 DR)')
