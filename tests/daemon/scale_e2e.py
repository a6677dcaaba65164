#!/usr/bin/python3
"""The real daemon with thousands of services (issue 19), driven by ecmplb-gen over memif.

Usage: scale_e2e.py ECMPLB ECMPLBCTL ECMPLB_GEN

4,096 TCP services (512 VIPs x 8 ports, 4 backends each from a shared pool of 16, table sizes
as `service add --expected-backends 4` would choose them) and one UDP service. Checks:
  - every frame of flows spread over all TCP services comes back at its expected backend
    (the generator's checker, which builds the same Maglev tables), nothing lost;
  - one service changes under traffic (a backend added to the UDP service while the generator
    sends to every TCP service): the reply says one service was rebuilt, the generator sees no
    wrong backend and no loss during the change, and every tracked TCP flow keeps its backend
    (`ecmplbctl conns` before and after);
  - `show --service` and `stats --service` answer for one service of 4,097.
The backends' neighbour entries are added after the daemon started (memif_harness): they reach
the workers through neighbour events (the periodic dump runs every 10 s), before the first
trial 0.5 s later, or its frames would be dropped (unresolved) and counted as lost.
"""
import sys
import threading
import time

from memif_harness import DaemonError, Harness

ECMPLB, CTL, GEN = sys.argv[1:4]
H = Harness("sc", ECMPLB, CTL, GEN)
check = H.check
VIPS, PORTS, POOL = 512, 8, 16
UDP = "10.97.255.1:53/udp"
FLOWS = 16384


def next_prime(n):
    def prime(m):
        return m > 1 and all(m % d for d in range(2, int(m ** 0.5) + 1))
    while not prime(n):
        n += 1
    return n


def write_config():
    table = next_prime(100 * 4)
    services = []
    for v in range(VIPS):
        for p in range(PORTS):
            i = v * PORTS + p
            services.append({
                "vip": "10.97.%d.%d" % (v // 256, v % 256), "port": 80 + p, "protocol": "tcp",
                "table_size": table,
                "backends": [{"id": k + 1, "address": "10.98.0.%d" % (11 + (i + k) % POOL)}
                             for k in range(4)]})
    services.append({"vip": "10.97.255.1", "port": 53, "protocol": "udp", "table_size": table,
                     "backends": [{"id": k + 1, "address": "10.98.0.%d" % (11 + k)}
                                  for k in range(4)]})
    H.write_config({"host": {"address": "10.98.0.1", "prefix_length": 24},
                    "conntrack": {"capacity": 65536}, "services": services})


def tracked(d):
    conns = H.ctl_json(d, "conns", "--limit", "100000")
    if conns is None:
        return {}
    return {(f["service"], f["client"]): f["backend"] for f in conns["flows"]
            if f["service"].endswith("/tcp")}


def run():
    write_config()
    d = H.start_daemon(1, timeout=90)
    g = H.gen(1)
    try:
        trial = "--proto tcp --flows %d --rate 30000 --duration %s --check all"
        out = g.run(trial % (FLOWS, 1.5))
        if not H.check_gen("4,096 services", out):
            st = H.ctl_json(d, "stats")
            if st:
                print("daemon drops: %s" % {k: v for k, v in st["total"].items()
                                            if v and (k.startswith("drop") or "full" in k)})
        before = tracked(d)
        services = {s for s, _ in before}
        check("flows tracked on many services (%d flows, %d services)" % (len(before),
                                                                           len(services)),
              len(before) >= FLOWS * 9 // 10 and len(services) > 3000)

        # One service changes while the generator sends to every other one.
        reply = {}

        def change():
            time.sleep(0.8)
            reply["r"] = H.ctl_json(d, "backend", "add", UDP, "10.98.0.30")
        t = threading.Thread(target=change)
        t.start()
        out = g.run(trial % (FLOWS, 2.5))
        t.join()
        lost = out is not None and out["loss"]["packets"] != 0
        r = reply.get("r") or {}
        check("the change rebuilt one service of 4,097 (%s)" % r.get("services_rebuilt"),
              r.get("services_rebuilt") == 1, r)
        H.check_gen("4,096 services while another changed", out)
        if lost:
            st = H.ctl_json(d, "stats")
            if st:
                print("daemon drops: %s" % {k: v for k, v in st["total"].items()
                                            if v and (k.startswith("drop") or "full" in k)})
        after = tracked(d)
        moved = [k for k, b in before.items() if k in after and after[k] != b]
        check("no tracked TCP flow changed backend (%d compared)" %
              len(set(before) & set(after)), not moved and len(set(before) & set(after)) > 0,
              moved[:5])

        show = H.ctl_json(d, "show", "--service", UDP)
        check("show --service: one service, its 5 backends",
              show is not None and len(show["services"]) == 1 and
              len(show["services"][0]["backends"]) == 5, show and show["services"][:1])
        stats = H.ctl_json(d, "stats", "--service", "10.97.1.255:87/tcp")
        check("stats --service: one service", stats is not None and len(stats["services"]) == 1)
    finally:
        d.stop()
        g.stop()


def main():
    def body():
        try:
            run()
        except DaemonError as e:
            check("daemon started with 4,097 services", False, e)
    return H.run_in_namespace(body)


if __name__ == "__main__":
    sys.exit(main())
