"""`lowbit quantize --eval`: the model-level columns of the report are the
numbers `lowbit eval` gives for the same output and settings, and an
evaluation lowbit cannot run is refused before any work
(docs/evaluation.md)."""
import json
import os
import pathlib
import subprocess

import pytest

from real_models import lowbit, MINILM_DIR, SMOL_GGUF, need, need_minilm, need_smol

REPO = pathlib.Path(__file__).resolve().parents[2]
CORPORA = pathlib.Path(os.environ.get("LOWBIT_CORPORA", REPO / "build-corpora"))


@pytest.fixture(autouse=True)
def corpora():
    need("the corpora (python3 scripts/corpora.py)", (CORPORA / "kjv-web.tsv").is_file())


@need_smol
def test_language_model_columns_are_eval_kld(tmp_path):
    out, report = tmp_path / "q8.gguf", tmp_path / "r.json"
    r = lowbit("quantize", "smollm2", out, "--scheme", "q8_0", "--eval", "--eval-chunks", 2, "--quiet",
               "--report", report)
    assert b"quality" in r.stdout
    q = json.loads(report.read_text())["quality"]
    assert q["kind"] == "language" and q["scored_tokens"] == 2 * 255
    k = json.loads(lowbit("eval", "kld", "smollm2", out, "--corpus", "kjv", "--ctx", 512, "--chunks", 2,
                          "--json").stdout)["models"][0]
    for a, b in (("kld_mean", "kld_mean"), ("same_top", "same_top"), ("ppl", "ppl"), ("ppl_base", "ppl_base")):
        assert q[a] == k[b], (a, q[a], k[b])
    assert 0 < q["kld_mean"] < 0.05 and q["same_top"] > 0.85  # Q8_0 of a Q4_1 model: close to it


@need_minilm
def test_embedding_model_columns(tmp_path):
    report = tmp_path / "r.json"
    lowbit("quantize", "minilm", tmp_path / "cmp", "--scheme", "int8/channel", "--scheme", "int4/g32/asym",
           "--eval", "--eval-pairs", 100, "--quiet", "--report", report)
    rows = json.loads(report.read_text())
    q8, q4 = rows[0]["quality"], rows[1]["quality"]
    assert q8["kind"] == "embedding" and q8["sentences"] == 200
    assert q8["recall_at_1_base"] == q4["recall_at_1_base"] > 0.9
    assert 1 > q8["cosine_mean"] > q4["cosine_mean"] > 0.9  # 8 bits beat 4
    assert q8["cosine_worst"] <= q8["cosine_mean"]


@need_smol
def test_unrunnable_evaluations_are_refused_before_work(tmp_path):
    # A GGUF language model written as compressed-tensors cannot be run back.
    r = lowbit("quantize", "smollm2", tmp_path / "ct", "--scheme", "int8/channel", "--eval", check=False)
    assert r.returncode == 2 and b"--eval" in r.stderr
    assert not (tmp_path / "ct").exists()
    # Not a model lowbit runs: a bare safetensors file without config.json.
    import numpy as np
    from safetensors.numpy import save_file
    save_file({"w.weight": np.ones((4, 256), np.float32)}, str(tmp_path / "m.safetensors"))
    r = lowbit("quantize", tmp_path / "m.safetensors", tmp_path / "o", "--scheme", "int8/channel", "--eval",
               check=False)
    assert r.returncode == 2 and b"neither" in r.stderr
    assert not (tmp_path / "o").exists()
