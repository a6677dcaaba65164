"""9. The four forwarding modes run side by side in the same lab: the DR service, and on the GRE
VIP a GRE (port 80), an IPIP (81) and a GUE (82) service; and the IPv6 DR and GRE services (GRE
with an IPv6 outer header to the IPv6 backends, RFC 7676). Each answers every request, from every
backend, and the tunnelled ones really arrive in their tunnel (decapsulated by the backends'
tunnel_decap.py, counted per tunnel): no packet of one mode arrives in another's."""
import time

from labkit import traffic
from labkit.checks import expect
from labkit.common import count, fmt_counts
from labkit.topology import PORT, PORT_GUE, PORT_IPIP, VIP_DR, VIP_DR6, VIP_GRE, VIP_GRE6

NEEDS_CTL = False
KINDS = ('gre', 'ipip', 'gue', 'outer6')


def run(lab):
  n = 200
  figures = []
  for vip, port, mode in ((VIP_DR, PORT, 'DR'), (VIP_GRE, PORT, 'GRE'), (VIP_GRE, PORT_IPIP, 'IPIP'),
                          (VIP_GRE, PORT_GUE, 'GUE'), (VIP_DR6, PORT, 'DR'), (VIP_GRE6, PORT, 'GRE')):
    v6 = ':' in vip
    label = f'{mode} (IPv6)' if v6 else mode
    # The tunnel kinds this row must show: its mode, and 'outer6' for an IPv6 tunnel.
    want = {mode.lower(), 'outer6'} if v6 and mode != 'DR' else {mode.lower()}
    before = {k: traffic.decapsulated(lab, k) for k in KINDS}
    res = traffic.short(vip, n, concurrency=8, port=port)
    time.sleep(1.2)  # tunnel_decap rewrites its counters every second
    got = {k: traffic.decapsulated(lab, k) - before[k] for k in KINDS}
    ok = [r for r in res if r['backend']]
    expect(len(ok) == n, f'{label}: {n - len(ok)} of {n} requests failed: {[r for r in res if not r["backend"]][:3]}')
    per_be = count(r['backend'] for r in ok)
    expect(all(per_be.get(f'be{j}', 0) > 0 for j in lab.backends), f'{label}: backends {per_be}')
    for k in KINDS:
      if k in want:
        expect(got[k] >= 3 * n, f'{label}: backends decapsulated only {got[k]} packets for {n} connections')
      else:
        expect(got[k] == 0, f'{label}: {got[k]} packets arrived in {k.upper()}')
    tunnelled = got.get(mode.lower(), 0)
    figures.append(f'{mode} {f"[{vip}]" if v6 else vip}:{port} {len(ok)}/{n} ok ({fmt_counts(per_be, [f"be{j}" for j in lab.backends])})'
                   + (f', {tunnelled} packets decapsulated' if mode != 'DR' else ''))
  return 'dr-gre: ' + '; '.join(figures)
