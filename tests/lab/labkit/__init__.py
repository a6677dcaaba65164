"""labkit: ecmplb's network-namespace lab as a library (issue 7; split up in issue 12).

  common    constants of the run, command runner, small helpers shared by every module
  procs     processes started by PID, stopped by PID, the run folders, `down`, the lab lock
  topology  namespaces, veths, the bridge, addresses, sysctls, LB hosts' cables and lo
  frr       FRR configuration rendered from frr-conf/, daemons in a namespace, vtysh queries,
            the router's routes
  daemon    the ecmplb daemon: its command line, start with a config, its start-up line,
            ecmplbctl calls, stop (also used by tests/control/*_e2e.py)
  traffic   the client (short requests, long-lived connections) and counting per LB host
  testbed   the Lab: brings everything up and drives the LB hosts' ecmplb
  checks    what scenarios assert with (expect, Failed, Skip, convergence timing)
  frames    Ethernet/IP/L4 frames built field by field, a pcap writer (tests/fuzz/make_seeds.py,
            tests/daemon/malformed_corpus.py)
"""
