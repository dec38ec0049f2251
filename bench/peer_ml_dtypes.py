#!/usr/bin/env python3
"""lowbit's fakequant against ml_dtypes (the reference users compare with).

Times x.astype(T).astype(float32) in ml_dtypes (single-threaded numpy) and
`lowbit fakequant --stats` (which times the kernel alone, not the file I/O)
on the same data, median of several runs, and prints the ratio. Both results
are also compared bit for bit. Usage: peer_ml_dtypes.py [path/to/lowbit] [N]
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import ml_dtypes
import numpy as np

FORMATS = {
    "float8_e4m3fn": ml_dtypes.float8_e4m3fn,
    "float8_e5m2": ml_dtypes.float8_e5m2,
    "float6_e2m3fn": ml_dtypes.float6_e2m3fn,
    "float4_e2m1fn": ml_dtypes.float4_e2m1fn,
    "bfloat16": ml_dtypes.bfloat16,
}


def lowbit_rate(exe, fmt, src, dst, threads, reps=5):
    rates = []
    for _ in range(reps):
        r = subprocess.run([exe, "fakequant", "--format", fmt, "--overflow", "ieee", "--threads", str(threads),
                            "--stats", src, dst], capture_output=True, text=True, check=True)
        rates.append(float(re.search(r"\(([\d.]+) G elem/s\)", r.stderr).group(1)) * 1e9)
    return statistics.median(rates)


def main():
    exe = sys.argv[1] if len(sys.argv) > 1 else "build/lowbit"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1 << 24
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        print(f"{n} float32 values, N(0,1) scaled by absmax to each format's max; medians of 5")
        print(f"{'format':16} {'ml_dtypes G/s':>14} {'lowbit 1t G/s':>14} {'lowbit 2t G/s':>14} {'1t ratio':>9} {'2t ratio':>9}  bit-exact")
        base = rng.standard_normal(n).astype(np.float32)
        for fmt, t in FORMATS.items():
            x = (base * (float(ml_dtypes.finfo(t).max) / np.abs(base).max())).astype(np.float32)
            src, dst = os.path.join(d, "x.npy"), os.path.join(d, "y.npy")
            np.save(src, x)
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                y_ref = x.astype(t).astype(np.float32)
                times.append(time.perf_counter() - t0)
            ref_rate = n / statistics.median(times)
            r1 = lowbit_rate(exe, fmt, src, dst, 1)
            r2 = lowbit_rate(exe, fmt, src, dst, 2)
            same = np.array_equal(np.load(dst).view(np.uint32), y_ref.view(np.uint32))
            print(f"{fmt:16} {ref_rate / 1e9:14.3f} {r1 / 1e9:14.3f} {r2 / 1e9:14.3f} {r1 / ref_rate:8.0f}x {r2 / ref_rate:8.0f}x  {same}")


if __name__ == "__main__":
    main()
