"""7. Backend pool changes under traffic through ecmplbctl on every LB host: draining a
backend (weight 0) stops new flows to it while its established connections stay on it;
restoring, deleting and adding it back take effect; a steady request stream (50/s) sees no
failed request during any change."""
import threading
import time

from labkit import traffic
from labkit.checks import expect, need_ctl
from labkit.common import count, fmt_counts
from labkit.topology import PORT, VIP_DR, be_addr, be_weight

NEEDS_CTL = True


def run(lab):
  need_ctl(lab)
  svc = f'{VIP_DR}:{PORT}/tcp'
  j = lab.backends[0]
  name = f'be{j}'
  steps = [('drain', ['backend', 'set', svc, be_addr(j), '--weight', '0'], lambda c: c.get(name, 0) == 0),
           ('restore', ['backend', 'set', svc, be_addr(j), '--weight', str(be_weight(j))],
            lambda c: c.get(name, 0) > 0),
           ('delete', ['backend', 'del', svc, be_addr(j)], lambda c: c.get(name, 0) == 0),
           ('add', ['backend', 'add', svc, be_addr(j), '--weight', str(be_weight(j))],
            lambda c: c.get(name, 0) > 0)]
  figures = []
  longp = None
  for step, cmd, check in steps:
    if step == 'drain':  # long-lived connections across drain and restore
      longp, _ = traffic.long_start(VIP_DR, 40, duration=9)
    box = []
    stream = threading.Thread(target=lambda: box.append(traffic.short(VIP_DR, 150, concurrency=4, rate=50)))
    stream.start()
    time.sleep(1)
    for i in lab.lbs:
      lab.ctl(i, cmd)
    stream.join()
    failed = [r for r in box[0] if not r['backend']]
    expect(not failed, f'{step}: {len(failed)} requests failed during the change (first: {failed[:3]})')
    after = traffic.short(VIP_DR, 120, concurrency=4)
    c = count(r['backend'] for r in after)
    expect(check(c), f'{step}: after the change, backends {c}')
    figures.append(f'{step} ok (next 120: {fmt_counts(c, [f"be{k}" for k in lab.backends])})')
    if step == 'restore':
      conns = traffic.long_finish(longp, timeout=60)
      errors, changed, _ = traffic.summarize_long(conns)
      on_drained = sum(1 for c in conns if c['backend'] == name)
      expect(not errors and not changed,
             f'long-lived connections across drain/restore: {len(errors)} broke, {len(changed)} moved')
      figures.append(f'40/40 long-lived connections kept their backend through drain and restore '
                     f'({on_drained} on the drained {name})')
  return 'pool-change: ' + '; '.join(figures) + '; 0 failed requests'
