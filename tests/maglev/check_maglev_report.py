#!/usr/bin/python3
"""Checks bench/maglev/maglev_report end to end: its JSON, --remove, --dump,
and its one-line errors. Usage: check_maglev_report.py PATH_TO_maglev_report
"""
import json
import os
import subprocess
import sys
import tempfile

TOOL = sys.argv[1]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what)


def run(*args):
    p = subprocess.run([TOOL, *args], capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout, p.stderr


def report(*args):
    rc, out, err = run(*args)
    check(rc == 0, f"{args}: exit {rc}, stderr {err!r}")
    lines = out.strip().splitlines()
    check(len(lines) == 1, f"{args}: want one JSON line, got {out!r}")
    return json.loads(lines[0]) if rc == 0 and lines else {}


BACKENDS = """# pool A
10.0.0.1:80 1
10.0.0.2:80 2   # heavier
10.0.0.3 3

[2001:db8::1]:8080 2
2001:db8::2 1
10.0.0.9:80 0   # draining
"""
NAMES = {"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:0", "[2001:db8::1]:8080",
         "[2001:db8::2]:0"}

with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "backends.txt")
    with open(path, "w") as f:
        f.write(BACKENDS)

    j = report("--backends-file", path, "--repeat", "1")
    for key in ("table_size", "backends", "build_ms", "max_over_mean",
                "min_over_mean"):
        check(key in j, f"JSON lacks {key}: {j}")
    check(j.get("table_size") == 65537, f"table_size {j}")
    check(j.get("backends") == 6, f"backends {j}")
    check(j.get("usable_backends") == 5, f"usable_backends {j}")
    check(isinstance(j.get("build_ms"), float) and j["build_ms"] >= 0,
          f"build_ms {j}")
    check(1.0 <= j.get("max_over_mean", 0) <= 1.01, f"max_over_mean {j}")
    check(0.99 <= j.get("min_over_mean", 0) <= 1.0, f"min_over_mean {j}")
    check("moved_fraction" not in j, f"no --remove, no moved_fraction: {j}")

    j = report("--backends-file", path, "--remove", "2", "--table-size",
               "655373", "--repeat", "1")
    check(j.get("table_size") == 655373, f"table_size {j}")
    check(j.get("removed") == 2, f"removed {j}")
    # The last two lines are 2001:db8::2 (weight 1 of 9) and a drained one.
    check(abs(j.get("min_moved_fraction", 0) - 1 / 9) < 0.01,
          f"min_moved_fraction {j}")
    check(j.get("min_moved_fraction", 1) <= j.get("moved_fraction", 0) < 0.3,
          f"moved_fraction {j}")

    j = report("--backends", "100", "--repeat", "3")
    check(j.get("backends") == 100, f"synthetic backends {j}")
    check(j.get("max_over_mean", 9) <= 1.01, f"synthetic balance {j}")

    # --dump: one identity a line, slot by slot; independent of file order.
    rc, out, err = run("--backends-file", path, "--table-size", "251",
                       "--dump")
    check(rc == 0, f"--dump exit {rc} {err!r}")
    dump = out.splitlines()
    check(len(dump) == 251, f"--dump gave {len(dump)} lines, want 251")
    check(set(dump) == NAMES, f"--dump identities {sorted(set(dump))}")
    reordered = os.path.join(tmp, "reordered.txt")
    with open(reordered, "w") as f:
        f.write("\n".join(reversed(BACKENDS.splitlines())) + "\n")
    rc, out2, err = run("--backends-file", reordered, "--table-size", "251",
                        "--dump")
    check(rc == 0 and out2 == out, "--dump differs when the file is reordered")
    rc, out3, err = run("--backends-file", path, "--table-size", "251",
                        "--dump", "--remove", "1")
    check(rc == 0 and "10.0.0.9:80" not in out3 and len(out3.splitlines())
          == 251, "--dump --remove 1")

    # Bad input: one clear line on stderr, exit 1.
    cases = [
        ("10.0.0.1:80 1\n10.0.0.300:80 1\n", ":2: "),
        ("10.0.0.1:80\n", ":1: "),
        ("10.0.0.1:80 x\n", ":1: bad weight"),
        ("10.0.0.1:80 1 2\n", ":1: "),
        ("10.0.0.1:80 -1\n", ":1: bad weight"),
        ("10.0.0.1:80 4294967296\n", ":1: bad weight"),
        ("10.0.0.1:80 1\n10.0.0.1:80 2\n", "duplicate"),
        ("10.0.0.1:80 0\n", "weight"),
        ("# nothing\n", "backend"),
    ]
    for i, (text, want) in enumerate(cases):
        bad = os.path.join(tmp, f"bad{i}.txt")
        with open(bad, "w") as f:
            f.write(text)
        rc, out, err = run("--backends-file", bad)
        check(rc == 1, f"bad file {text!r}: exit {rc}")
        check(len(err.strip().splitlines()) == 1 and want in err,
              f"bad file {text!r}: stderr {err!r}, want {want!r}")
        check(out == "", f"bad file {text!r}: stdout {out!r}")

    rc, out, err = run("--backends", "10", "--table-size", "65536")
    check(rc == 1 and "prime" in err, f"non-prime table size: {rc} {err!r}")
    rc, out, err = run("--backends-file", os.path.join(tmp, "missing"))
    check(rc == 1 and "cannot open" in err, f"missing file: {rc} {err!r}")
    rc, out, err = run("--backends", "10", "--remove", "10")
    check(rc == 1 and "--remove" in err, f"remove all: {rc} {err!r}")
    rc, out, err = run()
    check(rc == 1, f"no backends given: {rc}")

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("maglev_report: all checks passed")
