#!/usr/bin/python3
"""Writes a C++ header holding an FRR template as a raw string literal (for ecmplbctl)."""
import sys

text = open(sys.argv[1]).read()
with open(sys.argv[2], "w") as out:
    out.write("// Generated from frr-conf/lb-host.frr.conf.in by frr-conf/embed_template.py.\n")
    out.write("#pragma once\n")
    out.write('inline constexpr const char kLbHostFrrTemplate[] = R"ECMPLBTPL(' + text + ')ECMPLBTPL";\n')
