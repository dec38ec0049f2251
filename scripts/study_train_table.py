#!/usr/bin/env python3
"""Markdown table of one or more `lowbit study train` runs of the same
recipes under different seeds (docs/training.md).

  python3 scripts/study_train_table.py s1/study.json s2/study.json

Per recipe: the final held-out loss of each seed, its difference from that
seed's fp32 run, the mean difference, and the step time over fp32's (the
median of the seeds). A difference from fp32 means something only where it
exceeds the noise. The last lines give, per seed, the range of the final
losses of fp32, bf16, fp16 and fp16-ls: runs that differ only by rounding
noise (16-bit operands with float32 accumulation and master weights), so
their spread is the noise floor of one comparison at this scale.
"""
import json
import statistics
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    studies = []
    for path in sys.argv[1:]:
        with open(path) as f:
            studies.append({r["recipe"]: r for r in json.load(f)})
    recipes = list(studies[0])
    for s in studies[1:]:
        if list(s) != recipes:
            sys.exit("the studies do not run the same recipes in the same order")
    k = len(studies)
    seeds = " | ".join(f"seed {i + 1}" for i in range(k))
    deltas = " | ".join(f"Δ seed {i + 1}" for i in range(k))
    print(f"| recipe | {seeds} | {deltas} | mean Δ | step time vs fp32 |")
    print("| --- |" + " ---: |" * (2 * k + 2))
    for name in recipes:
        rows = [s[name] for s in studies]
        losses = [r.get("final_heldout") for r in rows]
        if any(v is None for v in losses):
            stops = "; ".join(r.get("stopped", "?") for r in rows)
            print(f"| {name} | stopped: {stops} |" + " |" * (2 * k + 1))
            continue
        d = [r.get("heldout_minus_fp32", 0.0) for r in rows]
        time = statistics.median(r["time_vs_fp32"] for r in rows)
        print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in losses) + " | " +
              " | ".join(f"{v:+.4f}" for v in d) + f" | {statistics.mean(d):+.4f} | {time:.2f}x |")
    print()
    for i, s in enumerate(studies):
        band = [s[n]["final_heldout"] for n in ("fp32", "bf16", "fp16", "fp16-ls")
                if n in s and s[n].get("final_heldout") is not None]
        if len(band) > 1:
            print(f"seed {i + 1}: fp32, bf16, fp16, fp16-ls span {min(band):.4f} to {max(band):.4f} "
                  f"({max(band) - min(band):.4f})")


if __name__ == "__main__":
    main()
