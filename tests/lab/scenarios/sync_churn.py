"""13. Dual churn with flow sync (issue 15): 200 long-lived connections; a pool change on every
LB host (a weight change, or a fourth backend added), after which Maglev places part of the
live flows elsewhere; then an LB host loses its link (`event=fail`) or comes back
(`event=return`: it was down when the connections started). The router moves flows between
the hosts; the host that receives a flow it never saw finds its backend in the peer table that
flow sync filled, so 0 of 200 are reset and none is answered by another backend. The
receiver's counters must show every moved flow was found by a synced entry (sync_peer_hit),
and `ecmplbctl lookup` says how many of them the new table would have sent elsewhere (the
resets sync saved)."""
import json
import time

from labkit import frr, topology, traffic
from labkit.checks import expect, expect_all_kept, measure_nexthops, need_ctl
from labkit.common import LabError
from labkit.topology import CLIENT_ADDR, PORT, VIP_DR, be_addr, be_weight

NEEDS_CTL = True
# sync=off runs the same with flow sync off (the baseline: it must fail, with resets).
OPTIONS = {'change': 'weight', 'event': 'fail', 'conns': 200, 'sync': 'on'}
NEW_BACKEND = 4  # change=add: the backend that runs from the start but is not configured


def lab_kwargs(opts):
  kw = {'sync': opts['sync'] != 'off'}
  if opts['change'] == 'add':
    kw.update(n_backends=NEW_BACKEND, configured=NEW_BACKEND - 1)
  return kw


def counters(lab, i):
  return json.loads(lab.ctl(i, ['stats', '--json']))


def pool_change(lab, opts):
  """The change, on every LB host (the victim too: it is only cut off, its control socket
  answers); returns its description."""
  svc = f'{VIP_DR}:{PORT}/tcp'
  if opts['change'] == 'weight':
    cmd, what = ['backend', 'set', svc, be_addr(1), '--weight', '6'], f'be1 weight {be_weight(1)} -> 6'
  elif opts['change'] == 'add':
    cmd = ['backend', 'add', svc, be_addr(NEW_BACKEND), '--weight', str(be_weight(NEW_BACKEND))]
    what = f'be{NEW_BACKEND} added'
  else:
    raise LabError(f"change={opts['change']}: expected weight or add")
  for i in lab.lbs:
    lab.ctl(i, cmd)
  if opts['change'] == 'add':  # the new backend serves once it passed its health checks
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
      h = lab.health(lab.lbs[0])
      if any(b.get('address') == be_addr(NEW_BACKEND) and b.get('up') for b in h.get('backends', [])):
        break
      time.sleep(0.1)
    else:
      raise LabError(f'be{NEW_BACKEND} did not pass its health checks within 10 s')
  return what


def would_move(lab, i, conns):
  """How many of conns the new table on LB host i places on another backend than the one
  that answers them (`ecmplbctl lookup`'s Maglev choice): the flows that a host without
  sync would have reset."""
  n = 0
  for c in conns:
    d = json.loads(lab.ctl(i, ['lookup', f'{VIP_DR}:{PORT}/tcp', '--client',
                               f'{CLIENT_ADDR}:{c["sport"]}', '--json']))
    placed = d.get('maglev_backend')
    addr = placed.get('address') if isinstance(placed, dict) else placed
    n += addr != be_addr(int(c['backend'][2:]))
  return n


def run(lab, opts):
  need_ctl(lab)
  expect(lab.n_lbs >= 2, 'needs two LB hosts or more')
  n, event = opts['conns'], opts['event']
  victim, survivor = lab.lbs[-1], lab.lbs[0]
  if event == 'return':
    topology.set_link(victim, False)
    frr.wait_nexthops(VIP_DR, lab.n_lbs - 1, timeout=15)
  elif event != 'fail':
    raise LabError(f'event={event}: expected fail or return')
  p, sports = traffic.long_start(VIP_DR, n, duration=14)
  try:
    time.sleep(1.5)
    what = pool_change(lab, opts)
    time.sleep(1.0)  # the change is in use; flows keep flowing
    # Who carries what now, and where the flows will land after the event.
    source = survivor if event == 'return' else victim
    target = victim if event == 'return' else survivor
    carried = traffic.tracked_ports(lab, source, VIP_DR) & set(sports)
    hits0 = counters(lab, target)['total']['sync_peer_hit']
    rx0 = topology.data_packets(source)[0]
    t0 = time.monotonic()
    topology.set_link(victim, event == 'return')
    took = measure_nexthops(VIP_DR, lab.n_lbs if event == 'return' else lab.n_lbs - 1, t0,
                            timeout=30 if event == 'return' else 15)
    conns = traffic.long_finish(p, timeout=90)
  finally:
    if p.poll() is None:
      p.kill()
  stall = expect_all_kept(conns, n)
  st = counters(lab, target)
  hits = st['total']['sync_peer_hit'] - hits0
  if event == 'fail':
    moved = carried  # every flow of the victim moved to the survivor
  else:
    moved = traffic.tracked_ports(lab, victim, VIP_DR) & set(sports)  # rehashed onto it
  expect(moved, f'no connection moved (lb{source} carried {len(carried)}, '
         f'{topology.data_packets(source)[0] - rx0} packets): nothing was tested')
  expect(hits >= len(moved), f'lb{target}: {len(moved)} flows moved to it but only {hits} were '
         f'found by a synced entry (sync_peer_hit); sync: {st.get("sync")}')
  moved_conns = [c for c in conns if c['sport'] in moved]
  saved = would_move(lab, target, moved_conns)
  bulk = st.get('sync', {}).get('bulk', {})
  return (f'sync-churn ({what}, lb{victim} {"link down" if event == "fail" else "back"}): '
          f'{n}/{n} connections survived, 0 reset, 0 on another backend; '
          f'{len(moved)} moved to lb{target} (nexthop change in {took:.2f} s), {hits} found by a '
          f'synced entry, {saved} of them the new table would have sent to another backend; '
          f'longest stall {stall:.0f} ms'
          + (f'; bulk copies fetched by lb{target}: {bulk.get("fetched", 0)} '
             f'({bulk.get("entries_received", 0)} flows)' if event == 'return' else ''))
