"""`lowbit calibrate` judged by llama.cpp (docs/calibration.md).

- The importance matrix equals llama-imatrix's on the same model, text,
  context and chunks: the same entries and token counts, and per entry the
  median relative difference over columns is below 1% in the median over
  entries. They cannot agree exactly: llama.cpp's activations come from
  matmuls with 8-bit-rounded activations and a float16 KV cache, lowbit's
  from float32 throughout. The largest differences are at attn_output (its
  input is the attention output, where the float16 cache acts), about 1.5%.
- The file is llama.cpp's: llama-quantize reads lowbit's (which also
  carries lowbit's per-column maxima, tensors llama.cpp skips) and lowbit
  reads llama.cpp's, and with the same importance matrix the two tools
  write the same bytes for every tensor (Q4_K with its Q5_0 fallbacks,
  --pure).
- The same file at 1 and 2 threads; bad input refused before any output.
"""
import json
import os
import pathlib
import re
import subprocess

import numpy as np
import pytest

from real_models import SMOL_GGUF, lowbit, need, need_smol

REPO = pathlib.Path(__file__).resolve().parents[2]
LLAMA_BIN = pathlib.Path(os.environ.get("LOWBIT_LLAMA_CPP_BIN", REPO / "build-llama-cpp" / "build" / "bin"))
CORPORA = pathlib.Path(os.environ.get("LOWBIT_CORPORA", REPO / "build-corpora"))
CTX, CHUNKS = 512, 4


def run(args):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"{args[0]} exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


def importance(path):
    """{weight: (in_sum2 / counts, counts)} of an imatrix GGUF, read by gguf-py."""
    import gguf
    r = gguf.GGUFReader(str(path))
    assert bytes(r.fields["general.type"].parts[-1]).decode() == "imatrix"
    sums, counts = {}, {}
    for t in r.tensors:
        if t.name.endswith(".in_sum2"):
            sums[t.name[:-len(".in_sum2")]] = np.asarray(t.data, dtype=np.float64).reshape(-1)
        elif t.name.endswith(".counts"):
            counts[t.name[:-len(".counts")]] = float(np.asarray(t.data).reshape(-1)[0])
    assert sums.keys() == counts.keys()
    return {k: (sums[k] / counts[k], counts[k]) for k in sums}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    need("llama-imatrix", (LLAMA_BIN / "llama-imatrix").is_file())
    need("the corpora (python3 scripts/corpora.py)", (CORPORA / "linux-doc.calib.txt").is_file())
    d = tmp_path_factory.mktemp("calib")
    text = d / "calib.txt"
    # The start of linux-doc:calib: 60 kB, about 15k tokens, more than the
    # 4 chunks of 512 used.
    text.write_bytes((CORPORA / "linux-doc.calib.txt").read_bytes()[:60000])
    ours, theirs = d / "lowbit.imatrix.gguf", d / "llama.imatrix.gguf"
    r = json.loads(lowbit("calibrate", SMOL_GGUF, "--text", text, "--ctx", CTX, "--chunks", CHUNKS, "-o", ours,
                          "--threads", 2, "--json").stdout)
    assert r["chunks"] == CHUNKS and r["tokens"] == CHUNKS * CTX and r["entries"] == 210
    run([LLAMA_BIN / "llama-imatrix", "-m", SMOL_GGUF, "-f", text, "-o", theirs, "-c", CTX, "--chunks", CHUNKS,
         "-t", 2, "--no-ppl"])
    return d, text, ours, theirs


@need_smol
def test_importance_matrix_equals_llama_imatrix(setup):
    d, text, ours, theirs = setup
    a, b = importance(ours), importance(theirs)
    assert a.keys() == b.keys() and len(a) == 210
    assert {c for _, c in a.values()} == {c for _, c in b.values()} == {CHUNKS * CTX}
    rel = {k: float(np.median(np.abs(a[k][0] - b[k][0]) / b[k][0])) for k in a}
    worst = sorted(rel, key=rel.get)[-3:]
    print(f"\nmedian over entries {100 * np.median(list(rel.values())):.3f}%; worst: " +
          ", ".join(f"{k} {100 * rel[k]:.2f}%" for k in worst))
    assert np.median(list(rel.values())) < 0.01
    # The outliers are the attention output's input (see above), bounded.
    assert max(rel.values()) < 0.05, worst


def gguf_tensors(path):
    import gguf
    r = gguf.GGUFReader(str(path))
    return {t.name: (t.tensor_type, np.asarray(t.data).view(np.uint8).tobytes()) for t in r.tensors}


@need_smol
def test_each_tool_reads_the_others_file_and_both_write_the_same_bytes(setup):
    d, text, ours, theirs = setup
    # lowbit's file carries its further statistics (the largest |x| per
    # column) beside llama.cpp's tensors; llama-quantize must skip them.
    import gguf
    extra = {t.name[:-len(".in_absmax")]: np.asarray(t.data, dtype=np.float64).reshape(-1)
             for t in gguf.GGUFReader(str(ours)).tensors if t.name.endswith(".in_absmax")}
    mean_sq = importance(ours)
    assert extra.keys() == mean_sq.keys()
    for k, mx in extra.items():  # a maximum is at least the root mean square
        assert np.all(mx * mx >= mean_sq[k][0] * (1 - 1e-6)), k
    tools = {}
    for name, imatrix in (("ours", ours), ("theirs", theirs)):
        llama_out, lowbit_out = d / f"llama-q4k-{name}.gguf", d / f"lowbit-q4k-{name}.gguf"
        r = run([LLAMA_BIN / "llama-quantize", "--allow-requantize", "--pure", "--token-embedding-type", "q8_0",
                 "--imatrix", imatrix, SMOL_GGUF, llama_out, "Q4_K", 2])
        assert re.search(r"loaded 210 importance matrix entries", r.stdout + r.stderr), r.stdout[-2000:]
        recipe = d / f"recipe-{name}.json"
        recipe.write_text(json.dumps({"default_scheme": "q4_k", "method": "mse", "importance": str(imatrix)}))
        lowbit("quantize", SMOL_GGUF, lowbit_out, "--recipe", recipe, "--quiet", "--threads", 2)
        a, b = gguf_tensors(llama_out), gguf_tensors(lowbit_out)
        assert a.keys() == b.keys()
        differ = [k for k in a if a[k] != b[k]]
        assert not differ, f"{len(differ)} tensors differ with the {name} imatrix, e.g. {differ[:3]}"
        tools[name] = b
    # The importance matrix does steer the result (not silently ignored).
    plain = d / "lowbit-q4k-plain.gguf"
    lowbit("quantize", SMOL_GGUF, plain, "--scheme", "q4_k", "--method", "mse", "--quiet")
    p = gguf_tensors(plain)
    assert sum(p[k] != tools["ours"][k] for k in p) > 100


@need_smol
def test_gram_matrices_and_llama_quantize_still_reads_the_file(setup, tmp_path):
    d, text, ours, theirs = setup
    g = tmp_path / "gram.gguf"
    r = json.loads(lowbit("calibrate", SMOL_GGUF, "--text", text, "--ctx", 128, "--chunks", 2, "-o", g, "--gram",
                          "--col-percentiles", "--threads", 2, "--json").stdout)
    assert r["gram"] is True and r["column_percentiles"] == pytest.approx([99, 99.9, 99.99, 99.999])
    import gguf
    tensors = {t.name: t for t in gguf.GGUFReader(str(g)).tensors}
    grams = {k[:-len(".in_gram")]: v for k, v in tensors.items() if k.endswith(".in_gram")}
    assert len(grams) == 210
    for name in ("blk.0.attn_q.weight", "blk.7.ffn_down.weight"):
        m = np.asarray(grams[name].data, dtype=np.float64)
        cols = m.shape[-1]
        m = m.reshape(cols, cols)
        assert np.array_equal(m, m.T)
        # Its diagonal is sum x^2, which the file also holds as in_sum2 (the
        # same float64 sums in another order, each rounded to float32).
        s2 = np.asarray(tensors[name + ".in_sum2"].data, dtype=np.float64).reshape(-1)
        assert np.allclose(np.diag(m), s2, rtol=1e-5), name
        # A Gram matrix is positive semi-definite.
        assert np.linalg.eigvalsh(m).min() > -1e-3 * np.abs(m).max()
    # Q, K and V share an input, so one matrix.
    assert np.array_equal(np.asarray(grams["blk.3.attn_q.weight"].data), np.asarray(grams["blk.3.attn_v.weight"].data))
    # Per-column percentiles: [levels, cols], rising with the level, never
    # above the column's maximum.
    pct = np.asarray(tensors["blk.7.ffn_down.weight.in_pct"].data, dtype=np.float64).reshape(4, -1)
    amax = np.asarray(tensors["blk.7.ffn_down.weight.in_absmax"].data, dtype=np.float64).reshape(-1)
    assert pct.shape[1] == amax.size and (np.diff(pct, axis=0) >= 0).all() and (pct <= amax).all()
    assert (pct[0] > 0).all()
    # llama-quantize skips the further tensors.
    out = tmp_path / "q.gguf"
    r = run([LLAMA_BIN / "llama-quantize", "--allow-requantize", "--imatrix", g, SMOL_GGUF, out, "Q4_K_M", 2])
    assert re.search(r"loaded 210 importance matrix entries", r.stdout + r.stderr), r.stdout[-2000:]


@need_smol
def test_same_file_at_one_and_two_threads(setup, tmp_path):
    d, text, ours, theirs = setup
    one = tmp_path / "one.gguf"
    lowbit("calibrate", SMOL_GGUF, "--text", text, "--ctx", CTX, "--chunks", CHUNKS, "-o", one, "--threads", 1)
    assert one.read_bytes() == ours.read_bytes()


@need_smol
def test_bad_input(setup, tmp_path):
    d, text, ours, theirs = setup
    out = tmp_path / "m.gguf"

    def refused(*args, code=None, says):
        r = lowbit("calibrate", SMOL_GGUF, *args, check=False)
        err = r.stderr.decode(errors="replace")
        assert r.returncode != 0 and (code is None or r.returncode == code), (args, r.returncode, err)
        assert says in err, (args, err)
        assert not out.exists() and list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())

    refused("-o", out, says="--text FILE or --corpus NAME")
    refused("--corpus", "nonesuch", "-o", out, says="nonesuch")
    refused("--text", text, "--ctx", 100000, "-o", out, says="context length")
    short = d / "short.txt"
    short.write_text("too short")
    refused("--text", short, "--ctx", CTX, "-o", out, says="at least one chunk")
    (tmp_path / "empty.txt").write_text("")
    r = lowbit("calibrate", SMOL_GGUF, "--text", tmp_path / "empty.txt", "-o", out, check=False)
    assert r.returncode != 0 and b"empty" in r.stderr
    (tmp_path / "empty.txt").unlink()
    refused("--text", text, "-o", SMOL_GGUF, says="")  # the model itself: never overwritten
    refused("--text", text, "-o", tmp_path / "missing" / "m.gguf", says="missing")
    refused("--text", text, "--tokens", 10, "--ctx", CTX, "-o", out, says="at least one chunk")
    refused("--text", text, "--batch", 4, "-o", out, code=2, says="--batch is for embedding models")
    # A GGUF that is not an importance matrix, given to a recipe.
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"default_scheme": "q4_k", "importance": str(SMOL_GGUF)}))
    r = lowbit("quantize", SMOL_GGUF, tmp_path / "q.gguf", "--recipe", recipe, check=False)
    assert r.returncode != 0 and b"not an importance matrix" in r.stderr, r.stderr
    assert not (tmp_path / "q.gguf").exists()
