"""6. Graceful drain of one LB host (SIGTERM) under steady request streams (50/s to the IPv4 DR
VIP, 50/s to the IPv6 one): its ecmplb withdraws the VIPs first (the router drops its nexthop
from both routes while it still runs), keeps forwarding
host.drain_s seconds, then exits 0, and not one request fails. Then the host's ecmplb is
started again and the router routes through every LB host again."""
import signal
import threading
import time

from labkit import traffic
from labkit.checks import expect, measure_nexthops_each
from labkit.common import tail
from labkit.testbed import DRAIN_S
from labkit.topology import VIP_DR, VIP_DR6

NEEDS_CTL = False


def run(lab):
  victim = lab.lbs[-1]
  rate = 50
  total = rate * (DRAIN_S + 4)
  flows0 = traffic.lb_new_flows(lab)
  proc = lab.popen[f'lb{victim}-ecmplb']
  box = {}
  streams = [threading.Thread(target=lambda v=vip: box.__setitem__(
      v, traffic.short(v, total, concurrency=8, rate=rate))) for vip in (VIP_DR, VIP_DR6)]
  for stream in streams:
    stream.start()
  try:
    time.sleep(1.5)
    flows1 = traffic.lb_new_flows(lab)
    t0 = time.monotonic()
    lab.signal_ecmplb(victim, signal.SIGTERM)
    off_lo = lab.wait_announced(victim, False, timeout=5, t0=t0)
    dropped = measure_nexthops_each((VIP_DR, VIP_DR6), lab.n_lbs - 1, t0, timeout=10)
    running_when_dropped = proc.poll() is None
    rc = proc.wait(timeout=DRAIN_S + 15)
    drained = time.monotonic() - t0
  finally:
    for stream in streams:
      stream.join()
  res = box.get(VIP_DR, []) + box.get(VIP_DR6, [])
  failed = [r for r in res if not r['backend']]
  failed6 = [r for r in box.get(VIP_DR6, []) if not r['backend']]
  before = flows1[victim] - flows0[victim] if flows0 and flows1 else None
  expect(before != 0, f'lb{victim} carried no flow before SIGTERM: nothing was tested')
  expect(not failed, f'{len(failed)} of {len(res)} requests failed: {failed[:3]}')
  expect(running_when_dropped, f'ecmplb on lb{victim} exited before the router dropped its nexthop')
  expect(rc == 0, f'ecmplb on lb{victim} exited with status {rc} after SIGTERM, wanted 0')
  # Behaviour, not a timing: it forwarded for host.drain_s instead of stopping at once.
  expect(drained >= DRAIN_S - 0.2, f'ecmplb stopped {drained:.2f} s after SIGTERM, drain_s is {DRAIN_S}')
  withdraw = [l for l in tail(lab.run.log_path(f'lb{victim}-ecmplb'), 50).split(' | ')
              if 'withdraw' in l]
  back = lab.restart_ecmplb(victim)
  return (f'drain: SIGTERM to lb{victim}\'s ecmplb under {rate} + {rate} requests/s (IPv4 + IPv6): '
          f'{len(res)} sent, {len(failed)} failed ({len(failed6)} IPv6) ({before if before is not None else "?"} new flows on lb{victim} in the '
          f'1.5 s before); VIPs off its lo in {off_lo * 1000:.0f} ms, router dropped its nexthop in '
          f'{dropped[VIP_DR] * 1000:.0f} ms (IPv4) / {dropped[VIP_DR6] * 1000:.0f} ms (IPv6); exited 0 after {drained:.2f} s (drain_s {DRAIN_S}); restarted, '
          f'back in the route in {back:.1f} s'
          + (f' [log: {withdraw[0].strip()}]' if withdraw else ''))
