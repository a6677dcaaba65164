#!/usr/bin/python3
"""lab.py: ecmplb's network-namespace lab (issue 7).

  lab.py up [--lbs N] [--backends M] [--protocol ospf|bgp]
                                         bring the lab up and leave it up
  lab.py down                            tear everything down (idempotent; also after a crash)
  lab.py demo                            up, show ECMP + spread + an LB host failure, down
  lab.py test NAME [--set OPT=VALUE]...  one end-to-end test (up, check, down); NAME in TESTS;
                                         --set changes one of the test's options (e.g. flood's)
  lab.py ctl LB ARGS...                  run `ecmplbctl ARGS` against LB host LB (lb1 or 1)
  lab.py status                          OSPF neighbours and the router's VIP routes

Topology (every name starts with "lab-"; nothing touches the root namespace's routes):

  lab-cl (client 10.1.0.2) --- lab-rtr (FRR: zebra, ospfd, bfdd; 10.1.0.1 | 10.0.0.1, ECMP;
                                    --protocol bgp: bgpd in AS 65000 instead of ospfd)
                                   |
                  lab-sw: bridge br0 (the LB segment, 10.0.0.0/24)
        |                    |                     |                |
  lab-lb1 .. lab-lbN    (ecmplb on the veth lbI-data via net_af_packet; exception TAP
                         ecmplb0 = 10.0.0.1I with ospfd + bfdd (or bgpd, AS 65001, + bfdd);
                         ecmplb puts the VIPs on lo
                         while they are servable: HTTP health checks, drain on SIGTERM)
  lab-be1 .. lab-beM    (10.0.0.2J; HTTP server answering with its name; VIPs on lo with
                         arp_ignore=1/arp_announce=2 for DR; tunnel_decap.py + TUN for GRE, IPIP, GUE)
  lab-fl                (test `flood` only: ecmplb-gen on the veth fl0, linked to the router
                         as rtr-fl 10.2.0.1, beside the client)

Services: 10.100.0.1:80/tcp forwarded by DR, 10.100.0.2:80/tcp forwarded by GRE, backend J
with weight J. Needs root. Holds /run/lock/ecmplb-lab.lock while it works, so two runs never
share the namespaces.

The code: labkit/ (topology, processes, FRR, the ecmplb launcher, traffic, the Lab),
scenarios/ (one module per test), demo.py.
"""
import argparse
import os
import signal
import subprocess
import sys

import demo
import scenarios
from labkit import frr, procs
from labkit.checks import locked_run
from labkit.common import REPO, SKIP, LabError, log
from labkit.testbed import PROTOCOLS, Lab, ecmplbctl_path

PROTOCOL_NAMES = {'ospf': 'OSPFv2/OSPFv3', 'bgp': 'eBGP'}
from labkit.topology import MAX_BACKENDS, MAX_LBS, VIP_DR, VIP_GRE


def cmd_test(args):
  test = scenarios.load(args.name)
  try:
    opts = scenarios.options(test, args.set)
  except ValueError as e:
    log(f'{args.name}: {e}')
    return 2
  if os.geteuid() != 0:
    log(f'{args.name}: skipped: the lab needs root (network namespaces, FRR, DPDK)')
    return SKIP
  if test.NEEDS_CTL and not os.access(ecmplbctl_path(args.build), os.X_OK):
    log(f'{args.name}: skipped: ecmplbctl not built yet')
    return SKIP

  def body():
    extra = test.lab_kwargs(opts) if hasattr(test, 'lab_kwargs') else {}
    kw = {'n_lbs': args.lbs, 'n_backends': args.backends, 'protocol': args.protocol}
    kw.update(extra)  # a test may need more backends (e.g. one to add)
    lab = Lab(args.build, **kw).up()
    log(f'lab up in {lab.state["up_seconds"]} s ({lab.n_lbs} LB hosts, {lab.n_backends} backends, '
        f'VIPs announced over {PROTOCOL_NAMES[lab.protocol]})')
    log(test.run(lab, opts) if hasattr(test, 'OPTIONS') else test.run(lab))
    return 0

  return locked_run(args.name, body)


def cmd_up(args):
  with procs.Lock():
    try:
      lab = Lab(args.build, args.lbs, args.backends, protocol=args.protocol).up()
    except BaseException:
      if not args.keep:
        procs.down(quiet=True)
      raise
  log(f'lab: up in {lab.state["up_seconds"]} s; {VIP_DR}:80 (DR) and {VIP_GRE}:80 (GRE) via '
      f'{frr.nexthops(VIP_DR)}. Try: ip netns exec lab-cl curl -s http://{VIP_DR}/ ; lab.py down')
  return 0


def cmd_ctl(args):
  lab = Lab.from_state()
  i = int(args.lb.removeprefix('lb'))
  if i not in lab.lbs:
    raise LabError(f'no LB host {args.lb} (the lab has lb1..lb{lab.n_lbs})')
  if not os.access(lab.ecmplbctl, os.X_OK):
    raise LabError(f'{lab.ecmplbctl} is not built yet')
  # Output straight to the terminal.
  return subprocess.run(['ip', 'netns', 'exec', f'lab-lb{i}', lab.ecmplbctl, '--socket',
                         lab.socket_path(i)] + args.rest).returncode


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument('--build', default=os.environ.get('ECMPLB_BUILD', os.path.join(REPO, 'build')),
                  help='meson build folder holding daemon/ecmplb (default: REPO/build)')
  sub = ap.add_subparsers(dest='cmd', required=True)
  for name in ('up', 'demo', 'test'):
    p = sub.add_parser(name)
    p.add_argument('--lbs', type=int, default=2, help=f'LB hosts (1..{MAX_LBS})')
    p.add_argument('--backends', type=int, default=3, help=f'backends (1..{MAX_BACKENDS})')
    p.add_argument('--protocol', choices=PROTOCOLS, default='ospf',
                   help='how the LB hosts announce the VIPs to the router: OSPFv2/v3 or eBGP '
                   '(multipath), both with BFD')
    if name == 'test':
      p.add_argument('name', choices=sorted(scenarios.NAMES))
      p.add_argument('--set', action='append', default=[], metavar='OPT=VALUE',
                     help="one of the test's options (its module's OPTIONS), e.g. --set seconds=60")
    if name == 'up':
      p.add_argument('--keep', action='store_true', help='leave a half-built lab up on failure (debugging)')
  sub.add_parser('down')
  sub.add_parser('status')
  p = sub.add_parser('ctl', help='run ecmplbctl in an LB host: ctl lb1 show --json')
  p.add_argument('lb')
  p.add_argument('rest', nargs=argparse.REMAINDER)
  args = ap.parse_args()

  # Ctrl-C and meson's timeout (SIGTERM) unwind through the `finally: down()` blocks.
  signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
  signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
  try:
    if args.cmd == 'test':
      return cmd_test(args)
    if args.cmd == 'demo':
      return demo.cmd_demo(args)
    if args.cmd == 'up':
      return cmd_up(args)
    if args.cmd == 'down':
      with procs.Lock(timeout=30):
        procs.down()
      return 0
    if args.cmd == 'status':
      Lab.from_state()
      log(frr.summary().rstrip())
      return 0
    if args.cmd == 'ctl':
      return cmd_ctl(args)
  except LabError as e:
    log(f'lab.py: {e}')
    return 1
  except KeyboardInterrupt:
    log('lab.py: interrupted; cleaning up')
    procs.down(quiet=True)
    return 130
  return 0


if __name__ == '__main__':
  sys.exit(main())
