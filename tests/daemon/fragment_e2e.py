#!/usr/bin/python3
"""IP fragments through the real daemon, as two LB hosts see them (issue 17).

Usage: fragment_e2e.py ECMPLB ECMPLBCTL

Each "host" is the daemon with two workers on a net_pcap data port over two veth pairs (queue
k reads what the test sends into veth k, rx_iface_in; worker k sends on it), so, unlike the
lab's af_packet ports (fanout DEFRAG), fragments reach ecmplb as they are on the wire. The test
plays the router and the NIC: it sends 4,000-byte UDP datagrams cut into 1,480-byte fragments
(as a client's kernel cuts them at MTU 1500), IPv4 and IPv6, to a DR service, an IPv6 DR
service, a GUE service and an IPv6 GUE service with IPv6 backends (an IPv6 outer header from
host.address6, its UDP checksum checked), each fragment on the queue its addresses give (a NIC's RSS hashes
fragments by addresses), each flow's whole (unfragmented) datagram on the queue its 5-tuple
gives; and reads what the daemon sends back on the veths. Host A gets every datagram's
fragments in order; host B in reverse order and datagrams interleaved, so later fragments
come before their first one and are held. Checks, each able to fail:
  - every frame sent comes back exactly once (none lost, none duplicated), its bytes intact
    (DR: the frame with new MACs; GUE: the IP packet inside the outer IPv4 + UDP);
  - every fragment of a datagram reaches one backend, the backend of its flow's whole
    datagram and of `ecmplbctl lookup` for the flow, and host A and host B agree;
  - both workers received traffic; nothing timed out or overflowed (fragment_timeout,
    fragment_hold_full 0), every held fragment was released, and fragment_forwarded counts
    every later fragment;
  - SIGTERM: each daemon exits 0.
Runs in a network namespace of its own (it re-runs itself inside it); no hugepages. ~15 s.
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
from labkit.daemon import Daemon, DaemonError  # noqa: E402
from labkit.frames import ETH_IPV4, ETH_IPV6, UDP, eth, ipv4, ipv6, mac, udp, v4, v6  # noqa: E402

PARSER = argparse.ArgumentParser()
PARSER.add_argument("ecmplb")
PARSER.add_argument("ecmplbctl")
PARSER.add_argument("--inside", help="the namespace this run is in (internal)")
PARSER.add_argument("--tmp", help="the scratch folder (internal)")
ARGS = PARSER.parse_args()

ROUTER_MAC = mac("02:00:00:00:00:fe")
HOST = "10.96.0.11"
VIP_DR, VIP_GUE, VIP6 = "10.96.1.1", "10.96.1.2", "2001:db8:96::1"
HOST6 = "2001:db8:96::11"
GUE6_PORT = 54  # VIP6's GUE service (IPv6 backends: an IPv6 outer header)
DR_BACKENDS = ["10.96.0.%d" % i for i in range(21, 25)]
GUE_BACKENDS = ["10.96.0.%d" % i for i in range(31, 35)]
DR6_BACKENDS = ["2001:db8:96::%x" % i for i in range(0x21, 0x24)]
GUE6_BACKENDS = ["2001:db8:96::%x" % i for i in range(0x31, 0x34)]
GUE_PORT = 6080
VETHS = ["fq0", "fq1"]
FRAGMENT = 1480          # bytes of payload per fragment: an MTU of 1500 less the IPv4 header
DATAGRAM = 4000          # UDP payload bytes of a fragmented datagram
failures = 0


def check(name, ok, detail=""):
    global failures
    print("%s: %s%s" % ("ok" if ok else "FAIL", name, "" if ok else " (%s)" % (detail,)),
          flush=True)
    if not ok:
        failures += 1
    return ok


def backend_mac(addr):
    """A made-up MAC per backend, installed as its neighbour entry."""
    h = zlib.crc32(addr.encode())
    return bytes([0x02, 0xbe]) + struct.pack("!I", h)


def config(tap, sock):
    def backends(addrs):
        return [{"id": i + 1, "address": a} for i, a in enumerate(addrs)]
    return {
        "host": {"address": HOST, "prefix_length": 24, "exception_interface": tap,
                 "control_socket": sock, "announce": False, "drain_s": 0, "mtu": 1600,
                 "gue_port": GUE_PORT, "address6": HOST6},
        "conntrack": {"capacity": 65536},
        "services": [
            {"vip": VIP_DR, "port": 53, "protocol": "udp", "forward": "dr",
             "backends": backends(DR_BACKENDS)},
            {"vip": VIP_GUE, "port": 53, "protocol": "udp", "forward": "gue",
             "backends": backends(GUE_BACKENDS)},
            {"vip": VIP6, "port": 53, "protocol": "udp", "forward": "dr",
             "backends": backends(DR6_BACKENDS)},
            {"vip": VIP6, "port": GUE6_PORT, "protocol": "udp", "forward": "gue",
             "backends": backends(GUE6_BACKENDS)},
        ],
    }


def fragments(ip, ident):
    """The IP packet `ip` (no options, no extension headers) cut as a sender's stack cuts it."""
    if ip[0] >> 4 == 4:
        hdr, data = ip[:20], ip[20:]
        out = []
        for at in range(0, len(data), FRAGMENT):
            piece = data[at:at + FRAGMENT]
            more = at + len(piece) < len(data)
            h = bytearray(hdr)
            struct.pack_into("!HHH", h, 2, 20 + len(piece), ident & 0xFFFF,
                             (0x2000 if more else 0) | (at // 8))
            struct.pack_into("!H", h, 10, 0)
            s = sum(struct.unpack("!10H", bytes(h)))
            while s >> 16:
                s = (s & 0xFFFF) + (s >> 16)
            struct.pack_into("!H", h, 10, ~s & 0xFFFF)
            out.append(bytes(h) + piece)
        return out
    hdr, data = ip[:40], ip[40:]
    step = FRAGMENT - 8 - 20  # IPv6's 40-byte header and the fragment header in the same MTU
    step -= step % 8
    out = []
    for at in range(0, len(data), step):
        piece = data[at:at + step]
        more = at + len(piece) < len(data)
        h = bytearray(hdr)
        nh = h[6]
        h[6] = 44
        struct.pack_into("!H", h, 4, 8 + len(piece))
        out.append(bytes(h) + struct.pack("!BBHI", nh, 0, (at // 8) << 3 | (1 if more else 0),
                                          ident) + piece)
    return out


class Flow:
    def __init__(self, n, vip, family, port=53):
        self.vip, self.family, self.port = vip, family, port
        self.client = ("192.0.2.%d" % (1 + n % 200)) if family == 4 else \
            "2001:db8:c::%x" % (1 + n)
        self.sport = 20000 + n
        self.ident = 0x1000 + 2 * n  # datagram k of this flow: ident + k (unique in 16 bits)

    def packet(self, payload):
        u = udp(self.sport, self.port, payload)
        if self.family == 4:
            return ipv4(self.client, self.vip, UDP, u, df=False)
        return ipv6(self.client, self.vip, UDP, u)

    def frame(self, ip, port_mac):
        return eth(ip, ETH_IPV4 if self.family == 4 else ETH_IPV6, port_mac, ROUTER_MAC)

    def service(self):
        return "%s:%d/udp" % (self.vip if self.family == 4 else "[%s]" % self.vip, self.port)

    def client_arg(self):
        return "%s:%d" % (self.client if self.family == 4 else "[%s]" % self.client, self.sport)


def addr_queue(src, dst):
    """The queue of a fragment: its addresses alone (a NIC's RSS of fragments)."""
    return zlib.crc32(src + dst) % len(VETHS)


def flow_queue(src, dst, sport, dport):
    return zlib.crc32(src + dst + struct.pack("!HH", sport, dport)) % len(VETHS)


def make_traffic(port_mac):
    """(queue, frame, key) to send: key = (datagram id, fragment offset) or ("whole", flow)."""
    flows = [Flow(n, VIP_DR, 4) for n in range(24)] + \
        [Flow(100 + n, VIP_GUE, 4) for n in range(16)] + [Flow(200 + n, VIP6, 6) for n in range(16)] + \
        [Flow(300 + n, VIP6, 6, GUE6_PORT) for n in range(16)]
    wholes, datagrams = [], []
    for i, f in enumerate(flows):
        src, dst = (v4 if f.family == 4 else v6)(f.client), (v4 if f.family == 4 else v6)(f.vip)
        ip = f.packet(b"w%03d" % i)
        wholes.append((flow_queue(src, dst, f.sport, f.port), f.frame(ip, port_mac), ("whole", i)))
        for k in range(2):
            ident = f.ident + k
            payload = bytes((i + k + j) & 0xFF for j in range(DATAGRAM))
            pieces = fragments(f.packet(payload), ident)
            q = addr_queue(src, dst)
            datagrams.append([(q, f.frame(p, port_mac), (i, k, n)) for n, p in enumerate(pieces)])
    return flows, wholes, datagrams


def open_sockets():
    socks = []
    for v in VETHS:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        s.bind((v + "p", 0))
        s.setblocking(False)
        socks.append(s)
    return socks


def drain(socks, seconds, expect=None):
    """Every frame the daemon sent (received on the veth peers) within `seconds`; with
    `expect`, stops early once that many came and nothing more for 0.3 s."""
    out = []
    end = time.monotonic() + seconds
    last = time.monotonic()
    while time.monotonic() < end:
        if expect is not None and len(out) >= expect and time.monotonic() - last > 0.3:
            break
        got = False
        for s in socks:
            try:
                data, addr = s.recvfrom(65535)
            except BlockingIOError:
                continue
            got = True
            if addr[2] != socket.PACKET_OUTGOING:
                out.append(data)
                last = time.monotonic()
        if not got:
            time.sleep(0.01)
    return out


BAD_GUE6_CHECKSUMS = []


def udp6_checksum_ok(ip):
    """The UDP checksum of an IPv6 packet (no extension headers) verifies."""
    seg = ip[40:40 + struct.unpack("!H", ip[4:6])[0]]
    data = ip[8:40] + struct.pack("!IxxxB", len(seg), UDP) + seg
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF and seg[6:8] != b"\0\0"


def decode(frame):
    """(backend, IP packet as sent by the client) of a frame the daemon forwarded."""
    et = struct.unpack("!H", frame[12:14])[0]
    ip = frame[14:]
    if et == ETH_IPV4 and ip[9] == UDP and struct.unpack("!H", ip[22:24])[0] == GUE_PORT:
        return socket.inet_ntop(socket.AF_INET, ip[16:20]), ip[28:]
    if et == ETH_IPV6 and ip[6] == UDP and struct.unpack("!H", ip[42:44])[0] == GUE_PORT:
        if not udp6_checksum_ok(ip):
            BAD_GUE6_CHECKSUMS.append(ip[:48].hex())
        return socket.inet_ntop(socket.AF_INET6, ip[24:40]), ip[48:]
    return frame[:6], ip


def datagram_key(ip):
    """(family, src, dst, ident, offset) of a client IP packet (a fragment or whole)."""
    if ip[0] >> 4 == 4:
        ident, field = struct.unpack("!HH", ip[4:8])
        return (4, ip[12:16], ip[16:20], ident, field & 0x1FFF)
    if ip[6] == 44:
        field, ident = struct.unpack("!HI", ip[42:48])
        return (6, ip[8:24], ip[24:40], ident, field >> 3)
    return (6, ip[8:24], ip[24:40], None, 0)


def run_host(name, order, workers=2):
    tmp = os.path.join(ARGS.tmp, name)
    os.makedirs(tmp, exist_ok=True)
    tap, sock = "ef%s%d" % (name, os.getpid() % 10000), os.path.join(tmp, "ecmplb.sock")
    cfg = os.path.join(tmp, "config.json")
    with open(cfg, "w") as f:
        json.dump(config(tap, sock), f)
    vdev = "net_pcap0,%s,%s" % (",".join("rx_iface_in=" + v for v in VETHS),
                                ",".join("tx_iface=" + VETHS[k % len(VETHS)]
                                         for k in range(workers + 1)))
    d = Daemon(ARGS.ecmplb, ARGS.ecmplbctl, cfg, sock, "fr%s%d" % (name, os.getpid()),
               os.path.join(tmp, "daemon.log"), vdev=vdev, mem_mb=512)
    i = d.cmd.index("-l")
    d.cmd[i:i + 2] = ["--lcores", ",".join(["0@0"] + ["%d@%d" % (k + 1, (k + 1) % 2)
                                                      for k in range(workers)])]
    d.cmd += ["--rx-steering", "peer"]
    result = None
    try:
        d.start(timeout=90)
        link = json.loads(subprocess.run(["ip", "-j", "link", "show", tap], capture_output=True,
                                         text=True, check=True).stdout)
        port_mac = mac(link[0]["address"])
        for a in DR_BACKENDS + GUE_BACKENDS + DR6_BACKENDS + GUE6_BACKENDS:
            subprocess.run(["ip", "neigh", "replace", a, "lladdr", backend_mac(a).hex(":"),
                            "dev", tap, "nud", "permanent"], check=True)
        time.sleep(0.5)  # the neighbour sync runs every 100 ms
        flows, wholes, datagrams = make_traffic(port_mac)
        sends = order(wholes, datagrams)
        socks = open_sockets()
        drain(socks, 0.2)  # anything from before (the kernel's own packets on the TAP path)
        for n, (q, frame, _) in enumerate(sends):
            socks[q].send(frame)
            if n % 16 == 15:
                time.sleep(0.002)
        got = drain(socks, 8.0, expect=len(sends))
        stats = json.loads(d.ctl("--json", "stats").stdout)
        lookups = {}
        for i, f in enumerate(flows):
            p = d.ctl("--json", "lookup", f.service(), "--client", f.client_arg())
            lookups[i] = json.loads(p.stdout)["maglev_backend"]["address"] if p.returncode == 0 \
                else None
        result = (flows, sends, got, stats, lookups)
        d.send_signal(signal.SIGTERM)
        check("%s: SIGTERM, the daemon exits 0" % name, d.wait(30) == 0, d.log(600))
    except DaemonError as e:
        check("%s: the daemon started" % name, False, e)
    finally:
        d.stop()
    return result


def in_order(wholes, datagrams):
    return wholes + [x for d in datagrams for x in d]


def shuffled(wholes, datagrams):
    """Later fragments first, datagrams interleaved two by two, wholes spread in."""
    rnd = random.Random(17)
    out = []
    assert len(datagrams) % 2 == 0
    for a, b in zip(datagrams[0::2], datagrams[1::2]):
        assert len(a) == len(b), "interleaving needs datagrams of as many fragments"
        ra, rb = list(reversed(a)), list(reversed(b))
        for x, y in zip(ra, rb):
            out += [x, y]
    rest = list(wholes)
    rnd.shuffle(rest)
    for k, w in enumerate(rest):
        out.insert(min(len(out), k * 7), w)
    return out


def verify(name, flows, sends, got, stats, lookups):
    port_backend = {}
    for a in DR_BACKENDS + DR6_BACKENDS:
        port_backend[backend_mac(a)] = a
    sent = {}
    for _, frame, key in sends:
        sent[datagram_key(frame[14:])] = (frame, key)
    seen, where = {}, {}
    bad_bytes, unknown = [], []
    for frame in got:
        if frame[0] & 1:
            continue  # the kernel's own multicast (IPv6 ND/MLD from the TAP): not ours
        be, ip = decode(frame)
        be = port_backend.get(be, be) if isinstance(be, bytes) else be
        k = datagram_key(ip)
        if k not in sent:
            unknown.append(frame[:64].hex())
            continue
        seen[k] = seen.get(k, 0) + 1
        original, key = sent[k]
        if ip != original[14:]:
            bad_bytes.append(key)
        where.setdefault(key[:2] if key[0] != "whole" else key, set()).add(be)
    missing = [sent[k][1] for k in sent if k not in seen]
    twice = [sent[k][1] for k, n in seen.items() if n > 1]
    check("%s: every frame came back (%d sent, %d frames out)" % (name, len(sent), len(got)),
          not missing, missing[:8])
    check("%s: no frame came back twice" % name, not twice, twice[:8])
    check("%s: nothing else came back" % name, not unknown, unknown[:3])
    check("%s: every frame's bytes intact" % name, not bad_bytes, bad_bytes[:8])
    check("%s: GUE over IPv6 carries a valid UDP checksum" % name, not BAD_GUE6_CHECKSUMS,
          BAD_GUE6_CHECKSUMS[:3])
    del BAD_GUE6_CHECKSUMS[:]
    split = {k: v for k, v in where.items() if len(v) > 1}
    check("%s: each datagram's fragments at one backend" % name, not split, list(split.items())[:5])
    wrong = []
    for i, f in enumerate(flows):
        whole = where.get(("whole", i), set())
        for k in range(2):
            frag = where.get((i, k), set())
            if not (whole == frag == {lookups[i]}):
                wrong.append((f.client_arg(), f.vip, sorted(whole), sorted(frag), lookups[i]))
    check("%s: every datagram at its flow's backend (whole datagram, fragments, lookup)" % name,
          not wrong, wrong[:5])
    workers = [w for w in stats["workers"] if w["worker"].startswith("worker")]
    check("%s: both workers received traffic" % name,
          len(workers) == 2 and all(w["counters"]["rx_packets"] > 0 for w in workers),
          [w["counters"]["rx_packets"] for w in workers])
    t = stats["total"]
    later = sum(1 for _, _, key in sends if key[0] != "whole" and key[2] > 0)
    check("%s: fragment_forwarded counts every later fragment (%d)" % (name, later),
          t["fragment_forwarded"] == later, t["fragment_forwarded"])
    check("%s: nothing timed out or overflowed, every held fragment released" % name,
          t["fragment_timeout"] == 0 and t["fragment_hold_full"] == 0 and
          t["fragment_held"] == t["fragment_released"],
          {k: t[k] for k in t if k.startswith("fragment")})
    print("%s: %d frames, %d held until their first fragment came, counters %s" % (
        name, len(sends), t["fragment_held"],
        {k: t[k] for k in t if k.startswith("fragment") or k.startswith("forward")}), flush=True)
    return {key: sorted(v) for key, v in where.items()}


def inside():
    for v in VETHS:
        subprocess.run(["ip", "link", "add", v, "type", "veth", "peer", "name", v + "p"],
                       check=True)
        for end in (v, v + "p"):
            subprocess.run(["sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % end], check=True)
            subprocess.run(["ip", "link", "set", end, "mtu", "9000", "up"], check=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    a = run_host("a", in_order)
    b = run_host("b", shuffled)
    placed = []
    for r, name in ((a, "host a"), (b, "host b")):
        placed.append(verify(name, *r) if r else None)
    if placed[0] is not None and placed[1] is not None:
        differ = [k for k in placed[0] if placed[0][k] != placed[1].get(k)]
        check("host a and host b send every datagram to the same backend", not differ,
              differ[:5])
    return 1 if failures else 0


def main():
    if ARGS.inside:
        return inside()
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespace, veths)")
        return 77
    ns = "ecmplb-fr%d" % (os.getpid() % 100000)
    tmp = tempfile.mkdtemp(prefix="ecmplb_fragment_")
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        rc = subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__),
                             ARGS.ecmplb, ARGS.ecmplbctl, "--inside", ns, "--tmp", tmp]).returncode
    finally:
        subprocess.run(["ip", "netns", "del", ns])
    if rc == 0:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print("daemon logs and configs kept in %s" % tmp)
    print("fragment_e2e: %s" % ("passed" if rc == 0 else "FAILED"))
    return rc


if __name__ == "__main__":
    sys.exit(main())
