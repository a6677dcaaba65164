"""8. Health checks (HTTP GET every 200 ms, fall 2, rise 2, over IPv4 for the IPv4 services and
over IPv6 for the IPv6 ones): a backend whose server stops leaves rotation in every service on
every LB host (ecmplbctl show --json), after which no new connection
fails or reaches it while the VIPs stay announced; started again, it returns."""
import time

from labkit import frr, traffic
from labkit.checks import expect, need_ctl
from labkit.common import count, fmt_counts
from labkit.testbed import HEALTH
from labkit.topology import (ALL_VIPS, PORT, VIP_DR, VIP_DR6, VIP_GRE, VIP_GRE6, backend_address,
                             service_name)

NEEDS_CTL = True


def wait_backend_state(lab, j, up, t0, timeout):
  """Seconds from t0 until every LB host's health checks (ecmplbctl show --json) have backend j
  (its IPv4 or IPv6 address) of every port-80 service in state `up`, per LB host."""
  services = {service_name(v, PORT): backend_address(v, j) for v in ALL_VIPS}
  took = {}
  while time.monotonic() - t0 < timeout and len(took) < lab.n_lbs:
    for i in lab.lbs:
      if i in took:
        continue
      states = {b.get('service'): b.get('up') for b in lab.health(i).get('backends', [])
                if services.get(b.get('service')) == b.get('address')}
      if len(states) == len(services) and all(s == up for s in states.values()):
        took[i] = time.monotonic() - t0
    time.sleep(0.01)
  expect(len(took) == lab.n_lbs, f'be{j} not {"up" if up else "down"} on every LB host after '
         f'{timeout} s: {[lab.health(i).get("backends") for i in lab.lbs]}')
  return took


def run(lab):
  need_ctl(lab)
  j = lab.backends[-1]
  name = f'be{j}'
  bes = [f'be{k}' for k in lab.backends]
  wait_backend_state(lab, j, True, time.monotonic(), timeout=5)
  t0 = time.monotonic()
  lab.stop_backends([j])
  left = wait_backend_state(lab, j, False, t0, timeout=10)
  # A bound that tells the checks acted (fall x interval = 400 ms, plus one interval of phase,
  # the check timeout and polling slack); the figure itself is printed, not asserted.
  bound = (HEALTH['fall'] + 1) * HEALTH['interval_ms'] / 1000 + HEALTH['timeout_ms'] / 1000 + 1.0
  expect(max(left.values()) <= bound, f'{name} left rotation after {max(left.values()):.2f} s (bound {bound:.2f} s)')
  for vip in ALL_VIPS:
    expect(len(frr.nexthops(vip)) == lab.n_lbs, f'{vip}: nexthops {frr.nexthops(vip)} while {name} is down')
  after = (traffic.short(VIP_DR, 300, concurrency=8) + traffic.short(VIP_GRE, 150, concurrency=8)
           + traffic.short(VIP_DR6, 300, concurrency=8) + traffic.short(VIP_GRE6, 150, concurrency=8))
  failed = [r for r in after if not r['backend']]
  on_down = sum(1 for r in after if r['backend'] == name)
  expect(not failed, f'{len(failed)} of {len(after)} connections failed after {name} left rotation: {failed[:3]}')
  expect(on_down == 0, f'{on_down} connections reached the stopped {name}')
  lab.start_backend(j)
  t1 = time.monotonic()
  ret = wait_backend_state(lab, j, True, t1, timeout=10)
  again = traffic.short(VIP_DR, 300, concurrency=8) + traffic.short(VIP_DR6, 300, concurrency=8)
  per_be = count(r['backend'] for r in again if r['backend'])
  expect(all(r['backend'] for r in again), f'{sum(1 for r in again if not r["backend"])} requests failed after {name} returned')
  expect(per_be.get(name, 0) > 0, f'{name} is up again but got no request: {per_be}')
  fmt = lambda d: '/'.join(f'{d[i] * 1000:.0f}' for i in lab.lbs)
  return (f'health: {name}\'s server stopped -> down on lb{"/lb".join(str(i) for i in lab.lbs)} in '
          f'{fmt(left)} ms (ecmplbctl show; fall {HEALTH["fall"]} x {HEALTH["interval_ms"]} ms); after that '
          f'{len(after)} connections (DR + GRE, IPv4 + IPv6): 0 failed, 0 to {name}, VIPs still announced; started '
          f'again -> up in {fmt(ret)} ms (rise {HEALTH["rise"]}), next 600: {fmt_counts(per_be, bes)}')
