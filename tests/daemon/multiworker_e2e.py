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
import sys

from memif_harness import DaemonError, Harness, wait_for

ECMPLB, CTL, GEN = sys.argv[1:4]
H = Harness("mw", ECMPLB, CTL, GEN)
check, ctl_json, check_gen, announced = H.check, H.ctl_json, H.check_gen, H.announced
DR, GRE, UDP = "10.98.1.1:80/tcp", "10.98.1.2:80/tcp", "10.98.1.1:53/udp"


def write_config():
    def backends(base):
        return [{"id": i + 1, "address": "10.98.0.%d" % (base + i)} for i in range(4)]
    H.write_config({
        "host": {"address": "10.98.0.1", "prefix_length": 24, "announce": True,
                 "announce_interface": "lo", "drain_s": 3, "worker_stall_ms": 300},
        "conntrack": {"capacity": 65536},
        "services": [
            {"vip": "10.98.1.1", "port": 80, "protocol": "tcp", "forward": "dr",
             "backends": backends(11)},
            {"vip": "10.98.1.2", "port": 80, "protocol": "tcp", "forward": "gre",
             "backends": backends(21)},
            {"vip": "10.98.1.1", "port": 53, "protocol": "udp", "forward": "dr",
             "backends": backends(31)},
            {"vip": "10.98.1.2", "port": 81, "protocol": "tcp", "forward": "ipip",
             "backends": backends(41)},
            {"vip": "10.98.1.2", "port": 53, "protocol": "udp", "forward": "gue",
             "backends": backends(51)},
        ],
    })


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
    d = H.start_daemon(workers)
    g_ = H.gen(workers)

    def gen(_queues, service, flows, rate, seconds, check_mode="all"):
        return g_.run("--service %s --flows %d --rate %d --duration %s --check %s" % (
            service, flows, rate, seconds, check_mode))
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
    def body():
        for workers in (1, 2, 3):
            try:
                run_workers(workers)
            except DaemonError as e:
                check("%d workers: daemon started" % workers, False, e)
    write_config()
    return H.run_in_namespace(body)


if __name__ == "__main__":
    sys.exit(main())
