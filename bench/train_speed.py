#!/usr/bin/env python3
"""Training throughput of `lowbit train`: tokens/s and model FLOP/s as a
fraction of OpenBLAS sgemm's rate measured in the same run.

Model FLOPs per token are PaLM's count (Chowdhery et al. 2022, app. B):
6 per weight of every matrix the step multiplies (the blocks' projections
and the LM head) plus 12·layers·seq·dim for attention's two products over
the whole [seq, seq] matrix. The sgemm baseline is numpy's float32 matmul
(OpenBLAS, the library lowbit links) on the shape of the feed-forward's
up projection, [batch·seq, dim] x [dim, ffn_dim], at the same thread count.
Each row is the median of the steps after the first (which pays page
faults); evaluation steps are excluded.

With --recipes, each precision recipe trains the same model on the same
batches and its median step time is divided by float32's (measured before
and after the recipes, in the same run): the emulation overhead.

  python3 bench/train_speed.py                 # the default shape
  python3 bench/train_speed.py --config C.json --steps 12 --threads 2
  python3 bench/train_speed.py --recipes all --steps 8
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]

SGEMM = r"""
import sys, time, numpy as np
n, k, m, reps = map(int, sys.argv[1:])
a = np.random.default_rng(0).standard_normal((n, k), dtype=np.float32)
b = np.random.default_rng(1).standard_normal((k, m), dtype=np.float32)
a @ b
t = []
for _ in range(reps):
    s = time.perf_counter(); a @ b; t.append(time.perf_counter() - s)
t.sort()
print(2.0 * n * k * m / t[len(t) // 2] / 1e9)
"""

DEFAULT = {
    "model": {"dim": 256, "ffn_dim": 768, "layers": 6, "heads": 4, "kv_heads": 2, "context_length": 256},
    "data": {"files": [str(REPO / "build-corpora" / "jargon.txt")], "tokenizer": "bytes"},
    "train": {"batch": 16, "seq": 256, "steps": 10, "warmup": 2, "eval_every": 100000, "eval_windows": 1},
}


def sgemm_gflops(threads, n, k, m):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    r = subprocess.run([sys.executable, "-c", SGEMM, str(n), str(k), str(m), "21"], env=env, capture_output=True,
                       text=True, check=True)
    return float(r.stdout)


def model_flops_per_token(cfg, vocab):
    m, t = cfg["model"], cfg["train"]
    d, f, L = m["dim"], m["ffn_dim"], m["layers"]
    hd = d // m["heads"]
    kvd = m.get("kv_heads", m["heads"]) * hd
    block = d * d * 2 + 2 * d * kvd + 3 * d * f
    return 6.0 * (L * block + vocab * d) + 12.0 * L * t["seq"] * d


def train_steps(lowbit, cfg, threads):
    """Runs `lowbit train` on cfg and returns (its --json record, the step times
    in seconds after the first, excluding the last, which evaluates)."""
    with tempfile.TemporaryDirectory() as tmp:
        c = pathlib.Path(tmp) / "c.json"
        c.write_text(json.dumps(cfg))
        r = subprocess.run([lowbit, "train", "--config", str(c), "-o", str(pathlib.Path(tmp) / "run"), "--json",
                            "--threads", str(threads), "-q"], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"lowbit train failed:\n{r.stderr}")
        out = json.loads(r.stdout)
        log = json.loads((pathlib.Path(tmp) / "run" / "log.json").read_text())
    return out, [log[i]["seconds"] - log[i - 1]["seconds"] for i in range(2, len(log) - 1)]


def recipe_path(name):
    p = pathlib.Path(name)
    return p.resolve() if p.suffix == ".json" else REPO / "configs" / "precision" / f"{name}.json"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lowbit", default=str(REPO / "build" / "lowbit"))
    ap.add_argument("--config", help="a training config (default: a 4.8M-parameter byte-level model)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--recipes", help="also time these precision recipes (names in configs/precision/, or "
                    "paths; 'all' for every one there) and give each one's step time over float32's")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    cfg = json.loads(pathlib.Path(a.config).read_text()) if a.config else json.loads(json.dumps(DEFAULT))
    if a.config:
        base = pathlib.Path(a.config).resolve().parent
        cfg["data"]["files"] = [str(base / f) for f in cfg["data"]["files"]]
        tok = cfg["data"].get("tokenizer", "bytes")
        if tok != "bytes":
            cfg["data"]["tokenizer"] = str(base / tok)
    cfg.pop("precision", None)
    cfg.setdefault("train", {})
    cfg["train"].update({"steps": a.steps, "eval_every": 10 ** 9, "eval_windows": 1, "checkpoint_every": 10 ** 9})
    cfg["train"].setdefault("batch", 16)
    cfg["train"].setdefault("seq", 256)
    out, secs = train_steps(a.lowbit, cfg, a.threads)
    step_s = statistics.median(secs)
    t = cfg["train"]
    tokens = t["batch"] * t["seq"] * t.get("accum", 1)
    tok_s = tokens / step_s
    m = cfg["model"]
    flops = model_flops_per_token(cfg, out["vocab_size"])
    gf = sgemm_gflops(a.threads, t["batch"] * t["seq"], m["dim"], m["ffn_dim"])
    rec = {"parameters": out["parameters"], "tokens_per_step": tokens, "step_seconds": step_s,
           "tokens_per_s": tok_s, "model_gflops": tok_s * flops / 1e9, "sgemm_gflops": gf,
           "fraction_of_sgemm": tok_s * flops / 1e9 / gf, "threads": a.threads}
    if a.recipes:
        names = (sorted(p.stem for p in (REPO / "configs" / "precision").glob("*.json")) if a.recipes == "all"
                 else a.recipes.split(","))
        rows = []
        for name in names:
            rc = json.loads(json.dumps(cfg))
            rc["precision"] = str(recipe_path(name))
            _, rs = train_steps(a.lowbit, rc, a.threads)
            rows.append({"recipe": name, "step_seconds": statistics.median(rs)})
        # float32 again after the recipes: the baseline is the median of
        # both runs' steps, so drift over the run affects both sides alike.
        _, secs2 = train_steps(a.lowbit, cfg, a.threads)
        base = statistics.median(secs + secs2)
        for r in rows:
            r["overhead"] = r["step_seconds"] / base
        rec["float32_step_seconds"] = base
        rec["recipes"] = rows
    if a.json:
        print(json.dumps(rec))
    else:
        print(f"{out['parameters']} parameters, {tokens} tokens per step, {a.threads} threads")
        print(f"step {step_s:.3f} s (median of {len(secs)}): {tok_s:.0f} tokens/s, "
              f"{rec['model_gflops']:.1f} model GFLOP/s = {rec['fraction_of_sgemm']:.2f} of sgemm ({gf:.1f} GFLOP/s)")
        if a.recipes:
            print(f"\nemulation overhead (step time over float32's {rec['float32_step_seconds']:.3f} s, medians):")
            print(f"{'recipe':<22} {'step s':>8} {'x fp32':>7}")
            for r in rec["recipes"]:
                print(f"{r['recipe']:<22} {r['step_seconds']:8.3f} {r['overhead']:7.2f}")


if __name__ == "__main__":
    main()
