#!/usr/bin/python3
"""client.py: the lab's traffic client (runs inside the client namespace).

  client.py short --vip V --port P --count N [--concurrency C] [--rate R] [--sport-base B]
      N short HTTP requests (connect, GET, read the backend's name, close). With --rate, starts
      R requests per second (a steady stream); with --sport-base, request i binds source port
      B+i and closes with RST so the same 5-tuple can be used again at once.
  client.py long --vip V --port P --count N [--interval S] [--duration S]
      N long-lived TCP connections; each sends a line every S seconds and reads the backend's
      echo. Prints "ready [source ports]" once all are established, then a JSON summary.
  client.py udp --vip V --port P --sources A,B,... --count N --size BYTES
      N UDP requests from each source address (a socket bound to it, an ephemeral port), each
      a datagram of BYTES bytes (the kernel fragments it beyond the MTU), answered by the
      backend's echo ("NAME " + the datagram); one result per request: source, sport,
      backend (None: no answer in time), intact (the echo carried the datagram unchanged).
VIPs may be IPv4 or IPv6 addresses. Every result is one JSON object on the last stdout line.
All loops are bounded in time.
"""
import argparse
import errno
import json
import socket
import struct
import sys
import threading
import time

CLIENT_TIMEOUT = 2.0


def family(vip):
  return socket.AF_INET6 if ':' in vip else socket.AF_INET


def one_request(vip, port, sport):
  s = socket.socket(family(vip), socket.SOCK_STREAM)
  s.settimeout(CLIENT_TIMEOUT)
  try:
    if sport:
      s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
      s.bind(('::' if ':' in vip else '0.0.0.0', sport))
    s.connect((vip, port))
    sport = s.getsockname()[1]
    host = f'[{vip}]' if ':' in vip else vip
    s.sendall(f'GET / HTTP/1.0\r\nHost: {host}\r\n\r\n'.encode())
    data = b''
    while len(data) < 4096:
      chunk = s.recv(4096)
      if not chunk:
        break
      data += chunk
    body = data.split(b'\r\n\r\n', 1)[1] if b'\r\n\r\n' in data else b''
    name = body.split()[0].decode() if body.split() else None
    if not data.startswith(b'HTTP/1.0 200') or not name:
      return sport, None, 'bad reply'
    return sport, name, None
  except OSError as e:
    return sport, None, type(e).__name__ + (f' ({errno.errorcode.get(e.errno, e.errno)})' if e.errno else '')
  finally:
    if sport:
      # RST instead of FIN: no TIME_WAIT, so the same source port can be reused at once.
      s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    s.close()


def run_short(args):
  results = [None] * args.count
  next_index = [0]
  lock = threading.Lock()
  t0 = time.monotonic()

  def worker():
    while True:
      with lock:
        i = next_index[0]
        if i >= args.count:
          return
        next_index[0] += 1
      if args.rate:
        delay = t0 + i / args.rate - time.monotonic()
        if delay > 0:
          time.sleep(delay)
      start = time.monotonic() - t0
      sport, name, err = one_request(args.vip, args.port, args.sport_base + i if args.sport_base else 0)
      results[i] = {'t': round(start, 3), 'sport': sport, 'backend': name, 'error': err,
                    'ms': round((time.monotonic() - t0 - start) * 1000, 1)}

  threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  print(json.dumps({'results': results, 'elapsed': round(time.monotonic() - t0, 3)}))
  return 0


def run_long(args):
  conns = [{'id': i, 'backend': None, 'changed': False, 'error': None, 'replies': 0,
            'max_gap_ms': 0.0, 'sport': None} for i in range(args.count)]
  start_time = [0.0]
  # The start time is set by the barrier's action, before any party is released: set by the main
  # thread after its wait() instead, workers that ran first read 0.0, took `end` for long past and
  # closed their connection without sending anything (about half of them did).
  established = threading.Barrier(args.count + 1, timeout=30,
                                  action=lambda: start_time.__setitem__(0, time.monotonic()))

  def worker(c):
    s = None
    try:
      s = socket.create_connection((args.vip, args.port), timeout=10)
      s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
      c['sport'] = s.getsockname()[1]
      f = s.makefile('rb')
      s.sendall(b'HELLO %d\n' % c['id'])
      line = f.readline(256)
      if not line:
        raise ConnectionError('closed')
      c['backend'] = line.split()[0].decode()
    except (OSError, ConnectionError) as e:
      c['error'] = 'connect: ' + type(e).__name__
    try:
      established.wait()
    except threading.BrokenBarrierError:
      pass
    if c['error']:
      if s:
        s.close()
      return
    end = start_time[0] + args.duration
    seq = 0
    last_reply = time.monotonic()
    try:
      while time.monotonic() < end:
        seq += 1
        s.sendall(b'%d\n' % seq)
        line = f.readline(256)
        now = time.monotonic()
        if not line:
          raise ConnectionError('closed by peer')
        name, _, echoed = line.decode().strip().partition(' ')
        if echoed != str(seq):
          raise ConnectionError(f'bad echo {line!r}')
        if name != c['backend']:
          c['changed'] = True
        c['replies'] += 1
        c['max_gap_ms'] = max(c['max_gap_ms'], round((now - last_reply) * 1000, 1))
        last_reply = now
        pause = args.interval - (time.monotonic() - now)
        if pause > 0:
          time.sleep(pause)
    except (OSError, ConnectionError) as e:
      c['error'] = f'{type(e).__name__}: {e}'[:80]
    finally:
      s.close()

  threads = [threading.Thread(target=worker, args=(c,)) for c in conns]
  for t in threads:
    t.start()
  try:
    established.wait()
  except threading.BrokenBarrierError:
    start_time[0] = time.monotonic()
  # The lab asks the router which LB host each connection takes, before it breaks something.
  print('ready ' + json.dumps([c['sport'] for c in conns]), flush=True)
  for t in threads:
    t.join(args.duration + 60)
  print(json.dumps({'connections': conns}))
  return 0


def run_udp(args):
  results = []
  for src in args.sources.split(','):
    for i in range(args.count):
      s = socket.socket(family(args.vip), socket.SOCK_DGRAM)
      s.settimeout(1.0)  # an answer takes milliseconds; a lost datagram is not retried
      try:
        s.bind((src, 0))
        sport = s.getsockname()[1]
        head = f'{src}:{sport}:{i} '.encode()
        payload = head + bytes((i + k) & 0xFF for k in range(args.size - len(head)))
        t0 = time.monotonic()
        s.sendto(payload, (args.vip, args.port))
        data, _ = s.recvfrom(65535)
        name, _, echo = data.partition(b' ')
        results.append({'source': src, 'sport': sport, 'backend': name.decode(errors='replace'),
                        'intact': echo == payload, 'ms': round((time.monotonic() - t0) * 1000, 2)})
      except OSError as e:
        results.append({'source': src, 'sport': s.getsockname()[1], 'backend': None,
                        'intact': False, 'error': str(e)})
      finally:
        s.close()
  print(json.dumps({'results': results}))
  return 0


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = ap.add_subparsers(dest='mode', required=True)
  s = sub.add_parser('short')
  s.add_argument('--vip', required=True)
  s.add_argument('--port', type=int, default=80)
  s.add_argument('--count', type=int, required=True)
  s.add_argument('--concurrency', type=int, default=8)
  s.add_argument('--rate', type=float, default=0)
  s.add_argument('--sport-base', type=int, default=0)
  l = sub.add_parser('long')
  l.add_argument('--vip', required=True)
  l.add_argument('--port', type=int, default=80)
  l.add_argument('--count', type=int, required=True)
  l.add_argument('--interval', type=float, default=0.1)
  l.add_argument('--duration', type=float, default=10)
  u = sub.add_parser('udp')
  u.add_argument('--vip', required=True)
  u.add_argument('--port', type=int, required=True)
  u.add_argument('--sources', required=True)
  u.add_argument('--count', type=int, required=True)
  u.add_argument('--size', type=int, default=4000)
  args = ap.parse_args()
  if args.mode == 'udp':
    return run_udp(args)
  return run_short(args) if args.mode == 'short' else run_long(args)


if __name__ == '__main__':
  sys.exit(main())
