#!/usr/bin/python3
"""End-to-end test of VIP announcement (issue 6) in a private network namespace.

Starts the real ecmplb (net_ring data port, --no-huge) in namespace ecmplb-ann-PID with a
service whose backend is an HTTP server on the namespace's loopback, plus FRR's zebra and
ospfd advertising the VIP range, and checks that the VIP /32 is on `lo` (and in ospfd's own
router LSA) exactly while the host can serve: after the backend passes its check, not after
the backend's server stops, not while a worker is stalled (fault injection), and not after
`ecmplbctl drain` or SIGTERM. Prints one line per check with the time it took.

Usage: announce_e2e.py ECMPLB ECMPLBCTL
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
from labkit.daemon import Daemon, DaemonError  # noqa: E402  (the daemon launcher the lab uses)

ECMPLB, CTL = sys.argv[1], sys.argv[2]
PID = os.getpid()
NS = f"ecmplb-ann-{PID}"
VIP = "10.100.0.1"
HTTP_PORT = 18080
procs = []
daemons = []
failures = 0
tmp = tempfile.mkdtemp(prefix="ecmplb-ann-")
SOCK = os.path.join(tmp, "ctl.sock")
FRR_DIR = f"/var/run/frr/{NS}"


def sh(*args, check=True, **kw):
    return subprocess.run(list(args), check=check, capture_output=True, text=True, **kw)


def nsexec(*args, **kw):
    return sh("ip", "netns", "exec", NS, *args, **kw)


def start(*args, **kw):
    p = subprocess.Popen(["ip", "netns", "exec", NS, *args], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, **kw)
    procs.append(p)
    return p


def vip_on_lo():
    out = sh("ip", "-n", NS, "-4", "addr", "show", "dev", "lo").stdout
    return f"inet {VIP}/32" in out


def vip_in_ospf():
    r = sh("vtysh", "-N", NS, "-c", "show ip ospf database router self-originate", check=False)
    return f"(Link ID) Net: {VIP}\n" in r.stdout


def wait_for(pred, timeout):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return time.monotonic() - t0
        time.sleep(0.02)
    return None


def check(name, took, what):
    global failures
    if took is None:
        failures += 1
        print(f"FAIL {name}: {what} did not happen in time")
    else:
        print(f"ok   {name}: {what} after {took * 1000:.0f} ms")


def ctl(*args):
    return daemons[-1].ctl(*args)


def start_http():
    return start("/usr/bin/python3", "-m", "http.server", str(HTTP_PORT), "--bind", "127.0.0.1",
                 "--directory", tmp)


def start_ecmplb(config_path, tag):
    """Starts ecmplb in the namespace and waits for its start-up line; None if it did not come."""
    d = Daemon(ECMPLB, CTL, config_path, SOCK, f"ann{PID}{tag}", os.path.join(tmp, f"ecmplb-{tag}.log"),
               ns=NS)
    daemons.append(d)
    try:
        return d.start(timeout=20)
    except DaemonError as e:
        print(f"FAIL start: {e}")
        return None


def telemetry(prefix, command):
    """Queries DPDK telemetry (the protocol dpdk-telemetry.py speaks) in the namespace."""
    path = f"/var/run/dpdk/{prefix}/dpdk_telemetry.v2"
    code = ("import json,socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); "
            f"s.connect({path!r}); s.recv(4096); s.send({command!r}.encode()); "
            "print(s.recv(65536).decode())")
    r = nsexec("/usr/bin/python3", "-c", code, check=False)
    try:
        return json.loads(r.stdout)
    except ValueError:
        return {"error": r.stderr.strip()[:200]}


def cleanup():
    for d in daemons:
        d.stop()
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for name in ("ospfd", "zebra"):
        pidfile = os.path.join(FRR_DIR, f"{name}.pid")
        try:
            with open(pidfile) as f:
                os.kill(int(f.read().strip()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    sh("ip", "netns", "del", NS, check=False)
    shutil.rmtree(FRR_DIR, ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)


def main():
    global failures
    sh("ip", "netns", "add", NS)
    sh("ip", "-n", NS, "link", "set", "lo", "up")
    # FRR: zebra + ospfd advertising the VIP range from lo (frr-conf's approach).
    os.makedirs(FRR_DIR, exist_ok=True)
    shutil.chown(FRR_DIR, "frr", "frr")
    for f in ("/var/run/frr/ospfd-gr.json",):
        if os.path.exists(f):
            os.remove(f)
    conf = os.path.join(FRR_DIR, "ospfd.conf")
    with open(conf, "w") as f:
        f.write("router ospf\n ospf router-id 10.0.0.11\n network 10.100.0.0/24 area 0\nexit\n")
    zconf = os.path.join(FRR_DIR, "zebra.conf")
    open(zconf, "w").close()
    for p in (conf, zconf):
        shutil.chown(p, "frr", "frr")
    nsexec("/usr/lib/frr/zebra", "-d", "-N", NS, "-f", zconf, "-i", f"{FRR_DIR}/zebra.pid", "-P", "0",
           "--log", f"file:{FRR_DIR}/zebra.log")
    nsexec("/usr/lib/frr/ospfd", "-d", "-N", NS, "-f", conf, "-i", f"{FRR_DIR}/ospfd.pid", "-P", "0",
           "--log", f"file:{FRR_DIR}/ospfd.log")

    cfg = {
        "host": {"address": "10.0.0.11", "prefix_length": 24, "gateway": "10.0.0.1",
                 "exception_interface": "ann0", "control_socket": SOCK, "drain_s": 1,
                 "worker_stall_ms": 300, "metrics_listen": "127.0.0.1:19187"},
        "conntrack": {"capacity": 4096},
        "services": [{"vip": VIP, "port": 80, "protocol": "tcp", "forward": "gre",
                      "health_check": {"type": "http", "port": HTTP_PORT, "interval_ms": 100,
                                       "timeout_ms": 100, "rise": 2, "fall": 2},
                      "backends": [{"address": "127.0.0.1"}]}],
    }
    config_path = os.path.join(tmp, "ecmplb.json")
    with open(config_path, "w") as f:
        json.dump(cfg, f)

    # 1. No healthy backend yet: nothing is announced.
    lb = start_ecmplb(config_path, "a")
    if lb is None:
        failures += 1
        return
    time.sleep(0.5)
    if vip_on_lo():
        failures += 1
        print("FAIL announce: VIP announced before any backend passed its check")
    else:
        print("ok   no healthy backend: VIP not announced")
    # 2. The backend's server starts: the VIP appears on lo and in ospfd's router LSA.
    http = start_http()
    check("backend healthy", wait_for(vip_on_lo, 10), "VIP /32 on lo")
    check("ospfd advertises", wait_for(vip_in_ospf, 10), "VIP stub in ospfd's router LSA")
    show = json.loads(ctl("show", "--json").stdout or "{}")
    backends = show.get("health", {}).get("backends", [])
    if not backends or not backends[0].get("up") or backends[0].get("last_check") != "HTTP 200":
        failures += 1
        print(f"FAIL show: backend health not reported: {backends}")
    else:
        print("ok   show --json: backend up, last check HTTP 200")
    # Metrics: the Prometheus endpoint inside the namespace.
    r = nsexec("/usr/bin/python3", "-c",
               "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:19187/metrics', timeout=5).read().decode())",
               check=False)
    want = [f'ecmplb_vip_announced{{vip="{VIP}"}} 1', "ecmplb_workers_healthy 1",
            'ecmplb_backend_up{service="10.100.0.1:80/tcp",backend="127.0.0.1",id="1"} 1']
    missing = [w for w in want if w not in r.stdout]
    if missing:
        failures += 1
        print(f"FAIL metrics: missing {missing}: {r.stderr.strip()[:200]}")
    else:
        print("ok   metrics: /metrics reports the VIP announced, workers and backend healthy")
    # DPDK telemetry: /ecmplb/vips over the EAL telemetry socket.
    tele = telemetry(f"ann{PID}a", "/ecmplb/vips")
    if tele.get("/ecmplb/vips", {}).get(VIP.replace(".", "_")) != 1:
        failures += 1
        print(f"FAIL telemetry: /ecmplb/vips = {tele}")
    else:
        print("ok   telemetry: /ecmplb/vips reports the VIP announced")
    # 3. The last backend fails: withdrawn.
    http.kill()
    http.wait()
    check("backend fails", wait_for(lambda: not vip_on_lo(), 10), "VIP withdrawn from lo")
    check("ospfd withdraws", wait_for(lambda: not vip_in_ospf(), 10), "VIP stub gone from ospfd's LSA")
    http = start_http()
    check("backend returns", wait_for(vip_on_lo, 10), "VIP back on lo")
    # 4. A worker stalls (fault injection): withdrawn, then back.
    r = ctl("fault", "stall-worker", "0", "--ms", "2000")
    if r.returncode != 0:
        failures += 1
        print(f"FAIL fault: {r.stderr.strip()}")
    check("worker stalls", wait_for(lambda: not vip_on_lo(), 5), "VIP withdrawn")
    check("worker recovers", wait_for(vip_on_lo, 10), "VIP back on lo")
    # Bad fault requests are refused with one line.
    r = ctl("fault", "stall-worker", "7", "--ms", "10")
    if r.returncode == 0 or "worker must be" not in r.stderr:
        failures += 1
        print(f"FAIL fault: bad worker accepted: {r.returncode} {r.stderr.strip()}")
    else:
        print("ok   fault stall-worker 7: refused (" + r.stderr.strip() + ")")
    # 5. Drain: VIP withdrawn at once, the daemon stops after drain_s.
    t0 = time.monotonic()
    r = ctl("drain")
    check("drain", wait_for(lambda: not vip_on_lo(), 2), "VIP withdrawn")
    rc = lb.wait(timeout=10)
    if rc is not None:
        print(f"ok   drain: daemon exited with {rc} after {time.monotonic() - t0:.1f} s")
        if rc != 0:
            failures += 1
    else:
        failures += 1
        print("FAIL drain: daemon still running 10 s after drain")
    # 6. SIGTERM does the same.
    if os.path.exists(SOCK):
        os.remove(SOCK)
    lb = start_ecmplb(config_path, "b")
    if lb is None:
        failures += 1
        return
    check("restart", wait_for(vip_on_lo, 20), "VIP announced again")
    t0 = time.monotonic()
    # `ip netns exec` execs ecmplb: the Popen's PID is the daemon's own.
    lb.send_signal(signal.SIGTERM)
    check("SIGTERM", wait_for(lambda: not vip_on_lo(), 2), "VIP withdrawn")
    rc = lb.wait(timeout=10)
    if rc is not None:
        print(f"ok   SIGTERM: daemon exited with {rc} after {time.monotonic() - t0:.1f} s")
    else:
        failures += 1
        print("FAIL SIGTERM: daemon still running 10 s later")


try:
    main()
finally:
    cleanup()
print(f"announce_e2e: {failures} failure(s)")
sys.exit(1 if failures else 0)
