"""A single-member etcd for tests (Debian's etcd-server): started in a temporary folder on
loopback ports (or in a lab namespace), stopped by PID, and etcdctl against it."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ETCD = '/usr/bin/etcd'
ETCDCTL = '/usr/bin/etcdctl'


def available():
  return os.access(ETCD, os.X_OK) and os.access(ETCDCTL, os.X_OK)


def free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def command(data_dir, address, client_port, peer_port, tls=None):
  """etcd's command line: one member named e2e, its data in data_dir. tls: (cert, key, ca)
  for https clients that must present a certificate signed by ca."""
  scheme = 'https' if tls else 'http'
  url, peer = f'{scheme}://{address}:{client_port}', f'http://{address}:{peer_port}'
  cmd = [ETCD, '--name', 'e2e', '--data-dir', os.path.join(data_dir, 'data'),
         '--listen-client-urls', url, '--advertise-client-urls', url,
         '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
         '--initial-cluster', f'e2e={peer}', '--log-level', 'warn']
  if tls:
    cmd += ['--cert-file', tls[0], '--key-file', tls[1], '--trusted-ca-file', tls[2],
            '--client-cert-auth']
  return cmd


def make_tls(folder, address='127.0.0.1'):
  """A CA, a server certificate for `address` and a client certificate (openssl); returns
  {'ca', 'server_cert', 'server_key', 'client_cert', 'client_key'} paths."""
  p = {k: os.path.join(folder, f'{k}.pem') for k in
       ('ca', 'ca_key', 'server_cert', 'server_key', 'client_cert', 'client_key')}

  def ssl(*args):
    subprocess.run(['openssl'] + list(args), check=True, capture_output=True)

  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', p['ca_key'], '-out', p['ca'], '-days', '2', '-subj', '/CN=ecmplb test CA')
  ext = os.path.join(folder, 'ext.cnf')
  with open(ext, 'w') as f:
    f.write(f'subjectAltName=IP:{address}\nextendedKeyUsage=serverAuth,clientAuth\n')
  for who in ('server', 'client'):
    csr = os.path.join(folder, f'{who}.csr')
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', p[f'{who}_key'], '-out', csr, '-subj', f'/CN=ecmplb test {who}')
    ssl('x509', '-req', '-in', csr, '-CA', p['ca'], '-CAkey', p['ca_key'], '-CAcreateserial',
        '-out', p[f'{who}_cert'], '-days', '2', '-extfile', ext)
  return p


def ctl_command(url, *args):
  return [ETCDCTL, '--endpoints', url, '--dial-timeout', '2s', '--command-timeout', '3s'] + list(args)


class Etcd:
  """One etcd member: `start()`, `stop()`; its client URL is `url`. In namespace `ns` it
  listens on `address` (else 127.0.0.1 on free ports)."""

  def __init__(self, address='127.0.0.1', client_port=None, ns=None, data_dir=None, tls=None):
    self.address, self.ns, self.tls = address, ns, tls
    self.client_port = client_port or free_port()
    self.peer_port = free_port() if client_port is None else client_port + 1
    self.dir = data_dir or tempfile.mkdtemp(prefix='ecmplb_etcd_')
    self.url = f'{"https" if tls else "http"}://{address}:{self.client_port}'
    self.proc = None

  def start(self, timeout=20):
    cmd = ([] if self.ns is None else ['ip', 'netns', 'exec', self.ns]) + command(
        self.dir, self.address, self.client_port, self.peer_port,
        (self.tls['server_cert'], self.tls['server_key'], self.tls['ca']) if self.tls else None)
    self.log = open(os.path.join(self.dir, 'etcd.log'), 'ab')
    self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
      if self.proc.poll() is not None:
        raise RuntimeError(f'etcd exited: {self.tail()}')
      if self.ctl('endpoint', 'health', check=False).returncode == 0:
        return self
      time.sleep(0.1)
    raise RuntimeError(f'etcd not healthy after {timeout} s: {self.tail()}')

  def tail(self, n=800):
    try:
      with open(os.path.join(self.dir, 'etcd.log'), 'rb') as f:
        return f.read()[-n:].decode(errors='replace')
    except OSError:
      return ''

  def ctl(self, *args, check=True, stdin=None):
    tls = ['--cacert', self.tls['ca'], '--cert', self.tls['client_cert'], '--key',
           self.tls['client_key']] if self.tls else []
    cmd = ([] if self.ns is None else ['ip', 'netns', 'exec', self.ns]) + ctl_command(self.url, *tls, *args)
    p = subprocess.run(cmd, capture_output=True, text=True, input=stdin,
                       env=dict(os.environ, ETCDCTL_API='3'), timeout=15)
    if check and p.returncode != 0:
      raise RuntimeError(f'etcdctl {" ".join(args)}: {p.stderr.strip()}')
    return p

  def stop(self, sig=signal.SIGTERM):
    if self.proc is not None and self.proc.poll() is None:
      self.proc.send_signal(sig)
      try:
        self.proc.wait(timeout=10)
      except subprocess.TimeoutExpired:
        self.proc.kill()
        self.proc.wait()
    self.proc = None

  def remove(self):
    self.stop()
    shutil.rmtree(self.dir, ignore_errors=True)
