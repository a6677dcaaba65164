"""2. 1000 short connections, to the IPv4 DR VIP and then to the IPv6 DR VIP, reach every LB
host and every backend, and backends get shares in proportion to their weights within 5 percentage points (binomial 3-sigma at n=1000 is
~4.7 points at p=0.5; Maglev's own imbalance is well under 1 point at M=65537). LB hosts are
counted on the LB side: new flows each ecmplb tracked (ecmplbctl stats), else the packets
its data port received."""
from labkit import traffic
from labkit.checks import expect
from labkit.common import fmt_counts
from labkit.topology import VIP_DR, VIP_DR6, be_weight

NEEDS_CTL = False


def spread(lab, vip):
  n = 1000
  res, ok, per_be, pkts, flows = traffic.spread(lab, vip, n)
  failed = n - len(ok)
  expect(failed == 0, f'{vip}: {failed} of {n} requests failed: {[r for r in res if not r["backend"]][:5]}')
  lbs = [f'lb{i}' for i in lab.lbs]
  if flows is not None:
    expect(all(flows[k] > 0 for k in lbs), f'{vip}: an LB host tracked no new flow: {flows}')
    # A handful of flows show up on two hosts: in the lab the router hashes a client socket's
    # random txhash (policy 1 keeps skb->l4_hash), and a socket gets a new one on every
    # retransmission timeout (a few per thousand here, up to ~2% when the machine is loaded).
    expect(n <= sum(flows.values()) <= n + n // 20,
           f'{vip}: LB hosts tracked {sum(flows.values())} new flows for {n} connections')
    lb_text = 'new flows tracked by each ecmplb: ' + fmt_counts(flows, lbs)
  else:
    # Every connection is >= 5 packets towards the LB side; OSPF/BFD add ~20 per second.
    expect(all(pkts[i] >= 200 for i in lab.lbs), f'{vip}: an LB host received (almost) nothing: {pkts}')
    lb_text = 'data-port packets (ecmplbctl not built): ' + ', '.join(f'lb{i} {pkts[i]}' for i in lab.lbs)
  wsum = sum(be_weight(j) for j in lab.backends)
  worst = 0.0
  for j in lab.backends:
    share = per_be.get(f'be{j}', 0) / n
    want = be_weight(j) / wsum
    worst = max(worst, abs(share - want))
    expect(abs(share - want) <= 0.05, f'{vip}: be{j} got {share:.3f} of requests, weight share {want:.3f}')
  return (f'{vip}: {n}/{n} ok; LB hosts: {lb_text}; '
          f'backends: {fmt_counts(per_be, [f"be{j}" for j in lab.backends])} for weights '
          f'{":".join(str(be_weight(j)) for j in lab.backends)}, worst deviation {worst * 100:.1f} points (tolerance 5)')


def run(lab):
  return 'spread: ' + '; '.join(spread(lab, vip) for vip in (VIP_DR, VIP_DR6))
