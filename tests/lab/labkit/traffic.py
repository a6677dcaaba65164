"""Traffic from the client namespace (client.py: short requests, long-lived connections) and
counting it per LB host and per backend.

Which LB host carried a connection is counted on the LB side: new flows per host
(`ecmplbctl stats --json`, total.conntrack_insert), the flows each host tracks (`ecmplbctl
conns`), and without ecmplbctl the packets each host's data veth received. The router's choice
cannot be predicted with `ip route get ... sport` in the lab (see README, "The lab")."""
import json
import os
import subprocess

from . import topology
from .common import LAB_DIR, PY, LabError, count, run
from .topology import PORT, service_name

CLIENT = os.path.join(LAB_DIR, 'client.py')
CLIENT_NS = 'lab-cl'


def client(args, timeout=120):
  out = run([PY, CLIENT] + args, ns=CLIENT_NS, timeout=timeout)
  return json.loads(out.strip().splitlines()[-1])


def short(vip, count, concurrency=8, rate=0, sport_base=0, timeout=300, port=PORT):
  """count short HTTP requests; one result per request: sport, backend (None: failed), error, ms."""
  args = ['short', '--vip', vip, '--port', str(port), '--count', str(count),
          '--concurrency', str(concurrency)]
  if rate:
    args += ['--rate', str(rate)]
  if sport_base:
    args += ['--sport-base', str(sport_base)]
  return client(args, timeout=timeout)['results']


def udp(vip, port, sources, count, size=4000, timeout=120):
  """count UDP datagrams of `size` bytes from each source address, echoed by the backends;
  one result per datagram: source, sport, backend (None: no answer), intact."""
  return client(['udp', '--vip', vip, '--port', str(port), '--sources', ','.join(sources),
                 '--count', str(count), '--size', str(size)], timeout=timeout)['results']


def long_start(vip, count, duration, interval=0.1):
  """Starts count long-lived connections (a message every interval s for duration s); returns
  the client's Popen and their source ports once every one is established."""
  p = subprocess.Popen(['ip', 'netns', 'exec', CLIENT_NS, PY, CLIENT, 'long',
                        '--vip', vip, '--port', str(PORT), '--count', str(count),
                        '--interval', str(interval), '--duration', str(duration)],
                       stdout=subprocess.PIPE, text=True, start_new_session=True)
  first = p.stdout.readline().strip()
  if not first.startswith('ready '):
    p.kill()
    raise LabError(f'long-lived client did not start: {first!r}')
  sports = [s for s in json.loads(first[len('ready '):]) if s]
  return p, sports


def long_finish(p, timeout):
  out, _ = p.communicate(timeout=timeout)
  lines = out.strip().splitlines()
  if not lines:
    raise LabError(f'long-lived client exited {p.returncode} without a summary (its error is above)')
  return json.loads(lines[-1])['connections']


def summarize_long(conns):
  """(broken connections, ones answered by a second backend, longest gap in ms). A connection
  that never got an answer counts as broken: it tested nothing."""
  for c in conns:
    if not c['error'] and c.get('replies', 0) == 0:
      c['error'] = 'no reply at all'
  errors = [c for c in conns if c['error']]
  changed = [c for c in conns if c['changed']]
  stall = max((c['max_gap_ms'] for c in conns), default=0)
  return errors, changed, stall


def _stats_total(lab, i):
  return json.loads(lab.ctl(i, ['stats', '--json']))['total']


def tracked_ports(lab, i, vip, max_idle_s=None):
  """Client ports of the flows to vip that LB host i's ecmplb tracks (`ecmplbctl conns`), or
  None without ecmplbctl. This is how the lab tells which LB host carried a connection: the
  router's choice cannot be predicted with `ip route get ... sport` here (see README). With
  max_idle_s: only the flows it saw a packet of in the last max_idle_s seconds (a flow that
  left the host stays in its table until the idle timeout)."""
  if not lab.has_ctl():
    return None
  d = json.loads(lab.ctl(i, ['conns', '--json', '--limit', '100000']))
  prefix = service_name(vip, '')[:-len('/tcp')]  # 'VIP:' or '[VIP6]:'
  return {int(f['client'].rsplit(':', 1)[1]) for f in d.get('flows', [])
          if f.get('service', '').startswith(prefix)
          and (max_idle_s is None or f.get('idle_s', 0) <= max_idle_s)}


def on_host(lab, i, vip, sports, max_idle_s=None):
  """The client ports of sports whose connections LB host i tracks (tracked_ports), or None
  without ecmplbctl."""
  tracked = tracked_ports(lab, i, vip, max_idle_s)
  return tracked & set(sports) if tracked is not None else None


def lb_forwarded(lab):
  """Packets each LB host forwarded to backends (DR + GRE), from `ecmplbctl stats`; without
  ecmplbctl, the packets its data port received (OSPF/BFD included)."""
  out = {}
  for i in lab.lbs:
    try:
      t = _stats_total(lab, i) if lab.has_ctl() else None
      out[i] = (sum(t[f'forward_{m}'] for m in ('dr', 'gre', 'ipip', 'gue')) if t
                else topology.data_packets(i)[0])
    except (LabError, ValueError, KeyError):
      out[i] = topology.data_packets(i)[0]
  return out


def lb_new_flows(lab):
  """New flows each LB host's ecmplb tracked (conntrack inserts, `ecmplbctl stats --json`), or
  None while ecmplbctl or the control socket is not there."""
  if not lab.has_ctl():
    return None
  flows = {}
  for i in lab.lbs:
    try:
      flows[i] = _stats_total(lab, i)['conntrack_insert']
    except (LabError, ValueError, KeyError):
      return None
  return flows


def decapsulated(lab, kind):
  """Packets the backends' tunnel_decap.py decapsulated from tunnel `kind` ('gre', 'ipip', 'gue';
  'decapsulated': all), from their stats files (rewritten every second)."""
  total = 0
  for j in lab.backends:
    try:
      with open(lab.tunnel_stats_path(j)) as f:
        total += json.load(f).get(kind, 0)
    except (OSError, ValueError):
      pass
  return total


def gre_decapsulated(lab):
  return decapsulated(lab, 'gre')


def spread(lab, vip, n, concurrency=8):
  """n requests; returns (results, successes, per backend, data-port packets per LB host, new
  flows per LB host counted by each ecmplb or None without ecmplbctl)."""
  before = {i: topology.data_packets(i)[0] for i in lab.lbs}
  flows0 = lb_new_flows(lab)
  res = short(vip, n, concurrency=concurrency)
  flows1 = lb_new_flows(lab)
  after = {i: topology.data_packets(i)[0] for i in lab.lbs}
  ok = [r for r in res if r['backend']]
  flows = {f'lb{i}': flows1[i] - flows0[i] for i in lab.lbs} if flows0 and flows1 else None
  return res, ok, count(r['backend'] for r in ok), {i: after[i] - before[i] for i in lab.lbs}, flows


class Stream:
  """Steady request streams in the background: `rate` requests/s to each of vips for `seconds`
  (short(), 8 at a time). results() waits for them and returns every request's result."""

  def __init__(self, vips, rate, seconds):
    import threading
    self.box = {}
    self.threads = [threading.Thread(target=lambda v=vip: self.box.__setitem__(
        v, short(v, int(rate * seconds), concurrency=8, rate=rate))) for vip in vips]
    for t in self.threads:
      t.start()

  def results(self):
    for t in self.threads:
      t.join()
    return [r for rs in self.box.values() for r in rs]

  def failed(self):
    return [r for r in self.results() if not r['backend']]
