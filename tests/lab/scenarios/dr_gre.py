"""9. The four forwarding modes run side by side in the same lab: the DR service, and on the GRE
VIP a GRE (port 80), an IPIP (81) and a GUE (82) service. Each answers every request, from every
backend, and the tunnelled ones really arrive in their tunnel (decapsulated by the backends'
tunnel_decap.py, counted per tunnel): no packet of one mode arrives in another's."""
import time

from labkit import traffic
from labkit.checks import expect
from labkit.common import count, fmt_counts
from labkit.topology import PORT, PORT_GUE, PORT_IPIP, VIP_DR, VIP_GRE

NEEDS_CTL = False
KINDS = ('gre', 'ipip', 'gue')


def run(lab):
  n = 200
  figures = []
  for vip, port, mode in ((VIP_DR, PORT, 'DR'), (VIP_GRE, PORT, 'GRE'), (VIP_GRE, PORT_IPIP, 'IPIP'),
                          (VIP_GRE, PORT_GUE, 'GUE')):
    before = {k: traffic.decapsulated(lab, k) for k in KINDS}
    res = traffic.short(vip, n, concurrency=8, port=port)
    time.sleep(1.2)  # tunnel_decap rewrites its counters every second
    got = {k: traffic.decapsulated(lab, k) - before[k] for k in KINDS}
    ok = [r for r in res if r['backend']]
    expect(len(ok) == n, f'{mode}: {n - len(ok)} of {n} requests failed: {[r for r in res if not r["backend"]][:3]}')
    per_be = count(r['backend'] for r in ok)
    expect(all(per_be.get(f'be{j}', 0) > 0 for j in lab.backends), f'{mode}: backends {per_be}')
    for k in KINDS:
      if k == mode.lower():
        expect(got[k] >= 3 * n, f'{mode}: backends decapsulated only {got[k]} packets for {n} connections')
      else:
        expect(got[k] == 0, f'{mode}: {got[k]} packets arrived in {k.upper()}')
    tunnelled = got.get(mode.lower(), 0)
    figures.append(f'{mode} {vip}:{port} {len(ok)}/{n} ok ({fmt_counts(per_be, [f"be{j}" for j in lab.backends])})'
                   + (f', {tunnelled} packets decapsulated' if mode != 'DR' else ''))
  return 'dr-gre: ' + '; '.join(figures)
