"""Processes the lab starts (by PID, recorded in the run folder's state.json), stopping them
by PID, the run folders, `down` and the lab lock."""
import fcntl
import json
import os
import shutil
import signal
import subprocess
import threading
import time

from . import frr, topology
from .common import RUN, LabError, log, run, tail

STATE = os.path.join(RUN, 'state.json')
LOCK = '/run/lock/ecmplb-lab.lock'


def load_state():
  try:
    with open(STATE) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def save_state(state):
  os.makedirs(RUN, exist_ok=True)
  tmp = STATE + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(state, f, indent=1)
  os.replace(tmp, STATE)


def pid_matches(pid, needle):
  try:
    with open(f'/proc/{pid}/cmdline', 'rb') as f:
      return needle.encode() in f.read()
  except OSError:
    return False


def stop_pid(pid, needle, grace=3.0):
  """Stops one process we started: SIGTERM, then SIGKILL after `grace` seconds."""
  if not pid_matches(pid, needle):
    return
  try:
    os.kill(pid, signal.SIGTERM)
  except ProcessLookupError:
    return
  deadline = time.monotonic() + grace
  while time.monotonic() < deadline and pid_matches(pid, needle):
    try:
      os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
      pass
    time.sleep(0.05)
  if pid_matches(pid, needle):
    try:
      os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
      pass


def stop_all(procs):
  """Stops the recorded processes procs ({'pid', 'needle'} each) at once (stop_pid each)."""
  threads = [threading.Thread(target=stop_pid, args=(p['pid'], p['needle'])) for p in procs]
  for t in threads:
    t.start()
  for t in threads:
    t.join()


class Run:
  """The processes and namespaces of one lab, recorded in state.json as they are created so that
  `down` (maybe from another lab.py process) stops exactly those, by PID."""

  def __init__(self, state):
    self.state = state
    self.popen = {}  # label -> Popen, for processes this lab.py run started (exit status)

  def save(self):
    save_state(self.state)

  def add_namespace(self, name):
    self.state['namespaces'].append(name)
    self.save()

  def spawn(self, label, ns, cmd, needle, kind='proc', stdout_path=None):
    """Starts cmd in namespace ns, its output in RUN/<label>.log (stdout in stdout_path if
    given); `ip netns exec` execs cmd, so the recorded PID is cmd's own. needle: a string of its
    command line (checked before any signal, so a reused PID is never hit)."""
    logf = open(self.log_path(label), 'ab')
    outf = open(stdout_path, 'wb') if stdout_path else None
    p = subprocess.Popen(['ip', 'netns', 'exec', ns] + cmd, stdout=outf or logf,
                         stderr=logf if outf else subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    logf.close()
    if outf:
      outf.close()
    self.popen[label] = p
    self.state['procs'][label] = {'pid': p.pid, 'needle': needle, 'kind': kind, 'ns': ns}
    self.save()
    return p

  @staticmethod
  def log_path(label):
    return os.path.join(RUN, f'{label}.log')

  def alive(self, label):
    # A child of this process: ask it (its /proc cmdline reads empty while `ip netns exec`
    # execs the command, which made a starting daemon look dead now and then).
    if label in self.popen:
      return self.popen[label].poll() is None
    p = self.state['procs'].get(label)
    return p is not None and pid_matches(p['pid'], p['needle'])

  def stop(self, labels):
    stop_all([self.state['procs'][label] for label in labels])


def existing_namespaces():
  out = run(['ip', 'netns', 'list'], check=False)
  return [line.split()[0] for line in out.splitlines() if line.strip()]


def down(quiet=False):
  """Removes everything the lab created. Safe to call at any time, any number of times."""
  state = load_state() or {}
  procs = state.get('procs', {})
  # FRR first (so the router does not log dead neighbours for long), then the rest.
  order = sorted(procs.items(), key=lambda kv: (0 if kv[1]['kind'] == 'frr' else 1, kv[0]))
  stop_all([p for _, p in order])
  ours = set(state.get('namespaces', [])) | set(topology.all_lab_namespaces())
  for ns in existing_namespaces():
    if ns not in ours:
      continue
    # Anything still running inside one of our namespaces was started by the lab.
    for pid in run(['ip', 'netns', 'pids', ns], check=False).split():
      try:
        os.kill(int(pid), signal.SIGKILL)
      except (ProcessLookupError, ValueError):
        pass
    run(['ip', 'netns', 'del', ns], check=False)
  frr.remove_run_folders(ours)
  shutil.rmtree(RUN, ignore_errors=True)
  if not quiet:
    log('lab: down (namespaces, processes and run folders removed)')


def dump_logs():
  if not os.path.isdir(RUN):
    return
  for name in sorted(os.listdir(RUN)):
    if name.endswith('.log'):
      log(f'--- {name}: {tail(os.path.join(RUN, name), 4)}')


class Lock:
  def __init__(self, timeout=600):
    self.timeout = timeout

  def __enter__(self):
    os.makedirs(os.path.dirname(LOCK), exist_ok=True)
    self.f = open(LOCK, 'w')
    deadline = time.monotonic() + self.timeout
    while True:
      try:
        fcntl.flock(self.f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return self
      except BlockingIOError:
        if time.monotonic() > deadline:
          raise LabError(f'another lab run holds {LOCK}')
        time.sleep(0.5)

  def __exit__(self, *exc):
    fcntl.flock(self.f, fcntl.LOCK_UN)
    self.f.close()
