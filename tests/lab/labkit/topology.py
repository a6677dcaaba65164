"""The lab's network: namespaces, veths, the bridge, addresses, sysctls; LB hosts' cables and lo.

  lab-cl (client 10.1.0.2) --- lab-rtr (10.1.0.1 | 10.0.0.1) --- lab-sw: bridge br0 (10.0.0.0/24)
  lab-lb1 .. lab-lbN (10.0.0.1I: data veth lbI-data owned by DPDK), lab-be1 .. lab-beM (10.0.0.2J)
Dual stack: the same links carry IPv6 (client fd01::2, router fd01::1 | fd00::1, LB hosts
fd00::1I on their exception TAP, backends fd00::2J, VIPs fd64::1 and fd64::2), without DAD.
Every name starts with "lab-"; nothing touches the root namespace's routes.
"""
import json

from .common import run

MAX_LBS = 4
MAX_BACKENDS = 8
ROUTER_LB_ADDR = '10.0.0.1'
LB_SUBNET = '10.0.0.0/24'
CLIENT_ADDR = '10.1.0.2'
ROUTER_CLIENT_ADDR = '10.1.0.1'
VIP_RANGE = '10.100.0.0/24'
VIP_DR = '10.100.0.1'
VIP_GRE = '10.100.0.2'
VIPS = [VIP_DR, VIP_GRE]
# IPv6: the LB segment, the client's link, the VIPs (an IPv6 DR and an IPv6 GRE service).
ROUTER_LB_ADDR6 = 'fd00::1'
LB_PREFIX6 = 64
LB_SUBNET6 = 'fd00::/64'
CLIENT_ADDR6 = 'fd01::2'
ROUTER_CLIENT_ADDR6 = 'fd01::1'
VIP_RANGE6 = 'fd64::/126'
VIP_DR6 = 'fd64::1'
VIP_GRE6 = 'fd64::2'
VIPS6 = [VIP_DR6, VIP_GRE6]
ALL_VIPS = VIPS + VIPS6
PORT = 80
# The IPIP and GUE services: VIP_GRE's other ports (every backend listens on all three).
PORT_IPIP = 81
PORT_GUE = 82
BACKEND_PORTS = [PORT, PORT_IPIP, PORT_GUE]
# The UDP echo port of every backend; a UDP DR service on VIP_DR when a test asks for it.
PORT_UDP = 5353
# Every service of the lab: (VIP, port, forwarding mode).
SERVICES = [(VIP_DR, PORT, 'dr'), (VIP_GRE, PORT, 'gre'), (VIP_GRE, PORT_IPIP, 'ipip'),
            (VIP_GRE, PORT_GUE, 'gue'), (VIP_DR6, PORT, 'dr'), (VIP_GRE6, PORT, 'gre')]
# The flood namespace (scenario `flood`): a second link into the router, where the client is.
FLOOD_NS = 'lab-fl'
ROUTER_FLOOD_ADDR = '10.2.0.1'
FLOOD_GW = '10.2.0.2'  # a next hop only: the router reaches the flood net through it
FLOOD_NET = '203.0.113.0/24'  # ecmplb-gen's default --flood-net (RFC 5737)
# Fleet mode (issue 16): etcd in its own namespace on the LB segment.
ETCD_NS = 'lab-etcd'
ETCD_ADDR = '10.0.0.30'
ETCD_PORT = 2379
ETCD_URL = f'http://{ETCD_ADDR}:{ETCD_PORT}'
FLEET_CLUSTER = 'lab'


def lb_addr(i):
  return f'10.0.0.{10 + i}'


def be_addr(j):
  return f'10.0.0.{20 + j}'


def lb_addr6(i):
  return f'fd00::{10 + i}'


def be_addr6(j):
  return f'fd00::{20 + j}'


def is_v6(addr):
  return ':' in addr


def backend_address(vip, j):
  """Backend j's address in the family of vip (IPv6 services have IPv6 backends)."""
  return be_addr6(j) if is_v6(vip) else be_addr(j)


def service_name(vip, port, proto='tcp'):
  """A service as ecmplbctl names it: VIP:PORT/PROTO, [VIP6]:PORT/PROTO."""
  return f'[{vip}]:{port}/{proto}' if is_v6(vip) else f'{vip}:{port}/{proto}'


def be_weight(j):
  return j


def lb_ns(i):
  return f'lab-lb{i}'


def be_ns(j):
  return f'lab-be{j}'


def all_lab_namespaces():
  return (['lab-sw', 'lab-rtr', 'lab-cl', FLOOD_NS, ETCD_NS]
          + [lb_ns(i) for i in range(1, MAX_LBS + 1)]
          + [be_ns(j) for j in range(1, MAX_BACKENDS + 1)])


def sysctls(ns, pairs):
  for k, v in pairs:
    run(['sysctl', '-qw', f'{k}={v}'], ns=ns)


def netns(procs_run, name):
  """Creates namespace name (recorded first, so `down` removes it even if the rest fails)."""
  run(['ip', 'netns', 'add', name])
  procs_run.add_namespace(name)
  # No duplicate address detection: addresses (link-local ones too) are usable at once.
  sysctls(name, [('net.ipv6.conf.all.accept_dad', 0), ('net.ipv6.conf.default.accept_dad', 0)])
  run(['ip', 'link', 'set', 'lo', 'up'], ns=name)


def addr6(ns, addr, dev):
  run(['ip', '-6', 'addr', 'add', addr, 'dev', dev, 'nodad'], ns=ns)


def veth(ns_a, a, ns_b, b):
  """A veth pair with TX checksum offload off on both ends (see LAB-NOTES: frames with
  unfinished checksums would reach DPDK's af_packet port raw)."""
  run(['ip', 'link', 'add', a, 'netns', ns_a, 'type', 'veth', 'peer', 'name', b, 'netns', ns_b])
  for ns, dev in ((ns_a, a), (ns_b, b)):
    run(['ethtool', '-K', dev, 'tx', 'off'], ns=ns)


def plug(port):
  """Attaches the switch side `port` of a veth to the bridge and brings it up."""
  run(['ip', 'link', 'set', port, 'master', 'br0', 'up'], ns='lab-sw')


def build_core(procs_run, lbs, backends):
  """Namespaces, the switch, the router and the client."""
  for ns in ['lab-sw', 'lab-rtr', 'lab-cl'] + [lb_ns(i) for i in lbs] + [be_ns(j) for j in backends]:
    netns(procs_run, ns)
  # Switch: one bridge for the LB segment (LB hosts, backends, router).
  run(['ip', 'link', 'add', 'br0', 'type', 'bridge'], ns='lab-sw')
  run(['ip', 'link', 'set', 'br0', 'up'], ns='lab-sw')

  # Router.
  veth('lab-cl', 'cl0', 'lab-rtr', 'rtr-cl')
  veth('lab-rtr', 'rtr-lb', 'lab-sw', 'sw-rtr')
  plug('sw-rtr')
  run(['ip', 'addr', 'add', f'{ROUTER_CLIENT_ADDR}/24', 'dev', 'rtr-cl'], ns='lab-rtr')
  run(['ip', 'addr', 'add', f'{ROUTER_LB_ADDR}/24', 'dev', 'rtr-lb'], ns='lab-rtr')
  for dev in ('rtr-cl', 'rtr-lb'):
    run(['ip', 'link', 'set', dev, 'up'], ns='lab-rtr')
  addr6('lab-rtr', f'{ROUTER_CLIENT_ADDR6}/64', 'rtr-cl')
  addr6('lab-rtr', f'{ROUTER_LB_ADDR6}/{LB_PREFIX6}', 'rtr-lb')
  sysctls('lab-rtr', [('net.ipv4.ip_forward', 1), ('net.ipv4.fib_multipath_hash_policy', 1),
                      ('net.ipv4.conf.all.rp_filter', 0), ('net.ipv4.conf.default.rp_filter', 0),
                      ('net.ipv4.conf.rtr-cl.rp_filter', 0), ('net.ipv4.conf.rtr-lb.rp_filter', 0),
                      ('net.ipv6.conf.all.forwarding', 1), ('net.ipv6.fib_multipath_hash_policy', 1)])

  # Client.
  run(['ip', 'addr', 'add', f'{CLIENT_ADDR}/24', 'dev', 'cl0'], ns='lab-cl')
  run(['ip', 'link', 'set', 'cl0', 'up'], ns='lab-cl')
  run(['ip', 'route', 'add', 'default', 'via', ROUTER_CLIENT_ADDR], ns='lab-cl')
  addr6('lab-cl', f'{CLIENT_ADDR6}/64', 'cl0')
  run(['ip', '-6', 'route', 'add', 'default', 'via', ROUTER_CLIENT_ADDR6], ns='lab-cl')
  sysctls('lab-cl', [('net.ipv4.ip_local_port_range', '20000 60999')])


def build_flood_link(procs_run):
  """The flood namespace lab-fl: a veth fl0 into the router (rtr-fl, 10.2.0.1/24), beside the
  client's link. fl0 belongs to ecmplb-gen (net_af_packet): no address, no IPv6, and the kernel
  drops whatever arrives on it (the generator still sees it). The router routes the flood net
  (203.0.113.0/24, the generator's sources) back to fl0 through a permanent neighbour, so the
  LB hosts' answers to the flood return to the generator without an ARP exchange. Returns
  fl0's MAC address."""
  netns(procs_run, FLOOD_NS)
  veth(FLOOD_NS, 'fl0', 'lab-rtr', 'rtr-fl')
  sysctls(FLOOD_NS, [('net.ipv6.conf.fl0.disable_ipv6', 1)])
  run(['ip', 'link', 'set', 'fl0', 'up'], ns=FLOOD_NS)
  run(['nft', '-f', '-'], ns=FLOOD_NS, input=(
      'table netdev ecmplb_lab {\n'
      '  chain ingress { type filter hook ingress device "fl0" priority 0; policy drop; }\n'
      '}\n'))
  mac = link_mac(FLOOD_NS, 'fl0')
  run(['ip', 'addr', 'add', f'{ROUTER_FLOOD_ADDR}/24', 'dev', 'rtr-fl'], ns='lab-rtr')
  run(['ip', 'link', 'set', 'rtr-fl', 'up'], ns='lab-rtr')
  sysctls('lab-rtr', [('net.ipv4.conf.rtr-fl.rp_filter', 0)])
  run(['ip', 'neigh', 'replace', FLOOD_GW, 'lladdr', mac, 'dev', 'rtr-fl', 'nud', 'permanent'],
      ns='lab-rtr')
  run(['ip', 'route', 'replace', FLOOD_NET, 'via', FLOOD_GW], ns='lab-rtr')
  return mac


def build_etcd(procs_run):
  """The etcd namespace: its port on the switch, ETCD_ADDR on the LB segment."""
  netns(procs_run, ETCD_NS)
  veth(ETCD_NS, 'etcd0', 'lab-sw', 'sw-etcd')
  plug('sw-etcd')
  run(['ip', 'addr', 'add', f'{ETCD_ADDR}/24', 'dev', 'etcd0'], ns=ETCD_NS)
  run(['ip', 'link', 'set', 'etcd0', 'up'], ns=ETCD_NS)


def cut_etcd(i, cut):
  """Cuts LB host i off from etcd (a blackhole route to it in its namespace) or reconnects it."""
  run(['ip', 'route', 'add' if cut else 'del', 'blackhole', f'{ETCD_ADDR}/32'], ns=lb_ns(i))


def link_mac(ns, dev):
  return json.loads(run(['ip', '-j', 'link', 'show', dev], ns=ns))[0]['address']


def build_backend(j):
  """Backend j's network: its port on the switch, its address, the VIPs on lo for DR."""
  ns, dev = be_ns(j), f'be{j}-eth'
  veth(ns, dev, 'lab-sw', f'sw-be{j}')
  plug(f'sw-be{j}')
  run(['ip', 'addr', 'add', f'{be_addr(j)}/24', 'dev', dev], ns=ns)
  run(['ip', 'link', 'set', dev, 'up'], ns=ns)
  run(['ip', 'route', 'add', 'default', 'via', ROUTER_LB_ADDR], ns=ns)
  addr6(ns, f'{be_addr6(j)}/{LB_PREFIX6}', dev)
  run(['ip', '-6', 'route', 'add', 'default', 'via', ROUTER_LB_ADDR6], ns=ns)
  # DR: the VIP is local but never answered for in ARP; replies come from the VIP. (IPv6: an
  # address on lo is never answered for in neighbour discovery on another interface.)
  sysctls(ns, [('net.ipv4.conf.all.arp_ignore', 1), ('net.ipv4.conf.all.arp_announce', 2),
               ('net.ipv4.conf.all.rp_filter', 0), ('net.ipv4.conf.default.rp_filter', 0)])
  for vip in VIPS:
    run(['ip', 'addr', 'add', f'{vip}/32', 'dev', 'lo'], ns=ns)
  for vip in VIPS6:
    addr6(ns, f'{vip}/128', 'lo')


def build_lb_port(i):
  """LB host i's data veth, which belongs to DPDK (the kernel drops whatever arrives on it)."""
  ns, dev = lb_ns(i), f'lb{i}-data'
  veth(ns, dev, 'lab-sw', f'sw-lb{i}')
  plug(f'sw-lb{i}')
  # Like a NIC's MAC filter: af_packet hands ecmplb every frame on the veth, also unicast
  # for other MACs, so a bridge flooding an unknown MAC (after a dead LB host's port went
  # down) would let a live host quietly serve the dead one's traffic. No unknown-unicast
  # flooding onto LB ports keeps failures as visible as on real hardware.
  run(['ip', 'link', 'set', 'dev', f'sw-lb{i}', 'type', 'bridge_slave', 'flood', 'off'], ns='lab-sw')
  # The kernel neither sends (no IPv6 on it) nor receives (nft ingress drop) on this veth.
  sysctls(ns, [(f'net.ipv6.conf.{dev}.disable_ipv6', 1)])
  run(['ip', 'link', 'set', dev, 'up'], ns=ns)
  run(['nft', '-f', '-'], ns=ns, input=(
      'table netdev ecmplb_lab {\n'
      f'  chain ingress {{ type filter hook ingress device "{dev}" priority 0; policy drop; }}\n'
      '}\n'))
  sysctls(ns, [('net.ipv4.conf.all.arp_ignore', 1), ('net.ipv4.conf.all.arp_announce', 2)])


def set_link(i, up):
  """Plugs (up) or pulls (down) LB host i's cable: the switch side of its data veth."""
  run(['ip', 'link', 'set', f'sw-lb{i}', 'up' if up else 'down'], ns='lab-sw')


def data_packets(i):
  """Packets received on lb<i>'s data veth (af_packet traffic included), and sent."""
  out = run(['ip', '-j', '-s', 'link', 'show', f'lb{i}-data'], ns=lb_ns(i), check=False)
  try:
    st = json.loads(out)[0]['stats64']
    return st['rx']['packets'], st['tx']['packets']
  except (ValueError, KeyError, IndexError):
    return 0, 0


def lo_vips(i):
  """The lab VIPs on lo of LB host i: what ecmplb announces (ospfd and ospf6d advertise them)."""
  out = run(['ip', '-j', 'addr', 'show', 'dev', 'lo'], ns=lb_ns(i), check=False)
  try:
    addrs = {a.get('local') for link in json.loads(out or '[]') for a in link.get('addr_info', [])}
  except (ValueError, KeyError, TypeError):
    return set()
  return addrs & set(ALL_VIPS)


def link_local(ns, dev):
  """dev's IPv6 link-local address in ns (what OSPFv3 speaks from), or None."""
  out = run(['ip', '-j', '-6', 'addr', 'show', 'dev', dev, 'scope', 'link'], ns=ns, check=False)
  try:
    # `ip -j` lists the addresses the scope filter dropped as empty objects.
    return next((a['local'] for link in json.loads(out or '[]') for a in link.get('addr_info', [])
                 if a.get('local') and not a.get('tentative')), None)
  except (ValueError, KeyError, TypeError):
    return None
