"""3b. `ecmplbctl lookup` gives the same backend for the same flow on every LB host, and it is
the backend real traffic reached."""
import json

from labkit import traffic
from labkit.checks import expect, need_ctl
from labkit.topology import CLIENT_ADDR, PORT, VIP_DR, be_addr

NEEDS_CTL = True


def run(lab):
  need_ctl(lab)
  res = traffic.short(VIP_DR, 100, concurrency=4)
  mismatched = 0
  for r in res:
    expect(r['backend'], f'request failed: {r}')
    answers = set()
    for i in lab.lbs:
      out = lab.ctl(i, ['lookup', f'{VIP_DR}:{PORT}/tcp', '--client', f'{CLIENT_ADDR}:{r["sport"]}', '--json'])
      d = json.loads(out)
      answers.add(d.get('backend', {}).get('address') if isinstance(d.get('backend'), dict) else d.get('backend'))
    if answers != {be_addr(int(r['backend'][2:]))}:
      mismatched += 1
  expect(mismatched == 0, f'{mismatched} of {len(res)} flows: lookup differs between hosts or from traffic')
  return f'same-backend-lookup: 100 flows, lookup on {lab.n_lbs} LB hosts agrees with each other and with traffic'
