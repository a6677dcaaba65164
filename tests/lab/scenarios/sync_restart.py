"""14. An LB host restarted after a pool change (issue 15): 200 long-lived connections; a
weight change on every LB host; lb<N>'s ecmplb stops (SIGTERM: drain, exit) and starts again.
While it is away the router sends its flows to the others, which know them from sync; when it
starts it asks its peers for a bulk copy of their tables and announces its VIPs only once the
copy is in, so the flows the router rehashes back onto it keep their backends: 0 reset. Then
forged sync messages from the client namespace change nothing: one from the client's own
address is dropped by the worker (not a peer), one with a peer's source address reaches the
sync engine and is refused as forged (its tag does not verify)."""
import json
import signal
import time

from labkit import traffic
from labkit.checks import expect, expect_all_kept, need_ctl
from labkit.common import PY, run as run_cmd
from labkit.topology import PORT, VIP_DR, be_addr, lb_addr

NEEDS_CTL = True
OPTIONS = {'conns': 200}
SYNC_PORT = 7400

# Sent from the client namespace: a datagram to an LB host's sync port, from the client's own
# address (udp) or with a forged source address (raw: IP header built here).
FORGE = r'''
import os, socket, struct, sys
kind, src, dst, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
# A sealed message's shape: header "ELBS" v1, type 1 (entries), key 1, flags 0, sender, epoch,
# seq; then a random nonce, ciphertext and tag (it cannot verify without the key).
hdr = b'ELBS' + bytes([1, 1, 1, 0]) + socket.inet_aton(src) + struct.pack('>QQ', 2**62, 1)
payload = hdr + os.urandom(24 + 28 + 2 + 16)
if kind == 'udp':
  s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
  s.sendto(payload, (dst, port))
else:
  udp = struct.pack('>HHHH', port, port, 8 + len(payload), 0) + payload
  ip = struct.pack('>BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                   socket.inet_aton(src), socket.inet_aton(dst))
  s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
  s.sendto(ip + udp, (dst, 0))
'''


def stats(lab, i):
  return json.loads(lab.ctl(i, ['stats', '--json']))


def forged(lab, target, peer):
  """Sends the two forged datagrams to LB host target; returns (worker drops, engine
  rejections as forged, peer-table entries before, after)."""
  a = stats(lab, target)
  for kind, src in (('udp', '10.1.0.2'), ('raw', lb_addr(peer))):
    run_cmd([PY, '-c', FORGE, kind, src, lb_addr(target), str(SYNC_PORT)], ns='lab-cl')
  time.sleep(0.5)
  b = stats(lab, target)
  return (b['total']['drop_unsolicited'] - a['total']['drop_unsolicited'],
          b['sync']['rejected']['forged'] - a['sync']['rejected']['forged'],
          b['sync']['messages_accepted'] - a['sync']['messages_accepted'])


def run(lab, opts):
  need_ctl(lab)
  n = opts['conns']
  victim, survivor = lab.lbs[-1], lab.lbs[0]
  label = f'lb{victim}-ecmplb'
  p, sports = traffic.long_start(VIP_DR, n, duration=26)
  try:
    time.sleep(1.5)
    for i in lab.lbs:
      lab.ctl(i, ['backend', 'set', f'{VIP_DR}:{PORT}/tcp', be_addr(1), '--weight', '6'])
    time.sleep(1.0)
    on_victim = traffic.tracked_ports(lab, victim, VIP_DR) & set(sports)
    proc = lab.popen[label]
    lab.signal_ecmplb(victim, signal.SIGTERM)
    rc = proc.wait(timeout=20)
    expect(rc == 0, f'ecmplb on lb{victim} exited {rc} after SIGTERM')
    back = lab.restart_ecmplb(victim)
    time.sleep(1.0)
    moved = traffic.tracked_ports(lab, victim, VIP_DR) & set(sports)
    st = stats(lab, victim)
    conns = traffic.long_finish(p, timeout=90)
  finally:
    if p.poll() is None:
      p.kill()
  stall = expect_all_kept(conns, n)
  expect(moved, f'no connection came back to lb{victim} after its restart: nothing was tested')
  hits = st['total']['sync_peer_hit']
  expect(hits >= len(moved), f'lb{victim}: {len(moved)} flows rehashed onto it, {hits} found by a '
         f'synced entry; sync: {st.get("sync")}')
  # The restarted host's log: the bulk copy was in before the VIPs were announced.
  with open(lab.run.log_path(label), errors='replace') as f:
    f.seek(lab.log_offsets.get(label, 0))
    log = f.read().splitlines()
  done = next((k for k, l in enumerate(log) if 'bulk copy done' in l), None)
  announced = next((k for k, l in enumerate(log) if 'announce' in l.lower() and VIP_DR in l
                    and 'withdraw' not in l.lower()), None)
  expect(done is not None, f'lb{victim} logged no bulk copy after its restart: {log[-8:]}')
  expect(announced is None or announced > done,
         f'lb{victim} announced {VIP_DR} before its bulk copy was in: {log[announced]!r}')
  bulk = st['sync']['bulk']
  expect(bulk['fetched'] >= 1 and bulk['entries_received'] >= len(on_victim),
         f'lb{victim} bulk copy: {bulk} (it carried {len(on_victim)} flows before)')
  dropped, refused, accepted = forged(lab, survivor, victim)
  expect(dropped >= 1, 'the forged datagram from the client address was not dropped by the worker')
  expect(refused >= 1 and accepted <= 20, f'the forged datagram with a peer source: {refused} '
         f'refused as forged, {accepted} messages accepted meanwhile')
  return (f'sync-restart: lb{victim} restarted after a weight change, back in the route in '
          f'{back:.1f} s after a bulk copy of {bulk["entries_received"]} flows '
          f'({log[done].split("bulk copy done: ")[-1].strip()}); {len(moved)} flows rehashed onto it, '
          f'{hits} found by a synced entry; {n}/{n} survived, 0 reset, longest stall '
          f'{stall:.0f} ms; forged sync datagrams: {dropped} dropped in the worker (not a peer), '
          f'{refused} refused as forged by the engine')
