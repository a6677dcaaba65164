"""10. Large UDP datagrams, fragmented by the client's kernel, through every LB host: 4,000-byte
requests (three fragments each at MTU 1500) from client addresses to a UDP DR service whose
backends echo them (the reply is fragmented too, by the backend's kernel, and goes straight to
the client). A router hashes a fragment by its addresses alone, so one client's fragments reach
one LB host; which one is the router's hash (here the veth keeps the client socket's own hash,
so the lab router's choice is not the addresses'): the test pins each client address to one LB
host with a source route on the router (`ip rule from ADDR lookup TABLE`), the same number of
addresses per host, so every LB host gets its share. Every request is answered, intact, by the
backend `ecmplbctl lookup` gives for its flow on every LB host, and each LB host forwarded the
later fragments of its datagrams by its fragment table. The LB hosts' data ports are net_pcap on the veth: af_packet's fanout DEFRAG
would reassemble the fragments before ecmplb saw them."""
import json

from labkit import traffic
from labkit.checks import expect, need_ctl
from labkit.common import count, fmt_counts, run as sh
from labkit.topology import PORT_UDP, VIP_DR, be_addr, lb_addr
from labkit.traffic import CLIENT_NS

NEEDS_CTL = True
OPTIONS = {'sources_per_lb': 8, 'count': 4, 'size': 4000, 'data_port': 'pcap'}


def lab_kwargs(opts):
  return {'data_port': opts['data_port'], 'udp_service': True}


def stats(lab, i):
  return json.loads(lab.ctl(i, ['--json', 'stats']))['total']


def run(lab, opts):
  need_ctl(lab)
  per = opts['sources_per_lb']
  pinned = {i: [f'10.1.0.{100 + (i - 1) * per + k}' for k in range(per)] for i in lab.lbs}
  sources = [a for i in lab.lbs for a in pinned[i]]
  for i in lab.lbs:
    sh(['ip', 'route', 'add', f'{VIP_DR}/32', 'via', lb_addr(i), 'table', str(100 + i)],
       ns='lab-rtr')
    for a in pinned[i]:
      sh(['ip', 'addr', 'add', f'{a}/24', 'dev', 'cl0'], ns=CLIENT_NS)
      sh(['ip', 'rule', 'add', 'from', f'{a}/32', 'lookup', str(100 + i)], ns='lab-rtr')
  before = [stats(lab, i) for i in lab.lbs]
  res = traffic.udp(VIP_DR, PORT_UDP, sources, opts['count'], size=opts['size'])
  after = [stats(lab, i) for i in lab.lbs]
  n = len(sources) * opts['count']
  answered = [r for r in res if r['backend']]
  expect(len(answered) == n, f'{n - len(answered)} of {n} datagrams unanswered: '
         f'{[r for r in res if not r["backend"]][:3]}')
  broken = [r for r in answered if not r['intact']]
  expect(not broken, f'{len(broken)} echoes did not carry the datagram intact: {broken[:3]}')
  wrong = []
  for r in answered:
    want = set()
    for i in lab.lbs:
      d = json.loads(lab.ctl(i, ['--json', 'lookup', f'{VIP_DR}:{PORT_UDP}/udp', '--client',
                                 f'{r["source"]}:{r["sport"]}']))
      want.add(d['backend']['address'] if d.get('backend') else None)
    if want != {be_addr(int(r['backend'][2:]))}:
      wrong.append((r['source'], r['sport'], r['backend'], sorted(map(str, want))))
  expect(not wrong, f'{len(wrong)} datagrams answered by another backend than lookup gives: '
         f'{wrong[:3]}')
  later = [after[k]['fragment_forwarded'] - before[k]['fragment_forwarded']
           for k in range(len(lab.lbs))]
  # Each host's datagrams: its pinned sources' (at least two later fragments each).
  share = per * opts['count']
  expect(all(x >= 2 * share for x in later),
         f'later fragments forwarded per LB host {later}, expected at least {2 * share} each')
  lost = {k: sum(after[i][k] - before[i][k] for i in range(len(lab.lbs)))
          for k in ('fragment_timeout', 'fragment_hold_full', 'drop_fragment')}
  expect(not any(lost.values()), f'fragments dropped: {lost}')
  per_be = count(r['backend'] for r in answered)
  return (f'fragments: {len(answered)}/{n} datagrams of {opts["size"]} bytes answered intact by '
          f'the lookup backend ({fmt_counts(per_be, [f"be{j}" for j in lab.backends])}); later '
          f'fragments forwarded per LB host {later}')
