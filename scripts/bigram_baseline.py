#!/usr/bin/env python3
"""The held-out perplexity of n-gram baselines for a model trained by
`lowbit train`, on the same held-out tokens its log scores.

It splits the config's files as the trainer does (each file's last
`holdout` fraction of bytes, from the first line start after the exact
cut), tokenizes both parts with the model's own tokenizer (`lowbit
tokenize`), fits on the training split:

  unigram   add-one smoothed token frequencies;
  bigram    P(b|a) = λ·c(a,b)/c(a) + (1 − λ)·P_unigram(b) (Jelinek-Mercer),
            λ chosen on the last 2% of the training split, refitted on all
            of it;

and scores the trainer's held-out windows: window w is tokens
[w·seq, w·seq + seq] of the held-out stream, every token after the first of
each window a target, for the first `eval_windows` windows. The bigram
conditions on the previous token inside the window, as the model sees it.

  python3 scripts/bigram_baseline.py --config configs/lowbit-lm.json --model models/lowbit-lm/lowbit-lm.gguf
"""
import argparse
import json
import math
import pathlib
import subprocess
import sys
from collections import Counter

REPO = pathlib.Path(__file__).resolve().parents[1]


def split(data: bytes, holdout: float):
    cut = int(len(data) * (1.0 - holdout))
    if 0 < cut < len(data) and data[cut - 1] != 0x0A:
        nl = data.find(b"\n", cut)
        if nl != -1 and nl + 1 < len(data):
            cut = nl + 1
    return data[:cut], data[cut:]


def tokenize(lowbit, model, data: bytes, tmp: pathlib.Path):
    tmp.write_bytes(data)
    out = subprocess.run([lowbit, "tokenize", model, "--file", str(tmp), "--no-special"], capture_output=True,
                         text=True, check=True).stdout
    return [int(t) for t in out.replace(",", " ").split()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--model", required=True, help="the trained GGUF (its tokenizer)")
    ap.add_argument("--lowbit", default=str(REPO / "build" / "lowbit"))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    cfg_path = pathlib.Path(a.config).resolve()
    cfg = json.loads(cfg_path.read_text())
    holdout = cfg["data"].get("holdout", 0.02)
    t = cfg.get("train", {})
    seq, windows = t.get("seq", 256), t.get("eval_windows", 64)
    train, held = [], []
    tmp = pathlib.Path("/tmp") / f"bigram_{id(a)}.txt"
    try:
        for f in cfg["data"]["files"]:
            tr, he = split((cfg_path.parent / f).read_bytes(), holdout)
            train += tokenize(a.lowbit, a.model, tr, tmp)
            held += tokenize(a.lowbit, a.model, he, tmp)
    finally:
        tmp.unlink(missing_ok=True)
    info = json.loads(subprocess.run([a.lowbit, "inspect", a.model, "--json"], capture_output=True, text=True,
                                     check=True).stdout)
    vocab = int(info["metadata"]["llama.vocab_size"]["value"])
    n_windows = min(windows, (len(held) - 1) // seq)
    targets = [(held[w * seq + i], held[w * seq + i + 1], i) for w in range(n_windows) for i in range(seq)]

    def fit(tokens):
        return Counter(tokens), Counter(zip(tokens, tokens[1:])), len(tokens)

    def scorer(uni, bi, n, lam):
        def p_uni(b):
            return (uni[b] + 1) / (n + vocab)

        def nll(a_tok, b_tok, first):
            pu = p_uni(b_tok)
            if first or uni[a_tok] == 0:
                return -math.log(pu)
            return -math.log(lam * bi[(a_tok, b_tok)] / uni[a_tok] + (1 - lam) * pu)
        return p_uni, nll

    dev_n = len(train) // 50
    uni, bi, n = fit(train[:-dev_n])
    dev = train[-dev_n:]
    best = None
    for lam in [x / 20 for x in range(1, 20)]:
        _, nll = scorer(uni, bi, n, lam)
        loss = sum(nll(x, y, False) for x, y in zip(dev, dev[1:])) / (len(dev) - 1)
        if best is None or loss < best[1]:
            best = (lam, loss)
    uni, bi, n = fit(train)
    p_uni, nll = scorer(uni, bi, n, best[0])
    uni_loss = sum(-math.log(p_uni(b)) for _, b, _ in targets) / len(targets)
    bi_loss = sum(nll(x, y, i == 0) for x, y, i in targets) / len(targets)
    rec = {"vocab": vocab, "train_tokens": len(train), "heldout_tokens": len(held), "scored_tokens": len(targets),
           "unigram_loss": uni_loss, "unigram_ppl": math.exp(uni_loss), "bigram_lambda": best[0],
           "bigram_loss": bi_loss, "bigram_ppl": math.exp(bi_loss)}
    if a.json:
        print(json.dumps(rec))
    else:
        print(f"{len(targets)} held-out targets ({n_windows} windows of {seq}); vocabulary {vocab}")
        print(f"unigram: loss {uni_loss:.4f}, perplexity {math.exp(uni_loss):.2f}")
        print(f"bigram (lambda {best[0]:.2f}): loss {bi_loss:.4f}, perplexity {math.exp(bi_loss):.2f}")


if __name__ == "__main__":
    sys.exit(main())
