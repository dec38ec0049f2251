#!/usr/bin/env python3
"""lowbit's GGUF quantizers against llama.cpp's, on a real model, same run.

SmolLM2-135M (the Q4_1 model of scripts/setup.sh) is first widened to a
float32 GGUF by lowbit (embedding included). Then, per type and thread
count, `llama-quantize --pure` (built by scripts/llama_cpp.sh) and `lowbit
quantize --method rtn` turn that file into the same type, alternately,
median of --reps runs each. Both write byte-identical tensors (checked here
on the first run of each type, and in tests/python/test_llama_cpp.py).

The rate is float32 MB/s of the quantized weights (106,168,320 of them, the
same set for both) over the whole process's wall time: loading, quantizing
and writing, for both tools alike. SmolLM2's 576-wide rows make llama.cpp
and lowbit fall back from the 256-element K-quants to Q5_0/Q5_1/Q8_0 on most
tensors (docs/gguf.md), so the K-quant rows mix types; --synthetic uses a
float32 GGUF of 256-multiple rows instead (same tensor names and shapes
rounded up to 256 columns, N(0, 0.02) weights), where every weight takes
the named type.

Usage: peer_llama_cpp.py [--lowbit build/lowbit] [--llama-bin DIR] [--types q4_0,q8_0,q4_k,mxfp4,iq4_nl,...]
                         [--threads 1,2] [--reps 3] [--json]
"""
import argparse
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
FTYPE = {"q4_0": "Q4_0", "q4_1": "Q4_1", "q5_0": "Q5_0", "q5_1": "Q5_1", "q8_0": "Q8_0", "q2_k": "Q2_K",
         "q3_k": "Q3_K_S", "q4_k": "Q4_K_S", "q5_k": "Q5_K_S", "q6_k": "Q6_K", "iq4_nl": "IQ4_NL",
         "iq4_xs": "IQ4_XS", "mxfp4": "MXFP4_MOE", "tq1_0": "TQ1_0", "tq2_0": "TQ2_0", "q1_0": "Q1_0",
         # No NVFP4 ftype: the block weights are overridden to ggml's NVFP4.
         "nvfp4": "Q8_0 --tensor-type blk=nvfp4"}


def run(args):
    t0 = time.perf_counter()
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return dt


def float32_model(lowbit, out, synthetic):
    """The float32 GGUF both tools quantize, and its count of quantized weights."""
    recipe = out.with_suffix(".recipe.json")
    # Every tensor to F32, the embedding too (the default keeps it Q8_0).
    recipe.write_text(json.dumps({"rules": [{"match": ".*", "scheme": "f32"}]}))
    src = out.with_suffix(".smollm2.gguf") if synthetic else out
    run([lowbit, "quantize", "smollm2", src, "--recipe", recipe, "--quiet"])
    if synthetic:
        import gguf
        import numpy as np
        reader = gguf.GGUFReader(str(src))
        w = gguf.GGUFWriter(str(out), arch="llama")
        for f in reader.fields.values():
            if f.name.startswith("GGUF.") or f.name == "general.architecture":
                continue
            w.add_key_value(f.name, f.contents(), f.types[0], f.types[-1] if len(f.types) > 1 else None)
        rng = np.random.default_rng(0)
        for t in reader.tensors:
            shape = [int(d) for d in reversed(t.shape.tolist())]
            if len(shape) == 2 and not t.name.startswith("token_embd"):
                shape[-1] = (shape[-1] + 255) // 256 * 256
                data = rng.normal(0, 0.02, size=shape).astype(np.float32)
            else:
                data = np.asarray(t.data, dtype=np.float32).reshape(shape)
            w.add_tensor(t.name, data)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        src.unlink()
    import gguf
    n = sum(int(t.n_elements) for t in gguf.GGUFReader(str(out)).tensors
            if len(t.shape) == 2 and not t.name.startswith("token_embd"))
    return n


def same_bytes(a, b):
    import gguf
    import numpy as np
    ta = {t.name: t for t in gguf.GGUFReader(str(a)).tensors}
    tb = {t.name: t for t in gguf.GGUFReader(str(b)).tensors}
    return set(ta) == set(tb) and all(
        ta[k].tensor_type == tb[k].tensor_type and
        np.array_equal(np.asarray(ta[k].data).view(np.uint8), np.asarray(tb[k].data).view(np.uint8)) for k in ta)


def host_cpu():
    """The CPU as lowbit bench names it (lowbit/core/host_cpu.h): rates
    compare only on the same core."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor's fields
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        return "unknown"
    ids = " ".join(x for x in (fields.get("vendor_id", ""),
                               "family " + fields["cpu family"] if "cpu family" in fields else "",
                               "model " + fields["model"] if "model" in fields else "") if x)
    name = fields.get("model name", "")
    return f"{name} ({ids})" if name and ids else (name or ids or "unknown")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lowbit", default=str(REPO / "build" / "lowbit"))
    ap.add_argument("--llama-bin", default=str(REPO / "build-llama-cpp" / "build" / "bin"))
    ap.add_argument("--types", default="q4_0,q8_0,q4_k,mxfp4,iq4_nl")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    quantize = pathlib.Path(a.llama_bin) / "llama-quantize"
    if not quantize.is_file():
        sys.exit(f"{quantize} not found: run bash scripts/llama_cpp.sh")
    types = a.types.split(",")
    for t in types:
        if t not in FTYPE:
            sys.exit(f"unknown type {t}; known: {', '.join(FTYPE)}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        f32 = tmp / "f32.gguf"
        n = float32_model(a.lowbit, f32, a.synthetic)
        mb = 4.0 * n / 1e6
        records = []
        if not a.json:
            print(f"input: SmolLM2-135M as float32{' (synthetic 256-multiple rows)' if a.synthetic else ''}, "
                  f"{n} quantized weights ({mb:.0f} MB); median of {a.reps}, whole-process wall time; "
                  f"CPU {host_cpu()}")
            print(f"{'type':8} {'threads':>7} {'llama.cpp MB/s':>15} {'lowbit MB/s':>12} {'ratio':>7}  bytes")
        for t in types:
            for threads in [int(x) for x in a.threads.split(",")]:
                ours, theirs = tmp / f"lowbit-{t}.gguf", tmp / f"llama-{t}.gguf"
                lt, ll = [], []
                for _ in range(a.reps):
                    ftype, *extra = FTYPE[t].split(" ")
                    ll.append(run([quantize, "--pure", "--token-embedding-type", "f32", "--output-tensor-type",
                                   "f32", *extra, f32, theirs, ftype, threads]))
                    lt.append(run([a.lowbit, "quantize", f32, ours, "--scheme", t, "--method", "rtn", "--threads",
                                   threads, "--quiet"]))
                equal = same_bytes(ours, theirs)
                rec = {"scheme": t, "method": "rtn", "op": "quantize", "threads": threads, "peer": "llama.cpp b10605", "cpu": host_cpu(),
                       "bytes_per_s": 4.0 * n / statistics.median(lt),
                       "peer_bytes_per_s": 4.0 * n / statistics.median(ll), "byte_identical": equal}
                rec["ratio_to_peer"] = rec["bytes_per_s"] / rec["peer_bytes_per_s"]
                records.append(rec)
                if not a.json:
                    print(f"{t:8} {threads:7d} {rec['peer_bytes_per_s'] / 1e6:15.0f} {rec['bytes_per_s'] / 1e6:12.0f} "
                          f"{rec['ratio_to_peer']:6.2f}x  {'identical' if equal else 'DIFFER'}", flush=True)
        if a.json:
            print(json.dumps(records, indent=1))
        if not all(r["byte_identical"] for r in records):
            sys.exit(1)


if __name__ == "__main__":
    main()
