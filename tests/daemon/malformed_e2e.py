#!/usr/bin/python3
"""Malformed traffic through the running daemon: a corpus of broken and tricky frames with
valid VIP traffic interleaved (malformed_corpus.py) replayed without end into the data port
(net_pcap, rx_pcap=CORPUS, infinite_rx=1; tx_pcap=/dev/null) for a bounded time.

Usage: malformed_e2e.py ECMPLB ECMPLBCTL [--seconds S] [--workers N] [--seed N]

Two workers, each replaying a corpus in order on its own RX queue (--rx-steering=peer: net_pcap
has no RSS): worker 0 every frame whose verdict is known (the corpus without its random
frames), worker 1 the whole corpus. Checks, with every check able to fail:
  - the daemon stays alive and `ecmplbctl stats` answers;
  - at two quiescent points (every worker held by `ecmplbctl fault stall-worker`, its
    counters unchanged over three reads), per worker and in total: rx_packets equals the sum
    of the verdict counters `stats` lists ("verdicts", dataplane/counters.h's
    kReceiveVerdicts) plus the later fragments held at that moment (fragment_held -
    fragment_released), drop_parse the sum of the parse reasons, and each total the sum of
    the workers;
  - between the two points (at least one whole pass of its corpus per worker): a worker's
    ring position is rx_packets mod N, so the frames it received are known, and each
    verdict class (a counter, "kernel" for the exception counters, a parse reason) grew by
    at least the frames of that class, and all of them together by exactly those frames plus
    the random ones: every frame in exactly one counter, each in its own, and every class of
    the corpus really seen. Worker 0 has no random frames: each class grew by exactly its
    frames;
  - SIGTERM: the daemon exits 0, with no AddressSanitizer/UBSan/LeakSanitizer report in its
    output (ASan and UBSan halt the process with a non-zero status on the first report: the
    suite 'asan' runs this against build-asan's daemon).
Runs in a network namespace of its own (the exception TAP, the neighbour entries); no
hugepages. Prints one line per check.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lab"))
sys.path.insert(0, HERE)
from labkit.daemon import Daemon, DaemonError  # noqa: E402
from labkit.frames import write_pcap  # noqa: E402
import malformed_corpus as corpus  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("ecmplb")
ap.add_argument("ecmplbctl")
ap.add_argument("--seconds", type=float, default=3.0, help="replay time between the checks")
ap.add_argument("--workers", type=int, default=2)
ap.add_argument("--seed", type=int, default=1)
ARGS = ap.parse_args()

PID = os.getpid()
NS = "ecmplb-mf%d" % (PID % 100000)
TAP = "emf%d" % (PID % 100000)
TMP = tempfile.mkdtemp(prefix="ecmplb_mf_")
SOCK = os.path.join(TMP, "ecmplb.sock")
CONFIG = os.path.join(TMP, "config.json")
PCAP = os.path.join(TMP, "corpus.pcap")
PCAP_KNOWN = os.path.join(TMP, "corpus-known.pcap")  # without the random frames
LOG = os.path.join(TMP, "daemon.log")
STALL_MS = 6000  # long enough for the stalls and three stats reads under ASan (ecmplbctl runs)
KERNEL_COUNTERS = ("exception", "exception_rate_limited", "exception_priority_limited")
ORPHAN_COUNTERS = ("fragment_timeout", "fragment_hold_full")
SANITIZER_REPORTS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "SUMMARY: UndefinedBehaviorSanitizer")
stall_end = 0.0  # when the last `fault stall-worker` ends (monotonic)
CORPORA = []  # the classes of each worker's corpus, in order (worker i: CORPORA[i % 2])
failures = 0


def check(name, ok, detail=""):
    global failures
    print("%s: %s%s" % ("ok" if ok else "FAIL", name, "" if ok else " (%s)" % (detail,)),
          flush=True)
    if not ok:
        failures += 1
    return ok


def stats(d):
    p = d.ctl("--json", "stats", timeout=10)
    if not check("ecmplbctl stats answers", p.returncode == 0, p.stderr.strip()):
        return None
    return json.loads(p.stdout)


def workers_of(s):
    return [w for w in s["workers"] if w["worker"].startswith("worker")]


def cells(s, w):
    """Worker w's verdict counters as verdict classes: `kernel` for the exception counters,
    drop_parse by reason (parse:REASON), every other verdict counter by its name."""
    c = w["counters"]
    # A held fragment is in no verdict counter until it is released (counters.h).
    out = {"kernel": 0, "fragment_orphan": c["fragment_held"] - c["fragment_released"]}
    for name in s["verdicts"]:
        if name in ORPHAN_COUNTERS:
            out["fragment_orphan"] += c[name]
        elif name == "drop_parse":
            for reason, n in w["parse"].items():
                out["parse:" + reason] = n
        elif name in KERNEL_COUNTERS:
            out["kernel"] += w["counters"][name]
        else:
            out[name] = w["counters"][name]
    return out


def quiesce(d):
    """Holds every worker (fault stall-worker) and returns `stats` once the workers'
    counters stay the same over three reads 100 ms apart (each worker between bursts), or
    None."""
    global stall_end
    # The stalls start one ecmplbctl run apart (about a second each under ASan): the reads
    # must fit before the FIRST one ends, the replay waits for the last.
    first_end = None
    for i in range(ARGS.workers):
        t = time.monotonic()
        p = d.ctl("fault", "stall-worker", str(i), "--ms", str(STALL_MS))
        if not check("stall worker %d" % i, p.returncode == 0, p.stderr.strip()):
            return None
        if first_end is None:
            first_end = t + STALL_MS / 1000.0
    stall_end = time.monotonic() + STALL_MS / 1000.0
    same, last = 0, None
    while time.monotonic() < first_end - 0.3:
        s = stats(d)
        if s is None:
            return None
        key = [w["counters"] for w in workers_of(s)]
        same = same + 1 if key == last else 0
        last = key
        if same == 2:
            return s
        time.sleep(0.1)
    check("workers held still for a stats read", False, "counters kept moving")
    return None


def check_accounting(label, s):
    """Every received frame in exactly one verdict counter, per worker and in total."""
    ok = check("%s: stats lists the verdict counters" % label,
               "drop_parse" in s.get("verdicts", []) and "forward_dr" in s.get("verdicts", []),
               s.get("verdicts"))
    for w in workers_of(s) + [{"worker": "total", "counters": s["total"]}]:
        c = w["counters"]
        # Frames held (later fragments waiting for their first one) are in no verdict yet.
        verdicts = sum(c[name] for name in s["verdicts"]) + c["fragment_held"] - \
            c["fragment_released"]
        ok &= check("%s, %s: rx_packets %d == sum of verdict counters (+ held) %d" % (
            label, w["worker"], c["rx_packets"], verdicts), c["rx_packets"] == verdicts,
            {k: c[k] for k in s["verdicts"] if c[k]})
    for w in workers_of(s):
        parse = sum(w["parse"].values())
        ok &= check("%s, %s: drop_parse %d == sum of parse reasons %d" % (
            label, w["worker"], w["counters"]["drop_parse"], parse),
            w["counters"]["drop_parse"] == parse)
    bad = [n for n, total in s["total"].items()
           if total != sum(w["counters"][n] for w in s["workers"])]
    ok &= check("%s: totals are the workers' sums" % label, not bad, bad[:5])
    return ok


def expected(classes, start, count):
    """Frames of each class among `count` frames from ring position `start` on."""
    n = len(classes)
    out = {}
    passes, rest = divmod(count, n)
    for cls in classes:
        out[cls] = out.get(cls, 0) + passes
    for i in range(rest):
        cls = classes[(start + i) % n]
        out[cls] = out.get(cls, 0) + 1
    return out


def check_window(s0, s1, corpora):
    """Between two quiescent points: each class grew by at least its frames, all of them by
    exactly the frames received. corpora[i]: the classes of worker i's frames, in order."""
    for i, (w0, w1) in enumerate(zip(workers_of(s0), workers_of(s1))):
        classes = corpora[i % len(corpora)]
        n = len(classes)
        name = w1["worker"]
        rx0, rx1 = w0["counters"]["rx_packets"], w1["counters"]["rx_packets"]
        if not check("%s: replayed the whole corpus (%d frames) at least once: %d" % (
                name, n, rx1 - rx0), rx1 - rx0 >= n):
            continue
        exp = expected(classes, rx0 % n, rx1 - rx0)
        c0, c1 = cells(s0, w0), cells(s1, w1)
        got = {k: c1[k] - c0.get(k, 0) for k in c1}
        unknown = sorted(k for k in exp if k != corpus.ANY and k not in got)
        check("%s: every corpus class has a counter" % name, not unknown, unknown)
        short = {k: (got.get(k, 0), e) for k, e in exp.items()
                 if k != corpus.ANY and got.get(k, 0) < e}
        check("%s: each class counted at least its frames (%d classes, %d frames)" % (
            name, len(exp) - (corpus.ANY in exp), rx1 - rx0), not short,
            "class: (counted, frames) %s" % short)
        definite = sum(e for k, e in exp.items() if k != corpus.ANY)
        surplus = sum(got.values()) - definite
        over = {k: (n, exp.get(k, 0)) for k, n in got.items() if n > exp.get(k, 0)}
        check("%s: beyond those, the counters grew by exactly the random frames (%d)" % (
            name, exp.get(corpus.ANY, 0)), surplus == exp.get(corpus.ANY, 0),
            "surplus %d; class: (counted, frames) %s" % (surplus, over))


def setup_neighbors():
    """The backends' MACs, as an operator's kernel would learn them (all but one)."""
    for i, ip in enumerate(corpus.RESOLVED):
        subprocess.run(["ip", "-n", NS, "neigh", "replace", ip, "lladdr",
                        "02:be:00:00:00:%02x" % (i + 1), "dev", TAP, "nud", "permanent"],
                       check=True)


def run(d):
    t_start = time.monotonic()
    try:
        d.start(timeout=90)
    except DaemonError as e:
        check("daemon started", False, e)
        return
    link = json.loads(subprocess.run(["ip", "-n", NS, "-j", "link", "show", TAP],
                                     capture_output=True, text=True, check=True).stdout)
    check("the TAP has the data port's MAC, the corpus's destination",
          link[0]["address"] == corpus.PORT_MAC.hex(":"), link[0]["address"])
    # host.address6 on the TAP at once (no duplicate address detection), no router
    # advertisements accepted.
    addrs = json.loads(subprocess.run(["ip", "-n", NS, "-j", "-6", "addr", "show", "dev", TAP],
                                      capture_output=True, text=True, check=True).stdout)
    six = [a for a in addrs[0]["addr_info"] if a["local"] == corpus.HOST6] if addrs else []
    check("the TAP has host.address6/64, not tentative",
          len(six) == 1 and six[0]["prefixlen"] == 64 and not six[0].get("tentative"), addrs)
    ra = subprocess.run(["ip", "netns", "exec", NS, "sysctl", "-n",
                         "net.ipv6.conf.%s.accept_ra" % TAP], capture_output=True, text=True)
    check("the TAP accepts no router advertisements", ra.stdout.strip() == "0", ra.stdout)
    setup_neighbors()
    time.sleep(0.5)  # the neighbour sync runs every 100 ms
    s0 = quiesce(d)
    if s0 is None or not check_accounting("first read", s0):
        return
    time.sleep(max(0.0, stall_end - time.monotonic()) + ARGS.seconds)  # the stall's rest, replay
    if not check("the daemon is alive after %.1f s of replay" % ARGS.seconds, d.running()):
        return
    s1 = quiesce(d)
    if s1 is None:
        return
    check_accounting("second read", s1)
    check_window(s0, s1, CORPORA)
    p = d.ctl("show")
    check("ecmplbctl show answers", p.returncode == 0, p.stderr.strip())
    total = s1["total"]
    print("replayed %d frames in %.1f s (%d forwarded DR, %d GRE, %d to the kernel or over "
          "its budget, %d malformed)" % (
              total["rx_packets"], time.monotonic() - t_start, total["forward_dr"],
              total["forward_gre"], sum(total[k] for k in KERNEL_COUNTERS),
              total["drop_parse"]), flush=True)
    d.send_signal(signal.SIGTERM)
    rc = d.wait(30)
    log = d.log(100000)
    check("SIGTERM: the daemon exits 0", rc == 0, "%s: %s" % (rc, log[-4000:]))
    m = re.search(r"ecmplb: stopped; workers received (\d+) ", log)
    check("the daemon's final line counts at least the frames of the second read",
          m is not None and int(m.group(1)) >= total["rx_packets"], log[-600:])
    reports = [r for r in SANITIZER_REPORTS if r in log]
    check("no sanitizer report", not reports, "%s: %s" % (reports, log[-4000:]))
    return True


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespace, TAP)")
        return 77
    # Halt on the first sanitizer report (a non-zero exit); harmless without sanitizers.
    os.environ["ASAN_OPTIONS"] = "halt_on_error=1:detect_leaks=1:" + os.environ.get(
        "ASAN_OPTIONS", "")
    os.environ["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1:" + os.environ.get(
        "UBSAN_OPTIONS", "")
    frames = corpus.build(ARGS.seed)
    known = [(cls, fr) for cls, fr in frames if cls != corpus.ANY]
    write_pcap(PCAP, [fr for _, fr in frames])
    write_pcap(PCAP_KNOWN, [fr for _, fr in known])
    classes = [cls for cls, _ in frames]
    CORPORA[:] = [[cls for cls, _ in known], classes]
    with open(CONFIG, "w") as f:
        json.dump(corpus.config(TAP, SOCK), f)
    print("corpus: %d frames (%d random), seed %d, %s" % (
        len(frames), classes.count(corpus.ANY), ARGS.seed, PCAP), flush=True)
    # One RX queue per worker replaying a corpus (even queues the known frames, odd ones the
    # whole corpus); one TX queue per worker plus the exception path's, written to /dev/null.
    # (Without tx_pcap net_pcap makes one dropping TX queue per rx_pcap, but an rx_pcap
    # beyond the queues the daemon configures leaks its pcap handle: LeakSanitizer says so.)
    pcaps = [PCAP_KNOWN if k % 2 == 0 else PCAP for k in range(ARGS.workers)]
    vdev = "net_pcap0,%s,%s,infinite_rx=1" % (
        ",".join("rx_pcap=" + p for p in pcaps),
        ",".join(["tx_pcap=/dev/null"] * (ARGS.workers + 1)))
    subprocess.run(["ip", "netns", "add", NS], check=True)
    d = Daemon(ARGS.ecmplb, ARGS.ecmplbctl, CONFIG, SOCK, "mf%d" % PID, LOG, vdev=vdev,
               mem_mb=512, ns=NS)
    i = d.cmd.index("-l")
    d.cmd[i:i + 2] = ["--lcores", ",".join(["0@0"] + ["%d@%d" % (k + 1, (k + 1) % 2)
                                                      for k in range(ARGS.workers)])]
    d.cmd += ["--rx-steering", "peer"]
    try:
        if not run(d) and failures == 0:
            check("the test ran to its end", False, "it stopped early without a failure")
        if failures and d.proc is not None:
            # A failure may come from a dying daemon (a sanitizer report takes a while to
            # print): give it a moment, then show how it ended.
            rc = d.wait(5)
            if rc not in (None, 0):
                check("the daemon did not die", False, "exit status %s" % rc)
            print("daemon log (end):\n%s" % d.log(4000), flush=True)
    finally:
        d.stop()
        subprocess.run(["ip", "netns", "del", NS])
    if failures == 0:
        shutil.rmtree(TMP, ignore_errors=True)
    else:
        print("daemon log, corpus and config kept in %s" % TMP)
    print("%d failure%s" % (failures, "" if failures == 1 else "s"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
