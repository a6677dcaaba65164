"""FRR in the lab's namespaces: configuration rendered from frr-conf/, the daemons of a
namespace, vtysh queries, and the router's routes to the VIPs."""
import json
import os
import shutil
import string
import subprocess

from .common import REPO, LabError, run, wait_file, wait_until

FRR_CONF = os.path.join(REPO, 'frr-conf')
FRR_RUN = '/var/run/frr'
ROUTER_NS = 'lab-rtr'


def render(template, **values):
  """Fills a frr-conf/ template (string.Template ${name} fields; a missing field is an error)."""
  with open(os.path.join(FRR_CONF, template)) as f:
    return string.Template(f.read()).substitute(values)


def _write_frr_file(path, text):
  with open(path, 'w') as f:
    f.write(text)
  shutil.chown(path, 'frr', 'frr')


# The daemons of frr-conf/daemons.in that announce the VIPs with each protocol (zebra and bfdd
# run with both); the lab starts one protocol's daemons only.
PROTOCOL_DAEMONS = {'ospf': {'ospfd', 'ospf6d'}, 'bgp': {'bgpd'}}


def start(procs_run, ns, conf_text, protocol='ospf'):
  """Starts the daemons frr-conf/daemons.in enables in namespace ns (each by PID, through
  procs_run), of them only protocol's ('ospf' or 'bgp'), and loads conf_text, the integrated
  configuration, through vtysh."""
  unused = set().union(*(d for p, d in PROTOCOL_DAEMONS.items() if p != protocol))
  d = os.path.join(FRR_RUN, ns)
  os.makedirs(d, exist_ok=True)
  shutil.chown(d, 'frr', 'frr')
  conf = os.path.join(d, 'frr.conf')
  _write_frr_file(conf, conf_text)
  daemons_file = os.path.join(d, 'daemons')
  with open(daemons_file, 'w') as f:
    f.write(render('daemons.in', frr_options=f' -N {ns}'))
  with open(daemons_file) as f:
    wanted = [line.split('=')[0] for line in f
              if line.strip().endswith('=yes') and not line.startswith('vtysh')]
  wanted = [d for d in wanted if d not in unused]
  # zebra first: the others connect to it. Daemons start with an empty configuration and get
  # the integrated one through vtysh, which hands each command to the daemon that owns it.
  wanted.sort(key=lambda n: n != 'zebra')
  empty = os.path.join(d, 'empty.conf')
  _write_frr_file(empty, '')
  for daemon in wanted:
    procs_run.spawn(f'{ns}-{daemon}', ns, [f'/usr/lib/frr/{daemon}', '-N', ns, '-f', empty, '-i',
                                           os.path.join(d, f'{daemon}.pid'), '-P', '0',
                                           '--log', f'file:{os.path.join(d, daemon + ".log")}'],
                    f'/usr/lib/frr/{daemon}', kind='frr')
    if daemon == 'zebra':
      wait_file(os.path.join(d, 'zserv.api'), 10)
  for daemon in wanted:
    wait_file(os.path.join(d, f'{daemon}.vty'), 10)
  p = subprocess.run(['vtysh', '-N', ns, '-f', conf], capture_output=True, text=True, timeout=30)
  errors = [l for l in p.stdout.splitlines() + p.stderr.splitlines()
            if l.startswith('%') and 'vtysh.conf' not in l]
  if p.returncode != 0 or errors:
    raise LabError(f'{ns}: vtysh -f {conf} failed (exit {p.returncode}): {" | ".join(errors)}')


def remove_run_folders(namespaces):
  """FRR's run folders of namespaces, and the ospfd-gr.json every ospfd shares (LAB-NOTES)."""
  for ns in namespaces:
    shutil.rmtree(os.path.join(FRR_RUN, ns), ignore_errors=True)
  try:
    os.unlink(os.path.join(FRR_RUN, 'ospfd-gr.json'))
  except OSError:
    pass


def vtysh(ns, command):
  return run(['vtysh', '-N', ns, '-c', command], check=False)


def ospf_neighbors(ns=ROUTER_NS):
  try:
    data = json.loads(vtysh(ns, 'show ip ospf neighbor json'))
  except ValueError:
    return {}
  result = {}
  for _, lst in data.get('neighbors', {}).items():
    for n in lst:
      result[n.get('ifaceAddress', n.get('address', '?'))] = n.get('nbrState', n.get('state', '?'))
  return result


def ospf6_neighbors(ns=ROUTER_NS):
  """OSPFv3 neighbours: router id -> state ('Full', ...)."""
  try:
    data = json.loads(vtysh(ns, 'show ipv6 ospf6 neighbor json'))
  except ValueError:
    return {}
  return {n.get('neighborId', '?'): n.get('state', '?') for n in data.get('neighbors', [])}


def ospf_neighbor_uptime_ms(addr, ns=ROUTER_NS):
  """How long the OSPF adjacency with the neighbour at interface address addr has been up (ms),
  or None."""
  try:
    data = json.loads(vtysh(ns, 'show ip ospf neighbor json'))
  except ValueError:
    return None
  for n in data.get('neighbors', {}).get(addr, []):
    return n.get('upTimeInMsec')
  return None


def bfd_up_count(ns=ROUTER_NS):
  """How many of ns's BFD sessions are up."""
  try:
    status = json.loads(vtysh(ns, 'show bfd peers json') or '[]')
  except ValueError:
    return 0
  return sum(1 for p in status if p.get('status') == 'up')


def bfd_peer(addr, ns=ROUTER_NS):
  """The router's BFD session with peer addr: (status, session-down count); None for each that
  is not known."""
  try:
    peers = json.loads(vtysh(ns, 'show bfd peers counters json') or '[]')
    status = json.loads(vtysh(ns, 'show bfd peers json') or '[]')
  except ValueError:
    return None, None
  downs = next((p.get('session-down') for p in peers if p.get('peer') == addr), None)
  state = next((p.get('status') for p in status if p.get('peer') == addr), None)
  return state, downs


def bgp_peers(ns=ROUTER_NS):
  """The BGP sessions of ns: peer address -> state ('Established', 'Active', ...)."""
  try:
    data = json.loads(vtysh(ns, 'show bgp neighbors json') or '{}')
  except ValueError:
    return {}
  return {addr: n.get('bgpState', '?') for addr, n in data.items() if isinstance(n, dict)}


# How the lab's LB hosts announce their VIPs ('ospf' or 'bgp'), set by the Lab.
PROTOCOL = 'ospf'


def summary(ns=ROUTER_NS):
  """The routing protocol's neighbours and the routes of ns, for a failure message."""
  if PROTOCOL == 'bgp':
    text = vtysh(ns, 'show bgp summary') + vtysh(ns, 'show bfd peers brief')
  else:
    text = vtysh(ns, 'show ip ospf neighbor') + vtysh(ns, 'show ipv6 ospf6 neighbor')
  return text + run(['ip', 'route'], ns=ns, check=False) + run(['ip', '-6', 'route'], ns=ns, check=False)


# The LB hosts' link-local addresses (the nexthops of OSPFv3 routes) -> their IPv4 addresses,
# filled in by the Lab as each LB host's exception TAP comes up.
LINK_LOCAL = {}


def nexthops(vip):
  """The router's nexthops for vip/32 or vip6/128 (empty list if the route is absent); an
  IPv6 route's link-local nexthops are named by their LB host's IPv4 address (LINK_LOCAL), so
  both families compare alike."""
  v6 = ':' in vip
  out = run(['ip', '-j', '-6' if v6 else '-4', 'route', 'show', f'{vip}/{128 if v6 else 32}'],
            ns=ROUTER_NS, check=False)
  try:
    routes = json.loads(out or '[]')
  except ValueError:
    return []
  hops = []
  for r in routes:
    if 'nexthops' in r:
      hops += [h.get('gateway') for h in r['nexthops']]
    elif 'gateway' in r:
      hops.append(r['gateway'])
  return sorted(LINK_LOCAL.get(h, h) for h in hops)


def route_text(vip):
  v6 = ':' in vip
  return run(['ip', '-6' if v6 else '-4', 'route', 'show', f'{vip}/{128 if v6 else 32}'],
             ns=ROUTER_NS).strip()


def until_nexthops(vip, count, timeout, t0=None, interval=0.01):
  """Seconds from t0 (default: now) until the router's route to vip has `count` nexthops, or
  None after timeout seconds."""
  return wait_until(lambda: len(nexthops(vip)) == count, timeout, interval=interval, t0=t0)


def wait_nexthops(vip, count, timeout):
  """Waits until the router's route to vip has `count` nexthops; returns seconds taken."""
  took = until_nexthops(vip, count, timeout)
  if took is None:
    raise LabError(f'router: {vip} has nexthops {nexthops(vip)} after {timeout} s, wanted {count}'
                   f'\n{summary()}')
  return took
