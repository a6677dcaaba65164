"""The ecmplb daemon for tests: its command line, start with a config, its start-up line,
ecmplbctl calls and stop. Used by the lab (testbed.py, whose processes are recorded for `down`)
and by tests/control/announce_e2e.py and ecmplbctl_e2e.py (a Daemon each)."""
import os
import re
import signal
import subprocess
import time

# "ecmplb: 1 worker on lcore 1, data port ..., connection tables in DPDK memory (...)": printed
# once the daemon serves its control socket and its workers run.
STARTUP_LINE = re.compile(r'^ecmplb: \d+ workers? on lcores? ', re.M)


class DaemonError(Exception):
  pass


def command(ecmplb, config, prefix, vdev, mem_mb=256, lcores='0,1'):
  """ecmplb's command line in tests: no hugepages, no PCI, one data port `vdev`."""
  return [ecmplb, '-l', lcores, '--no-huge', '-m', str(mem_mb), '--no-pci', '--no-shconf',
          f'--file-prefix={prefix}', '--log-level=error', f'--vdev={vdev}',
          '--', '--config', config, '--idle-backoff']


def ctl_command(ecmplbctl, socket, args, ns=None):
  cmd = [ecmplbctl, '--socket', socket] + list(args)
  return ['ip', 'netns', 'exec', ns] + cmd if ns else cmd


def ctl(ecmplbctl, socket, args, ns=None, timeout=30):
  """Runs `ecmplbctl --socket SOCKET ARGS` (in namespace ns); returns the CompletedProcess."""
  return subprocess.run(ctl_command(ecmplbctl, socket, args, ns), capture_output=True, text=True,
                        timeout=timeout)


def read_log(path, last=None, offset=0):
  try:
    with open(path, 'rb') as f:
      f.seek(offset)
      text = f.read().decode(errors='replace')
  except OSError:
    return ''
  return text[-last:] if last else text


def log_size(path):
  try:
    return os.path.getsize(path)
  except OSError:
    return 0


def wait_started(log_path, alive, timeout=60, offset=0):
  """Waits for the start-up line in the daemon's log (from byte offset on: a log the daemon
  appends to) while alive() holds; returns seconds taken. Raises DaemonError (with the log's
  end) if the daemon exits or the line does not come."""
  t0 = time.monotonic()
  while time.monotonic() - t0 < timeout:
    if STARTUP_LINE.search(read_log(log_path, offset=offset)):
      return time.monotonic() - t0
    if not alive():
      raise DaemonError(f'ecmplb exited before its start-up line: {read_log(log_path, 600).strip()}')
    time.sleep(0.05)
  raise DaemonError(f'ecmplb printed no start-up line within {timeout} s: {read_log(log_path, 600).strip()}')


class Daemon:
  """One ecmplb started by a test script (optionally in namespace ns), its output in log_path."""

  def __init__(self, ecmplb, ecmplbctl, config, socket, prefix, log_path, vdev='net_ring0',
               mem_mb=256, ns=None):
    self.ecmplbctl, self.socket, self.log_path, self.ns = ecmplbctl, socket, log_path, ns
    self.cmd = command(ecmplb, config, prefix, vdev, mem_mb)
    self.proc = None

  def start(self, timeout=60):
    """Starts the daemon and waits for its start-up line (DaemonError if it does not come)."""
    offset = log_size(self.log_path)
    with open(self.log_path, 'ab') as logf:
      # `ip netns exec` execs the daemon: proc.pid is ecmplb's own PID.
      self.proc = subprocess.Popen((['ip', 'netns', 'exec', self.ns] if self.ns else []) + self.cmd,
                                   stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    wait_started(self.log_path, self.running, timeout, offset)
    return self

  def running(self):
    return self.proc is not None and self.proc.poll() is None

  def log(self, last=2000):
    return read_log(self.log_path, last)

  def ctl(self, *args, timeout=30):
    return ctl(self.ecmplbctl, self.socket, args, ns=self.ns, timeout=timeout)

  def send_signal(self, sig):
    if self.running():
      self.proc.send_signal(sig)

  def wait(self, timeout):
    """The exit status, or None if it still runs after timeout seconds."""
    try:
      return self.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
      return None

  def stop(self, sig=signal.SIGKILL, timeout=30):
    """Sends sig (default SIGKILL) if it still runs and reaps it; returns the exit status."""
    if self.proc is None:
      return None
    self.send_signal(sig)
    return self.proc.wait(timeout=timeout)
