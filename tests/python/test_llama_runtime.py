"""lowbit's Llama runtime on SmolLM2-135M (GGUF Q4_1), judged by
llama.cpp (docs/runtime.md).

- perplexity: `lowbit eval ppl` against `llama-perplexity` on the same
  file and settings (Genesis 1-3 of the King James Bible, ctx 128, 4
  chunks): equal within 1%. They cannot agree bit for bit: llama.cpp
  multiplies Q4_1 weights with activations rounded to Q8_1 blocks and keeps
  the KV cache in float16, lowbit dequantizes the weights to float32 and
  keeps everything in float32;
- determinism: the scored logits at --threads 1 and --threads 2 are the
  same bytes;
- decoding: greedy `generate` through the KV cache picks, at each step, the
  argmax of a fresh batched prefill over the same tokens;
- bad input: a model that is not a Llama decoder, an empty text, a
  context beyond the model's, a text too short, invalid UTF-8 in a prompt.

Timing is reported by the commands but never asserted.
"""
import json
import os
import pathlib
import re
import shutil
import subprocess

import numpy as np
import pytest

from real_models import LOWBIT, lowbit, MINILM_DIR, SMOL_GGUF, need, need_minilm, need_smol

REPO = pathlib.Path(__file__).resolve().parents[2]
LLAMA_BIN = pathlib.Path(os.environ.get("LOWBIT_LLAMA_CPP_BIN", REPO / "build-llama-cpp" / "build" / "bin"))

# The evaluation text: Genesis 1-3 (KJV), about 2,900 tokens, of which the
# 4 chunks of 128 use the first 512.
KJV_RANGE = "gen1:1-3:24"
CTX, CHUNKS = 128, 4


@pytest.fixture(scope="module")
def genesis(tmp_path_factory):
    need("the bible program (apt-get install bible-kjv bible-kjv-text)", shutil.which("bible") is not None)
    text = subprocess.run(["bible", KJV_RANGE], capture_output=True, check=True).stdout
    path = tmp_path_factory.mktemp("llama") / "genesis.txt"
    path.write_bytes(text)
    return path


@need_smol
def test_perplexity_matches_llama_perplexity(genesis):
    tool = LLAMA_BIN / "llama-perplexity"
    need("llama-perplexity", tool.is_file())
    peer = subprocess.run([str(tool), "-m", SMOL_GGUF, "-f", genesis, "-c", str(CTX), "--chunks", str(CHUNKS),
                           "-t", "2"], capture_output=True, text=True)
    assert peer.returncode == 0, peer.stderr
    m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", peer.stdout + peer.stderr)
    assert m, peer.stderr[-2000:]
    peer_ppl, peer_err = float(m.group(1)), float(m.group(2))
    r = json.loads(lowbit("eval", "ppl", SMOL_GGUF, "--text", genesis, "--ctx", CTX, "--chunks", CHUNKS,
                          "--threads", 2, "--json").stdout)
    assert r["chunks"] == CHUNKS and r["scored_tokens"] == CHUNKS * (CTX - 1 - CTX // 2)
    assert r["add_bos"] is False  # SmolLM2: tokenizer.ggml.add_bos_token false
    print(f"\nperplexity: lowbit {r['ppl']:.4f} +/- {r['ppl_error']:.5f}, llama.cpp {peer_ppl:.4f} +/- {peer_err:.5f}")
    assert abs(r["ppl"] / peer_ppl - 1) < 0.01
    assert abs(r["ppl_error"] / peer_err - 1) < 0.05


@need_smol
def test_logits_bit_identical_across_thread_counts(genesis, tmp_path):
    outs = []
    for threads in (1, 2):
        path = tmp_path / f"logits{threads}.npy"
        lowbit("eval", "ppl", SMOL_GGUF, "--text", genesis, "--ctx", 64, "--chunks", 2, "--threads", threads,
               "--save-logits", path)
        outs.append(path.read_bytes())
    assert outs[0] == outs[1]
    logits = np.load(tmp_path / "logits1.npy")
    assert logits.shape == (2 * (64 - 1 - 32), 49152) and np.isfinite(logits).all()


@need_smol
def test_greedy_decoding_agrees_with_prefill():
    r = json.loads(lowbit("generate", SMOL_GGUF, "-p", "In the beginning God created", "-n", 16, "--threads", 2,
                          "--json").stdout)
    prompt, ids = r["prompt_ids"], r["ids"]
    assert len(ids) == 16 and r["text"]
    # The same sequence again, as one prefill of prompt + ids[:k]: its last
    # row's argmax must be ids[k], the token the cached decode chose.
    for k in (1, 8, 15):
        again = json.loads(lowbit("generate", SMOL_GGUF, "--ids", " ".join(map(str, prompt + ids[:k])), "-n", 1,
                                  "--json").stdout)
        assert again["ids"] == [ids[k]], (k, again)
    # The stream prints the same text.
    streamed = lowbit("generate", SMOL_GGUF, "-p", "In the beginning God created", "-n", 16).stdout.decode()
    assert streamed == r["text"] + "\n"


@need_smol
def test_sampling_is_a_function_of_the_seed():
    args = ["generate", SMOL_GGUF, "-p", "The", "-n", 8, "--temp", 0.8, "--top-k", 40, "--json"]
    a = json.loads(lowbit(*args, "--seed", 5, "--threads", 1).stdout)
    b = json.loads(lowbit(*args, "--seed", 5, "--threads", 2).stdout)
    assert a["ids"] == b["ids"]


@need_minilm
def test_refuses_a_model_that_is_not_llama(genesis):
    r = lowbit("eval", "ppl", MINILM_DIR, "--text", genesis, check=False)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "'bert'" in err and "lowbit runs llama" in err, err


@need_smol
def test_bad_input(genesis, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"\n")
    r = lowbit("eval", "ppl", SMOL_GGUF, "--text", empty, check=False)
    assert r.returncode == 1 and b"empty" in r.stderr
    r = lowbit("eval", "ppl", SMOL_GGUF, "--text", genesis, "--ctx", 16384, check=False)
    assert r.returncode == 1 and b"context length 8192" in r.stderr, r.stderr
    short = tmp_path / "short.txt"
    short.write_text("In the beginning God created the heaven and the earth.\n")
    r = lowbit("eval", "ppl", SMOL_GGUF, "--text", short, "--ctx", 64, check=False)
    assert r.returncode == 1 and b"you need at least 128 tokens" in r.stderr, r.stderr
    r = lowbit("eval", "ppl", SMOL_GGUF, check=False)
    assert r.returncode == 2
    r = subprocess.run([str(LOWBIT), "generate", str(SMOL_GGUF), "-p", b"caf\xe9"], capture_output=True)
    assert r.returncode == 1 and b"not valid UTF-8" in r.stderr, r.stderr
