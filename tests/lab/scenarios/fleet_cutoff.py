"""Fleet mode (issue 16): LB host lb<N> is cut off from etcd (a blackhole route to it) and a
change is made meanwhile. Its peers tell it through flow sync that they applied a newer
version; after fleet.grace_s it withdraws its VIPs and the router stops sending to it, while
request streams to the IPv4 and IPv6 DR VIPs lose nothing. Reconnected, it catches up (the
new version, the same fingerprint) and announces again."""
import json
import time

from labkit import frr, topology, traffic
from labkit.checks import expect, measure_nexthops_each
from labkit.common import wait_until
from labkit.testbed import FLEET_GRACE_S
from labkit.topology import PORT, VIP_DR, VIP_DR6, be_addr, service_name

NEEDS_CTL = True
VIPS = (VIP_DR, VIP_DR6)


def lab_kwargs(opts):
  return {'fleet': True}


def run(lab):
  victim, writer = lab.lbs[-1], lab.lbs[0]
  v0 = lab.fleet_view(victim).get('applied_version', 0)
  stream = traffic.Stream(VIPS, rate=40, seconds=FLEET_GRACE_S + 12)
  try:
    time.sleep(1)
    topology.cut_etcd(victim, True)
    cut = True
    time.sleep(0.5)
    out = json.loads(lab.ctl(writer, ['--json', 'backend', 'set', service_name(VIP_DR, PORT),
                                      be_addr(2), '--weight', '4']))
    v1 = out['fleet_version']
    t0 = time.monotonic()
    withdrew = wait_until(lambda: lab.fleet_view(victim).get('withdraw'), FLEET_GRACE_S + 10,
                          interval=0.02, t0=t0)
    view = lab.fleet_view(victim)
    expect(withdrew is not None, f'lb{victim} did not withdraw: {view}')
    expect(view.get('applied_version') == v0 and not view.get('connected'),
           f'lb{victim} was not cut off at version {v0}: {view}')
    dropped = measure_nexthops_each(VIPS, lab.n_lbs - 1, t0, timeout=15)
    others = [lab.fleet_view(i) for i in lab.lbs if i != victim]
    expect(all(o.get('applied_version') == v1 and not o.get('withdraw') for o in others),
           f'the other hosts should serve version {v1}: {others}')
    t1 = time.monotonic()
    topology.cut_etcd(victim, False)
    cut = False
    caught = wait_until(lambda: (lambda v: v.get('applied_version') == v1 and not v.get('withdraw'))(
        lab.fleet_view(victim)), 20, interval=0.05, t0=t1)
    expect(caught is not None, f'lb{victim} did not catch up: {lab.fleet_view(victim)}')
    lab.wait_routes(timeout=20)
    back = time.monotonic() - t1
    fps = {i: lab.fleet_view(i).get('fingerprint') for i in lab.lbs}
    expect(len(set(fps.values())) == 1, f'fingerprints differ after the catch-up: {fps}')
  finally:
    if cut:
      topology.cut_etcd(victim, False)
    res = stream.results()
  failed = [r for r in res if not r['backend']]
  expect(not failed, f'{len(failed)} of {len(res)} requests failed: {failed[:3]}')
  return (f'fleet-cutoff: lb{victim} cut off from etcd, then version {v1} written on lb{writer}: '
          f'lb{victim} (at {v0}) withdrew {withdrew:.2f} s after the change (grace '
          f'{FLEET_GRACE_S} s; peers\' versions heard through flow sync), the router dropped it '
          f'{dropped[VIP_DR]:.2f} s (IPv4) / {dropped[VIP_DR6]:.2f} s (IPv6) after the change; reconnected, it '
          f'applied {v1} in {caught:.2f} s and was back in the route after {back:.1f} s; '
          f'{len(res)} requests to the IPv4 and IPv6 DR VIPs, 0 failed')
