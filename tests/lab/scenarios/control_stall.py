"""11. The control loop of LB host lb<N> stalls for 2 s (`ecmplbctl fault stall-control`, standing
in for a huge config apply, a slow Maglev rebuild or a stuck fsync): the kernel's OSPF hellos and
BFD packets still leave through the exception forwarder's own thread, so the router's BFD session
with that host never goes down (its detection time is 300 ms), the route keeps every nexthop, and
the long-lived connections the host carries go on."""
import threading
import time

from labkit import frr, traffic
from labkit.checks import expect
from labkit.topology import VIP_DR, lb_addr

NEEDS_CTL = True
STALL_MS = 2000


def bfd_peer(lb):
  """The router's BFD session with LB host lb: (status, session-down count)."""
  return frr.bfd_peer(lb_addr(lb))


def run(lab):
  victim = lab.lbs[-1]
  state, downs0 = bfd_peer(victim)
  expect(state == 'up' and downs0 is not None, f'no BFD session up with lb{victim} ({state})')
  n = 20
  p, _ = traffic.long_start(VIP_DR, n, duration=5)
  result = {}

  def stall():
    t0 = time.monotonic()
    result['out'] = lab.ctl(victim, ['fault', 'stall-control', '--ms', str(STALL_MS)], check=False)
    result['took'] = time.monotonic() - t0

  try:
    time.sleep(1)
    t = threading.Thread(target=stall)
    t.start()
    fewest, states = lab.n_lbs, set()
    while t.is_alive():
      fewest = min(fewest, len(frr.nexthops(VIP_DR)))
      states.add(bfd_peer(victim)[0])
      time.sleep(0.02)
    t.join()
    conns = traffic.long_finish(p, timeout=60)
  finally:
    if p.poll() is None:
      p.kill()
  state, downs1 = bfd_peer(victim)
  errors, changed, _ = traffic.summarize_long(conns)
  expect(result.get('took', 0) >= STALL_MS / 1000, f'the stall did not happen: {result}')
  states.add(state)
  expect(states == {'up'} and downs1 == downs0,
         f'BFD session with lb{victim} went down during the control stall '
         f'(states seen {sorted(map(str, states))}, session-down {downs0} -> {downs1})')
  expect(fewest == lab.n_lbs, f'the router dropped a nexthop during the stall ({fewest} left)')
  expect(not errors, f'{len(errors)} of {n} connections broke: {[c["error"] for c in errors][:5]}')
  expect(not changed, f'{len(changed)} connections were answered by another backend')
  return (f'control-stall: lb{victim} control loop stalled {STALL_MS} ms: BFD stayed up '
          f'(session-down {downs0} -> {downs1}), router kept {fewest}/{lab.n_lbs} nexthops, '
          f'{n - len(errors)}/{n} connections survived')
