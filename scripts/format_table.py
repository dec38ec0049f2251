#!/usr/bin/env python3
"""Prints the format table of docs/formats.md from `lowbit formats --json`.

Usage: format_table.py [path/to/lowbit]. tests/python/test_docs.py checks
that the table in docs/formats.md is exactly this output.
"""
import json
import math
import subprocess
import sys

# Integer widths the table shows; the rest follow the same pattern.
SHOWN_INTS = {"int2", "int4", "int8", "int16", "uint2", "uint4", "uint8", "uint16", "ternary"}


def num(v):
    if v is None:
        return "—"
    if v == 0:
        return "0"
    if v == int(v) and abs(v) < 2**20:
        return str(int(v))
    m, e = math.frexp(v)
    if abs(m) == 0.5:
        return ("-" if v < 0 else "") + f"2^{e - 1}"
    return f"{v:.9g}"


def specials(f):
    s = []
    if f["has_inf"]:
        s.append("±inf")
    if f["has_nan"]:
        s.append("NaR" if f["name"].startswith("posit") else "NaN")
    if f["has_negative_zero"]:
        s.append("−0")
    return ", ".join(s) if s else "none"


def table(lowbit):
    fm = json.loads(subprocess.check_output([lowbit, "formats", "--json"]))
    lines = [
        "| name | aliases | bits | kind | fields | bias | specials | max | min normal | smallest positive |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in fm:
        if f["kind"] == "int" and f["name"] not in SHOWN_INTS:
            continue
        aliases = ", ".join(f"`{a}`" for a in f["aliases"]) or "—"
        bias = f["bias"] if f["bias"] is not None else "—"
        min_normal = num(f["min_normal"]) if f["kind"] != "int" else "—"
        lines.append(
            f"| `{f['name']}` | {aliases} | {f['bits']} | {f['kind']} | {f['fields']} | {bias} | "
            f"{specials(f)} | {num(f['max_finite'])} | {min_normal} | {num(f['min_subnormal'])} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(sys.argv[1] if len(sys.argv) > 1 else "build/lowbit"))
