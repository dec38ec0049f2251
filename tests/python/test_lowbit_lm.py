"""lowbit's own language model, models/lowbit-lm/ (docs/lowbit-lm.md): the
committed GGUF is what scripts/train_lowbit_lm.sh made from
configs/lowbit-lm.json, lowbit finds it by name, llama.cpp runs it and agrees
with lowbit's perplexity, it beats n-gram baselines on held-out text, and
retraining its first steps reproduces the committed loss log."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from real_models import LOWBIT, llama_perplexity_final, lowbit, need

REPO = pathlib.Path(__file__).resolve().parents[2]
MODEL_DIR = REPO / "models" / "lowbit-lm"
GGUF = MODEL_DIR / "lowbit-lm.gguf"
CONFIG = REPO / "configs" / "lowbit-lm.json"
CORPORA = REPO / "build-corpora"
LLAMA_BIN = pathlib.Path(os.environ.get("LOWBIT_LLAMA_CPP_BIN", REPO / "build-llama-cpp" / "build" / "bin"))


def test_the_committed_model_and_its_record():
    assert GGUF.is_file(), "models/lowbit-lm/lowbit-lm.gguf is missing: scripts/train_lowbit_lm.sh makes it"
    assert GGUF.stat().st_size <= 40 * 1000 * 1000
    log = json.loads((MODEL_DIR / "log.json").read_text())
    cfg = json.loads(CONFIG.read_text())
    assert len(log) == cfg["train"]["steps"]
    record = (MODEL_DIR / "TRAINING.txt").read_text()
    assert "build/lowbit train --config configs/lowbit-lm.json" in record
    assert cfg["train"]["seed"] == 1
    # Found by name, read like any model.
    info = json.loads(lowbit("inspect", "lowbit-lm", "--json").stdout)
    assert info["metadata"]["general.architecture"]["value"] == "llama"


def test_retraining_the_first_steps_reproduces_the_log(tmp_path):
    need("the corpora (build-corpora/)", all((CORPORA / f).is_file() for f in
                                             ("web.txt", "linux-doc.train.txt", "fortunes.txt", "jargon.txt")))
    r = lowbit("train", "--config", CONFIG, "-o", tmp_path / "run", "--stop-after", 3, "--json", "--threads", 2)
    out = json.loads(r.stdout)
    assert out["finished"] is False
    ours = json.loads((tmp_path / "run" / "log.json").read_text())
    committed = json.loads((MODEL_DIR / "log.json").read_text())[:3]
    for a, b in zip(ours, committed):
        assert a["step"] == b["step"]
        # The same bits on the machine that trained it; OpenBLAS picks its
        # kernels by CPU, so another CPU may differ in the last bits.
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5), (a, b)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4), (a, b)


def test_llama_perplexity_agrees_with_lowbit(tmp_path):
    need("llama-perplexity", (LLAMA_BIN / "llama-perplexity").is_file())
    need("the corpora (build-corpora/)", (CORPORA / "kjv.txt").is_file())
    text = tmp_path / "kjv.txt"
    text.write_bytes((CORPORA / "kjv.txt").read_bytes()[:60_000])
    peer = llama_perplexity_final(LLAMA_BIN / "llama-perplexity",
                                  ["-m", GGUF, "-f", text, "-c", 512, "--chunks", 8, "-t", 2])
    ours = json.loads(lowbit("eval", "ppl", "lowbit-lm", "--text", text, "--ctx", 512, "--chunks", 8,
                             "--json").stdout)
    assert abs(ours["ppl"] / peer - 1) < 0.01, (ours["ppl"], peer)


def test_it_beats_the_ngram_baselines():
    need("the corpora (build-corpora/)", (CORPORA / "web.txt").is_file())
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "bigram_baseline.py"), "--config", str(CONFIG),
                        "--model", str(GGUF), "--lowbit", str(LOWBIT), "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    base = json.loads(r.stdout)
    final = json.loads((MODEL_DIR / "log.json").read_text())[-1]["heldout"]
    assert final < base["bigram_loss"] < base["unigram_loss"]


def test_hugging_face_export_tokenizes_and_scores_the_same(tmp_path):
    """`lowbit export lowbit-lm DIR`: Hugging Face's tokenizers reads
    tokenizer.json to the same ids as lowbit's GGUF tokenizer, and lowbit
    runs the directory (Hugging Face names, rotate_half RoPE) to the GGUF's
    perplexity."""
    tokenizers = pytest.importorskip("tokenizers")
    need("the corpora (build-corpora/)", (CORPORA / "kjv.txt").is_file())
    out = tmp_path / "hf"
    lowbit("export", "lowbit-lm", out)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == \
        ["config.json", "model.safetensors", "tokenizer.json"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"] and cfg["tie_word_embeddings"] is True
    text = tmp_path / "kjv.txt"
    text.write_bytes((CORPORA / "kjv.txt").read_bytes()[:60_000])
    tok = tokenizers.Tokenizer.from_file(str(out / "tokenizer.json"))
    hf_ids = tok.encode(text.read_text(), add_special_tokens=False).ids
    ours = [int(t) for t in lowbit("tokenize", "lowbit-lm", "--file", text, "--no-special").stdout.decode().replace(",", " ").split()]
    assert len(ours) > 10000 and hf_ids == ours
    a = json.loads(lowbit("eval", "ppl", "lowbit-lm", "--text", text, "--ctx", 256, "--chunks", 4, "--json").stdout)
    b = json.loads(lowbit("eval", "ppl", out, "--text", text, "--ctx", 256, "--chunks", 4, "--json").stdout)
    assert b["ppl"] == pytest.approx(a["ppl"], rel=1e-4)
