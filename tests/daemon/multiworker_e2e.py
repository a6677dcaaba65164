#!/usr/bin/python3
"""The real daemon with 1, 2 and 3 workers, driven by the real traffic generator over memif.

Usage: multiworker_e2e.py ECMPLB ECMPLBCTL ECMPLB_GEN

memif has no RSS: the daemon runs with --rx-steering=peer and ecmplb-gen puts each flow on the
queue that dataplane/rss.h's rule gives (Toeplitz over ecmplb's key, rte_softrss). Cores are
oversubscribed (2 CPUs here): the daemon's workers use the idle back-off. Everything runs in a
network namespace of its own (the memif socket is abstract, the exception TAP lives there);
no hugepages (--no-huge).

For each worker count, every check asserts behaviour, never a speed:
  - the generator's checker: every frame came back at the flow's expected backend (DR MAC,
    GRE outer header and inner bytes), no flow at two backends, nothing lost or corrupt;
  - every worker received traffic, and `stats` sums: each total counter is the sum of the
    workers' counters, and the workers' rx_packets add up to what the generator sent;
  - one flow, one worker: `conns` lists every flow once, on one worker;
  - a pool change reaches every worker (each worker's snapshot_changes grows);
With 2 workers also:
  - the watchdog per worker: a stalled worker 1 makes the host withdraw its VIPs (show's
    health part names worker 1) and it announces again when the stall ends;
  - drain: `ecmplbctl drain` withdraws the VIPs, every worker keeps forwarding, the daemon
    exits 0.
With 1 worker: a few seconds at full speed with sampled checking (the CI smoke run): no
checker error, and the generator's and daemon's counts agree.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
from labkit.daemon import Daemon, DaemonError  # noqa: E402

ECMPLB, CTL, GEN = sys.argv[1:4]
PID = os.getpid()
NS = "ecmplb-mw%d" % (PID % 100000)
TAP = "emw%d" % (PID % 100000)
MEMIF = "/ecmplb-mw%d.memif" % PID
LB_MAC = "02:ec:00:00:00:01"
TMP = tempfile.mkdtemp(prefix="ecmplb_mw_")
CONFIG = os.path.join(TMP, "config.json")
SOCK = os.path.join(TMP, "ecmplb.sock")
DR, GRE, UDP = "10.98.1.1:80/tcp", "10.98.1.2:80/tcp", "10.98.1.1:53/udp"
failures = 0


def check(name, ok, detail=""):
    global failures
    print("%s: %s%s" % ("ok" if ok else "FAIL", name, "" if ok else " (%s)" % detail), flush=True)
    if not ok:
        failures += 1
    return ok


def write_config():
    def backends(base):
        return [{"id": i + 1, "address": "10.98.0.%d" % (base + i)} for i in range(4)]
    cfg = {
        "host": {"address": "10.98.0.1", "prefix_length": 24, "exception_interface": TAP,
                 "control_socket": SOCK, "announce": True, "announce_interface": "lo",
                 "drain_s": 3, "worker_stall_ms": 300},
        "conntrack": {"capacity": 65536},
        "services": [
            {"vip": "10.98.1.1", "port": 80, "protocol": "tcp", "forward": "dr",
             "backends": backends(11)},
            {"vip": "10.98.1.2", "port": 80, "protocol": "tcp", "forward": "gre",
             "backends": backends(21)},
            {"vip": "10.98.1.1", "port": 53, "protocol": "udp", "forward": "dr",
             "backends": backends(31)},
        ],
    }
    with open(CONFIG, "w") as f:
        json.dump(cfg, f)


def lcores(workers):
    # main lcore on CPU 0; workers alternate CPU 1 and CPU 0 (oversubscribed: idle back-off).
    return ",".join(["0@0"] + ["%d@%d" % (i + 1, (i + 1) % 2) for i in range(workers)])


def start_daemon(workers):
    d = Daemon(ECMPLB, CTL, CONFIG, SOCK, "mw%d" % PID, os.path.join(TMP, "daemon.log"),
               vdev="net_memif0,role=server,socket=%s,mac=%s" % (MEMIF, LB_MAC), mem_mb=512,
               ns=NS)
    i = d.cmd.index("-l")
    d.cmd[i:i + 2] = ["--lcores", lcores(workers)]
    d.cmd += ["--rx-steering", "peer"]
    d.start(timeout=60)
    out = subprocess.run([GEN, "--", "--config", CONFIG, "--neighbors"], capture_output=True,
                         text=True, check=True).stdout
    for line in out.splitlines():
        ip, mac = line.split()
        subprocess.run(["ip", "-n", NS, "neigh", "replace", ip, "lladdr", mac, "dev", TAP, "nud",
                        "permanent"], check=True)
    time.sleep(0.5)  # neighbour sync: every 100 ms
    return d


class Gen:
    """ecmplb-gen with --trials-from-stdin: one memif connection for all the runs against one
    daemon. Stopped after the daemon: between trials it waits on stdin and polls nothing (a
    memif peer that disconnects while the other side polls can crash DPDK 22.11's memif)."""

    def __init__(self, queues):
        cmd = ["ip", "netns", "exec", NS, GEN, "--lcores", "0@0", "--no-huge", "-m", "512",
               "--no-pci", "--file-prefix", "mwgen%d" % PID, "--log-level=error",
               "--vdev=net_memif0,role=client,socket=%s" % MEMIF, "--",
               "--config", CONFIG, "--dst-mac", LB_MAC, "--queues", str(queues),
               # ecmplb sends on one TX queue per worker and the exception path's: a ring each.
               "--rx-queues", str(queues + 1), "--json", "--trials-from-stdin"]
        if queues > 1:
            cmd += ["--steer", "softrss"]
        self.err = open(os.path.join(TMP, "gen.log"), "a")
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.err, text=True, bufsize=1)

    def run(self, service, flows, rate, seconds, check_mode="all"):
        line = "--service %s --flows %d --rate %d --duration %s --check %s" % (
            service, flows, rate, seconds, check_mode)
        try:
            self.p.stdin.write(line + "\n")
            self.p.stdin.flush()
            text = self.p.stdout.readline()
        except OSError:
            text = ""
        out = json.loads(text) if text else {"error": "ecmplb-gen exited"}
        if "error" in out:
            check("ecmplb-gen ran '%s'" % line, False, out["error"] + ": " + read_tail(
                os.path.join(TMP, "gen.log")))
            return None
        return out

    def stop(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def read_tail(path, n=600):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


def ctl_json(d, *args):
    p = d.ctl("--json", *args)
    if p.returncode != 0:
        check("ecmplbctl %s" % " ".join(args), False, p.stderr.strip())
        return None
    return json.loads(p.stdout)


def announced(vip):
    out = subprocess.run(["ip", "-n", NS, "-o", "addr", "show", "dev", "lo"], capture_output=True,
                         text=True).stdout
    return (" %s/32 " % vip) in out


def wait_for(pred, timeout=5.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def check_gen(label, g, expect_all=True):
    if g is None:
        return False
    c = g["check"]
    ok = check("%s: checker: no wrong backend, moved flow or corrupt frame" % label,
               c["errors"] == 0 and c["ok"] > 0, c)
    if expect_all:
        ok &= check("%s: nothing lost (tx %d, rx %d)" % (label, g["tx"]["packets"],
                                                         g["rx"]["test_packets"]),
                    g["loss"]["packets"] == 0, g["loss"])
    return ok


def workers_of(stats):
    """The workers' entries of `stats` (the exception forwarder has an entry of its own)."""
    return [w for w in stats["workers"] if w["worker"].startswith("worker")]


def counters_sum(stats):
    bad = []
    for name, total in stats["total"].items():
        s = sum(w["counters"][name] for w in stats["workers"])
        if s != total:
            bad.append("%s: workers %d, total %d" % (name, s, total))
    return bad


def run_workers(workers):
    label = "%d worker%s" % (workers, "" if workers == 1 else "s")
    write_config()  # the daemon saves pool changes into it
    d = start_daemon(workers)
    g_ = Gen(workers)

    def gen(_queues, service, flows, rate, seconds, check_mode="all"):
        return g_.run(service, flows, rate, seconds, check_mode)
    try:
        before = ctl_json(d, "stats")
        sent = 0
        flows = 3000
        for svc in (DR, GRE, UDP):
            g = gen(workers, svc, flows, 30000, 1.0)
            check_gen("%s, %s" % (label, svc), g)
            sent += g["tx"]["packets"] if g else 0
        stats = ctl_json(d, "stats")
        if stats is None:
            return
        check("%s: stats: totals are the sums of the workers" % label, not counters_sum(stats),
              counters_sum(stats)[:5])
        rx = [w["counters"]["rx_packets"] - b["counters"]["rx_packets"]
              for w, b in zip(workers_of(stats), workers_of(before))]
        check("%s: every worker received traffic %s" % (label, rx), all(x > 0 for x in rx), rx)
        check("%s: the workers received what the generator sent (%d)" % (label, sent),
              sum(rx) == sent, "%d vs %d" % (sum(rx), sent))

        conns = ctl_json(d, "conns", "--limit", "100000")
        if conns is not None:
            keys = [(f["service"], f["client"]) for f in conns["flows"]]
            per_worker = {}
            for f in conns["flows"]:
                per_worker[f["worker"]] = per_worker.get(f["worker"], 0) + 1
            check("%s: one flow, one worker: %d flows tracked once each %s" %
                  (label, len(keys), per_worker),
                  len(keys) == len(set(keys)) == 3 * flows and len(per_worker) == workers,
                  "%d entries, %d distinct" % (len(keys), len(set(keys))))

        # A pool change reaches every worker (traffic to another service afterwards: the DR
        # service's tracked flows rightly keep the backends the generator, reading the saved
        # config, would no longer expect).
        snap0 = [w["counters"]["snapshot_changes"] for w in workers_of(stats)]
        p = d.ctl("backend", "set", DR, "10.98.0.11", "--weight", "2")
        check("%s: pool change accepted" % label, p.returncode == 0, p.stderr.strip())
        check_gen("%s, after the change" % label, gen(workers, UDP, flows, 30000, 0.5))
        stats = ctl_json(d, "stats")
        snap1 = [w["counters"]["snapshot_changes"] for w in workers_of(stats)]
        check("%s: every worker picked up the new snapshot %s -> %s" % (label, snap0, snap1),
              all(b > a for a, b in zip(snap0, snap1)))

        if workers == 1:
            # The CI smoke run: full speed, sampled checking; counts agree.
            g = gen(1, UDP, 100000, 0, 2.0, check_mode="sample:16")
            check_gen("%s, full speed" % label, g, expect_all=False)
            if g:
                st = ctl_json(d, "stats")
                fwd = st["total"]["tx_packets"] - stats["total"]["tx_packets"]
                check("%s, full speed: frames received (%d) <= frames ecmplb sent (%d)" %
                      (label, g["rx"]["test_packets"], fwd), 0 < g["rx"]["test_packets"] <= fwd)

        if workers == 2:
            vip = "10.98.1.1"
            check("%s: VIP announced while healthy" % label, wait_for(lambda: announced(vip)))
            p = d.ctl("fault", "stall-worker", "1", "--ms", "1500")
            check("%s: stall worker 1" % label, p.returncode == 0, p.stderr.strip())
            withdrawn = wait_for(lambda: not announced(vip), 1.5)
            show = ctl_json(d, "show")
            stalled = [w["id"] for w in show["health"]["workers"] if w["stalled"]] if show else []
            check("%s: watchdog: worker 1 stalled, VIP withdrawn (stalled %s)" % (label, stalled),
                  withdrawn and stalled == [1])
            check("%s: VIP announced again after the stall" % label,
                  wait_for(lambda: announced(vip), 5))

            # Drain: VIPs withdrawn, every worker still forwards, clean exit.
            before = ctl_json(d, "stats")
            p = d.ctl("drain")
            check("%s: drain accepted" % label, p.returncode == 0, p.stderr.strip())
            check("%s: drain withdrew the VIP" % label, wait_for(lambda: not announced(vip), 2))
            check_gen("%s, while draining" % label, gen(workers, UDP, flows, 30000, 0.5))
            after = ctl_json(d, "stats")
            if before and after:
                rx = [a["counters"]["rx_packets"] - b["counters"]["rx_packets"]
                      for a, b in zip(workers_of(after), workers_of(before))]
                check("%s: every worker forwarded while draining %s" % (label, rx),
                      all(x > 0 for x in rx))
            rc = d.wait(15)
            check("%s: the daemon exited 0 after the drain" % label, rc == 0, rc)
    finally:
        d.stop()
        g_.stop()


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespace, TAP)")
        return 77
    write_config()
    subprocess.run(["ip", "netns", "add", NS], check=True)
    try:
        for workers in (1, 2, 3):
            try:
                run_workers(workers)
            except DaemonError as e:
                check("%d workers: daemon started" % workers, False, e)
    finally:
        subprocess.run(["ip", "netns", "del", NS])
    print("%d failure%s" % (failures, "" if failures == 1 else "s"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
