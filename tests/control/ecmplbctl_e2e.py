#!/usr/bin/python3
"""ecmplbctl end to end against the real ecmplb daemon on a ring vdev (--no-huge).

Usage: ecmplbctl_e2e.py ECMPLB ECMPLBCTL

Starts the daemon with a temporary config (unique TAP name, control socket in a temp dir),
runs every subcommand, parses their --json output, checks error exits and their one-line
messages, edits the config file under it (a save must not overwrite the edit; SIGHUP and
`config reload` apply it; bad files are refused whole), then SIGKILLs the daemon after a change, restarts it and checks that
`config dump` is unchanged; restarted with host.control groups, runs ecmplbctl as uid 65534
(read-only group: reads, refused changes; admin group: changes; refusals in the log). Prints one line per check; the daemon is always killed.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
from labkit.daemon import Daemon, DaemonError  # noqa: E402  (the daemon launcher the lab uses)

ECMPLB, CTL = sys.argv[1], sys.argv[2]
PID = os.getpid()
NET = 200 + PID % 50          # 10.NET.x.x: unlikely to collide with the lab
TAP = "ectl%d" % (PID % 100000)
TMP = tempfile.mkdtemp(prefix="ecmplbctl_e2e_")
SOCK = os.path.join(TMP, "run", "ecmplb.sock")
CONFIG = os.path.join(TMP, "config.json")
VIP = "10.%d.1.1:80/tcp" % NET
BE1, BE2 = "10.%d.0.21" % NET, "10.%d.0.22" % NET
failures = 0


def check(name, ok, detail=""):
    global failures
    print("%s: %s%s" % ("ok" if ok else "FAIL", name, "" if ok else " (%s)" % detail), flush=True)
    if not ok:
        failures += 1


def ctl(*args, json_out=True):
    p = daemon.ctl(*args, *(["--json"] if json_out else []))
    out = None
    if json_out and p.returncode == 0:
        try:
            out = json.loads(p.stdout)
        except ValueError:
            out = None
    return p.returncode, out, p.stdout, p.stderr


daemon = Daemon(ECMPLB, CTL, CONFIG, SOCK, "ectl%d" % PID, os.path.join(TMP, "daemon.log"))


def start():
    """Starts the daemon and waits for its start-up line (it serves the socket by then)."""
    try:
        daemon.start(timeout=60)
    except DaemonError:
        pass  # the checks below say what is wrong, with the log


def daemon_log():
    return daemon.log()


def reload_checks():
    """The operator's file: an edit is never overwritten by a save; SIGHUP and `config reload`
    apply it; a bad file or one changing a restart-only field is refused whole."""
    time.sleep(0.5)  # the deferred saves of the changes above are written by now
    with open(CONFIG) as f:
        config = json.load(f)
    svc = [s for s in config["services"] if s["vip"] == VIP.split(":")[0]][0]
    for b in svc["backends"]:
        if b["address"] == BE1:
            b["weight"] = 5
    svc["backends"].append({"id": 9, "address": "10.%d.0.29" % NET})
    edited = json.dumps(config, indent=1)
    with open(CONFIG, "w") as f:
        f.write(edited)
    rc, _, _, err = ctl("backend", "set", VIP, BE1, "--weight", "9")
    check("a change after an edit is applied", rc == 0, err)
    time.sleep(0.5)
    rc, out, _, err = ctl("show")
    save = out.get("config_save", {}) if rc == 0 else {}
    with open(CONFIG) as f:
        kept = f.read()
    check("its save does not overwrite the edit, and show says why",
          kept == edited and "was edited since ecmplb last read or wrote it" in save.get("error", ""),
          save)
    check("the refused save is logged", "was edited since ecmplb last read or wrote it" in daemon_log(),
          daemon_log())

    def weights():
        rc, out, _, _ = ctl("config", "dump")
        if rc != 0:
            return {}
        return {b["address"]: b["weight"] for s in out["services"] if s["vip"] == VIP.split(":")[0]
                for b in s["backends"]}
    daemon.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while time.time() < deadline and weights().get(BE1) != 5:
        time.sleep(0.1)
    w = weights()
    check("SIGHUP applies the file (the live weight 9 is not in it)",
          w.get(BE1) == 5 and w.get("10.%d.0.29" % NET) == 1, w)
    check("SIGHUP reload logged", "config reload: 0 services added, 0 removed, 1 changed" in daemon_log(),
          daemon_log())
    with open(CONFIG) as f:
        check("a reload does not rewrite the file", f.read() == edited)

    def refused(text, mentions, name):
        with open(CONFIG, "w") as f:
            f.write(text)
        before = weights()
        rc, _, _, err = ctl("config", "reload", json_out=False)
        check(name, rc == 1 and err.count("\n") == 1 and mentions in err
              and "config reload refused, running configuration kept" in err
              and weights() == before and daemon.running(), err)
    bad = json.loads(edited)
    [s for s in bad["services"] if s["vip"] == VIP.split(":")[0]][0]["backends"][0]["weight"] = "heavy"
    refused(json.dumps(bad), "backends[0].weight", "a file that does not validate is refused with its field")
    moved = json.loads(edited)
    moved["host"]["address"] = "10.%d.0.12" % NET
    moved["conntrack"]["capacity"] = 8192
    refused(json.dumps(moved), "changes conntrack.capacity, host.address, which only a restart applies",
            "restart-only fields are refused by name")
    ok = json.loads(edited)
    [s for s in ok["services"] if s["vip"] == VIP.split(":")[0]][0]["backends"][0]["weight"] = 4
    with open(CONFIG, "w") as f:
        json.dump(ok, f)
    rc, _, text, err = ctl("config", "reload", json_out=False)
    check("config reload: text reply", rc == 0 and text.startswith("ok: reloaded: 0 services added, 0 removed, "
                                                                    "1 changed"), text + err)
    rc, out, _, err = ctl("config", "reload")
    check("config reload --json of an unchanged file", rc == 0 and out["reloaded"] is True
          and out["services_changed"] == 0 and out["services_rebuilt"] == 0, out or err)


def main():
    with open(CONFIG, "w") as f:
        json.dump({"host": {"address": "10.%d.0.11" % NET, "prefix_length": 16, "exception_interface": TAP,
                            "control_socket": SOCK,
                            # the VIPs are not this test's business: none on the machine's lo
                            "announce": False},
                   "conntrack": {"capacity": 4096},
                   "services": [{"vip": "10.%d.1.2" % NET, "port": 53, "protocol": "udp",
                                 "backends": [{"id": 1, "address": BE1}]}]}, f)
    start()
    check("daemon starts and serves the socket", daemon.running() and os.path.exists(SOCK), daemon_log())
    if not daemon.running():
        return
    # 4096 flows fit the 256 MB DPDK heap: the table is taken from DPDK memory, and the
    # start-up line says so.
    check("start-up line: connection tables in DPDK memory",
          "connection tables in DPDK memory" in daemon_log(), daemon_log())
    mode = os.stat(SOCK).st_mode & 0o777
    check("socket mode 0600", mode == 0o600, oct(mode))

    rc, out, _, _ = ctl("service", "list")
    check("service list --json", rc == 0 and [s["service"] for s in out["services"]] == ["10.%d.1.2:53/udp" % NET],
          out)
    rc, out, _, err = ctl("service", "add", VIP, "--forward", "dr", "--hash", "5tuple", "--table-size", "251")
    check("service add", rc == 0 and out["service"] == VIP, err)
    rc, _, _, err = ctl("service", "add", VIP)
    check("service add duplicate exits 1 with one line", rc == 1 and err.count("\n") == 1 and "already exists" in err,
          err)
    rc, out, _, err = ctl("backend", "add", VIP, BE1, "--weight", "2")
    check("backend add gets id 1", rc == 0 and out["backend_id"] == 1, err)
    rc, out, _, err = ctl("backend", "add", VIP, BE2 + ":80")
    check("backend add ADDRESS:PORT gets id 2", rc == 0 and out["backend_id"] == 2, err)
    rc, _, _, err = ctl("backend", "add", "10.1.1.1:80/tcp", BE1)
    check("backend add to unknown service: exact message",
          rc == 1 and err == "ecmplbctl: backend add: service 10.1.1.1:80/tcp not found\n", err)
    rc, _, _, err = ctl("backend", "add", VIP, "10.%d.0.23" % NET, "--weight", "70000")
    check("bad weight refused", rc != 0 and err.count("\n") == 1, err)
    rc, out, _, err = ctl("backend", "set", VIP, BE2, "--weight", "0")
    check("backend set --weight 0", rc == 0, err)
    rc, out, _, err = ctl("show")
    svc = [s for s in out["services"] if s["service"] == VIP][0] if rc == 0 else {}
    bes = {b["id"]: b for b in svc.get("backends", [])}
    check("show: weights, states and Maglev slots",
          bes.get(1, {}).get("maglev_slots") == 251 and bes.get(2, {}).get("maglev_slots") == 0
          and bes[2]["state"] == "draining" and bes[1]["weight"] == 2 and svc["state"] == "serving", svc)
    rc, out, _, err = ctl("lookup", VIP, "--client", "192.0.2.7:40000")
    check("lookup", rc == 0 and out["backend"]["address"] == BE1 and out["tracked"] is False, out or err)
    rc, _, _, err = ctl("lookup", VIP, "--client", "192.0.2.7")
    check("lookup without client port refused", rc == 1 and err.count("\n") == 1, err)
    rc, out, _, err = ctl("stats")
    check("stats: workers, drops by reason incl. parse counters",
          rc == 0 and out["workers"][0]["worker"] == "worker0" and "parse_truncated_ip" in out["drops"]
          and "no_backend" in out["drops"] and any(s["service"] == VIP for s in out["services"]), err)
    rc, out, _, err = ctl("conns", "--limit", "5")
    check("conns", rc == 0 and out["total"] == 0 and out["flows"] == [], out or err)
    rc, out, _, err = ctl("service", "add", "[2001:db8::1]:80/tcp")
    check("IPv6 service add", rc == 0 and out["service"] == "[2001:db8::1]:80/tcp", err)
    rc, out, _, err = ctl("backend", "add", "[2001:db8::1]:80/tcp", "[2001:db8::21]:80")
    check("IPv6 backend add", rc == 0 and out["backend_id"] == 1, err)
    rc, out, _, err = ctl("config", "dump")
    check("config dump --json is the config file format",
          rc == 0 and any(s["vip"] == "2001:db8::1" for s in out["services"]) and out["host"]["control_socket"] == SOCK,
          err)
    rc, _, text, err = ctl("config", "dump", json_out=False)
    with open(CONFIG) as f:
        saved = f.read()
    check("config dump equals the saved file", rc == 0 and json.loads(text) == json.loads(saved), err)
    for args in (["show"], ["stats"], ["conns"], ["service", "list"], ["lookup", VIP, "--client", "192.0.2.7:1"]):
        rc, _, text, err = ctl(*args, json_out=False)
        check("text output: " + " ".join(args[:2]), rc == 0 and text.strip() != "", err)
    rc, out, _, err = ctl("backend", "del", VIP, BE2)
    check("backend del", rc == 0 and out["backend_id"] == 2, err)
    rc, out, _, err = ctl("backend", "add", VIP, "10.%d.0.23" % NET)
    check("removed id is not reused", rc == 0 and out["backend_id"] == 3, out or err)
    rc, _, _, err = ctl("backend", "del", VIP, BE2)
    check("backend del again: not found", rc == 1 and "not found" in err, err)
    rc, out, _, err = ctl("service", "del", "[2001:db8::1]:80/tcp")
    check("service del", rc == 0, err)
    rc, _, _, err = ctl("service", "bogus")
    check("usage error exits 2 with one line", rc == 2 and err.count("\n") == 1, err)
    p = subprocess.run([CTL, "--socket", os.path.join(TMP, "nope.sock"), "show"], capture_output=True, text=True)
    check("no daemon: exit 1, one line", p.returncode == 1 and p.stderr.count("\n") == 1
          and p.stderr.startswith("ecmplbctl: show: cannot connect"), p.stderr)

    reload_checks()

    # Persistence: a change, SIGKILL, restart: same running configuration.
    rc, _, _, err = ctl("backend", "set", VIP, BE1, "--weight", "7")
    rc2, before, _, _ = ctl("config", "dump")
    daemon.stop(signal.SIGKILL)
    start()
    rc3, after, _, err = ctl("config", "dump")
    check("restart after SIGKILL resumes the running configuration",
          rc == 0 and rc2 == 0 and rc3 == 0 and before == after
          and [b["weight"] for s in after["services"] if s["vip"] == VIP.split(":")[0] for b in s["backends"]][0] == 7,
          err or daemon_log())
    check("daemon still running", daemon.running(), daemon_log())

    # Access: restarted with host.control groups (standard Debian ones: daemon gets every
    # command, nogroup, nobody's primary group, the reads); ecmplbctl run as uid 65534.
    daemon.stop(signal.SIGKILL)
    with open(CONFIG) as f:
        config = json.load(f)
    config["host"]["control"] = {"group": "daemon", "read_only_group": "nogroup"}
    with open(CONFIG, "w") as f:
        json.dump(config, f)
    os.chmod(TMP, 0o755)  # nobody must reach the socket
    start()
    mode = os.stat(SOCK).st_mode & 0o777 if os.path.exists(SOCK) else None
    check("both groups: socket mode 0666", mode == 0o666, "%s %s" % (oct(mode or 0), daemon_log()))

    def as_nobody(gid, *args):
        return subprocess.run(["setpriv", "--reuid=65534", "--regid=%d" % gid, "--clear-groups",
                               CTL, "--socket", SOCK] + list(args), capture_output=True, text=True)
    p = as_nobody(65534, "show", "--json")
    check("read-only group: show", p.returncode == 0 and "services" in json.loads(p.stdout or "{}"),
          p.stderr)
    p = as_nobody(65534, "backend", "set", VIP, BE1, "--weight", "3")
    check("read-only group: backend set refused, exact message",
          p.returncode == 1 and p.stderr == "ecmplbctl: backend set: permission denied: uid 65534 "
          "(gid 65534) may not run 'backend set'; only root or group 'daemon' may change state "
          "(read-only group 'nogroup' may only read)\n", p.stderr)
    p = as_nobody(65533, "stats")
    check("no group: stats refused", p.returncode == 1 and "permission denied: uid 65534 (gid 65533)"
          " may not run 'stats'" in p.stderr, p.stderr)
    p = as_nobody(1, "backend", "set", VIP, BE1, "--weight", "3")
    check("admin group: backend set", p.returncode == 0, p.stderr)
    log = daemon_log()
    check("refusals logged with pid, uid and gid",
          "ecmplb: control socket: refused 'backend set' to pid " in log
          and "uid 65534 gid 65534: permission denied" in log
          and "ecmplb: control socket: refused 'stats' to pid " in log, log)


try:
    main()
except Exception as e:  # a crash of the script is a failure, never a leaked daemon
    check("script ran to the end", False, repr(e))
finally:
    daemon.stop(signal.SIGKILL)
    subprocess.run(["rm", "-rf", TMP])
print("%d check(s) failed" % failures if failures else "all checks passed")
sys.exit(1 if failures else 0)
