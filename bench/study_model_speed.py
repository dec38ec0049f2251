#!/usr/bin/env python3
"""The speed rows of `lowbit study model` (issue 15), on SmolLM2 and kjv.

  1. sweep: a 20-point study (5 weight schemes x 2 activation settings x 2
     KV settings) over --sweep-chunks chunks of 512 tokens (16: 8k tokens),
     wall time of the whole command; target <= 10 minutes at 2 threads.
  2. activation fake-quantization cost: a study of one combination (weights
     and KV as loaded, activations --acts) runs the reference and the
     combination per chunk. Its time minus that of the same study with
     activations "none" is what quantizing every Linear input costs;
     divided by one forward (half of the "none" study) it is the share of
     the forward pass; target <= 15%. Medians over --reps runs, alternating.

Usage: study_model_speed.py [--lowbit build/lowbit] [--threads 2] [--reps 3]
                            [--chunks 4] [--sweep-chunks 16] [--acts mxfp8_e4m3,int8/channel,nvfp4]
                            [--no-sweep] [--json]
"""
import argparse
import json
import pathlib
import statistics
import subprocess
import time

REPO = pathlib.Path(__file__).resolve().parents[1]


def study(cli, threads, chunks, weights, acts, kv):
    args = [cli, "study", "model", "smollm2", "--corpus", "kjv", "--chunks", str(chunks), "--threads", str(threads),
            "--weights", weights, "--acts", acts, "--kv", kv, "--json"]
    t0 = time.monotonic()
    r = subprocess.run(args, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited {r.returncode}: {r.stderr[-2000:]}")
    return wall, json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lowbit", default=str(REPO / "build" / "lowbit"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--chunks", type=int, default=4)
    ap.add_argument("--sweep-chunks", type=int, default=16)
    ap.add_argument("--acts", default="mxfp8_e4m3,int8/channel,nvfp4")
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    out = {"threads": a.threads}

    if not a.no_sweep:
        wall, doc = study(a.lowbit, a.threads, a.sweep_chunks, "none,int4/g128,mxfp4,nvfp4,mxint4",
                          "none,mxfp8_e4m3", "none,kivi2")
        out["sweep"] = {"points": len(doc["rows"]), "tokens": doc["chunks"] * doc["ctx"], "wall_s": wall,
                        "target_s": 600}

    acts = a.acts.split(",")
    times = {x: [] for x in ["none"] + acts}
    for _ in range(a.reps):
        for x in times:
            times[x].append(study(a.lowbit, a.threads, a.chunks, "none", x, "none")[1]["seconds"])
    base = statistics.median(times["none"])
    out["act_cost"] = []
    for x in acts:
        t = statistics.median(times[x])
        out["act_cost"].append({"acts": x, "study_s": t, "none_study_s": base,
                                "share_of_forward": (t - base) / (base / 2)})

    if a.json:
        print(json.dumps(out))
        return
    if "sweep" in out:
        s = out["sweep"]
        print(f"sweep: {s['points']} points over {s['tokens']} tokens in {s['wall_s']:.1f} s "
              f"(target {s['target_s']} s) at {a.threads} threads")
    print(f"activation fake-quant cost, {a.chunks} chunks of 512, median of {a.reps}:")
    print(f"{'acts':<16} {'study s':>9} {'none s':>9} {'share of a forward':>20}")
    for r in out["act_cost"]:
        print(f"{r['acts']:<16} {r['study_s']:>9.2f} {r['none_study_s']:>9.2f} {100 * r['share_of_forward']:>19.1f}%")


if __name__ == "__main__":
    main()
