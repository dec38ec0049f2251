#!/usr/bin/env python3
"""Markdown tables of a `lowbit study model --json` result.

A language model's study gives, for each KV setting, a table of weights
(rows) by activations (columns) holding the chosen figure (--figure
kld_mean, ppl or same_top), then the bits of each row and column. An
embedding model's study gives weights by activations of cosine_mean (or
--figure recall_at_1, mrr, cosine_min).

Usage: study_tables.py STUDY.json [--figure NAME] [--digits N]
"""
import argparse
import json
import os
import sys


def fmt(value, figure, digits):
    if figure in ("same_top", "recall_at_1"):
        return f"{100 * value:.1f}%"
    return f"{value:.{digits}f}"


def table(rows, figure, digits):
    weights, acts = [], []
    cell = {}
    for r in rows:
        if r["weights"] not in weights:
            weights.append(r["weights"])
        if r["acts"] not in acts:
            acts.append(r["acts"])
        cell[(r["weights"], r["acts"])] = r
    out = ["| weights (bits) \\ acts | " + " | ".join(f"`{a}`" for a in acts) + " |",
           "| --- |" + " ---: |" * len(acts)]
    for w in weights:
        first = next(cell[(w, a)] for a in acts if (w, a) in cell)
        cells = [fmt(cell[(w, a)][figure], figure, digits) if (w, a) in cell else "" for a in acts]
        out.append(f"| `{w}` ({first['bits_per_weight']:.2f}) | " + " | ".join(cells) + " |")
    bits = {r["acts"]: r["bits_per_act"] for r in rows}
    out.append("")
    out.append("Bits per activation: " + ", ".join(f"`{a}` {bits[a]:.3f}" for a in acts) + ".")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study")
    ap.add_argument("--figure", default=None)
    ap.add_argument("--digits", type=int, default=4)
    a = ap.parse_args()
    with open(a.study) as f:
        doc = json.load(f)
    rows = doc["rows"]
    if not rows:
        sys.exit("study_tables.py: the study has no rows")
    embedding = doc.get("kind") == "embedding"
    figure = a.figure or ("cosine_mean" if embedding else "kld_mean")
    if figure not in rows[0]:
        sys.exit(f"study_tables.py: no figure '{figure}' in the rows; they have {', '.join(rows[0])}")
    if embedding:
        print(f"{os.path.basename(doc['model'])}: {doc['pairs']} verse pairs, {figure}\n")
        print(table(rows, figure, a.digits))
        return
    print(f"{os.path.basename(doc['model'])}: {doc['chunks']} chunks of {doc['ctx']} tokens, {figure}; "
          f"reference PPL {rows[0]['ppl_base']:.4f}\n")
    kvs = []
    for r in rows:
        if r["kv"] not in kvs:
            kvs.append(r["kv"])
    for kv in kvs:
        sub = [r for r in rows if r["kv"] == kv]
        print(f"KV cache `{kv}` ({sub[0]['kv_bytes_per_token']:.0f} bytes per token):\n")
        print(table(sub, figure, a.digits))
        print()


if __name__ == "__main__":
    main()
