#!/usr/bin/python3
"""The whole-daemon benchmark: ecmplb and ecmplb-gen over net_memif, against dpdk-testpmd's
MAC swap on the same loop, in the same run.

    bench/daemon/bench.py [--build build] [--out bench-out] [--quick]

What it does (every process in a network namespace of its own, `ecmplb-bench`; the memif
socket is abstract, so both ends must share it; the exception TAP lives there too):
  1. writes a config: host 10.99.0.1/24, a DR service 10.99.1.1:80/tcp and a GRE service
     10.99.1.2:80/tcp with four backends each, a UDP DR service 10.99.1.1:53/udp, conntrack
     sized for the flows; reserves hugepages (./setup.sh --hugepages) if there are too few;
  2. starts ecmplb (memif server, W workers; main lcore on the generator's core, where it
     sleeps: the control loop and the exception path are event-driven; workers on cores of
     their own), installs the backends' permanent neighbour entries on its TAP (from
     `ecmplb-gen --neighbors`), and runs for each case (established DR at --flows, established
     GRE at --flows, new flows DR):
       - the throughput at full offered load (--rate 0),
       - the highest rate with loss <= --loss (binary search, as FD.io CSIT's PDR search),
       - the worker's TSC cycles per packet at that rate (busy_cycles / rx_packets from
         `ecmplbctl --json stats`, and its busy-poll share),
       - latency percentiles at 50% of that rate (every packet checked);
     then the DR throughput at full load for each flow count of --sweep;
  3. stops ecmplb and runs the same loop with `dpdk-testpmd --forward-mode=macswap` on the
     worker's core, the generator unchanged (--expect loopback: the same receive work);
  4. writes OUT/results.json and, with bench/daemon/report.py, OUT/report.md and the plots.

The generator is one process per arm (ecmplb, testpmd) that runs one trial per line on its
stdin (--trials-from-stdin): one memif connection for all trials. Needs root, hugepages, DPDK's testpmd (dpdk-dev).
Timings are this machine's: quote medians and the ratio to testpmd, not absolute Mpps.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'lab'))
from labkit import daemon as daemonkit  # noqa: E402

NS = 'ecmplb-bench'
SOCK = '/ecmplb-bench.memif'  # abstract socket name
LB_MAC = '02:ec:00:00:00:01'
TAP = 'ecmplbb0'
WORK = '/run/ecmplb-bench'

DR_SERVICE = '10.99.1.1:80/tcp'
GRE_SERVICE = '10.99.1.2:80/tcp'
UDP_SERVICE = '10.99.1.1:53/udp'


def log(msg):
  print(f'bench: {msg}', file=sys.stderr, flush=True)


def run(cmd, check=True, **kw):
  return subprocess.run(cmd, check=check, text=True, capture_output=True, **kw)


SYNC_PEER = '10.99.0.2'  # --sync: a peer that is not there (its datagrams reach the generator)
SYNC_PEER_MAC = '02:ec:00:00:00:02'


def write_config(path, capacity, sync=False):
  backends = lambda base: [{'id': i + 1, 'address': f'10.99.0.{base + i}'} for i in range(4)]
  cfg = {
      'host': {'address': '10.99.0.1', 'prefix_length': 24, 'exception_interface': TAP,
               'control_socket': f'{WORK}/ecmplb.sock', 'announce': False, 'drain_s': 0},
      'conntrack': {'capacity': capacity},
      'services': [
          {'vip': '10.99.1.1', 'port': 80, 'protocol': 'tcp', 'forward': 'dr',
           'backends': backends(11)},
          {'vip': '10.99.1.2', 'port': 80, 'protocol': 'tcp', 'forward': 'gre',
           'backends': backends(21)},
          {'vip': '10.99.1.1', 'port': 53, 'protocol': 'udp', 'forward': 'dr',
           'backends': backends(31)},
      ],
  }
  if sync:
    key = os.path.join(os.path.dirname(path), 'sync.key')
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
      f.write(f'1 {os.urandom(32).hex()}\n')
    cfg['sync'] = {'peers': [SYNC_PEER], 'key_file': key}
  with open(path, 'w') as f:
    json.dump(cfg, f, indent=1)


def ensure_hugepages(mb):
  # Hugepage files a killed run left behind stay allocated: remove ours.
  for f in os.listdir('/dev/hugepages') if os.path.isdir('/dev/hugepages') else []:
    if f.startswith(('ecmplb-bench', 'gen-bench', 'testpmd-bench')):
      os.unlink(os.path.join('/dev/hugepages', f))
  need = (mb + 1) // 2
  free = 0
  with open('/proc/meminfo') as f:
    for line in f:
      if line.startswith('HugePages_Free:'):
        free = int(line.split()[1])
  if free < need:
    total = int(open('/proc/sys/vm/nr_hugepages').read()) + need - free
    log(f'reserving hugepages: {total} x 2 MiB')
    run([os.path.join(ROOT, 'setup.sh'), '--hugepages', str(total)])


class Bench:

  def __init__(self, args):
    self.a = args
    self.gen = os.path.join(args.build, 'bench', 'gen', 'ecmplb-gen')
    self.ecmplb = os.path.join(args.build, 'daemon', 'ecmplb')
    self.ctlbin = os.path.join(args.build, 'control', 'ecmplbctl')
    self.cfg = os.path.join(WORK, 'bench.json')
    self.procs = []
    self.daemon = None
    self.genp = None
    self.results = {'cases': {}, 'sweep': {'ecmplb': [], 'testpmd': []}, 'testpmd': {}}

  # ---- processes ----
  def lb_lcores(self):
    # main lcore 0 on the generator's core; workers on the others.
    return ','.join([f'0@{self.a.gen_core}'] +
                    [f'{i + 1}@{c}' for i, c in enumerate(self.a.worker_cores)])

  def start_ecmplb(self):
    cmd = ['ip', 'netns', 'exec', NS, self.ecmplb, '--lcores', self.lb_lcores(),
           '--file-prefix', 'ecmplb-bench', '-m', str(self.a.lb_mem), '--no-pci',
           '--log-level=error',
           f'--vdev=net_memif0,role=server,socket={SOCK},mac={LB_MAC}', '--',
           '--config', self.cfg, '--mbufs', '65535']
    if len(self.a.worker_cores) > 1:
      cmd += ['--rx-steering', 'peer']
    logf = open(os.path.join(self.a.out, 'ecmplb.log'), 'ab')
    p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    self.procs.append(p)
    self.daemon = p
    daemonkit.wait_started(os.path.join(self.a.out, 'ecmplb.log'), lambda: p.poll() is None,
                           timeout=120)
    # The backends' MACs, as the generator expects them, as permanent neighbours on the TAP.
    out = run([self.gen, '--config', self.cfg, '--neighbors']).stdout
    if self.a.sync:
      out += f'\n{SYNC_PEER} {SYNC_PEER_MAC}\n'
    for line in out.splitlines():
      parts = line.split()
      if len(parts) != 2:
        continue
      # The TAP comes up just after the start-up line: retry for a few seconds.
      for _ in range(100):
        r = run(['ip', '-n', NS, 'neigh', 'replace', parts[0], 'lladdr', parts[1], 'dev', TAP,
                 'nud', 'permanent'], check=False)
        if r.returncode == 0:
          break
        time.sleep(0.05)
      else:
        raise SystemExit(f'bench: cannot install the neighbour {line}: {r.stderr.strip()}')
    time.sleep(1)  # neighbour sync runs every 100 ms

  def start_testpmd(self):
    q = str(len(self.a.worker_cores))
    cmd = ['ip', 'netns', 'exec', NS, 'dpdk-testpmd', '--lcores', self.lb_lcores(),
           '--file-prefix', 'testpmd-bench', '-m', str(self.a.lb_mem), '--no-pci',
           '--log-level=error', f'--vdev=net_memif0,role=server,socket={SOCK},mac={LB_MAC}',
           '--', '--forward-mode=macswap', '-a', f'--nb-cores={q}', f'--rxq={q}', f'--txq={q}',
           '--rxd=1024', '--txd=1024', '--total-num-mbufs=65535']
    logf = open(os.path.join(self.a.out, 'testpmd.log'), 'ab')
    # stdin stays an open pipe: non-interactive testpmd forwards until it reads a line.
    p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.PIPE,
                         text=True)
    self.procs.append(p)
    self.daemon = p
    time.sleep(3)
    if p.poll() is not None:
      raise SystemExit(f'bench: testpmd exited: see {self.a.out}/testpmd.log')

  def stop_current(self):
    p, self.daemon = self.daemon, None
    if p is None or p.poll() is not None:
      return
    if p.stdin:
      try:
        p.stdin.write('\n')
        p.stdin.flush()
      except OSError:
        pass
    else:
      p.send_signal(signal.SIGTERM)
    try:
      p.wait(timeout=20)
    except subprocess.TimeoutExpired:
      p.kill()
      p.wait()

  def ctl_stats(self):
    r = run(['ip', 'netns', 'exec', NS, self.ctlbin, '--socket', f'{WORK}/ecmplb.sock', '--json',
             'stats'])
    return json.loads(r.stdout)

  # ---- the generator: one process per arm, one trial per stdin line ----
  def start_gen(self, expect):
    """Starts ecmplb-gen with --trials-from-stdin: one memif connection for every trial of
    this arm (a memif peer that disconnects while the other side polls can crash DPDK 22.11's
    memif PMD; see the README)."""
    q = len(self.a.worker_cores)
    # ecmplb has one TX queue per worker plus the exception path's; testpmd one per core.
    rxq = q + 1 if expect == 'balancer' else q
    cmd = ['ip', 'netns', 'exec', NS, self.gen, '--lcores', f'0@{self.a.gen_core}',
           '--file-prefix', 'gen-bench', '-m', str(self.a.gen_mem), '--no-pci',
           '--log-level=error', f'--vdev=net_memif0,role=client,socket={SOCK}', '--',
           '--config', self.cfg, '--dst-mac', LB_MAC, '--queues', str(q), '--rx-queues',
           str(rxq), '--json', '--trials-from-stdin', '--link-wait', '30']
    if q > 1:
      cmd += ['--steer', 'softrss']
    err = open(os.path.join(self.a.out, 'gen.log'), 'a')
    self.genp = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                 text=True, bufsize=1)
    self.procs.append(self.genp)

  def stop_gen(self):
    p, self.genp = self.genp, None
    if p is None:
      return
    p.stdin.close()
    try:
      p.wait(timeout=30)
    except subprocess.TimeoutExpired:
      p.kill()
      p.wait()

  def gen_run(self, service, flows, rate, seconds, new_share=0.0, check='sample:64',
              expect='balancer', flood_share=0.0):
    line = (f'--service {service} --flows {flows} --new-share {new_share} --rate {int(rate)} '
            f'--duration {seconds} --check {check} --expect {expect} --size {self.a.size} '
            f'--flood-share {flood_share}')
    before = self.ctl_stats() if expect == 'balancer' else None
    self.genp.stdin.write(line + '\n')
    self.genp.stdin.flush()
    text = self.genp.stdout.readline()
    if not text:
      raise SystemExit(f'bench: ecmplb-gen exited (see {self.a.out}/gen.log)')
    out = json.loads(text)
    if 'error' in out:
      raise SystemExit(f'bench: ecmplb-gen refused a trial: {out} (see {self.a.out}/gen.log)')
    if before is not None:
      out['worker'] = worker_figures(before, self.ctl_stats(), out['duration_s'])
    errors = out['check']['errors']
    if errors:
      log(f'WARNING: {errors} checker errors: {out["check"]}')
    return out

  # ---- searches ----
  def pdr(self, service, flows, new_share, expect, full):
    """Binary search of the highest rate whose loss ratio is <= --loss, from 0 to the
    throughput at full load (`full`: that run's result). Returns (rate, result at rate)."""
    hi = full['tx']['mpps'] * 1e6
    if full['loss']['ratio'] <= self.a.loss:
      return hi, full
    lo, best = 0.0, None
    for _ in range(self.a.steps):
      mid = (lo + hi) / 2
      r = self.gen_run(service, flows, mid, self.a.trial_seconds, new_share, expect=expect)
      ok = r['loss']['ratio'] <= self.a.loss
      log(f'  {mid / 1e6:.3f} Mpps offered: loss {r["loss"]["ratio"]:.5f} '
          f'({"pass" if ok else "fail"})')
      if ok:
        lo, best = mid, r
      else:
        hi = mid
      if hi - lo < self.a.precision * hi:
        break
    return lo, best

  def case(self, name, service, flows, new_share, expect):
    log(f'{name}: {flows} flows, full load')
    full = self.gen_run(service, flows, 0, self.a.trial_seconds, new_share, expect=expect)
    log(f'  full load: tx {full["tx"]["mpps"]:.3f} rx {full["rx"]["mpps"]:.3f} Mpps, '
        f'loss {full["loss"]["ratio"]:.5f}')
    rate, at = self.pdr(service, flows, new_share, expect, full)
    log(f'  PDR({self.a.loss}): {rate / 1e6:.3f} Mpps')
    lat = None
    if rate > 0:
      lat = self.gen_run(service, flows, rate / 2, self.a.trial_seconds, new_share,
                         check='all', expect=expect)
      log(f'  latency at {rate / 2e6:.3f} Mpps: p50 {lat["latency_ns"]["p50"] / 1e3:.1f} us '
          f'p99 {lat["latency_ns"]["p99"] / 1e3:.1f} us')
    return {'flows': flows, 'new_share': new_share, 'full': full, 'pdr_pps': rate,
            'at_pdr': at, 'latency': lat}

  def flood(self):
    """VIP forwarding under a flood of 64-byte junk at the host's address and at non-VIP
    destinations (every ecmplb-gen flood kind), in the same run: the VIP traffic's rate
    without flood at full load (F), then VIP traffic offered at 0.8 F beside junk that makes
    --flood-share of all frames offered (0.5: as many junk frames again, 1.6 F in all): the VIP
    rate received, its loss, and where the junk went (the daemon's counters). Keep the total
    within what the generator can send, or the VIP share falls short of 0.8 F."""
    f = self.gen_run(DR_SERVICE, self.a.flows, 0, self.a.trial_seconds)
    base = f['rx']['mpps'] * 1e6
    before = self.ctl_stats()
    share = self.a.flood_share
    r = self.gen_run(DR_SERVICE, self.a.flows, 0.8 * base / (1 - share), self.a.trial_seconds,
                     flood_share=share)
    after = self.ctl_stats()
    keys = ('exception', 'exception_priority', 'exception_rate_limited', 'drop_unsolicited',
            'drop_parse', 'drop_exception_full', 'forward_dr')
    d = {k: after['total'][k] - before['total'][k] for k in keys}
    out = {'flood_share': share, 'no_flood_rx_mpps': f['rx']['mpps'],
           'vip_offered_mpps': r['tx']['mpps'],
           'vip_rx_mpps': r['rx']['mpps'], 'vip_loss_ratio': r['loss']['ratio'],
           'flood_mpps': r['flood']['mpps'], 'daemon': d,
           'vip_rx_ratio_to_no_flood': r['rx']['mpps'] / f['rx']['mpps'] if f['rx']['mpps'] else None}
    log(f'flood: no flood {f["rx"]["mpps"]:.3f} Mpps; with {r["flood"]["mpps"]:.3f} Mpps of junk: '
        f'VIP {r["rx"]["mpps"]:.3f} Mpps received of {r["tx"]["mpps"]:.3f} offered '
        f'(loss {r["loss"]["ratio"]:.4f}); daemon: {d}')
    return out

  def sweep(self, who, expect):
    out = []
    for flows in self.a.sweep:
      r = self.gen_run(DR_SERVICE, flows, 0, self.a.trial_seconds, 0.0, expect=expect)
      log(f'sweep {who}: {flows} flows: rx {r["rx"]["mpps"]:.3f} Mpps, loss '
          f'{r["loss"]["ratio"]:.5f}')
      out.append({'flows': flows, 'rx_mpps': r['rx']['mpps'], 'tx_mpps': r['tx']['mpps'],
                  'loss': r['loss']['ratio'], 'errors': r['check']['errors']})
    return out

  def main(self):
    a = self.a
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(WORK, exist_ok=True)
    capacity = max(1 << 16, max(a.sweep + [a.flows]) * 3 // 2)  # flows per worker, 2/3 full
    write_config(self.cfg, capacity, self.a.sync)
    shutil.copy(self.cfg, os.path.join(a.out, 'bench.json'))
    ensure_hugepages(a.lb_mem + a.gen_mem + 256)
    run(['ip', 'netns', 'del', NS], check=False)
    run(['ip', 'netns', 'add', NS])
    try:
      self.results['setup'] = {
          'worker_cores': a.worker_cores, 'gen_core': a.gen_core, 'size': a.size,
          'loss_bound': a.loss, 'trial_seconds': a.trial_seconds, 'conntrack_capacity': capacity,
          'sync': a.sync,
          'started': time.strftime('%Y-%m-%d %H:%M:%S')}
      self.start_ecmplb()
      self.start_gen('balancer')
      cases = [('dr_established', DR_SERVICE, a.flows, 0.0),
               ('gre_established', GRE_SERVICE, a.flows, 0.0),
               ('dr_new_flows', DR_SERVICE, a.flows, 1.0)]
      for name, service, flows, new_share in cases:
        if a.cases and name not in a.cases:
          continue
        self.results['cases'][name] = self.case(name, service, flows, new_share, 'balancer')
      if not a.cases or 'flood' in a.cases:
        self.results['flood'] = self.flood()
      if a.sweep:
        self.results['sweep']['ecmplb'] = self.sweep('ecmplb', 'balancer')
      # The polling side first: the generator waits on stdin between trials (no polling).
      self.stop_current()
      self.stop_gen()
      self.start_testpmd()
      self.start_gen('loopback')
      self.results['testpmd'] = self.case('testpmd_macswap', DR_SERVICE, a.flows, 0.0,
                                          'loopback')
      if a.sweep:
        self.results['sweep']['testpmd'] = self.sweep('testpmd', 'loopback')
      self.stop_current()
      self.stop_gen()
    finally:
      self.stop_current()
      self.stop_gen()
      for p in self.procs:
        if p.poll() is None:
          p.kill()
          p.wait()
      run(['ip', 'netns', 'del', NS], check=False)
    base = self.results['testpmd']['pdr_pps']
    for c in self.results['cases'].values():
      c['pdr_ratio_to_testpmd'] = c['pdr_pps'] / base if base else None
    path = os.path.join(a.out, 'results.json')
    with open(path, 'w') as f:
      json.dump(self.results, f, indent=1)
    log(f'results in {path}')
    subprocess.run(['/usr/bin/python3', os.path.join(os.path.dirname(__file__), 'report.py'),
                    path], check=False)


def tsc_hz():
  with open('/proc/cpuinfo') as f:
    for line in f:
      if line.startswith('cpu MHz'):
        return float(line.split(':')[1]) * 1e6
  return 1e9


def worker_figures(before, after, seconds):
  """Per-worker deltas over one trial: packets, busy cycles per packet, busy-poll share."""
  out = []
  for b, c in zip(before['workers'], after['workers']):
    d = {k: c['counters'][k] - b['counters'][k]
         for k in ('rx_packets', 'tx_packets', 'busy_cycles', 'busy_polls', 'idle_polls',
                   'drop_tx_full', 'conntrack_insert', 'conntrack_hit')}
    polls = d['busy_polls'] + d['idle_polls']
    d['cycles_per_packet'] = d['busy_cycles'] / d['rx_packets'] if d['rx_packets'] else None
    d['busy_poll_share'] = d['busy_polls'] / polls if polls else None
    # Share of the sending time the worker spent in polls that received packets (the TSC
    # frequency from the kernel's cpuinfo: the TSC of this VM; on hardware with a constant
    # TSC, the nominal frequency).
    d['busy_time_share'] = d['busy_cycles'] / (tsc_hz() * seconds) if seconds else None
    out.append(d)
  return out


def main():
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--build', default=os.path.join(ROOT, 'build'))
  ap.add_argument('--out', default=os.path.join(ROOT, 'bench-out'))
  ap.add_argument('--flows', type=int, default=1000000)
  ap.add_argument('--sweep', default='1000,10000,100000,1000000,10000000',
                  help='flow counts for throughput vs flows ("" to skip)')
  ap.add_argument('--cases', default='', help='comma list of dr_established, gre_established, '
                  'dr_new_flows, flood (default all)')
  ap.add_argument('--size', type=int, default=64)
  ap.add_argument('--sync', action='store_true',
                  help='flow sync on (one peer that is not there: the cost of queueing, sealing '
                  'and sending every established flow)')
  ap.add_argument('--flood-share', type=float, default=0.5,
                  help='flood case: junk frames as a share of all frames offered (0 < s < 1)')
  ap.add_argument('--loss', type=float, default=0.001, help='loss bound of the PDR search')
  ap.add_argument('--trial-seconds', type=float, default=5)
  ap.add_argument('--steps', type=int, default=8, help='binary search steps at most')
  ap.add_argument('--precision', type=float, default=0.02)
  ap.add_argument('--gen-core', type=int, default=0)
  ap.add_argument('--worker-cores', default='1', help='CPUs of the workers, comma separated')
  ap.add_argument('--lb-mem', type=int, default=1536, help='MiB of hugepages for ecmplb')
  ap.add_argument('--gen-mem', type=int, default=1024, help='MiB of hugepages for ecmplb-gen')
  ap.add_argument('--quick', action='store_true',
                  help='100k flows, 2 s trials, 5 steps, sweep 1k..1M (a look, not a figure)')
  a = ap.parse_args()
  if a.quick:
    a.flows, a.trial_seconds, a.steps = 100000, 2, 5
    a.sweep = '1000,100000,1000000' if a.sweep == ap.get_default('sweep') else a.sweep
  a.sweep = [int(x) for x in a.sweep.split(',') if x]
  a.cases = [x for x in a.cases.split(',') if x]
  a.worker_cores = [int(x) for x in a.worker_cores.split(',')]
  if not 0 < a.flood_share < 1:
    raise SystemExit(f'bench: --flood-share {a.flood_share}: want a share between 0 and 1')
  if os.geteuid() != 0:
    raise SystemExit('bench: run as root (namespaces, hugepages)')
  for b in ('dpdk-testpmd',):
    if shutil.which(b) is None:
      raise SystemExit(f'bench: {b} not found: apt-get install dpdk-dev')
  Bench(a).main()


if __name__ == '__main__':
  main()
