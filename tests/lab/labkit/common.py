"""Constants of a lab run and small helpers every other module uses."""
import os
import subprocess
import time

LAB_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/lab
REPO = os.path.dirname(os.path.dirname(LAB_DIR))
RUN = '/run/ecmplb-lab'
PY = '/usr/bin/python3'  # Debian's interpreter (see LAB-NOTES)
SKIP = 77  # meson's exit status for a skipped test


class LabError(Exception):
  pass


def log(msg):
  print(msg, flush=True)


def run(cmd, ns=None, check=True, timeout=30, input=None):
  """Runs a command (in namespace ns) and returns its stdout."""
  if ns:
    cmd = ['ip', 'netns', 'exec', ns] + cmd
  p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
  if check and p.returncode != 0:
    raise LabError(f'{" ".join(cmd)}: exit {p.returncode}: {p.stderr.strip() or p.stdout.strip()}')
  return p.stdout


def wait_until(pred, timeout, interval=0.01, t0=None):
  """Seconds from t0 (default: now) until pred() is true, or None after timeout seconds."""
  t0 = time.monotonic() if t0 is None else t0
  while time.monotonic() - t0 < timeout:
    if pred():
      return time.monotonic() - t0
    time.sleep(interval)
  return None


def wait_file(path, timeout):
  if wait_until(lambda: os.path.exists(path), timeout, interval=0.05) is None:
    raise LabError(f'{path} did not appear within {timeout} s')


def tail(path, lines=5):
  try:
    with open(path, errors='replace') as f:
      return ' | '.join(f.read().strip().splitlines()[-lines:])
  except OSError:
    return '(no log)'


def count(items):
  out = {}
  for x in items:
    out[x] = out.get(x, 0) + 1
  return out


def fmt_counts(counts, keys):
  total = sum(counts.values()) or 1
  return ', '.join(f'{k} {counts.get(k, 0)} ({100 * counts.get(k, 0) / total:.0f}%)' for k in keys)
