"""12. An LB host under a bounded flood (issue 14): with long-lived connections running through
the VIP, ecmplb-gen floods LB host lb<N> from lab-fl, a namespace linked to the router beside
the client, with junk the router delivers to that host: TCP SYNs and UDP to its own address on
random ports, ICMP echo to its address and the VIPs, and TCP/UDP to non-VIP addresses (the
router sends 10.0.0.112-255 to the victim: without those routes it would drop them itself,
ARP unanswered). Malformed frames (`garbage`) are left out: the router's IP stack drops them.

While it floods (options `pps`, `seconds`), the router's OSPF adjacency and BFD session with the
victim, and its nexthops for both VIPs, are polled: none may change; the victim's health view
(`ecmplbctl show --json`) must keep every backend up and both VIPs announced; every long-lived
connection must survive. The victim's counters must show the flood arrived (unsolicited
TCP/UDP dropped in the worker, the rest over the host-wide budget), and the kernel must have
been given no more "other" packets than the budget (rate_pps x time + burst).

`--set limiter=off` runs the same flood with the limiter effectively off (host.exception:
rate_pps 100,000,000, priority_pps 100,000,000, drop_unsolicited false: everything reaches the
kernel) and reports what happened instead of asserting: a figure, not a CI test.

  lab.py --build build test flood [--set seconds=60] [--set pps=N] [--set limiter=off]

Both modes give every LB host a route back to the flood net through the router (a real host
would have a default route), so the kernel's answers (RSTs, echo replies, port unreachables)
leave through the exception forwarder, the path OSPF hellos and BFD packets take.
"""
import json
import os
import threading
import time

from labkit import frr, topology, traffic
from labkit.checks import Skip, expect, need_ctl
from labkit.common import RUN, LabError, count, log, wait_until
from labkit.common import run as sh
from labkit.frr import ROUTER_NS
from labkit.topology import FLOOD_NET, FLOOD_NS, ROUTER_LB_ADDR, VIP_DR, VIPS, lb_addr, lb_ns

NEEDS_CTL = True
OPTIONS = {
    'seconds': 15.0,    # flood duration (the figure: 60; CI: 15)
    'pps': 40000,       # flood rate, frames per second (64-byte frames); see README
    'limiter': 'on',    # 'off': the limiter-off figure (reports, asserts nothing but the flood)
    'conns': 40,        # long-lived connections through the DR VIP
    # ecmplb-gen's core. It busy-polls: on core 1, beside ecmplb's workers (which sleep when
    # idle), it leaves core 0 to the kernel, FRR and ecmplb's control and exception threads
    # (on core 0 at 36 kpps the router's own OSPF and BFD failed; on core 1 62 kpps held).
    'lcore': 1,
}
KINDS = ['host-tcp', 'host-udp', 'icmp-echo', 'nonvip']
# The limiter off, as config can say it: budgets far above anything the lab carries, and
# unsolicited TCP/UDP to the host passed to the kernel.
LIMITER_OFF = {'rate_pps': 100000000, 'burst': 1000000, 'priority_pps': 100000000,
               'drop_unsolicited': False}
# ecmplb's defaults (control/config.h), what the limiter-on run uses.
DEFAULT_RATE_PPS, DEFAULT_BURST = 10000, 1000
# Share of the flood the LB hosts' counters must account for (the rest may be lost on the
# lab's veths, the router or the af_packet ring under load).
SEEN_SHARE = 0.8


def lab_kwargs(opts):
  if opts['limiter'] not in ('on', 'off'):
    raise LabError(f'--set limiter={opts["limiter"]}: on or off')
  return {'exception': LIMITER_OFF} if opts['limiter'] == 'off' else {}


def gen_path(lab):
  return os.path.join(lab.build, 'bench', 'gen', 'ecmplb-gen')


# -- what is watched

def route_uptime(vip):
  """Seconds since zebra installed the router's current route to vip (it restarts when the
  nexthops change, however briefly), or None."""
  try:
    d = json.loads(frr.vtysh(ROUTER_NS, f'show ip route {vip}/32 json') or '{}')
    h, m, s = (int(x) for x in d[f'{vip}/32'][0]['uptime'].split(':'))
    return h * 3600 + m * 60 + s
  except (ValueError, KeyError, IndexError, TypeError):
    return None


def health_view(lab, i):
  """(backends not up, VIPs not announced, last checks that did not get HTTP 200)."""
  h = lab.health(i, check=False)
  down = sorted(f'{b["service"]} {b["address"]}' for b in h.get('backends', []) if not b.get('up'))
  bad_checks = sorted(f'{b["address"]}: {b.get("last_check")}' for b in h.get('backends', [])
                      if b.get('checked') and b.get('last_check') != 'HTTP 200')
  withdrawn = sorted(vip for vip, v in h.get('vips', {}).items() if not v.get('announced'))
  if not h:
    down = ['(no health view)']
  return down, withdrawn, bad_checks


class Watch:
  """Polls, until stop(), the router's nexthops for both VIPs (one thread, every ~20 ms: how
  long the victim was out of the route), and the router's OSPF neighbour and BFD session with
  the victim and the victim's health view (another thread: vtysh and ecmplbctl are slower);
  keeps whatever differs from the start."""

  def __init__(self, lab, victim):
    self.lab, self.victim = lab, victim
    self.nexthops0 = {v: frr.nexthops(v) for v in VIPS}
    self.ospf0 = frr.ospf_neighbors().get(lb_addr(victim))
    self.ospf_up0 = frr.ospf_neighbor_uptime_ms(lb_addr(victim))
    self.created = time.monotonic()
    self.bfd0 = frr.bfd_peer(lb_addr(victim))
    self.route_polls = self.state_polls = 0
    self.nexthop_changes = []  # (t, vip, nexthops), each differing sample
    self.out_s = 0.0  # time some VIP's nexthops differed from the start
    self.episodes, self._was_changed = 0, False  # times they started to differ
    self.ospf_states, self.bfd_states = set(), set()
    self.health_down, self.withdrawn, self.bad_checks = set(), set(), []
    self._stop = threading.Event()
    self._threads = [threading.Thread(target=f, daemon=True) for f in (self._routes, self._states)]

  def start(self):
    self.t0 = time.monotonic()
    for t in self._threads:
      t.start()
    return self

  def stop(self):
    self._stop.set()
    for t in self._threads:
      t.join(30)
    self.stopped = self._now()
    self.final_nexthops = {v: frr.nexthops(v) for v in VIPS}

  def _now(self):
    return round(time.monotonic() - self.t0, 2)

  def _routes(self):
    last = time.monotonic()
    while not self._stop.is_set():
      changed = False
      for v in VIPS:
        hops = frr.nexthops(v)
        if hops != self.nexthops0[v]:
          self.nexthop_changes.append((self._now(), v, hops))
          changed = True
      now = time.monotonic()
      if changed:
        self.out_s += now - last
        self.episodes += not self._was_changed
      self._was_changed = changed
      last = now
      self.route_polls += 1
      self._stop.wait(0.02)

  def _states(self):
    while not self._stop.is_set():
      self.ospf_states.add(frr.ospf_neighbors().get(lb_addr(self.victim)))
      self.bfd_states.add(frr.bfd_peer(lb_addr(self.victim))[0])
      down, withdrawn, bad = health_view(self.lab, self.victim)
      self.health_down.update(down)
      self.withdrawn.update(withdrawn)
      self.bad_checks += [f'{self._now()} s {b}' for b in bad]
      self.state_polls += 1
      self._stop.wait(0.05)


# -- load figures

def thread_cpu(pid):
  """CPU seconds per thread name of process pid (utime + stime of each /proc task)."""
  hz = os.sysconf('SC_CLK_TCK')
  out = {}
  try:
    tids = os.listdir(f'/proc/{pid}/task')
  except OSError:
    return out
  for tid in tids:
    try:
      with open(f'/proc/{pid}/task/{tid}/stat') as f:
        stat = f.read()
    except OSError:
      continue
    name = stat[stat.index('(') + 1:stat.rindex(')')]
    fields = stat[stat.rindex(')') + 2:].split()
    out[name] = out.get(name, 0) + (int(fields[11]) + int(fields[12])) / hz
  return out


def machine_cpu():
  """(softirq, total) jiffies of the whole machine (/proc/stat)."""
  with open('/proc/stat') as f:
    vals = [int(x) for x in f.readline().split()[1:]]
  return vals[6], sum(vals)


def snmp(ns):
  """The namespace's /proc/net/snmp as {'Tcp.OutRsts': n, ...}."""
  lines = sh(['cat', '/proc/net/snmp'], ns=ns).splitlines()
  out = {}
  for names, values in zip(lines[0::2], lines[1::2]):
    proto = names.split(':')[0]
    for k, v in zip(names.split()[1:], values.split()[1:]):
      out[f'{proto}.{k}'] = int(v)
  return out


def tap_packets(i):
  """(packets the kernel read from ecmplb's TAP, packets it wrote to it) on LB host i."""
  out = sh(['ip', '-j', '-s', 'link', 'show', 'ecmplb0'], ns=lb_ns(i), check=False)
  try:
    st = json.loads(out)[0]['stats64']
    return st['rx']['packets'], st['tx']['packets']
  except (ValueError, KeyError, IndexError):
    return 0, 0


def stats_total(lab, i):
  return json.loads(lab.ctl(i, ['stats', '--json']))['total']


class Load:
  """Counters and CPU of the victim (and the other LB hosts' counters) at one moment."""

  def __init__(self, lab, victim):
    self.t = time.monotonic()
    self.stats = {i: stats_total(lab, i) for i in lab.lbs}
    self.tap = tap_packets(victim)
    self.snmp = snmp(lb_ns(victim))
    self.cpu = thread_cpu(lab.state['procs'][f'lb{victim}-ecmplb']['pid'])
    self.softirq, self.total = machine_cpu()


def delta(a, b, i, name):
  return b.stats[i].get(name, 0) - a.stats[i].get(name, 0)


# -- the run

def prepare_routes(lab, victim):
  """The router sends the generator's non-VIP destinations (10.0.0.112..212 for lb2:
  host address + 100..200) to the victim; every LB host routes the flood net back."""
  for prefix in ('10.0.0.112/28', '10.0.0.128/25'):
    sh(['ip', 'route', 'replace', prefix, 'via', lb_addr(victim)], ns=ROUTER_NS)
  for i in lab.lbs:
    sh(['ip', 'route', 'replace', FLOOD_NET, 'via', ROUTER_LB_ADDR, 'dev', 'ecmplb0'], ns=lb_ns(i))


def start_gen(lab, victim, opts, router_mac, out_path):
  cmd = [gen_path(lab), '-l', str(opts['lcore']), '--no-huge', '-m', '256', '--no-pci', '--no-shconf',
         '--file-prefix=lab-flood-gen', '--log-level=error', '--vdev=net_af_packet0,iface=fl0',
         '--', '--config', lab.config_path(victim), '--dst-mac', router_mac,
         '--flood-share', '1', '--flood', ','.join(KINDS), '--rate', str(opts['pps']),
         '--duration', str(opts['seconds']), '--flows', '1', '--no-src-mac-check', '--json']
  return lab.run.spawn('flood-gen', FLOOD_NS, cmd, 'ecmplb-gen', stdout_path=out_path)


def gen_result(out_path, rc):
  try:
    with open(out_path) as f:
      return json.loads(f.read())
  except (OSError, ValueError):
    raise LabError(f'ecmplb-gen exited {rc} without its JSON summary (see flood-gen.log)')


def run(lab, opts):
  need_ctl(lab)
  if not os.access(gen_path(lab), os.X_OK):
    raise Skip(f'{gen_path(lab)} is not built (ninja -C {lab.build} bench/gen/ecmplb-gen)')
  victim = lab.lbs[-1]
  seconds, n = opts['seconds'], opts['conns']

  topology.build_flood_link(lab.run)
  router_mac = topology.link_mac(ROUTER_NS, 'rtr-fl')
  prepare_routes(lab, victim)

  # The lab is up once the router routes through every LB host; BFD comes up a little later.
  wait_until(lambda: frr.bfd_peer(lb_addr(victim))[0] == 'up', 15, interval=0.2)
  w0 = Watch(lab, victim)
  expect(w0.bfd0[0] == 'up' and w0.bfd0[1] is not None, f'no BFD session up with lb{victim}: {w0.bfd0}')
  expect(str(w0.ospf0).startswith('Full'), f'OSPF with lb{victim} is {w0.ospf0}, not Full')
  for v in VIPS:
    expect(len(w0.nexthops0[v]) == lab.n_lbs, f'{v}: nexthops {w0.nexthops0[v]} before the flood')
  down, withdrawn, _ = health_view(lab, victim)
  expect(not down and not withdrawn, f'lb{victim} before the flood: down {down}, withdrawn {withdrawn}')

  p, sports = traffic.long_start(VIP_DR, n, duration=seconds + 6, interval=0.2)
  out_path = os.path.join(RUN, 'flood-gen.json')
  try:
    on_victim = traffic.on_host(lab, victim, VIP_DR, sports)
    uptimes0 = {v: route_uptime(v) for v in VIPS}
    watch = w0.start()
    a = Load(lab, victim)
    watch.flood_start = time.monotonic() - watch.t0
    gen = start_gen(lab, victim, opts, router_mac, out_path)
    try:
      rc = gen.wait(timeout=seconds + 60)
    finally:
      if gen.poll() is None:
        gen.kill()
    flood_end = time.monotonic()
    time.sleep(1)  # answers in flight, the last checks
    b = Load(lab, victim)
    conns = traffic.long_finish(p, timeout=seconds + 60)
    watch.stop()  # it watched ~5 s past the flood: the aftermath, and how long recovery took
    watch.flood_end = flood_end - watch.t0
  finally:
    if p.poll() is None:
      p.kill()
  return judge(lab, victim, opts, watch, a, b, uptimes0, res_or_fail(out_path, rc), conns, on_victim)


def res_or_fail(out_path, rc):
  expect(rc == 0, f'ecmplb-gen exited {rc} (see flood-gen.log)')
  return gen_result(out_path, rc)


def judge(lab, victim, opts, watch, a, b, uptimes0, res, conns, on_victim):
  """Prints the figures; with the limiter on, asserts; returns the one-line result."""
  limiter = opts['limiter'] == 'on'
  seconds, pps, n = opts['seconds'], opts['pps'], opts['conns']
  window = b.t - a.t
  uptimes1 = {v: route_uptime(v) for v in VIPS}
  ospf_up1 = frr.ospf_neighbor_uptime_ms(lb_addr(victim))
  bfd1 = frr.bfd_peer(lb_addr(victim))
  errors, changed, stall = traffic.summarize_long(conns)

  sent = res['tx']['total_packets']
  per_kind = {k: res['flood']['per_kind'].get(k, {}).get('packets', 0) for k in KINDS}
  # What the LB hosts saw of it: dropped as unsolicited, over the budget, or passed as "other".
  other = {i: delta(a, b, i, 'exception') - delta(a, b, i, 'exception_priority') for i in lab.lbs}
  seen = {i: delta(a, b, i, 'drop_unsolicited') + delta(a, b, i, 'exception_rate_limited') + other[i]
          for i in lab.lbs}
  unsolicited = delta(a, b, victim, 'drop_unsolicited')
  limited = delta(a, b, victim, 'exception_rate_limited')
  passed = other[victim]
  cpu = {k: (b.cpu.get(k, 0) - a.cpu.get(k, 0)) / window * 100 for k in b.cpu}
  worker_cpu = sum(v for k, v in cpu.items() if k.startswith(('rte-worker', 'lcore-worker')))
  softirq = (b.softirq - a.softirq) / max(1, b.total - a.total) * 100
  snmp_d = {k: b.snmp.get(k, 0) - a.snmp.get(k, 0) for k in
            ('Ip.InReceives', 'Tcp.OutRsts', 'Icmp.OutEchoReps', 'Icmp.OutDestUnreachs')}
  # zebra's route and the OSPF adjacency restart their uptime on any change, however brief.
  route_restarted = [v for v in VIPS if uptimes0[v] is None or uptimes1[v] is None
                     or uptimes1[v] + 2 < uptimes0[v] + window]
  since_created = (time.monotonic() - watch.created) * 1000
  ospf_restarted = (watch.ospf_up0 is None or ospf_up1 is None
                    or ospf_up1 + 2000 < watch.ospf_up0 + since_created)
  bfd_downs = (bfd1[1] or 0) - (watch.bfd0[1] or 0)
  ospf_states = sorted(map(str, watch.ospf_states))
  bfd_states = sorted(map(str, watch.bfd_states))
  changes = watch.nexthop_changes
  if not changes:
    recovery = 'the route never changed'
  elif watch.final_nexthops != watch.nexthops0:
    recovery = f'not back {watch.stopped - watch.flood_end:.1f} s after the flood'
  elif changes[-1][0] <= watch.flood_end:
    recovery = f'every nexthop back before the flood ended (last change seen at {changes[-1][0]:.1f} s)'
  else:
    recovery = f'every nexthop back {changes[-1][0] - watch.flood_end:.1f} s after the flood'

  mode = ('on (ecmplb defaults: rate_pps 10000, burst 1000, priority_pps 5000, drop_unsolicited true)'
          if limiter else 'off (rate_pps and priority_pps 100000000, drop_unsolicited false)')
  log(f'flood: limiter {mode}; victim lb{victim}; ecmplb-gen on lcore {opts["lcore"]}, net_af_packet on '
      f'{FLOOD_NS}/fl0, through the router: {sent} frames in {res["duration_s"]:.1f} s '
      f'({res["tx"]["total_mpps"] * 1e6:.0f} pps, asked {pps}), per kind {per_kind}; '
      f'{res["rx"]["packets"]} answers came back')
  log(f'  router ({watch.route_polls} route polls, {watch.state_polls} OSPF/BFD/health polls over '
      f'{window:.1f} s): OSPF states {ospf_states}, adjacency restarted: {"yes" if ospf_restarted else "no"}; '
      f'BFD states {bfd_states}, session-down +{bfd_downs}; nexthops changed {watch.episodes} times '
      f'(first {changes[0] if changes else "-"}, last {changes[-1] if changes else "-"}; ecmplb-gen ran from '
      f'{watch.flood_start:.1f} to {watch.flood_end:.1f} s, EAL start-up included), {watch.out_s:.1f} s out of the route in all; route reinstalled: {route_restarted or "no"}; {recovery}')
  log(f'  lb{victim} health: backends down {sorted(watch.health_down) or "none"}, VIPs withdrawn '
      f'{sorted(watch.withdrawn) or "none"}, failed checks seen {len(watch.bad_checks)} {watch.bad_checks[:3]}')
  log(f'  connections: {n - len(errors)}/{n} survived ({len(on_victim or [])} through lb{victim}), '
      f'{len(changed)} answered by another backend, longest gap {stall:.0f} ms'
      + (f', errors {count(c["error"].split(":")[0] for c in errors)}' if errors else ''))
  log(f'  lb{victim} counters: rx_packets +{delta(a, b, victim, "rx_packets")}, drop_unsolicited '
      f'+{unsolicited}, exception_rate_limited +{limited}, exception +{delta(a, b, victim, "exception")} '
      f'(other +{passed}, exception_priority +{delta(a, b, victim, "exception_priority")}), '
      f'exception_priority_limited +{delta(a, b, victim, "exception_priority_limited")}, '
      f'drop_exception_full +{delta(a, b, victim, "drop_exception_full")}, conntrack_repick '
      f'+{delta(a, b, victim, "conntrack_repick")}, drop_no_backend +{delta(a, b, victim, "drop_no_backend")}; flood frames seen per LB host {seen}')
  log(f'  lb{victim} load: its kernel read {b.tap[0] - a.tap[0]} packets from the TAP and wrote '
      f'{b.tap[1] - a.tap[1]} ({snmp_d}); CPU: exception forwarder {cpu.get("ecmplb-except", 0):.1f}%, '
      f'worker {worker_cpu:.1f}%, machine softirq {softirq:.1f}% (of 2 cores)')

  # The flood happened, at the rate asked: else nothing was tested.
  expect(sent >= 0.9 * pps * seconds, f'ecmplb-gen sent {sent} frames, not {pps} pps x {seconds} s')
  summary = (f'{sent} frames at {pps} pps for {seconds:g} s at lb{victim}: OSPF {ospf_states}, BFD '
             f'{bfd_states} (session-down +{bfd_downs}), nexthops changed {watch.episodes} times ({watch.out_s:.1f} s), backends down '
             f'{len(watch.health_down)}, failed checks {len(watch.bad_checks)}, {n - len(errors)}/{n} '
             f'connections survived')
  if not limiter:
    return f'flood (limiter off, report only): {summary}'

  expect(sum(seen.values()) >= SEEN_SHARE * sent,
         f'the LB hosts accounted for {sum(seen.values())} of {sent} flood frames ({seen}): the flood did not arrive')
  expect(all(s.startswith('Full') for s in ospf_states) and not ospf_restarted,
         f'OSPF with lb{victim} left Full during the flood: {ospf_states}, uptime {watch.ospf_up0} -> {ospf_up1} ms')
  expect(bfd_states == ['up'] and bfd1 == ('up', watch.bfd0[1]),
         f'BFD with lb{victim} went down during the flood: states {bfd_states}, session-down '
         f'{watch.bfd0[1]} -> {bfd1[1]}')
  expect(not changes, f'the router\'s nexthops changed: {changes[:5]}')
  expect(not route_restarted, f'the router reinstalled its route to {route_restarted} during the flood '
         f'(uptime {uptimes0} -> {uptimes1} s)')
  expect(not watch.health_down and not watch.withdrawn,
         f'lb{victim}: backends down {sorted(watch.health_down)}, VIPs withdrawn {sorted(watch.withdrawn)}')
  expect(not errors, f'{len(errors)} of {n} connections broke: {[c["error"] for c in errors][:5]}')
  expect(not changed, f'{len(changed)} connections were answered by another backend')
  expect(on_victim, f'no long-lived connection ran through lb{victim}: its survival was not tested')
  host_tcp_udp = per_kind['host-tcp'] + per_kind['host-udp']
  expect(unsolicited >= SEEN_SHARE * host_tcp_udp,
         f'lb{victim} dropped {unsolicited} unsolicited packets of {host_tcp_udp} TCP/UDP sent to it')
  expect(limited > 0, f'lb{victim}\'s exception budget never refused a packet (+{passed} passed)')
  bound = DEFAULT_RATE_PPS * window + DEFAULT_BURST
  expect(passed <= bound, f'lb{victim} passed {passed} "other" packets to its kernel in {window:.1f} s '
         f'(budget {DEFAULT_RATE_PPS} pps + burst {DEFAULT_BURST}: {bound:.0f})')
  return f'flood: {summary}; lb{victim}: {unsolicited} unsolicited dropped, {limited} over budget, {passed} passed'
