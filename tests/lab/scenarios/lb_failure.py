"""4. 50 long-lived connections to the IPv4 DR VIP and 50 to the IPv6 one (a message every
100 ms) survive LB host lb<N> losing its link: BFD drops its nexthop from both routes (OSPFv2
and OSPFv3 sessions, each with its BFD session), the router rehashes its flows onto the
surviving hosts, which send them to the same backends (Maglev), so none is reset."""
import time

from labkit import topology, traffic
from labkit.checks import expect, expect_all_kept, measure_nexthops_each
from labkit.topology import VIP_DR, VIP_DR6

NEEDS_CTL = False
VIPS = (VIP_DR, VIP_DR6)


def run(lab):
  n = 50
  victim = lab.lbs[-1]
  started = []
  try:
    for vip in VIPS:
      started.append(traffic.long_start(vip, n, duration=8))
    rx0 = topology.data_packets(victim)[0]
    time.sleep(2)
    rx = topology.data_packets(victim)[0] - rx0
    on_victim = {}
    for vip, (_, sports) in zip(VIPS, started):
      tracked = traffic.tracked_ports(lab, victim, vip)
      on_victim[vip] = len(tracked & set(sports)) if tracked is not None else None
    t0 = time.monotonic()
    topology.set_link(victim, False)
    dropped = measure_nexthops_each(VIPS, lab.n_lbs - 1, t0, timeout=15)
    conns = {vip: traffic.long_finish(p, timeout=60) for vip, (p, _) in zip(VIPS, started)}
  finally:
    for p, _ in started:
      if p.poll() is None:
        p.kill()
  stall = {vip: expect_all_kept(conns[vip], n) for vip in VIPS}
  # 100 connections x 10 messages/s for 2 s: about 2000/N packets reach each LB host.
  expect(rx >= 100, f'lb{victim} carried almost nothing ({rx} packets): nothing was tested')
  for vip in VIPS:
    expect(on_victim[vip] != 0, f'lb{victim} carried no connection to {vip}: nothing was tested')
    expect(dropped[vip] < 3.0, f'{vip}: nexthop dropped after {dropped[vip]:.2f} s: BFD (300 ms) '
           'did not act, only the routing protocol\'s own timers (OSPF dead 4 s, BGP hold 3 s)')
  fmt = lambda v: '?' if v is None else v
  return (f'lb-failure: lb{victim} link down -> router dropped its nexthop in '
          f'{dropped[VIP_DR] * 1000:.0f} ms (IPv4) / {dropped[VIP_DR6] * 1000:.0f} ms (IPv6) '
          f'(target <= 1000, BFD 3x100 ms); {n}/{n} IPv4 and {n}/{n} IPv6 connections survived, '
          f'0 reset ({fmt(on_victim[VIP_DR])} + {fmt(on_victim[VIP_DR6])} had been on lb{victim}: '
          f'ecmplbctl conns), longest stall {stall[VIP_DR]:.0f} / {stall[VIP_DR6]:.0f} ms')
