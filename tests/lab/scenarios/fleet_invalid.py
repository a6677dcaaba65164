"""Fleet mode (issue 16): a revision that does not validate (a table size that is not prime),
written straight into etcd with etcdctl, is refused whole by every LB host: each keeps its
version and tables, keeps its VIPs announced, `ecmplbctl fleet status` flags the refusal, and
a request stream loses nothing. A valid revision after it is applied."""
import hashlib
import os
import json
import time

from labkit import etcd, frr, topology, traffic
from labkit.checks import expect
from labkit.common import RUN, run as sh, wait_until
from labkit.topology import ALL_VIPS, VIP_DR, VIP_DR6

NEEDS_CTL = True


def lab_kwargs(opts):
  return {'fleet': True}


def etcdctl(*args):
  return sh(['ip', 'netns', 'exec', topology.ETCD_NS] + etcd.ctl_command(topology.ETCD_URL, *args))


def run(lab):
  p = lab.fleet_ctl(['get'])
  doc = json.loads(p.stdout)
  v0 = doc['version']
  bad = json.loads(json.dumps(doc['services']))
  bad[0]['table_size'] = 1000
  blob = json.dumps(bad, separators=(',', ':'))
  digest = hashlib.sha256(blob.encode()).hexdigest()
  root = f'/ecmplb/{topology.FLEET_CLUSTER}/'
  stream = traffic.Stream([VIP_DR, VIP_DR6], rate=40, seconds=4)
  time.sleep(1)
  etcdctl('put', root + 'blobs/' + digest, blob)
  etcdctl('put', root + 'config', json.dumps(
      {'format': 1, 'blobs': [{'digest': digest, 'services': len(bad), 'bytes': len(blob)}],
       'writer': 'etcdctl'}))
  refused = wait_until(lambda: all(lab.fleet_view(i).get('refused_version', 0) > v0
                                   for i in lab.lbs), 10, interval=0.02)
  views = {i: lab.fleet_view(i) for i in lab.lbs}
  res = stream.results()
  failed = [r for r in res if not r['backend']]
  expect(refused is not None, f'not every host refused the revision: {views}')
  expect(all(v['applied_version'] == v0 and 'table_size' in v['refused_reason']
             for v in views.values()), f'hosts should keep version {v0}: {views}')
  for vip in ALL_VIPS:
    expect(len(frr.nexthops(vip)) == lab.n_lbs, f'{vip}: nexthops {frr.nexthops(vip)}')
  p = lab.fleet_ctl(['status'])
  status = json.loads(p.stdout or '{}')
  flagged = [d for d in status.get('disagreements', []) if 'refused the current version' in d]
  expect(len(flagged) == lab.n_lbs, f'fleet status should flag every host: {p.stdout}')
  expect(not failed, f'{len(failed)} of {len(res)} requests failed: {failed[:3]}')
  # A valid revision after it is applied by every host.
  path = os.path.join(RUN, 'fleet-good.json')
  with open(path, 'w') as f:
    json.dump({'services': doc['services']}, f)
  p = lab.fleet_ctl(['put', path])
  expect(p.returncode == 0, f'fleet put: {p.stderr}')
  v2 = json.loads(p.stdout)['fleet_version']
  ok = wait_until(lambda: all(lab.fleet_view(i).get('applied_version') == v2 for i in lab.lbs), 10)
  expect(ok is not None, f'the valid revision {v2} was not applied: {[lab.fleet_view(i) for i in lab.lbs]}')
  reason = views[lab.lbs[0]]['refused_reason']
  return (f'fleet-invalid: a revision with a table size of 1000 written with etcdctl was refused '
          f'by all {lab.n_lbs} LB hosts in {refused * 1000:.0f} ms ("{reason[:90]}"), each kept '
          f'version {v0} and its VIPs (router: {lab.n_lbs} nexthops each); fleet status flagged '
          f'{len(flagged)} hosts; {len(res)} requests meanwhile, 0 failed; the next valid '
          f'revision ({v2}) applied everywhere')
