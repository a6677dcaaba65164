"""Fleet mode (issue 16): two operators write at once. Two `ecmplbctl fleet put
--expect-version V` from two LB hosts, started together: one wins, the other exits 4 with a
conflict and writes nothing. Then ten rounds of two concurrent `ecmplbctl backend set` (one on
each host, each a read-modify-write with a compare-and-swap): every command either succeeds or
exits 4 with the conflict message, and every host ends on the last written version."""
import json
import os
import subprocess

from labkit.checks import expect
from labkit.common import RUN, wait_until
from labkit.topology import PORT, VIP_DR, be_addr, lb_ns, service_name

NEEDS_CTL = True


def lab_kwargs(opts):
  return {'fleet': True}


def start(lab, i, args):
  return subprocess.Popen(['ip', 'netns', 'exec', lb_ns(i), lab.ecmplbctl, '--socket',
                           lab.socket_path(i), '--json'] + args,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(lab):
  a, b = lab.lbs[0], lab.lbs[1]
  doc = json.loads(lab.fleet_ctl(['get']).stdout)
  v0 = doc['version']
  files = []
  for k, weight in ((1, 2), (2, 3)):
    services = json.loads(json.dumps(doc['services']))
    services[0]['backends'][0]['weight'] = weight
    path = os.path.join(RUN, f'conflict{k}.json')
    with open(path, 'w') as f:
      json.dump({'services': services}, f)
    files.append(path)
  procs = [start(lab, a, ['fleet', 'put', files[0], '--expect-version', str(v0)]),
           start(lab, b, ['fleet', 'put', files[1], '--expect-version', str(v0)])]
  outs = [(p.wait(timeout=30), *p.communicate()) for p in procs]
  codes = sorted(o[0] for o in outs)
  expect(codes == [0, 4], f'wanted one success and one conflict (exit 4): {outs}')
  loser = next(o for o in outs if o[0] == 4)
  expect('conflict' in loser[2] and 'nothing was written' in loser[2], f'conflict message: {loser[2]}')
  winner = json.loads(next(o for o in outs if o[0] == 0)[1])['fleet_version']
  conflicts = successes = 0
  for r in range(10):
    ps = [start(lab, i, ['backend', 'set', service_name(VIP_DR, PORT), be_addr(1 + k),
                         '--weight', str(2 + r)]) for k, i in enumerate((a, b))]
    for p in ps:
      rc = p.wait(timeout=30)
      out, err = p.communicate()
      expect(rc == 0 or (rc == 4 and 'conflict' in err), f'backend set: exit {rc}: {err}')
      successes += rc == 0
      conflicts += rc == 4
  last = json.loads(lab.fleet_ctl(['get']).stdout)['version']
  ok = wait_until(lambda: all(lab.fleet_view(i).get('applied_version') == last for i in lab.lbs), 10)
  expect(ok is not None, f'hosts did not converge on {last}: {[lab.fleet_view(i) for i in lab.lbs]}')
  return (f'fleet-conflict: two `fleet put --expect-version {v0}` at once from lb{a} and lb{b}: '
          f'one won (version {winner}), the other exited 4 ("{loser[2].strip()[:80]}..."); '
          f'10 rounds of two concurrent `backend set`: {successes} written, {conflicts} refused '
          f'as conflicts, none lost silently; every host on version {last}')
