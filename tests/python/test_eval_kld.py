"""`lowbit eval kld` judged by `llama-perplexity --kl-divergence`
(docs/evaluation.md).

One pair of models: SmolLM2 (GGUF Q4_1, the reference) and its Q4_0
requantization by lowbit, on the first chapters of the King James Bible,
ctx 128, 8 chunks (448 scored tokens). Each tool computes the reference's
log-probabilities itself; lowbit's statistics must equal llama.cpp's within
2% relative. They cannot agree exactly: llama.cpp multiplies with
activations rounded to 8-bit blocks and a float16 KV cache, lowbit in
float32.

Also: the base files interoperate in both directions (lowbit reads
llama.cpp's, llama-perplexity reads lowbit's --save-base), the numbers are
the same at 1 and 2 threads, and bad input is refused.
"""
import json
import os
import pathlib
import re
import subprocess

import pytest

from real_models import lowbit, SMOL_GGUF, need, need_smol

REPO = pathlib.Path(__file__).resolve().parents[2]
LLAMA_BIN = pathlib.Path(os.environ.get("LOWBIT_LLAMA_CPP_BIN", REPO / "build-llama-cpp" / "build" / "bin"))
CORPORA = pathlib.Path(os.environ.get("LOWBIT_CORPORA", REPO / "build-corpora"))
CTX, CHUNKS = 128, 8


def llama_kld(model, text, base, *extra):
    """Runs llama-perplexity's KL divergence against `base`, returning its
    printed statistics."""
    tool = LLAMA_BIN / "llama-perplexity"
    r = subprocess.run([str(tool), "-m", str(model), "-f", str(text), "-c", str(CTX), "--chunks", str(CHUNKS),
                        "-t", "2", "--kl-divergence-base", str(base), "--kl-divergence", *extra],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout + r.stderr

    def grab(label):
        m = re.search(re.escape(label) + r"\s*:\s*(-?[0-9.]+)", out)
        assert m, f"{label} not in llama-perplexity's output:\n{out[-3000:]}"
        return float(m.group(1))

    return {"kld_mean": grab("Mean    KLD"), "kld_median": grab("Median  KLD"), "kld_p99": grab("99.0%   KLD"),
            "kld_max": grab("Maximum KLD"), "ppl": grab("Mean PPL(Q)"), "ppl_base": grab("Mean PPL(base)"),
            "same_top": grab("Same top p") / 100}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    need("llama-perplexity", (LLAMA_BIN / "llama-perplexity").is_file())
    need("the corpora (python3 scripts/corpora.py)", (CORPORA / "kjv.txt").is_file())
    d = tmp_path_factory.mktemp("kld")
    # Genesis 1-50 is far more than the 8 x 128 tokens used.
    lines = (CORPORA / "kjv.txt").read_text(encoding="utf-8").splitlines()[:1533]
    text = d / "genesis.txt"
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    q = d / "smol-q4_0.gguf"
    lowbit("quantize", SMOL_GGUF, q, "--scheme", "q4_0", "--quiet")
    return d, text, q


@need_smol
def test_kld_equals_llama_perplexity_within_2_percent(setup):
    d, text, q = setup
    # llama.cpp: the base from the reference model, then the comparison.
    base = d / "llama.kld"
    r = subprocess.run([str(LLAMA_BIN / "llama-perplexity"), "-m", str(SMOL_GGUF), "-f", str(text), "-c", str(CTX),
                        "--chunks", str(CHUNKS), "-t", "2", "--kl-divergence-base", str(base)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    peer = llama_kld(q, text, base)
    ours = json.loads(lowbit("eval", "kld", SMOL_GGUF, q, "--text", text, "--ctx", CTX, "--chunks", CHUNKS,
                             "--threads", 2, "--json").stdout)
    m = ours["models"][0]
    assert ours["chunks"] == CHUNKS and m["tokens"] == CHUNKS * (CTX - 1 - CTX // 2)
    print("\n            lowbit      llama.cpp")
    for k in ("kld_mean", "kld_median", "kld_p99", "same_top", "ppl", "ppl_base"):
        print(f"{k:<10} {m[k]:10.6f} {peer[k]:10.6f}  ({m[k] / peer[k] - 1:+.2%})")
    for k in ("kld_mean", "same_top", "ppl", "ppl_base"):
        assert abs(m[k] / peer[k] - 1) < 0.02, (k, m[k], peer[k])

    # lowbit reads llama.cpp's base file: the reference is then llama.cpp's
    # logits, so the only difference left is the evaluated model's.
    from_peer = json.loads(lowbit("eval", "kld", base, q, "--threads", 2, "--json").stdout)["models"][0]
    assert from_peer["tokens"] == m["tokens"]
    assert abs(from_peer["kld_mean"] / peer["kld_mean"] - 1) < 0.02
    assert abs(from_peer["ppl_base"] / peer["ppl_base"] - 1) < 1e-4  # the same base rows

    # llama-perplexity reads lowbit's base file.
    ours_base = d / "lowbit.kld"
    lowbit("eval", "kld", SMOL_GGUF, "--text", text, "--ctx", CTX, "--chunks", CHUNKS, "--save-base", ours_base)
    assert ours_base.read_bytes()[:8] == b"_logits_"
    peer_on_ours = llama_kld(q, text, ours_base)
    assert abs(peer_on_ours["ppl_base"] / m["ppl_base"] - 1) < 1e-4  # lowbit's base rows, read by llama.cpp
    assert abs(peer_on_ours["kld_mean"] / peer["kld_mean"] - 1) < 0.02


@need_smol
def test_kld_is_identical_at_1_and_2_threads(setup):
    d, text, q = setup
    runs = [json.loads(lowbit("eval", "kld", SMOL_GGUF, q, "--text", text, "--ctx", 64, "--chunks", 3,
                              "--threads", t, "--json").stdout)["models"][0] for t in (1, 2)]
    assert runs[0] == {**runs[1], "model": runs[0]["model"]}


@need_smol
def test_kld_refuses_bad_input(setup, tmp_path):
    d, text, q = setup
    # Neither a MODEL nor --save-base.
    assert lowbit("eval", "kld", SMOL_GGUF, "--text", text, check=False).returncode == 2
    # A base file carries its own tokens.
    base = tmp_path / "b.kld"
    lowbit("eval", "kld", SMOL_GGUF, "--text", text, "--ctx", 64, "--chunks", 2, "--save-base", base)
    r = lowbit("eval", "kld", base, q, "--text", text, check=False)
    assert r.returncode == 2 and b"base file" in r.stderr
    # A truncated base file.
    cut = tmp_path / "cut.kld"
    cut.write_bytes(base.read_bytes()[:-10])
    r = lowbit("eval", "kld", cut, q, check=False)
    assert r.returncode == 1 and b"needs" in r.stderr, r.stderr
    # A text too short, and nothing written.
    short = tmp_path / "short.txt"
    short.write_text("In the beginning God created the heaven and the earth.\n")
    out = tmp_path / "never.kld"
    r = lowbit("eval", "kld", SMOL_GGUF, q, "--text", short, "--save-base", out, check=False)
    assert r.returncode == 1 and not out.exists()
