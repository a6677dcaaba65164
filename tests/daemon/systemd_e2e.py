#!/usr/bin/python3
"""ecmplb under systemd's service protocol, without systemd: the packaged units and the unit's
ExecStart line against a vdev.

Usage: systemd_e2e.py ECMPLB ECMPLBCTL UNITS_DIR EXAMPLE_CONFIG
(the tree's packaging/systemd and packaging/ecmplb.json.example, or the installed package's
/lib/systemd/system and /usr/share/doc/ecmplb/examples/ecmplb.json.example: deb_e2e.sh)

- `systemd-analyze verify` accepts packaging/systemd/*.service with no message (ExecStart
  pointed at the build's binary);
- the unit's ExecStart line, with /etc/default/ecmplb's variables set for a ring vdev and
  no hugepages, is run with NOTIFY_SOCKET and WATCHDOG_USEC as systemd sets them: READY=1
  (with a STATUS) once serving, WATCHDOG=1 about twice per WatchdogSec, RELOADING=1 then
  READY=1 on SIGHUP (ExecReload), STOPPING=1 on SIGTERM (KillSignal), exit 0 after the drain;
- the example configuration is one the daemon starts with (its own TAP and socket).
Prints one line per check; the daemon is always killed.
"""
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ECMPLB, CTL, UNITS, EXAMPLE = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
PID = os.getpid()
TMP = tempfile.mkdtemp(prefix="ecmplb_systemd_")
failures = 0


def check(name, ok, detail=""):
    global failures
    print("%s: %s%s" % ("ok" if ok else "FAIL", name, "" if ok else " (%s)" % detail), flush=True)
    if not ok:
        failures += 1


def unit_value(path, key):
    with open(path) as f:
        for line in f:
            if line.startswith(key + "="):
                return line.strip().split("=", 1)[1]
    return None


def verify_units():
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        print("skip: systemd-analyze not installed")
        return
    names = []
    for name in ("ecmplb.service", "ecmplb-hugepages.service"):
        with open(os.path.join(UNITS, name)) as f:
            text = f.read().replace("/usr/bin/ecmplb", os.path.abspath(ECMPLB))
        with open(os.path.join(TMP, name), "w") as f:
            f.write(text)
        names.append("./" + name)
    p = subprocess.run([analyze, "verify"] + names, cwd=TMP, capture_output=True, text=True, timeout=60)
    check("systemd-analyze verify: no message", p.returncode == 0 and p.stdout + p.stderr == "",
          p.stdout + p.stderr)


def exec_start(config, eal_args):
    """The unit's ExecStart as systemd would run it with these variables (unquoted $VAR
    splits on whitespace)."""
    line = unit_value(os.path.join(UNITS, "ecmplb.service"), "ExecStart")
    env = {"ECMPLB_EAL_ARGS": eal_args, "ECMPLB_ARGS": "--idle-backoff"}
    argv = []
    for word in line.split():
        if word.startswith("$"):
            argv += shlex.split(env[word[1:]])
        elif word == "/etc/ecmplb/ecmplb.json":
            argv.append(config)
        elif word == "/usr/bin/ecmplb":
            argv.append(ECMPLB)
        else:
            argv.append(word)
    return argv


def main():
    verify_units()
    watchdog_sec = int(unit_value(os.path.join(UNITS, "ecmplb.service"), "WatchdogSec"))
    check("the unit has a watchdog", watchdog_sec > 0)
    # The example configuration, made to run here: its own TAP, socket and no announcing.
    with open(EXAMPLE) as f:
        config = json.load(f)
    sock_path = os.path.join(TMP, "ecmplb.sock")
    config["host"].update({"exception_interface": "esd%d" % (PID % 100000), "control_socket": sock_path,
                           "announce": False})
    config["conntrack"]["capacity"] = 4096
    config_path = os.path.join(TMP, "ecmplb.json")
    with open(config_path, "w") as f:
        json.dump(config, f)
    notify_path = os.path.join(TMP, "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(0.2)
    env = dict(os.environ, NOTIFY_SOCKET=notify_path, WATCHDOG_USEC="400000")
    eal = "-l 0,1 --no-huge -m 256 --no-pci --no-shconf --file-prefix=esd%d --log-level=error --vdev=net_ring0" % PID
    log = open(os.path.join(TMP, "daemon.log"), "w")
    proc = subprocess.Popen(exec_start(config_path, eal), env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    messages = []

    def receive(until, want=None):
        while time.time() < until:
            try:
                m = notify.recv(4096).decode()
            except socket.timeout:
                continue
            messages.append((time.time(), m))
            if want is not None and want in m:
                return True
        return False
    try:
        ready = receive(time.time() + 60, "READY=1")
        check("READY=1 with a status once serving", ready and "STATUS=serving 1 services" in messages[-1][1],
              messages[-1:] if messages else open(log.name).read())
        if not ready:
            return
        t0 = time.time()
        receive(t0 + 2.0)
        pings = [t for t, m in messages if "WATCHDOG=1" in m and t >= t0]
        check("WATCHDOG=1 about every half WATCHDOG_USEC", 7 <= len(pings) <= 14, len(pings))
        proc.send_signal(signal.SIGHUP)
        reloading = receive(time.time() + 10, "RELOADING=1")
        check("SIGHUP: RELOADING=1, then READY=1", reloading and receive(time.time() + 10, "READY=1"),
              [m for _, m in messages[-3:]])
        proc.send_signal(signal.SIGTERM)
        check("SIGTERM: STOPPING=1", receive(time.time() + 10, "STOPPING=1"), [m for _, m in messages[-3:]])
        # Go on reading, as systemd does: a full notify socket would block the daemon's sd_notify.
        deadline = time.time() + 60
        while proc.poll() is None and time.time() < deadline:
            receive(time.time() + 0.5)
        rc = proc.poll()
        check("exit 0 after the drain", rc == 0, "%s %s" % (rc, open(log.name).read()[-2000:]))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()


try:
    main()
except Exception as e:  # a crash of the script is a failure, never a leaked daemon
    check("script ran to the end", False, repr(e))
finally:
    subprocess.run(["rm", "-rf", TMP])
print("%d check(s) failed" % failures if failures else "all checks passed")
sys.exit(1 if failures else 0)
