"""GPTQ through the command line on lowbit's own model (docs/gptq.md).

`lowbit calibrate --gram` on the calibration split of linux-doc, then
`lowbit quantize --method gptq --calib` of the Hugging Face export of
lowbit-lm into compressed-tensors (its weights are named the Hugging Face
way, the calibration file the GGUF way, as llama-imatrix names them), judged
by the KL divergence to the float32 model on kjv (text the calibration never
saw), against plain rounding of the same scheme.
"""
import json
import pathlib

import pytest

from real_models import lowbit, need

REPO = pathlib.Path(__file__).resolve().parents[2]
CORPORA = REPO / "build-corpora"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    need("the corpora (python3 scripts/corpora.py)", (CORPORA / "linux-doc.calib.txt").is_file())
    d = tmp_path_factory.mktemp("gptq")
    lowbit("export", "lowbit-lm", d / "hf")
    r = json.loads(lowbit("calibrate", "lowbit-lm", "--corpus", "linux-doc", "--chunks", 16, "--gram",
                          "-o", d / "calib.gguf", "--threads", 2, "--json").stdout)
    assert r["chunks"] == 16
    return d


def quantize(d, method, out, threads=2):
    lowbit("quantize", d / "hf", d / out, "--scheme", "int4/g128", "--method", method, "--calib", d / "calib.gguf",
           "--eval", "--eval-chunks", 4, "--quiet", "--threads", threads, "--report", d / f"{out}.json")
    return json.loads((d / f"{out}.json").read_text())


def test_gptq_halves_the_kld_of_plain_rounding(setup):
    rtn = quantize(setup, "rtn", "rtn")
    gptq = quantize(setup, "gptq", "gptq")
    natural = quantize(setup, "gptq:act_order=0", "natural")
    k = {n: r["quality"]["kld_mean"] for n, r in (("rtn", rtn), ("gptq", gptq), ("natural", natural))}
    print(f"\nlowbit-lm int4/g128, mean KLD on kjv: {k}")
    # Measured 0.00281 (rtn), 0.00142 (gptq, act-order), 0.00177 (natural order).
    assert k["gptq"] <= 0.6 * k["rtn"], k
    assert k["natural"] < k["rtn"], k
    assert gptq["output_bytes"] == rtn["output_bytes"]
    # Every Linear's output error on the calibration data went down, and the
    # report says by how much.
    for t in gptq["tensors"]:
        if not t["quantized"]:
            continue
        e = t["calib_output_error"]
        assert 0 < e["method"] < e["rtn"] and e["ratio"] == pytest.approx(e["method"] / e["rtn"]), t
        assert t["method"] == "gptq"
    assert all("calib_output_error" not in t for t in rtn["tensors"])


def test_same_bytes_at_one_and_two_threads(setup):
    quantize(setup, "gptq", "t1", threads=1)
    quantize(setup, "gptq", "t2", threads=2)
    assert (setup / "t1" / "model.safetensors").read_bytes() == (setup / "t2" / "model.safetensors").read_bytes()


def test_bad_calibration_is_refused_before_any_output(setup, tmp_path):
    base = ["quantize", setup / "hf", tmp_path / "o", "--scheme", "int4/g128", "--quiet"]
    r = lowbit(*base, "--method", "gptq", check=False)
    assert r.returncode == 2 and b"needs calibration statistics" in r.stderr, r.stderr
    # An importance matrix without Gram matrices (calibrate without --gram).
    lowbit("calibrate", "lowbit-lm", "--corpus", "linux-doc", "--chunks", 1, "-o", tmp_path / "plain.gguf")
    r = lowbit(*base, "--method", "gptq", "--calib", tmp_path / "plain.gguf", check=False)
    assert r.returncode == 1 and b"has no Gram matrix for 'model.layers.0." in r.stderr, r.stderr
    # A misspelt option. (Statistics of a model of other widths:
    # model_quantizer_test.cc.)
    r = lowbit(*base, "--method", "gptq:act_ordr", "--calib", setup / "calib.gguf", check=False)
    assert r.returncode == 2 and b"unknown gptq option" in r.stderr, r.stderr
    r = lowbit("quantize", "lowbit-lm", tmp_path / "o.gguf", "--scheme", "q4_k", "--method", "gptq", "--calib",
               setup / "calib.gguf", check=False)
    assert r.returncode == 2 and b"does not write ggml block types yet" in r.stderr, r.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.gguf").exists()
