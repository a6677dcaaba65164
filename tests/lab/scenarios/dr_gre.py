"""9. The DR and the GRE service run side by side in the same lab: both answer every request,
from every backend, and the GRE one really arrives encapsulated (decapsulated by the
backends' gre_decap.py)."""
import time

from labkit import traffic
from labkit.checks import expect
from labkit.common import count, fmt_counts
from labkit.topology import VIP_DR, VIP_GRE

NEEDS_CTL = False


def run(lab):
  n = 200
  figures = []
  for vip, mode in ((VIP_DR, 'DR'), (VIP_GRE, 'GRE')):
    gre0 = traffic.gre_decapsulated(lab)
    res = traffic.short(vip, n, concurrency=8)
    time.sleep(1.2)  # gre_decap rewrites its counters every second
    gre = traffic.gre_decapsulated(lab) - gre0
    ok = [r for r in res if r['backend']]
    expect(len(ok) == n, f'{mode}: {n - len(ok)} of {n} requests failed: {[r for r in res if not r["backend"]][:3]}')
    per_be = count(r['backend'] for r in ok)
    expect(all(per_be.get(f'be{j}', 0) > 0 for j in lab.backends), f'{mode}: backends {per_be}')
    if mode == 'GRE':
      expect(gre >= 3 * n, f'GRE: backends decapsulated only {gre} packets for {n} connections')
    else:
      expect(gre == 0, f'DR: {gre} packets arrived GRE-encapsulated')
    figures.append(f'{mode} {vip} {len(ok)}/{n} ok ({fmt_counts(per_be, [f"be{j}" for j in lab.backends])}), '
                   f'{gre} packets via GRE')
  return 'dr-gre: ' + '; '.join(figures)
