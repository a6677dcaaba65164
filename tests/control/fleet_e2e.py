#!/usr/bin/python3
"""Fleet mode end to end: a real etcd (Debian's etcd-server, single member on loopback ports
in a temp dir) and two ecmplb daemons on ring vdevs (--no-huge) following it.

Usage: fleet_e2e.py ECMPLB ECMPLBCTL

Seeds the fleet with `ecmplbctl fleet put` (no daemon needed), starts both daemons, then
checks: both apply the same version with the same fingerprint; a change made through one
host's ecmplbctl reaches both (time printed); `fleet status` agrees; a revision that does not
validate (written with etcdctl) is refused by both, their tables unchanged; two writes from the
same version: one wins, the other exits 4 with a conflict; a daemon restarted while etcd is
down serves its cache, the other keeps serving; etcd back, both follow again; SIGHUP re-reads
host settings only, and a file with services is refused. etcd and the daemons are stopped by
PID in every case. Skipped (77) without etcd.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
from labkit import etcd as etcd_mod  # noqa: E402
from labkit.daemon import Daemon, DaemonError  # noqa: E402

ECMPLB, CTL = sys.argv[1], sys.argv[2]
if not etcd_mod.available():
    print("skipped: etcd-server and etcd-client are not installed (./setup.sh)")
    sys.exit(77)
PID = os.getpid()
NET = 150 + PID % 40
TMP = tempfile.mkdtemp(prefix="fleet_e2e_")
VIP = "10.%d.1.1:80/tcp" % NET
BE = ["10.%d.0.%d" % (NET, 21 + i) for i in range(4)]
failures = 0


def check(name, ok, detail=""):
    global failures
    print("%s: %s%s" % ("ok" if ok else "FAIL", name, "" if ok else " (%s)" % str(detail)[-1500:]),
          flush=True)
    if not ok:
        failures += 1


etcd = etcd_mod.Etcd()
tls_etcd = []
hosts = {}


def host_config(name, i, extra=None, fleet=None):
    cfg = {"host": {"address": "10.%d.0.%d" % (NET, 10 + i), "prefix_length": 16,
                    "exception_interface": "flt%s%d" % (name, PID % 10000),
                    "control_socket": os.path.join(TMP, name, "ecmplb.sock"),
                    "announce": False},
           "conntrack": {"capacity": 4096},
           "fleet": {"endpoints": [etcd.url], "cluster": "e2e", "host_name": name,
                     "cache_file": os.path.join(TMP, name, "fleet-cache.json"),
                     "grace_s": 2, "lease_ttl_s": 3}}
    if fleet:
        cfg["fleet"].update(fleet)
    if extra:
        cfg.update(extra)
    return cfg


def make_host(name, i, fleet=None):
    os.makedirs(os.path.join(TMP, name), exist_ok=True)
    path = os.path.join(TMP, name, "config.json")
    with open(path, "w") as f:
        json.dump(host_config(name, i, fleet=fleet), f, indent=1)
    d = Daemon(ECMPLB, CTL, path, os.path.join(TMP, name, "ecmplb.sock"), "flt%s%d" % (name, PID),
               os.path.join(TMP, name, "daemon.log"))
    d.config_path = path
    hosts[name] = d
    return d


def ctl(d, *args):
    p = d.ctl(*args, "--json")
    try:
        out = json.loads(p.stdout) if p.stdout.strip() else None
    except ValueError:
        out = None
    return p.returncode, out, p.stderr


def fleet_ctl(*args):
    """ecmplbctl fleet ... against etcd directly (no daemon)."""
    p = subprocess.run([CTL, "--socket", os.path.join(TMP, "none.sock"), "--json", "fleet", "--etcd",
                        etcd.url, "--cluster", "e2e"] + list(args),
                       capture_output=True, text=True, timeout=30)
    try:
        out = json.loads(p.stdout) if p.stdout.strip() else None
    except ValueError:
        out = None
    return p.returncode, out, p.stderr


def fleet_view(d):
    rc, out, _ = ctl(d, "show")
    return (out or {}).get("fleet", {}) if rc == 0 else {}


def wait(cond, timeout=10, interval=0.02):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic() - t0
        time.sleep(interval)
    return None


def services_file(name, backends, table_size=251):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        json.dump({"services": [{"vip": VIP.split(":")[0], "port": 80, "table_size": table_size,
                                 "backends": [{"id": i + 1, "address": b}
                                              for i, b in enumerate(backends)]}]}, f)
    return path


def backends_of(d):
    rc, out, _ = ctl(d, "config", "dump")
    if rc != 0:
        return None
    return [b["address"] for s in out.get("services", []) for b in s["backends"]]


def main():
    etcd.start()
    check("etcd runs on loopback", True)
    rc, out, err = fleet_ctl("put", services_file("v1.json", BE[:2]))
    check("fleet put without a daemon", rc == 0 and out["fleet_version"] > 0, err)
    v1 = out["fleet_version"] if rc == 0 else 0

    a, b = make_host("a", 1), make_host("b", 2)
    for d in (a, b):
        try:
            d.start(timeout=60)
        except DaemonError as e:
            check("daemon starts in fleet mode", False, e)
            return
    took = wait(lambda: all(fleet_view(d).get("applied_version") == v1 for d in (a, b)))
    check("both hosts apply the seeded version", took is not None, [fleet_view(d) for d in (a, b)])
    check("their services are the fleet's", backends_of(a) == BE[:2] and backends_of(b) == BE[:2],
          (backends_of(a), backends_of(b)))
    check("the daemons log that they follow etcd",
          "fleet: following /ecmplb/e2e/ in etcd" in a.log(), a.log())

    # A change through one host's ecmplbctl goes to etcd; both apply it.
    t0 = time.monotonic()
    rc, out, err = ctl(a, "backend", "add", VIP, BE[2], "--weight", "2")
    check("backend add in fleet mode writes to etcd", rc == 0 and out.get("fleet_version", 0) > v1
          and out.get("backend_id") == 3, (rc, out, err))
    v2 = (out or {}).get("fleet_version", -1)
    took = wait(lambda: all(fleet_view(d).get("applied_version") == v2 for d in (a, b)))
    spread = time.monotonic() - t0
    check("both hosts apply it", took is not None, [fleet_view(d) for d in (a, b)])
    fa, fb = fleet_view(a), fleet_view(b)
    check("same fingerprint on both", fa.get("fingerprint") and fa.get("fingerprint") == fb.get("fingerprint"),
          (fa, fb))
    ok = wait(lambda: len((fleet_ctl("status")[1] or {}).get("hosts", [])) == 2
              and not fleet_ctl("status")[1]["disagreements"]
              and all(h["applied_version"] == v2 for h in fleet_ctl("status")[1]["hosts"]), 5, 0.2)
    rc, st, err = fleet_ctl("status")
    check("fleet status: both hosts, same version and fingerprint, no disagreement", ok is not None,
          (rc, st, err))
    p = subprocess.run([CTL, "--socket", os.path.join(TMP, "a", "ecmplb.sock"), "fleet", "status"],
                       capture_output=True, text=True, timeout=30)
    check("fleet status (text) from a host's ecmplbctl", p.returncode == 0 and "agreement: every host at version"
          in p.stdout, p.stdout + p.stderr)
    print("figure: a change written once reached both hosts in %.0f ms (ecmplbctl to both applied)"
          % (spread * 1000), flush=True)

    # A revision that does not validate (table size not prime), written around ecmplbctl.
    rc, doc, err = fleet_ctl("get")
    bad = doc["services"] if rc == 0 else []
    if bad:
        bad[0]["table_size"] = 1000
    blob = json.dumps(bad, separators=(",", ":"))
    import hashlib
    digest = hashlib.sha256(blob.encode()).hexdigest()
    etcd.ctl("put", "/ecmplb/e2e/blobs/" + digest, blob)
    pointer = json.dumps({"format": 1, "blobs": [{"digest": digest, "services": 1, "bytes": len(blob)}],
                          "writer": "etcdctl"})
    etcd.ctl("put", "/ecmplb/e2e/config", pointer)
    refused = wait(lambda: all(fleet_view(d).get("refused_version", 0) > v2 for d in (a, b)))
    fa = fleet_view(a)
    check("an invalid revision is refused by every host, with the field",
          refused is not None and "table_size" in fa.get("refused_reason", ""), [fleet_view(d) for d in (a, b)])
    check("...and they keep their tables", all(fleet_view(d).get("applied_version") == v2 for d in (a, b))
          and backends_of(a) == BE[:3] and a.running() and b.running(), (backends_of(a), fa))
    rc, st, _ = fleet_ctl("status")
    check("fleet status flags it", rc == 0 and any("refused the current version" in x
                                                   for x in st["disagreements"]), st)

    # Two writes from the same version: one wins, the other gets a conflict (exit 4).
    rc, doc, _ = fleet_ctl("get")
    base = doc["version"]
    r1 = fleet_ctl("put", services_file("w1.json", BE[:3]), "--expect-version", str(base))
    r2 = fleet_ctl("put", services_file("w2.json", BE[:4]), "--expect-version", str(base))
    check("two writes from one version: the first wins", r1[0] == 0, r1)
    check("...the second exits 4 with a clear conflict", r2[0] == 4 and "conflict" in r2[2]
          and "nothing was written" in r2[2], r2)
    v3 = r1[1]["fleet_version"] if r1[0] == 0 else -1
    check("hosts follow the winner", wait(lambda: all(fleet_view(d).get("applied_version") == v3
                                                      for d in (a, b))) is not None,
          [fleet_view(d) for d in (a, b)])

    # SIGHUP in fleet mode re-reads host settings only; a file with services is refused.
    rc, _, err = ctl(a, "config", "reload")
    check("config reload in fleet mode: host settings re-read", rc == 0, err)
    with open(a.config_path) as f:
        cfg = json.load(f)
    cfg["services"] = [{"vip": "10.%d.1.9" % NET, "port": 80, "backends": [{"id": 1, "address": BE[0]}]}]
    with open(a.config_path, "w") as f:
        json.dump(cfg, f)
    rc, _, err = ctl(a, "config", "reload")
    check("a file with services is refused in fleet mode", rc == 1 and "in fleet mode the services come from etcd"
          in err, err)
    with open(a.config_path, "w") as f:
        json.dump(host_config("a", 1), f, indent=1)

    # etcd down: a restarted host serves its cache; the other keeps serving; nobody withdraws.
    etcd.stop()
    a.stop(signal.SIGKILL)
    try:
        a.start(timeout=60)
        started = True
    except DaemonError as e:
        started = False
        check("restart with etcd down", False, e)
    if started:
        check("restarted with etcd down, it serves the cached version",
              fleet_view(a).get("applied_version") == v3 and backends_of(a) == BE[:3]
              and "serving the cached version" in a.log(), (fleet_view(a), a.log()))
    time.sleep(3)
    fb = fleet_view(b)
    check("the other host keeps serving, not withdrawn, and knows the store is gone",
          b.running() and fb.get("withdraw") == "" and fb.get("connected") is False
          and backends_of(b) == BE[:3], fb)
    etcd.start()
    back = wait(lambda: all(fleet_view(d).get("connected") for d in (a, b)), 15, 0.1)
    check("etcd back: both follow it again", back is not None, [fleet_view(d) for d in (a, b)])
    rc, out, err = ctl(b, "backend", "del", VIP, BE[0])
    v4 = (out or {}).get("fleet_version", -1)
    check("and apply the next change", rc == 0 and wait(lambda: all(
        fleet_view(d).get("applied_version") == v4 for d in (a, b))) is not None, (rc, out, err))
    tls_checks()


def tls_checks():
    """etcd over https with client certificates: ecmplbctl and a daemon with the fleet's TLS
    files; without a client certificate etcd refuses."""
    os.makedirs(os.path.join(TMP, "tls"))
    tls = etcd_mod.make_tls(os.path.join(TMP, "tls"))
    e2 = etcd_mod.Etcd(tls=tls)
    tls_etcd.append(e2)
    e2.start()
    base = [CTL, "--socket", os.path.join(TMP, "none.sock"), "--json", "fleet", "--etcd", e2.url,
            "--cluster", "tls", "--ca-file", tls["ca"]]
    p = subprocess.run(base + ["put", services_file("tls.json", BE[:2])], capture_output=True,
                       text=True, timeout=30)
    check("https without a client certificate is refused", p.returncode == 1, p.stdout + p.stderr)
    p = subprocess.run(base + ["--cert-file", tls["client_cert"], "--key-file", tls["client_key"],
                               "put", services_file("tls.json", BE[:2])],
                       capture_output=True, text=True, timeout=30)
    check("ecmplbctl fleet put over https with a client certificate", p.returncode == 0, p.stderr)
    v = json.loads(p.stdout)["fleet_version"] if p.returncode == 0 else -1
    c = make_host("c", 3, fleet={"endpoints": [e2.url], "cluster": "tls", "ca_file": tls["ca"],
                                 "cert_file": tls["client_cert"], "key_file": tls["client_key"]})
    try:
        c.start(timeout=60)
    except DaemonError as e:
        check("daemon starts with fleet TLS files", False, e)
        return
    check("a daemon follows etcd over https (fleet.ca_file, cert_file, key_file)",
          wait(lambda: fleet_view(c).get("applied_version") == v) is not None
          and backends_of(c) == BE[:2], (fleet_view(c), c.log()))


try:
    main()
except Exception as e:  # a crash of the script is a failure, never a leaked process
    import traceback
    check("script ran to the end", False, traceback.format_exc())
finally:
    for d in hosts.values():
        d.stop(signal.SIGKILL)
    etcd.remove()
    for e in tls_etcd:
        e.remove()
    if failures:
        for name, d in hosts.items():
            print("--- %s log ---\n%s" % (name, d.log(3000)))
    subprocess.run(["rm", "-rf", TMP])
print("%d check(s) failed" % failures if failures else "all checks passed")
sys.exit(1 if failures else 0)
