"""What scenarios check with: expect() and its Failed, Skip, need_ctl, convergence timing; and
locked_run, which runs a test or the demo on a lab of its own."""
import os
import time

from . import frr, procs
from .common import SKIP, LabError, log


class Skip(Exception):
  pass


class Failed(Exception):
  pass


def expect(cond, msg):
  if not cond:
    raise Failed(msg)


def expect_all_kept(conns, n):
  """Asserts that none of the n long-lived connections broke or was answered by a second
  backend (traffic.summarize_long); returns the longest stall in ms."""
  from . import traffic  # traffic imports nothing from here: no cycle at load time
  errors, changed, stall = traffic.summarize_long(conns)
  expect(not errors, f'{len(errors)} of {n} connections broke: {[c["error"] for c in errors][:5]}')
  expect(not changed, f'{len(changed)} connections were answered by another backend')
  return stall


def need_ctl(lab):
  """Skips the test unless ecmplbctl is built and every ecmplb serves its control socket."""
  if not os.access(lab.ecmplbctl, os.X_OK):
    raise Skip('ecmplbctl not built yet')
  for i in lab.lbs:
    sock = lab.socket_path(i)
    deadline = time.monotonic() + 5
    while not os.path.exists(sock) and time.monotonic() < deadline:
      time.sleep(0.1)
    if not os.path.exists(sock):
      raise Skip(f'ecmplb does not serve its control socket ({sock}) yet')


def measure_nexthops(vip, want, t0, timeout):
  """Seconds from t0 until the router's route to vip has `want` nexthops."""
  took = frr.until_nexthops(vip, want, timeout, t0=t0, interval=0.005)
  if took is None:
    raise Failed(f'{vip} still has nexthops {frr.nexthops(vip)} {timeout} s after the event')
  return took


def measure_nexthops_each(vips, want, t0, timeout):
  """{vip: seconds from t0 until the router's route to vip has `want` nexthops}, the routes
  watched together (an IPv4 route and an IPv6 one: OSPFv2 and OSPFv3 act independently)."""
  took = {}
  while len(took) < len(vips):
    now = time.monotonic()
    for vip in vips:
      if vip not in took and len(frr.nexthops(vip)) == want:
        took[vip] = now - t0
    if len(took) < len(vips):
      if now - t0 > timeout:
        raise Failed(', '.join(f'{v} still has nexthops {frr.nexthops(v)}' for v in vips if v not in took)
                     + f' {timeout} s after the event')
      time.sleep(0.005)
  return took


def locked_run(name, body):
  """Runs body() under the lab lock and returns its exit status: Skip prints "NAME: skipped: ..."
  (77), Failed or LabError "NAME: FAILED: ..." and the ends of the logs (1). The lab is torn down
  in every case."""
  with procs.Lock():
    try:
      return body()
    except Skip as e:
      log(f'{name}: skipped: {e}')
      return SKIP
    except (Failed, LabError) as e:
      log(f'{name}: FAILED: {e}')
      procs.dump_logs()
      return 1
    finally:
      procs.down(quiet=True)
