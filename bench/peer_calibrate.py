#!/usr/bin/env python3
"""`lowbit calibrate` against `llama-imatrix`, same run: speed, agreement,
and the quality of the quantizations each importance matrix gives.

SmolLM2-135M Q4_1 (the GGUF of scripts/setup.sh), the first --kb kB of
linux-doc:calib (build-corpora/), context --ctx, --chunks chunks, --threads
threads:

  1. speed: each tool computes the importance matrix --reps times,
     alternating; tokens/s from the wall time of the whole command (model
     loading and tokenizing included for both), median, and lowbit /
     llama.cpp;
  2. agreement: per entry, the median over columns of |lowbit - llama| /
     llama of the mean x^2; the median and the worst over entries;
  3. quality: llama-quantize (--allow-requantize) writes each --types type
     (default Q4_K_M and IQ4_XS) with each importance matrix, and
     llama-perplexity measures each file's KL divergence to the unquantized
     model on kjv (the evaluation corpus, never calibration text), ctx 512,
     --eval-chunks chunks. The table gives mean KLD, same top, and the ratio
     of lowbit's KLD to llama.cpp's.

Usage: peer_calibrate.py [--lowbit build/lowbit] [--llama-bin DIR] [--kb 300]
                         [--ctx 512] [--chunks 32] [--threads 2] [--reps 1]
                         [--types Q4_K_M,IQ4_XS] [--eval-chunks 16] [--json]
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

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "python"))
sys.path.insert(0, str(REPO / "bench"))

from peer_llama_cpp import host_cpu  # noqa: E402


def run(args):
    t0 = time.perf_counter()
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r, time.perf_counter() - t0


def importance(path):
    import gguf
    r = gguf.GGUFReader(str(path))
    sums, counts = {}, {}
    for t in r.tensors:
        if t.name.endswith(".in_sum2"):
            sums[t.name[:-8]] = np.asarray(t.data, dtype=np.float64).reshape(-1)
        elif t.name.endswith(".counts"):
            counts[t.name[:-7]] = float(np.asarray(t.data).reshape(-1)[0])
    return {k: sums[k] / counts[k] for k in sums}


def kld(llama_bin, model, text, base, chunks, threads):
    r, _ = run([pathlib.Path(llama_bin) / "llama-perplexity", "-m", model, "-f", text, "-c", 512, "--chunks", chunks,
                "-t", threads, "--kl-divergence-base", base, "--kl-divergence"])
    out = r.stdout + r.stderr

    def grab(label):
        m = re.search(re.escape(label) + r"\s*:\s*(-?[0-9.]+)", out)
        if not m:
            sys.exit(f"{label} not in llama-perplexity's output:\n{out[-3000:]}")
        return float(m.group(1))

    return {"kld_mean": grab("Mean    KLD"), "same_top": grab("Same top p") / 100, "ppl": grab("Mean PPL(Q)")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lowbit", default=str(REPO / "build" / "lowbit"))
    ap.add_argument("--llama-bin", default=str(REPO / "build-llama-cpp" / "build" / "bin"))
    ap.add_argument("--kb", type=int, default=300, help="kB of linux-doc:calib to calibrate on")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--types", default="Q4_K_M,IQ4_XS")
    ap.add_argument("--eval-chunks", type=int, default=16)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    from real_models import SMOL_GGUF
    corpora = pathlib.Path(os.environ.get("LOWBIT_CORPORA", REPO / "build-corpora"))
    bin_dir = pathlib.Path(a.llama_bin)
    for f in (SMOL_GGUF, corpora / "linux-doc.calib.txt", corpora / "kjv.txt", bin_dir / "llama-imatrix"):
        if not pathlib.Path(f).is_file():
            sys.exit(f"{f} not found: run bash scripts/setup.sh and bash scripts/llama_cpp.sh")
    d = pathlib.Path(tempfile.mkdtemp(prefix="peer_calibrate_"))
    text = d / "calib.txt"
    text.write_bytes((corpora / "linux-doc.calib.txt").read_bytes()[:a.kb * 1000])
    ours, theirs = d / "lowbit.imatrix.gguf", d / "llama.imatrix.gguf"
    t_ours, t_theirs = [], []
    for _ in range(a.reps):
        _, t = run([a.lowbit, "calibrate", SMOL_GGUF, "--text", text, "--ctx", a.ctx, "--chunks", a.chunks, "-o", ours,
                    "--threads", a.threads])
        t_ours.append(t)
        _, t = run([bin_dir / "llama-imatrix", "-m", SMOL_GGUF, "-f", text, "-o", theirs, "-c", a.ctx,
                    "--chunks", a.chunks, "-t", a.threads, "--no-ppl"])
        t_theirs.append(t)
    tokens = a.chunks * a.ctx
    speed = {"tokens": tokens, "lowbit_tps": tokens / statistics.median(t_ours),
             "llama_tps": tokens / statistics.median(t_theirs)}
    speed["ratio"] = speed["lowbit_tps"] / speed["llama_tps"]

    x, y = importance(ours), importance(theirs)
    if x.keys() != y.keys():
        sys.exit(f"the entries differ: {sorted(x.keys() ^ y.keys())[:5]}")
    rel = {k: float(np.median(np.abs(x[k] - y[k]) / y[k])) for k in x}
    worst = max(rel, key=rel.get)
    agree = {"entries": len(rel), "median": float(np.median(list(rel.values()))), "worst": rel[worst],
             "worst_entry": worst}

    eval_text = d / "kjv.txt"
    eval_text.write_bytes((corpora / "kjv.txt").read_bytes())
    base = d / "base.kld"
    run([bin_dir / "llama-perplexity", "-m", SMOL_GGUF, "-f", eval_text, "-c", 512, "--chunks", a.eval_chunks,
         "-t", a.threads, "--kl-divergence-base", base])
    quality = []
    for ftype in a.types.split(","):
        row = {"type": ftype}
        for who, im in (("lowbit", ours), ("llama", theirs)):
            q = d / f"{who}-{ftype}.gguf"
            run([bin_dir / "llama-quantize", "--allow-requantize", "--imatrix", im, SMOL_GGUF, q, ftype, a.threads])
            row[who] = kld(bin_dir, q, eval_text, base, a.eval_chunks, a.threads)
            q.unlink()
        row["kld_ratio"] = row["lowbit"]["kld_mean"] / row["llama"]["kld_mean"]
        quality.append(row)

    res = {"model": str(SMOL_GGUF), "cpu": host_cpu(), "threads": a.threads, "ctx": a.ctx, "chunks": a.chunks,
           "calib_bytes": a.kb * 1000, "speed": speed, "agreement": agree, "quality": quality}
    if a.json:
        print(json.dumps(res, indent=1))
        return
    print(f"SmolLM2-135M Q4_1, {a.kb} kB of linux-doc:calib, {a.chunks} chunks of {a.ctx}, {a.threads} threads, "
          f"median of {a.reps}; CPU {host_cpu()}")
    print(f"\n| tool | tokens/s |\n| --- | ---: |\n| llama-imatrix | {speed['llama_tps']:.1f} |\n"
          f"| lowbit calibrate | {speed['lowbit_tps']:.1f} ({speed['ratio']:.2f}x) |")
    print(f"\nagreement over {agree['entries']} entries: median {100 * agree['median']:.3f}%, worst "
          f"{100 * agree['worst']:.2f}% ({agree['worst_entry']})")
    print(f"\nKLD to the unquantized model (llama-perplexity, kjv, ctx 512, {a.eval_chunks} chunks):\n")
    print("| type | imatrix by llama.cpp: KLD, same top | by lowbit: KLD, same top | lowbit / llama.cpp |")
    print("| --- | --- | --- | ---: |")
    for r in quality:
        print(f"| {r['type']} | {r['llama']['kld_mean']:.5f}, {100 * r['llama']['same_top']:.2f}% | "
              f"{r['lowbit']['kld_mean']:.5f}, {100 * r['lowbit']['same_top']:.2f}% | {r['kld_ratio']:.4f} |")


if __name__ == "__main__":
    main()
