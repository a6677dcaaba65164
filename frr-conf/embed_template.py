#!/usr/bin/python3
"""Writes a C++ header holding FRR templates as raw string literals (for ecmplbctl).

  embed_template.py OUT.h NAME=TEMPLATE [NAME=TEMPLATE...]
"""
import os
import sys

out_path, pairs = sys.argv[1], sys.argv[2:]
with open(out_path, "w") as out:
    out.write("// Generated from frr-conf/ templates by frr-conf/embed_template.py.\n")
    out.write("#pragma once\n")
    for pair in pairs:
        name, _, path = pair.partition("=")
        text = open(path).read()
        out.write(f"// {os.path.basename(path)}\n")
        out.write(f'inline constexpr const char {name}[] = R"ECMPLBTPL(' + text + ')ECMPLBTPL";\n')
