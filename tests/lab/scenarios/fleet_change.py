"""Fleet mode (issue 16): a pool change written once, with one `ecmplbctl backend set` on one
LB host, reaches every LB host through etcd: all report the same applied version and the same
table fingerprint (`ecmplbctl show`'s fleet), `ecmplbctl fleet status` sees no disagreement,
and a request stream during the change loses nothing."""
import json
import time

from labkit import traffic
from labkit.checks import expect
from labkit.common import wait_until
from labkit.topology import PORT, VIP_DR, be_addr, service_name

NEEDS_CTL = True


def lab_kwargs(opts):
  return {'fleet': True}


def run(lab):
  views = {i: lab.fleet_view(i) for i in lab.lbs}
  v0 = views[lab.lbs[0]].get('applied_version', 0)
  expect(v0 > 0 and all(v.get('applied_version') == v0 for v in views.values()),
         f'the LB hosts do not start at one version: {views}')
  stream = traffic.Stream([VIP_DR], rate=50, seconds=4)
  time.sleep(1)
  t0 = time.monotonic()
  out = json.loads(lab.ctl(lab.lbs[0], ['--json', 'backend', 'set', service_name(VIP_DR, PORT),
                                        be_addr(1), '--weight', '5']))
  v1 = out['fleet_version']
  took = wait_until(lambda: all(lab.fleet_view(i).get('applied_version') == v1 for i in lab.lbs),
                    10, interval=0.01)
  res = stream.results()
  failed = [r for r in res if not r['backend']]
  expect(took is not None, f'not every LB host applied version {v1}: '
         f'{ {i: lab.fleet_view(i) for i in lab.lbs} }')
  fps = {i: lab.fleet_view(i).get('fingerprint') for i in lab.lbs}
  expect(len(set(fps.values())) == 1, f'fingerprints differ: {fps}')
  for i in lab.lbs:
    dump = json.loads(lab.ctl(i, ['--json', 'config', 'dump']))
    w = [b['weight'] for s in dump['services'] if s['vip'] == VIP_DR and s['port'] == PORT
         for b in s['backends'] if b['address'] == be_addr(1)]
    expect(w == [5], f'lb{i} runs weight {w} for {be_addr(1)}, wanted [5]')
  p = lab.fleet_ctl(['status'])
  status = json.loads(p.stdout or '{}')
  expect(p.returncode == 0 and len(status.get('hosts', [])) == lab.n_lbs
         and not status.get('disagreements'), f'fleet status: {p.stdout} {p.stderr}')
  expect(not failed, f'{len(failed)} of {len(res)} requests failed: {failed[:3]}')
  return (f'fleet-change: one `ecmplbctl backend set` on lb{lab.lbs[0]} (version {v0} -> {v1}) '
          f'was applied by all {lab.n_lbs} LB hosts in {took * 1000:.0f} ms (target <= 1000), '
          f'same fingerprint {fps[lab.lbs[0]]}; fleet status: {lab.n_lbs} hosts, no disagreement; '
          f'{len(res)} requests during the change, 0 failed')
