"""The lab demo (`lab.py demo`, run by ./demo.sh): the router's ECMP route, how requests spread
over LB hosts and backends, an LB host dying and returning under traffic, then teardown."""
import json
import threading
import time

from labkit import frr, topology, traffic
from labkit.checks import locked_run, measure_nexthops
from labkit.common import LabError, fmt_counts, log
from labkit.testbed import Lab
from labkit.topology import VIP_DR, VIP_GRE, be_weight


def cmd_demo(args):
  try:
    return locked_run('demo', lambda: demo(args))
  finally:
    log('\n[6/6] Lab torn down: namespaces, FRR, ecmplb, backends and run folders removed.')


def n_of(ports):
  return len(ports) if ports is not None else '?'


def show_route():
  out = frr.route_text(VIP_DR)
  log('        ' + '\n'.join(line.strip() for line in out.splitlines()).replace('\n', '\n          '))


def demo(args):
  bgp = args.protocol == 'bgp'
  log(f'ecmplb lab demo: a client, an upstream router running FRR ({"eBGP" if bgp else "OSPF"} + BFD + ECMP), '
      f'{args.lbs} LB hosts running ecmplb on DPDK (net_af_packet on a veth) with FRR on the '
      f'exception TAP, and {args.backends} HTTP backends that answer with their name.\n')
  log('[1/6] Bringing the lab up ...')
  lab = Lab(args.build, args.lbs, args.backends, protocol=args.protocol).up()
  if bgp:
    log(f'      up in {lab.state["up_seconds"]} s. The router\'s BGP sessions (LB hosts, AS 65001):')
    neighbours = frr.bgp_peers()
  else:
    log(f'      up in {lab.state["up_seconds"]} s. The router\'s OSPF neighbours (LB hosts, priority 0):')
    neighbours = frr.ospf_neighbors()
  for a, s in sorted(neighbours.items()):
    log(f'        {a:<12} {s}')
  log('      Each ecmplb put the VIPs on its lo once its backends passed 2 HTTP health checks, and '
      f'{"bgpd" if bgp else "ospfd"} advertised them. The router\'s route to the DR VIP: one nexthop per LB host:')
  show_route()

  log(f'\n[2/6] 300 HTTP requests from the client to {VIP_DR}:80 (DR) and 100 to {VIP_GRE}:80 (GRE) ...')
  lbs = [f'lb{i}' for i in lab.lbs]
  bes = [f'be{j}' for j in lab.backends]
  for vip, n in ((VIP_DR, 300), (VIP_GRE, 100)):
    res, ok, per_be, pkts, flows = traffic.spread(lab, vip, n)
    log(f'      {vip}: {len(ok)}/{n} answered')
    if flows:
      log(f'        LB hosts (new flows each ecmplb tracked, `ecmplbctl stats`): {fmt_counts(flows, lbs)}')
    log('        packets the LB hosts\' data ports received: ' + ', '.join(f'lb{i} {pkts[i]}' for i in lab.lbs))
    log(f'        backends (the name in each answer): {fmt_counts(per_be, bes)}  '
        f'weights {":".join(str(be_weight(j)) for j in lab.backends)}')
  time.sleep(1.1)  # tunnel_decap.py rewrites its counters every second
  log('      Backends answer the client directly (DSR); the GRE service\'s packets were decapsulated '
      f'on the backends by tunnel_decap.py ({traffic.gre_decapsulated(lab)} packets).')

  victim = lab.lbs[-1]
  log(f'\n[3/6] Killing LB host lb{victim} (pulling its cable: its switch port goes down) while the '
      'client sends 50 requests/s and holds 30 long-lived connections (a message every 100 ms) ...')
  longp, sports = traffic.long_start(VIP_DR, 30, duration=14)
  later = None
  time.sleep(0.5)
  was_on_victim = traffic.on_host(lab, victim, VIP_DR, sports)
  on_victim = n_of(was_on_victim)
  box = []
  stream = threading.Thread(target=lambda: box.append(traffic.short(VIP_DR, 300, concurrency=16, rate=50)))
  stream.start()
  try:
    time.sleep(2)
    t0 = time.monotonic()
    topology.set_link(victim, False)
    dropped = measure_nexthops(VIP_DR, lab.n_lbs - 1, t0, timeout=15)
    log(f'      {dropped * 1000:.0f} ms later the router\'s route has lost lb{victim}:')
    show_route()
    # Connections opened now all go through the other hosts; ECMP spreads them again on return.
    later, later_sports = traffic.long_start(VIP_DR, 30, duration=10)
    log(f'      While lb{victim} is out the client opens 30 more long-lived connections: they all go '
        'through the other LB hosts.')
    stream.join()
    res = box[0]
    failed = [r for r in res if not r['backend']]
    slow = [r for r in res if r['backend'] and r['ms'] > 500]

    log(f'\n[4/6] Plugging lb{victim} back in: {"BGP re-establishes the session" if bgp else "OSPF re-forms the adjacency"} and Linux ECMP (no resilient '
        'nexthop groups) rehashes running connections onto it ...')
    t1 = time.monotonic()
    topology.set_link(victim, True)
    readded = measure_nexthops(VIP_DR, lab.n_lbs, t1, timeout=30)
    time.sleep(0.5)
    f0 = traffic.lb_forwarded(lab)
    time.sleep(2)
    f1 = traffic.lb_forwarded(lab)
    total = sum(f1[i] - f0[i] for i in lab.lbs) or 1
    share = 100 * (f1[victim] - f0[victim]) / total
    # Flows lb<victim> carries now: tracked and seen within the last second (the ones it carried
    # before it died stay in its table until the idle timeout).
    moved = n_of(traffic.on_host(lab, victim, VIP_DR, later_sports, max_idle_s=1))
    now_on_victim = traffic.on_host(lab, victim, VIP_DR, sports, max_idle_s=1)
    back = n_of(now_on_victim)
    if now_on_victim is not None and was_on_victim is not None:
      back_text = (f'{len(now_on_victim & was_on_victim)} of the {on_victim} that were on it when it '
                   f'died, {len(now_on_victim - was_on_victim)} of the others')
    else:
      back_text = 'ecmplbctl not built'
    log(f'      {readded:.1f} s later the route has {lab.n_lbs} nexthops again. The router hashes each '
        'client socket\'s random txhash (see README), so a running connection goes to '
        f'lb{victim} exactly when its hash falls in lb{victim}\'s share again:')
    log(f'        opened while lb{victim} was out: {moved}/{len(later_sports)} moved onto it '
        f'(flows its ecmplb carries, `ecmplbctl conns`)')
    log(f'        opened before it died: {back}/{len(sports)} are on it again ({back_text}). A socket '
        'keeps its hash until a retransmission timeout: one whose tail-loss probe reached another '
        f'host after the route dropped lb{victim} kept it and comes back; one that needed a '
        'retransmission timeout took a new random hash and comes back only if that falls in '
        f'lb{victim}\'s share')
    log(f'        lb{victim} forwards {share:.0f}% of the long-lived connections\' packets again '
        '(ecmplbctl stats).')
  finally:
    stream.join()
    conns = traffic.long_finish(longp, timeout=60)
    if later is not None:
      conns += traffic.long_finish(later, timeout=60)
  errors, changed, stall = traffic.summarize_long(conns)

  log('\n[5/6] Figures:')
  log(f'      convergence: the router dropped lb{victim}\'s nexthop {dropped * 1000:.0f} ms after its link went '
      f'down (BFD, 3 x 100 ms; {"BGP alone would take the 3 s hold time" if bgp else "OSPF alone would take the 4 s dead interval"}); '
      f're-added it {readded:.1f} s after it came back')
  log(f'      request stream during the failure: {len(res) - len(failed)}/{len(res)} succeeded, '
      f'{len(failed)} failed, {len(slow)} took > 500 ms (SYN sent into the black hole, retransmitted)')
  log(f'      long-lived connections: {len(conns) - len(errors)}/{len(conns)} survived both events, '
      f'{len(errors)} reset, {len(changed)} changed backend ({on_victim} were on lb{victim} when it died; '
      f'on its return {moved} + {back} moved onto it, {share:.0f}% of their packets); longest stall '
      f'{stall:.0f} ms')
  if lab.has_ctl() and lab.sync:
    hits = []
    for i in lab.lbs:
      try:
        st = json.loads(lab.ctl(i, ['stats', '--json']))
        hits.append(f'lb{i} {st["sync"]["peer_entries"]} flows from its peers, '
                    f'{st["total"]["sync_peer_hit"]} moved flows found there')
      except (LabError, ValueError, KeyError):
        pass
    if hits:
      log(f'      flow sync (every LB host tells the others where its flows go): {"; ".join(hits)}')
  log('      What you saw: every LB host builds the same Maglev table from the same configuration, so a '
      'flow the router moves to another LB host (one died, or ECMP rehashed on its return) reaches '
      'the same backend there and keeps going; flow sync covers what Maglev alone cannot (a pool '
      'change between a flow\'s start and its move: see README, "Flow sync between LB hosts").')
  return 0 if not errors and not failed else 1
