"""What the daemon e2e tests over memif share: a namespace of their own, the daemon on a memif
server port (--no-huge), ecmplb-gen on the client side running trials read from stdin, and a
checker that counts failures.

Usage (see multiworker_e2e.py, scale_e2e.py):
  h = Harness("mw", ECMPLB, CTL, GEN)   # names derived from the prefix and the PID
  h.write_config(cfg)                   # cfg's host section gets the TAP and socket filled in
  d = h.start_daemon(workers=1)
  g = h.gen(queues=1); out = g.run("--service ... --flows ...")
"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
from labkit.daemon import Daemon, DaemonError  # noqa: E402,F401

LB_MAC = "02:ec:00:00:00:01"


def read_tail(path, n=600):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


def wait_for(pred, timeout=5.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def lcores(workers):
    # main lcore on CPU 0; workers alternate CPU 1 and CPU 0 (oversubscribed: idle back-off).
    return ",".join(["0@0"] + ["%d@%d" % (i + 1, (i + 1) % 2) for i in range(workers)])


class Harness:
    def __init__(self, prefix, ecmplb, ctl, gen):
        self.ecmplb, self.ctl_path, self.gen_path = ecmplb, ctl, gen
        pid = os.getpid()
        self.pid, self.prefix = pid, prefix
        self.ns = "ecmplb-%s%d" % (prefix, pid % 100000)
        self.tap = "e%s%d" % (prefix, pid % 100000)
        self.memif = "/ecmplb-%s%d.memif" % (prefix, pid)
        self.tmp = tempfile.mkdtemp(prefix="ecmplb_%s_" % prefix)
        self.config = os.path.join(self.tmp, "config.json")
        self.sock = os.path.join(self.tmp, "ecmplb.sock")
        self.failures = 0

    def check(self, name, ok, detail=""):
        print("%s: %s%s" % ("ok" if ok else "FAIL", name, "" if ok else " (%s)" % detail),
              flush=True)
        if not ok:
            self.failures += 1
        return ok

    def write_config(self, cfg):
        cfg["host"].update({"exception_interface": self.tap, "control_socket": self.sock})
        with open(self.config, "w") as f:
            json.dump(cfg, f)

    def start_daemon(self, workers, mem_mb=512, timeout=60):
        d = Daemon(self.ecmplb, self.ctl_path, self.config, self.sock,
                   "%s%d" % (self.prefix, self.pid), os.path.join(self.tmp, "daemon.log"),
                   vdev="net_memif0,role=server,socket=%s,mac=%s" % (self.memif, LB_MAC),
                   mem_mb=mem_mb, ns=self.ns)
        i = d.cmd.index("-l")
        d.cmd[i:i + 2] = ["--lcores", lcores(workers)]
        d.cmd += ["--rx-steering", "peer"]
        d.start(timeout=timeout)
        out = subprocess.run([self.gen_path, "--", "--config", self.config, "--neighbors"],
                             capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            ip, mac = line.split()
            subprocess.run(["ip", "-n", self.ns, "neigh", "replace", ip, "lladdr", mac, "dev",
                            self.tap, "nud", "permanent"], check=True)
        time.sleep(0.5)  # neighbour sync: every 100 ms
        return d

    def gen(self, queues):
        return Gen(self, queues)

    def ctl_json(self, d, *args):
        p = d.ctl("--json", *args)
        if p.returncode != 0:
            self.check("ecmplbctl %s" % " ".join(args), False, p.stderr.strip())
            return None
        return json.loads(p.stdout)

    def check_gen(self, label, g, expect_all=True):
        if g is None:
            return False
        c = g["check"]
        ok = self.check("%s: checker: no wrong backend, moved flow or corrupt frame" % label,
                        c["errors"] == 0 and c["ok"] > 0, c)
        if expect_all:
            ok &= self.check("%s: nothing lost (tx %d, rx %d)" % (label, g["tx"]["packets"],
                                                                  g["rx"]["test_packets"]),
                             g["loss"]["packets"] == 0, g["loss"])
        return ok

    def announced(self, vip):
        out = subprocess.run(["ip", "-n", self.ns, "-o", "addr", "show", "dev", "lo"],
                             capture_output=True, text=True).stdout
        return (" %s/32 " % vip) in out

    def run_in_namespace(self, body):
        """Creates the namespace, runs body(), deletes it; returns the exit status (77: not root)."""
        if os.geteuid() != 0:
            print("SKIP: needs root (network namespace, TAP)")
            return 77
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        try:
            body()
        finally:
            subprocess.run(["ip", "netns", "del", self.ns])
        print("%d failure%s" % (self.failures, "" if self.failures == 1 else "s"))
        return 1 if self.failures else 0


class Gen:
    """ecmplb-gen with --trials-from-stdin: one memif connection for all the runs against one
    daemon. Stopped after the daemon: between trials it waits on stdin and polls nothing (a
    memif peer that disconnects while the other side polls can crash DPDK 22.11's memif)."""

    def __init__(self, h, queues):
        self.h = h
        cmd = ["ip", "netns", "exec", h.ns, h.gen_path, "--lcores", "0@0", "--no-huge", "-m",
               "512", "--no-pci", "--file-prefix", "%sgen%d" % (h.prefix, h.pid),
               "--log-level=error", "--vdev=net_memif0,role=client,socket=%s" % h.memif, "--",
               "--config", h.config, "--dst-mac", LB_MAC, "--queues", str(queues),
               # ecmplb sends on one TX queue per worker and the exception path's: a ring each.
               "--rx-queues", str(queues + 1), "--json", "--trials-from-stdin"]
        if queues > 1:
            cmd += ["--steer", "softrss"]
        self.err = open(os.path.join(h.tmp, "gen.log"), "a")
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.err, text=True, bufsize=1)

    def run(self, line):
        try:
            self.p.stdin.write(line + "\n")
            self.p.stdin.flush()
            text = self.p.stdout.readline()
        except OSError:
            text = ""
        out = json.loads(text) if text else {"error": "ecmplb-gen exited"}
        if "error" in out:
            self.h.check("ecmplb-gen ran '%s'" % line, False, out["error"] + ": " + read_tail(
                os.path.join(self.h.tmp, "gen.log")))
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
