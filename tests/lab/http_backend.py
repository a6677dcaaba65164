#!/usr/bin/python3
"""http_backend.py: the lab's backend server (one per backend namespace).

Listens on [::]:PORT, IPv4 and IPv6, for every --port given (so it answers on every VIP held
on lo) and speaks two tiny protocols on each:
  GET ...      one HTTP/1.0 response whose body is "NAME CLIENT_ADDR:CLIENT_PORT\n", then close
  HELLO ...    long-lived echo: every line received is answered with "NAME LINE\n"
and, with --udp-port, answers every UDP datagram on 0.0.0.0:PORT with "NAME " and the
datagram (datagrams of up to 64 KiB: a large one arrives, and leaves, in fragments), over
IPv4 and IPv6 too.
Prints one line per 1000 connections to stdout (its log). Stops on SIGTERM.
"""
import argparse
import signal
import socket
import socketserver
import sys
import threading


class Handler(socketserver.StreamRequestHandler):
  def handle(self):
    name = self.server.backend_name
    self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
      first = self.rfile.readline(4096)
      if not first:
        return
      with self.server.lock:
        self.server.connections += 1
        if self.server.connections % 1000 == 0:
          print(f'{name}: {self.server.connections} connections', flush=True)
      if first.startswith(b'GET '):
        for _ in range(100):  # headers, bounded
          line = self.rfile.readline(4096)
          if not line or line in (b'\r\n', b'\n'):
            break
        body = f'{name} {self.client_address[0]}:{self.client_address[1]}\n'.encode()
        self.wfile.write(b'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: '
                         + str(len(body)).encode() + b'\r\nConnection: close\r\n\r\n' + body)
        return
      line = first
      while line:  # echo mode until the client closes
        self.wfile.write(name.encode() + b' ' + line.rstrip(b'\r\n') + b'\n')
        self.wfile.flush()
        line = self.rfile.readline(4096)
    except OSError:
      pass


class UdpEcho(socketserver.BaseRequestHandler):
  def handle(self):
    data, sock = self.request
    try:
      sock.sendto(self.server.backend_name.encode() + b' ' + data, self.client_address)
    except OSError:
      pass


class DualStack:
  """An IPv6 socket that takes IPv4 too (IPv4 clients appear as ::ffff:a.b.c.d)."""
  address_family = socket.AF_INET6

  def server_bind(self):
    self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    super().server_bind()


class UdpServer(DualStack, socketserver.UDPServer):
  allow_reuse_address = True
  max_packet_size = 65535


class Server(socketserver.ThreadingMixIn, DualStack, socketserver.TCPServer):
  allow_reuse_address = True
  daemon_threads = True
  request_queue_size = 512


def main():
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument('--name', required=True)
  ap.add_argument('--port', type=int, action='append', help='repeatable; default 80')
  ap.add_argument('--udp-port', type=int, action='append', default=[], help='repeatable')
  args = ap.parse_args()
  ports = args.port or [80]
  lock = threading.Lock()
  servers = []
  for port in ports:
    srv = Server(('::', port), Handler)
    srv.backend_name = args.name
    srv.lock = lock
    srv.connections = 0
    servers.append(srv)
  for port in args.udp_port:
    srv = UdpServer(('::', port), UdpEcho)
    srv.backend_name = args.name
    srv.connections = 0
    servers.append(srv)

  def stop(*_):
    for s in servers:
      threading.Thread(target=s.shutdown).start()
  signal.signal(signal.SIGTERM, stop)
  print(f'{args.name}: listening on port {", ".join(map(str, ports))}'
        + (f', UDP {", ".join(map(str, args.udp_port))}' if args.udp_port else ''), flush=True)
  threads = [threading.Thread(target=s.serve_forever, kwargs={'poll_interval': 0.2})
             for s in servers[1:]]
  for t in threads:
    t.start()
  servers[0].serve_forever(poll_interval=0.2)
  for t in threads:
    t.join()
  print(f'{args.name}: stopped after {sum(s.connections for s in servers)} connections',
        flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
