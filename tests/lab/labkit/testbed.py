"""The Lab: brings the topology, backends, LB hosts (ecmplb + FRR) and the router up, and drives
the LB hosts' ecmplb (start, signal, restart, announcement, health, ecmplbctl)."""
import json
import os
import subprocess
import time

from . import daemon, etcd, frr, procs, topology
from .common import LAB_DIR, PY, RUN, LabError, tail, wait_until
from .topology import (ALL_VIPS, BACKEND_PORTS, LB_PREFIX6, LB_SUBNET, LB_SUBNET6, MAX_BACKENDS,
                       MAX_LBS, PORT, PORT_UDP, ROUTER_LB_ADDR, ROUTER_LB_ADDR6, SERVICES, VIP_DR,
                       VIP_RANGE, VIP_RANGE6, backend_address, be_weight, lb_addr, lb_addr6,
                       lb_ns, service_name)

PACKAGES = ['frr', 'iproute2', 'nftables', 'ethtool']
# Backend health checks of both lab services: HTTP GET / on the backends' server.
HEALTH = {'type': 'http', 'port': PORT, 'path': '/', 'expect_status': 200, 'interval_ms': 200,
          'timeout_ms': 150, 'rise': 2, 'fall': 2}
DRAIN_S = 3  # host.drain_s: how long ecmplb keeps forwarding after SIGTERM / ecmplbctl drain
# --protocol bgp: the router's AS and the LB hosts' AS (ecmplbctl frr-config's defaults).
ROUTER_AS = 65000
LB_AS = 65001
PROTOCOLS = ('ospf', 'bgp')
FLEET_GRACE_S = 2  # fleet.grace_s of the lab's LB hosts in fleet mode


def check_packages():
  missing = []
  for p in PACKAGES:
    r = subprocess.run(['dpkg-query', '-W', '-f=${Status}', p], capture_output=True, text=True)
    if 'install ok installed' not in r.stdout:
      missing.append(p)
  if missing:
    raise LabError(f'missing Debian packages: {" ".join(missing)} (run ./setup.sh as root)')
  if os.geteuid() != 0:
    raise LabError('the lab needs root (network namespaces, FRR, DPDK)')


def ecmplb_path(build):
  return os.path.join(os.path.abspath(build), 'daemon', 'ecmplb')


def ecmplbctl_path(build):
  return os.path.join(os.path.abspath(build), 'control', 'ecmplbctl')


class Lab:
  def __init__(self, build, n_lbs=2, n_backends=3, exception=None, configured=None, sync=True,
               data_port='af_packet', udp_service=False, protocol='ospf', fleet=False):
    """exception: the LB hosts' host.exception settings (default: ecmplb's defaults).
    configured: how many of the backends (1..n) the LB hosts' configs list at start (default:
    all; the rest run, ready to be added with ecmplbctl). sync: flow sync between the LB hosts
    (a shared key file, every other LB host a peer). data_port: the LB hosts' DPDK port on
    their data veth, 'af_packet' (fast; its fanout DEFRAG reassembles IPv4 fragments before
    ecmplb sees them) or 'pcap' (net_pcap on the veth: slower, fragments as on the wire).
    udp_service: a UDP DR service on VIP_DR:PORT_UDP (the backends' UDP echo).
    protocol: how the LB hosts announce their VIPs to the router: 'ospf' (OSPFv2 + OSPFv3,
    BFD) or 'bgp' (eBGP from AS LB_AS to the router's AS ROUTER_AS with multipath, BFD; each
    LB host's FRR configuration rendered by its `ecmplbctl frr-config --protocol bgp`).
    fleet: fleet mode (issue 16): etcd in namespace lab-etcd on the LB segment holds the
    services (seeded with `ecmplbctl fleet put`); each LB host's file has host settings only."""
    if not 1 <= n_lbs <= MAX_LBS:
      raise LabError(f'--lbs must be 1..{MAX_LBS}')
    if not 1 <= n_backends <= MAX_BACKENDS:
      raise LabError(f'--backends must be 1..{MAX_BACKENDS}')
    self.build = os.path.abspath(build)
    self.n_lbs = n_lbs
    self.n_backends = n_backends
    self.exception = exception
    self.configured = n_backends if configured is None else configured
    self.sync = sync
    if data_port not in ('af_packet', 'pcap'):
      raise LabError(f'data_port must be af_packet or pcap, not {data_port}')
    self.data_port = data_port
    if protocol not in PROTOCOLS:
      raise LabError(f'protocol must be one of {PROTOCOLS}, not {protocol}')
    self.protocol = protocol
    frr.PROTOCOL = protocol
    self.fleet = fleet
    self.udp_service = udp_service
    self.lbs = list(range(1, n_lbs + 1))
    self.backends = list(range(1, n_backends + 1))
    self.ecmplb = ecmplb_path(self.build)
    self.ecmplbctl = ecmplbctl_path(self.build)
    self.run = procs.Run({'namespaces': [], 'procs': {}, 'build': self.build, 'lbs': n_lbs,
                          'backends': n_backends, 'data_port': data_port,
                          'udp_service': udp_service, 'protocol': protocol, 'fleet': fleet})
    self.log_offsets = {}  # ecmplb log label -> its size before the last start

  @property
  def state(self):
    return self.run.state

  @property
  def popen(self):
    return self.run.popen

  @classmethod
  def from_state(cls):
    st = procs.load_state()
    if not st:
      raise LabError('the lab is not up (run: lab.py up)')
    lab = cls(st['build'], st['lbs'], st['backends'], protocol=st.get('protocol', 'ospf'),
              fleet=st.get('fleet', False))
    lab.run.state = st
    return lab

  # -- bring up

  def up(self):
    check_packages()
    if not os.access(self.ecmplb, os.X_OK):
      raise LabError(f'{self.ecmplb} is not built (ninja -C {self.build} daemon/ecmplb)')
    if procs.load_state() or any(ns in topology.all_lab_namespaces() for ns in procs.existing_namespaces()):
      procs.down(quiet=True)
    os.makedirs(RUN, exist_ok=True)
    self.run.save()
    t0 = time.monotonic()
    topology.build_core(self.run, self.lbs, self.backends)

    # Backends.
    for j in self.backends:
      topology.build_backend(j)
      self.start_backend(j)
      self.run.spawn(f'be{j}-tunnel', topology.be_ns(j),
                     [PY, os.path.join(LAB_DIR, 'tunnel_decap.py'), '--tun', 'tnl0',
                      '--stats-file', self.tunnel_stats_path(j)], 'tunnel_decap.py')

    if self.fleet:
      self.start_etcd()
    # LB hosts: ecmplb on the data veth.
    if self.sync:
      self.write_sync_key()
    for i in self.lbs:
      topology.build_lb_port(i)
      with open(self.config_path(i), 'w') as f:
        json.dump(self.ecmplb_config(i), f, indent=1)
      self.start_ecmplb(i)
    for i in self.lbs:
      self.wait_ecmplb(i)

    # FRR: router and LB hosts.
    if self.protocol == 'bgp':
      self.start_frr_bgp()
    else:
      frr.start(self.run, 'lab-rtr', frr.render('router.frr.conf.in', hostname='lab-rtr',
                                                router_id=ROUTER_LB_ADDR, lb_interface='rtr-lb',
                                                lb_subnet=LB_SUBNET, max_paths=16))
      for i in self.lbs:
        # OSPFv2 and BFD, then OSPFv3 for the IPv6 VIPs (what `ecmplbctl frr-config` renders).
        fields = dict(hostname=lb_ns(i), router_id=lb_addr(i), exception_interface='ecmplb0',
                      host_subnet=LB_SUBNET, vip_range=VIP_RANGE, vip6_range=VIP_RANGE6)
        frr.start(self.run, lb_ns(i), frr.render('lb-host.frr.conf.in', **fields)
                  + frr.render('lb-host.ospf6.frr.conf.in', **fields))
    # ecmplb announces the VIPs (VIP/32, VIP6/128 on lo) once a backend passed `rise` checks.
    for i in self.lbs:
      self.wait_announced(i, True, timeout=20)
    self.wait_routes(timeout=40)
    if self.protocol == 'bgp':
      # BFD comes up after the BGP sessions it protects: a test that fails an LB host before
      # then would measure the 3 s hold time.
      want = 2 * self.n_lbs  # an IPv4 and an IPv6 session per LB host
      if wait_until(lambda: frr.bfd_up_count() >= want, 20, interval=0.1) is None:
        raise LabError(f'router: {frr.bfd_up_count()} of {want} BFD sessions up after 20 s'
                       f'\n{frr.summary()}')
    self.state['up_seconds'] = round(time.monotonic() - t0, 1)
    self.run.save()
    return self

  def start_frr_bgp(self):
    """The router with frr-conf/router.bgp.frr.conf.in (sessions accepted from the whole LB
    segment), each LB host with what its own `ecmplbctl frr-config --protocol bgp` prints
    (an IPv4 and an IPv6 session with the router)."""
    if not os.access(self.ecmplbctl, os.X_OK):
      raise LabError(f'--protocol bgp renders the LB hosts\' FRR configuration with ecmplbctl: '
                     f'{self.ecmplbctl} is not built')
    frr.start(self.run, 'lab-rtr',
              frr.render('router.bgp.frr.conf.in', hostname='lab-rtr', router_id=ROUTER_LB_ADDR,
                         local_as=ROUTER_AS, lb_as=LB_AS, vip_range=VIP_RANGE,
                         vip6_range=VIP_RANGE6, lb_subnet=LB_SUBNET, lb_subnet6=LB_SUBNET6,
                         max_paths=16),
              protocol='bgp')
    for i in self.lbs:
      conf = self.ctl(i, ['frr-config', '--protocol', 'bgp', '--hostname', lb_ns(i),
                          '--local-as', str(LB_AS), '--peer-as', str(ROUTER_AS),
                          '--peer', ROUTER_LB_ADDR, '--peer6', ROUTER_LB_ADDR6])
      frr.start(self.run, lb_ns(i), conf, protocol='bgp')

  def start_etcd(self):
    """etcd in lab-etcd (by PID, like every lab process), then the fleet's services written
    into it with `ecmplbctl fleet put` (no daemon needed)."""
    if not etcd.available():
      raise LabError('fleet mode needs etcd-server and etcd-client (run ./setup.sh)')
    topology.build_etcd(self.run)
    data = os.path.join(RUN, 'etcd')
    os.makedirs(data, exist_ok=True)
    self.run.spawn('etcd', topology.ETCD_NS,
                   etcd.command(data, topology.ETCD_ADDR, topology.ETCD_PORT, topology.ETCD_PORT + 1),
                   etcd.ETCD)

    def healthy():
      return subprocess.run(['ip', 'netns', 'exec', topology.ETCD_NS]
                            + etcd.ctl_command(topology.ETCD_URL, 'endpoint', 'health'),
                            capture_output=True).returncode == 0

    if wait_until(healthy, 20, interval=0.1) is None:
      raise LabError(f'etcd in {topology.ETCD_NS} not healthy after 20 s: '
                     f'{tail(self.run.log_path("etcd"))}')
    path = os.path.join(RUN, 'fleet-services.json')
    with open(path, 'w') as f:
      json.dump({'services': self.services()}, f, indent=1)
    p = self.fleet_ctl(['put', path])
    if p.returncode != 0:
      raise LabError(f'ecmplbctl fleet put: {p.stderr.strip()}')

  def fleet_ctl(self, args, ns=topology.ETCD_NS, json_out=True):
    """`ecmplbctl fleet --etcd ... ARGS` in namespace ns (no daemon needed)."""
    if not os.access(self.ecmplbctl, os.X_OK):
      raise LabError(f'{self.ecmplbctl} is not built')
    return subprocess.run(['ip', 'netns', 'exec', ns, self.ecmplbctl, '--socket',
                           os.path.join(RUN, 'none.sock')] + (['--json'] if json_out else [])
                          + ['fleet', '--etcd', topology.ETCD_URL, '--cluster',
                             topology.FLEET_CLUSTER] + list(args),
                          capture_output=True, text=True, timeout=30)

  def fleet_view(self, i):
    """`ecmplbctl show --json`'s fleet object of LB host i ({} if it does not answer)."""
    try:
      return json.loads(self.ctl(i, ['show', '--json'], check=False) or '{}').get('fleet', {})
    except ValueError:
      return {}

  @staticmethod
  def config_path(i):
    return os.path.join(RUN, f'lb{i}.json')

  @staticmethod
  def socket_path(i):
    return os.path.join(RUN, f'lb{i}.sock')

  @staticmethod
  def sync_key_path():
    return os.path.join(RUN, 'sync.key')

  def write_sync_key(self):
    """One random key (id 1) shared by every LB host, mode 0600 (ecmplb refuses anything
    more open)."""
    path = self.sync_key_path()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
      f.write(f'# flow sync key of the lab\n1 {os.urandom(32).hex()}\n')
    os.chmod(path, 0o600)

  @staticmethod
  def tunnel_stats_path(j):
    return os.path.join(RUN, f'be{j}-tunnel.json')

  def services(self):
    """The services of every LB host (the same on each)."""
    def backends(vip):
      return [{'id': j, 'address': backend_address(vip, j), 'weight': be_weight(j)}
              for j in self.backends if j <= self.configured]
    return [
        # Each service checks its own port.
        {'vip': vip, 'port': port, 'protocol': 'tcp', 'forward': mode,
         'backends': backends(vip), 'health_check': {**HEALTH, 'port': port}}
        for vip, port, mode in SERVICES
    ] + ([
        # UDP DR on the DR VIP: the backends' UDP echo, checked on their HTTP port.
        {'vip': VIP_DR, 'port': PORT_UDP, 'protocol': 'udp', 'forward': 'dr',
         'backends': backends(VIP_DR), 'health_check': {**HEALTH, 'port': PORT}}
    ] if self.udp_service else [])

  def ecmplb_config(self, i):
    host = {'address': lb_addr(i), 'prefix_length': 24, 'address6': lb_addr6(i),
            'prefix_length6': LB_PREFIX6, 'exception_interface': 'ecmplb0',
            'control_socket': self.socket_path(i), 'drain_s': DRAIN_S}
    if self.exception is not None:
      host['exception'] = self.exception
    sync = {}
    if self.sync and self.n_lbs > 1:
      sync = {'sync': {'peers': [lb_addr(k) for k in self.lbs if k != i],
                       'key_file': self.sync_key_path()}}
    if self.fleet:
      # The services come from etcd; a short grace and lease so the lab's tests stay short.
      return {'host': host, 'conntrack': {'capacity': 65536}, **sync,
              'fleet': {'endpoints': [topology.ETCD_URL], 'cluster': topology.FLEET_CLUSTER,
                        'host_name': f'lb{i}', 'grace_s': FLEET_GRACE_S, 'lease_ttl_s': 3,
                        'cache_file': os.path.join(RUN, f'lb{i}-fleet-cache.json')}}
    return {
        # ecmplb announces each VIP (VIP/32 on lo, advertised by ospfd) while it is servable.
        'host': host,
        'conntrack': {'capacity': 65536},
        **sync,
        'services': self.services()}

  # -- ecmplb on the LB hosts

  def start_ecmplb(self, i):
    iface = f'lb{i}-data'
    if self.data_port == 'af_packet':
      cmd = daemon.command(self.ecmplb, self.config_path(i), lb_ns(i),
                           f'net_af_packet0,iface={iface},qpairs=2', mem_mb=512)
    else:
      # net_pcap: one RX queue (the one worker's; incoming packets only), TX queues for the
      # worker and the exception path. Its MAC is 02:70:63:61:70:NN, NN the port's index among
      # the process's pcap ports, and cannot be set: LB host i gets i-1 unused pcap ports (an
      # empty capture file) before its data port, so that every LB host's MAC is its own.
      empty = os.path.join(RUN, 'empty.pcap')
      with open(empty, 'wb') as f:  # a pcap file header, no packets
        f.write(bytes.fromhex('d4c3b2a1020004000000000000000000ffff000001000000'))
      cmd = daemon.command(self.ecmplb, self.config_path(i), lb_ns(i),
                           f'net_pcap{i - 1},rx_iface_in={iface},tx_iface={iface},tx_iface={iface}',
                           mem_mb=512)
      at = next(k for k, a in enumerate(cmd) if a.startswith('--vdev='))
      cmd[at:at] = [f'--vdev=net_pcap{k},rx_pcap={empty},tx_pcap=/dev/null' for k in range(i - 1)]
      cmd += ['--port', str(i - 1)]
    label = f'lb{i}-ecmplb'
    self.log_offsets[label] = daemon.log_size(self.run.log_path(label))  # a restart appends
    self.run.spawn(label, lb_ns(i), cmd, 'ecmplb')

  def ecmplb_died(self, i):
    label = f'lb{i}-ecmplb'
    p = self.popen.get(label)
    rc = p.poll() if p is not None else None
    how = f'exited with status {rc}' if rc is None or rc >= 0 else f'was killed by signal {-rc}'
    return LabError(f'ecmplb on lab-lb{i} {how}: {tail(self.run.log_path(label))}')

  def wait_ecmplb(self, i, timeout=30):
    """Waits for LB host i's ecmplb: its start-up line, then its exception TAP ecmplb0 with the
    host's address."""
    ns, label = lb_ns(i), f'lb{i}-ecmplb'
    try:
      daemon.wait_started(self.run.log_path(label), lambda: self.run.alive(label), timeout,
                          self.log_offsets.get(label, 0))
    except daemon.DaemonError:
      if not self.run.alive(label):
        raise self.ecmplb_died(i)
      raise LabError(f'ecmplb on lab-lb{i} printed no start-up line within {timeout} s')

    def tap_up():
      if not self.run.alive(label):
        raise self.ecmplb_died(i)
      return lb_addr(i) in topology.run(['ip', '-o', '-4', 'addr', 'show', 'dev', 'ecmplb0'],
                                        ns=ns, check=False)

    if wait_until(tap_up, timeout, interval=0.1) is None:
      raise LabError(f'ecmplb on lab-lb{i} did not bring up ecmplb0 within {timeout} s')
    # OSPFv3 speaks from the TAP's link-local address: the router's IPv6 nexthop for this host.
    if wait_until(lambda: topology.link_local(ns, 'ecmplb0'), 10, interval=0.1) is None:
      raise LabError(f'lab-lb{i}: ecmplb0 has no IPv6 link-local address after 10 s: '
                     + topology.run(['ip', '-6', '-d', 'addr', 'show', 'dev', 'ecmplb0'], ns=ns,
                                    check=False))
    frr.LINK_LOCAL[topology.link_local(ns, 'ecmplb0')] = lb_addr(i)
    frr.LINK_LOCAL[lb_addr6(i)] = lb_addr(i)  # BGP's IPv6 nexthop may be the global address
    # Frames the kernel sends on the TAP leave through DPDK unchanged: no partial checksums.
    topology.run(['ethtool', '-K', 'ecmplb0', 'tx', 'off'], ns=ns, check=False)

  def signal_ecmplb(self, i, sig):
    """Sends sig to LB host i's ecmplb (`ip netns exec` execs it: the PID is ecmplb's)."""
    p = self.state['procs'][f'lb{i}-ecmplb']
    if not procs.pid_matches(p['pid'], p['needle']):
      raise LabError(f'ecmplb on lab-lb{i} is not running')
    os.kill(p['pid'], sig)

  def restart_ecmplb(self, i, timeout=30):
    """Starts LB host i's ecmplb again (after it stopped) and waits until the router routes
    both VIPs through every LB host again; returns the seconds that took. ospfd and bfdd keep
    running in the namespace and take the new exception TAP over."""
    t0 = time.monotonic()
    self.start_ecmplb(i)
    self.wait_ecmplb(i)
    self.wait_announced(i, True, timeout=timeout)
    self.wait_routes(timeout=timeout)
    return time.monotonic() - t0

  def wait_routes(self, timeout, count=None):
    """Waits until the router routes every VIP (IPv4 and IPv6) through `count` LB hosts
    (default: all)."""
    for vip in ALL_VIPS:
      frr.wait_nexthops(vip, self.n_lbs if count is None else count, timeout=timeout)

  def wait_announced(self, i, present, vips=ALL_VIPS, timeout=10, t0=None):
    """Waits until ecmplb on LB host i has put (present) or removed every VIP of vips on lo;
    returns seconds since t0 (default: now)."""
    def done():
      on_lo = topology.lo_vips(i)
      if (set(vips) <= on_lo) if present else not (set(vips) & on_lo):
        return True
      if not self.run.alive(f'lb{i}-ecmplb') and present:
        raise self.ecmplb_died(i)
      return False

    took = wait_until(done, timeout, t0=t0)
    if took is None:
      raise LabError(f'lab-lb{i}: VIPs on lo {sorted(topology.lo_vips(i))} after {timeout} s, wanted '
                     f'{"all of" if present else "none of"} {vips}; health: {self.health(i, check=False)}')
    return took

  # -- backends

  def start_backend(self, j):
    self.run.spawn(f'be{j}-http', topology.be_ns(j),
                   [PY, os.path.join(LAB_DIR, 'http_backend.py'), '--name', f'be{j}'] +
                   [a for p in BACKEND_PORTS for a in ('--port', str(p))] +
                   ['--udp-port', str(PORT_UDP)],
                   'http_backend.py')

  def stop_backends(self, js):
    """Stops the HTTP servers of backends js at once (SIGTERM: each stops accepting within
    0.2 s and exits; health checks then fail, connection refused) and waits until they exit."""
    self.run.stop([f'be{j}-http' for j in js])

  # -- ecmplbctl

  def has_ctl(self):
    """True when ecmplbctl is built and every LB host's ecmplb serves its control socket."""
    return os.access(self.ecmplbctl, os.X_OK) and all(
        os.path.exists(self.socket_path(i)) for i in self.lbs)

  def ctl(self, i, args, check=True):
    if not os.access(self.ecmplbctl, os.X_OK):
      raise LabError(f'{self.ecmplbctl} is not built')
    p = daemon.ctl(self.ecmplbctl, self.socket_path(i), args, ns=lb_ns(i))
    if check and p.returncode != 0:
      raise LabError(f'{" ".join(p.args)}: exit {p.returncode}: {p.stderr.strip() or p.stdout.strip()}')
    return p.stdout

  def health(self, i, check=True):
    """`ecmplbctl show --json`'s health object of LB host i (backends, VIPs, workers)."""
    try:
      return json.loads(self.ctl(i, ['show', '--json'], check=check) or '{}').get('health', {})
    except (ValueError, LabError):
      if check:
        raise
      return {}

  def serve(self, i, on):
    """Makes LB host i announce its VIPs (on) or withdraw them (off) through ecmplbctl: all
    backends to weight 0 (no servable backend: ecmplb withdraws every VIP) or back to their
    weights. The lab's way to take one LB host out of the router's route without stopping it."""
    for vip, port, _ in SERVICES:
      for j in self.backends:
        self.ctl(i, ['backend', 'set', service_name(vip, port), backend_address(vip, j),
                     '--weight', str(be_weight(j) if on else 0)])
    self.wait_announced(i, on)
