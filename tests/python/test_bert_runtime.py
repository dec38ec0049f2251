"""`lowbit embed` against an independent numpy BERT (docs/embeddings.md).

The reference is written here from the definitions, not from lowbit's code:
the weights come from all-MiniLM-L6-v2's model.safetensors through the
`safetensors` package, the token ids from Hugging Face `tokenizers` on the
model's own tokenizer.json (its stored padding off, truncation at
sentence_bert_config.json's max_seq_length, which is what
sentence-transformers asks the tokenizer for), and the forward pass runs in
float64: embeddings, LayerNorm, per-head softmax attention, GELU, mean
pooling over every token, L2 normalization.

GELU's erf has no numpy function (and no scipy here), so the reference uses
the Chebyshev-fitted erfc of Numerical Recipes (fractional error below
1.2e-7 everywhere, in both tails), which puts GELU within about 1e-7
relative of the exact value: float32's own rounding is 6e-8, and the
tolerance checked, 1e-5, is a hundred times looser.

The text: the first 1000 verses of the King James Bible (`bible
"gen1:1-gen40:23"`, references and chapter headings stripped, one verse a
line).
"""
import pathlib
import re
import shutil
import subprocess
import json

import pytest

from real_models import minilm_with_model_type, MINILM_DIR, SMOL_GGUF, need, need_minilm

np = pytest.importorskip("numpy")
safetensors_numpy = pytest.importorskip("safetensors.numpy")
tokenizers = pytest.importorskip("tokenizers")

N_VERSES = 1000
REL_TOL = 1e-5


def kjv_verses(n):
    need("the King James Bible is not installed (apt-get install bible-kjv)", shutil.which("bible"))
    text = subprocess.run(["bible", "gen1:1-gen40:23"], capture_output=True, text=True, timeout=60,
                          check=True).stdout
    verses = []
    for line in text.splitlines():
        m = re.match(r"^\s+\d+ (.*)$", line)
        if m:
            verses.append(m.group(1).strip())
        elif not line.strip() or re.fullmatch(r"(\d )?[A-Z][A-Za-z ]* \d+", line.strip()):
            continue  # blank line or chapter heading ("Genesis 2")
        else:
            verses[-1] += " " + line.strip()  # a verse wrapped onto the next line
    assert len(verses) >= n
    return verses[:n]


# ---------------------------------------------------------------- reference
def gelu(x, chunk=1 << 15):
    """0.5 x (1 + erf(x / sqrt 2)) in float64, with Numerical Recipes' erfc
    (Chebyshev fit, fractional error < 1.2e-7). Chunks that stay in cache and
    in-place steps keep the 26 passes over 50 million values fast."""
    out = np.empty_like(x)
    flat_x, flat_o = x.reshape(-1), out.reshape(-1)
    coef = [0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196,
            1.00002368, -1.26551223]
    for a in range(0, flat_x.size, chunk):
        xs = flat_x[a:a + chunk]
        z = np.abs(xs) * np.sqrt(0.5)
        t = 1.0 / (1.0 + 0.5 * z)
        poly = np.full_like(t, coef[0])
        for c in coef[1:]:
            poly *= t
            poly += c
        z *= z
        poly -= z
        np.exp(poly, out=poly)
        poly *= t  # erfc(|x| / sqrt 2)
        # 1 + erf(x / sqrt 2) = 2 - erfc for x >= 0, erfc(|x| / sqrt 2) for x < 0
        one_plus_erf = np.where(xs >= 0, 2.0 - poly, poly)
        flat_o[a:a + chunk] = 0.5 * xs * one_plus_erf
    return out


class NumpyBert:
    def __init__(self, model_dir):
        w = safetensors_numpy.load_file(str(model_dir / "model.safetensors"))
        self.w = {k: v.astype(np.float64) for k, v in w.items() if v.dtype == np.float32}
        self.w32 = {k: v for k, v in w.items() if v.dtype == np.float32}
        cfg = json.loads((model_dir / "config.json").read_text())
        self.layers = cfg["num_hidden_layers"]
        self.heads = cfg["num_attention_heads"]
        self.eps = cfg["layer_norm_eps"]
        self.observe = None

    def ln(self, x, name):
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[name + ".weight"] + self.w[name + ".bias"]

    def dense(self, x, name):
        # The one float32 step: numpy's sgemm, as PyTorch computes these
        # products on a CPU (float64 products would double the test's time).
        if self.observe:
            self.observe(name, x)
        y = x.astype(np.float32) @ self.w32[name + ".weight"].T
        return y.astype(np.float64) + self.w[name + ".bias"]

    def embed(self, sentences, observe=None):
        """sentences: lists of token ids. All tokens concatenated for the dense
        layers; attention per sentence. observe(name, x), if given, sees each
        dense layer's input (for the calibration test)."""
        self.observe = observe
        lengths = [len(s) for s in sentences]
        starts = np.concatenate([[0], np.cumsum(lengths)])
        ids = np.concatenate([np.asarray(s) for s in sentences])
        pos = np.concatenate([np.arange(n) for n in lengths])
        h = (self.w["embeddings.word_embeddings.weight"][ids] + self.w["embeddings.token_type_embeddings.weight"][0]
             + self.w["embeddings.position_embeddings.weight"][pos])
        h = self.ln(h, "embeddings.LayerNorm")
        d = h.shape[1] // self.heads
        for l in range(self.layers):
            p = f"encoder.layer.{l}."
            q = self.dense(h, p + "attention.self.query")
            k = self.dense(h, p + "attention.self.key")
            v = self.dense(h, p + "attention.self.value")
            ctx = np.empty_like(h)
            for a, b in zip(starts[:-1], starts[1:]):
                qs = q[a:b].reshape(b - a, self.heads, d).transpose(1, 0, 2)
                ks = k[a:b].reshape(b - a, self.heads, d).transpose(1, 0, 2)
                vs = v[a:b].reshape(b - a, self.heads, d).transpose(1, 0, 2)
                s = qs @ ks.transpose(0, 2, 1) / np.sqrt(d)
                s = np.exp(s - s.max(axis=-1, keepdims=True))
                s /= s.sum(axis=-1, keepdims=True)
                ctx[a:b] = (s @ vs).transpose(1, 0, 2).reshape(b - a, -1)
            h = self.ln(self.dense(ctx, p + "attention.output.dense") + h, p + "attention.output.LayerNorm")
            m = self.dense(h, p + "intermediate.dense")
            m = gelu(m)
            h = self.ln(self.dense(m, p + "output.dense") + h, p + "output.LayerNorm")
        e = np.stack([h[a:b].mean(axis=0) for a, b in zip(starts[:-1], starts[1:])])
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def reference_tokenizer():
    tok = tokenizers.Tokenizer.from_file(str(MINILM_DIR / "tokenizer.json"))
    max_len = json.loads((MINILM_DIR / "sentence_bert_config.json").read_text())["max_seq_length"]
    tok.no_padding()
    tok.enable_truncation(max_length=max_len)
    return tok


def relative_errors(got, want):
    """Per sentence: the largest element error over the reference's norm."""
    return np.abs(got.astype(np.float64) - want).max(axis=1) / np.linalg.norm(want, axis=1)


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def verses(tmp_path_factory):
    lines = kjv_verses(N_VERSES)
    p = tmp_path_factory.mktemp("kjv") / "verses.txt"
    p.write_text("\n".join(lines) + "\n")
    return p, lines


@pytest.fixture(scope="module")
def reference_model():
    return NumpyBert(MINILM_DIR)


@pytest.fixture(scope="module")
def embedded(lowbit_exe, verses, tmp_path_factory):
    """lowbit's embeddings of the verses at 2 and 1 threads (batch 32)."""
    out = tmp_path_factory.mktemp("embed")
    path, _ = verses
    runs = {}
    for threads in (2, 1):
        npy = out / f"t{threads}.npy"
        r = subprocess.run([str(lowbit_exe), "embed", "minilm", "--file", str(path), "-o", str(npy),
                            "--threads", str(threads), "--batch", "32"], capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr
        runs[threads] = (npy, r.stderr.strip().splitlines()[-1])
    return runs


# ---------------------------------------------------------------- tests
@need_minilm
def test_equals_numpy_reference_on_1000_verses(embedded, verses, reference_model):
    _, lines = verses
    got = np.load(embedded[2][0])
    assert got.dtype == np.float32 and got.shape == (N_VERSES, 384)
    ids = [e.ids for e in reference_tokenizer().encode_batch(lines)]
    want = reference_model.embed(ids)
    err = relative_errors(got, want)
    print(f"\nmax relative error over {N_VERSES} verses: {err.max():.3g} (median {np.median(err):.3g}); "
          f"lowbit: {embedded[2][1]}")
    assert err.max() < REL_TOL, f"verse {err.argmax()}: {lines[err.argmax()]!r}"


@need_minilm
def test_threads_1_and_2_byte_identical(embedded):
    print(f"\n1 thread: {embedded[1][1]}")
    assert embedded[1][0].read_bytes() == embedded[2][0].read_bytes()


@need_minilm
def test_truncation_and_empty_line_match_the_reference(lowbit, reference_model):
    # 400 words: far past max_seq_length (256), truncated as
    # sentence-transformers truncates; an empty line is [CLS] [SEP].
    long_line = " ".join(["behold"] * 150 + ["the", "firmament", "of", "heaven"] * 70)
    lines = [long_line, "", "Jesus wept."]
    (lowbit.workdir / "in.txt").write_text("\n".join(lines) + "\n")
    lowbit.run("embed", "minilm", "--file", "in.txt", "-o", "out.npy", "--threads", "2")
    got = np.load(lowbit.workdir / "out.npy")
    ids = [e.ids for e in reference_tokenizer().encode_batch(lines)]
    assert len(ids[0]) == 256 and ids[1] == [101, 102]
    err = relative_errors(got, reference_model.embed(ids))
    assert err.max() < REL_TOL, err
    # TEXT gives the same row as a file holding that one line; in a batch
    # with other sentences the matmul tiles differ (here a 256-token
    # neighbour pushes it into a second row tile), so only float32 rounding
    # agreement is promised there (docs/embeddings.md, "Determinism").
    lowbit.run("embed", "minilm", "Jesus wept.", "-o", "one.npy", "--threads", "1")
    (lowbit.workdir / "wept.txt").write_text("Jesus wept.\n")
    lowbit.run("embed", "minilm", "--file", "wept.txt", "-o", "wept.npy", "--threads", "2")
    one = np.load(lowbit.workdir / "one.npy")
    assert one.tobytes() == np.load(lowbit.workdir / "wept.npy").tobytes()
    diff = np.abs(one[0] - got[2]).max()
    print(f"\nalone vs in a batch behind 256 tokens: max difference {diff:.3g}")
    assert diff < 1e-6


@need_minilm
def test_calibrate_records_every_encoder_input_as_numpy_does(lowbit, verses, reference_model):
    """`lowbit calibrate minilm`: per Linear, the sum of x^2 and the largest
    |x| of each input column over every token, against the numpy reference's
    dense-layer inputs; then study model takes the file's static scales, and
    refuses a decoder's file."""
    import gguf
    _, lines = verses
    lines = lines[:40]
    (lowbit.workdir / "cal.txt").write_text("\n\n".join(lines) + "\n")  # blank lines are skipped
    r = lowbit.run("calibrate", "minilm", "--text", "cal.txt", "--batch", 16, "-o", "m.gguf", "--json",
                   "--threads", "2", "--col-percentiles")
    doc = json.loads(r.stdout)
    assert doc["sentences"] == 40 and doc["chunks"] == 3 and doc["entries"] == 36
    ids = [e.ids for e in reference_tokenizer().encode_batch(lines)]
    assert doc["tokens"] == sum(len(i) for i in ids)
    want = {}

    inputs = {}

    def observe(name, x):
        w = want.setdefault(name + ".weight", [0.0, 0.0])
        w[0] = w[0] + (x * x).sum(axis=0)
        w[1] = np.maximum(w[1], np.abs(x).max(axis=0))
        inputs[name + ".weight"] = np.abs(x)

    reference_model.embed(ids, observe=observe)
    f = gguf.GGUFReader(str(lowbit.workdir / "m.gguf"))
    got = {t.name: np.asarray(t.data, dtype=np.float64).reshape(-1) for t in f.tensors}
    assert {n.rsplit(".", 1)[0] for n in got} == set(want)
    worst = 0.0
    for name, (sum2, amax) in want.items():
        assert got[name + ".counts"][0] == doc["tokens"]
        worst = max(worst, np.max(np.abs(got[name + ".in_sum2"] - sum2) / sum2),
                    np.max(np.abs(got[name + ".in_absmax"] - amax) / amax))
    print(f"\nworst relative difference over 36 entries: {worst:.3g}")
    assert worst < 1e-4
    # Per-column percentiles: within a bin (1/8 octave) of the exact ones
    # (the value of rank ceil(p n)); an extra 1% for the reference's
    # float64 values near a bin edge.
    levels = [99, 99.9, 99.99, 99.999]
    assert json.loads(r.stdout)["column_percentiles"] == pytest.approx(levels)
    for name in ("encoder.layer.0.attention.self.query.weight", "encoder.layer.5.output.dense.weight"):
        pct = got[name + ".in_pct"].reshape(len(levels), -1)
        a = np.sort(inputs[name], axis=0)
        for i, p in enumerate(levels):
            exact = a[int(np.ceil(p / 100 * a.shape[0])) - 1]
            assert (np.abs(pct[i] - exact) <= 0.135 * exact + 1e-30).all(), (name, p)
    # Static scales from it; a decoder's file names other Linears.
    r = lowbit.run("study", "model", "minilm", "--pairs", 16, "--acts", "none,int8/tensor@static", "--calib",
                   "m.gguf", "--json")
    rows = json.loads(r.stdout)["rows"]
    assert rows[0]["cosine_mean"] == 1.0 and 0.9 < rows[1]["cosine_mean"] < 1.0
    smol_cal = pathlib.Path(__file__).resolve().parents[2] / "fuzz" / "seeds" / "imatrix" / "seed4"
    r = lowbit.run("study", "model", "minilm", "--pairs", 16, "--acts", "int8/tensor@static", "--calib", smol_cal,
                   check=False)
    assert r.returncode != 0 and "encoder.layer.0" in r.stderr, r.stderr
    # A decoder's chunking does not apply to sentences.
    r = lowbit.run("calibrate", "minilm", "--text", "cal.txt", "--ctx", 64, "-o", "x.gguf", check=False)
    assert r.returncode == 2 and "--ctx does not apply" in r.stderr and not (lowbit.workdir / "x.gguf").exists()
    (lowbit.workdir / "blank.txt").write_text("\n  \n\n")
    r = lowbit.run("calibrate", "minilm", "--text", "blank.txt", "-o", "x.gguf", check=False)
    assert r.returncode == 1 and "no non-blank line" in r.stderr and not (lowbit.workdir / "x.gguf").exists()


@need_minilm
def test_batch_size_does_not_change_the_embeddings(lowbit, verses):
    path, _ = verses
    lines = path.read_text().splitlines()[:64]
    (lowbit.workdir / "in.txt").write_text("\n".join(lines) + "\n")
    out = {}
    for batch in (1, 7, 32):
        lowbit.run("embed", "minilm", "--file", "in.txt", "-o", f"b{batch}.npy", "--batch", batch, "--threads", "2")
        out[batch] = np.load(lowbit.workdir / f"b{batch}.npy")
    # Same math, different matmul shapes: equal to float32 rounding; the
    # largest difference is reported (docs/embeddings.md).
    for batch in (1, 7):
        diff = np.abs(out[batch] - out[32]).max()
        print(f"\nbatch {batch} vs 32: max difference {diff:.3g}, identical: {np.array_equal(out[batch], out[32])}")
        assert diff < 1e-6


@need_minilm
@pytest.mark.parametrize("case", ["missing_file", "gguf", "unwritable", "not_utf8", "not_bert", "no_text"])
def test_bad_inputs_fail_without_output(lowbit, case, tmp_path):
    args = ["embed", "minilm", "--file", "in.txt", "-o", "out.npy"]
    (lowbit.workdir / "in.txt").write_text("In the beginning\n")
    expect = None
    if case == "missing_file":
        args[3] = "nope.txt"
        expect = "nope.txt"
    elif case == "gguf":
        need("the SmolLM2 GGUF package is not installed", SMOL_GGUF.is_file())
        args[1] = SMOL_GGUF
        expect = "llama"
    elif case == "unwritable":
        (lowbit.workdir / "a_file").write_text("x")
        args[5] = "a_file/out.npy"  # under a regular file: no directory can be made there
    elif case == "not_utf8":
        (lowbit.workdir / "in.txt").write_bytes(b"fine\nbad \xff byte\n")
        expect = "line 2"
    elif case == "not_bert":
        args[1] = minilm_with_model_type(lowbit.workdir / "model", "roberta")
        expect = "roberta"
    elif case == "no_text":
        args = ["embed", "minilm", "-o", "out.npy"]
    before = set(p.name for p in lowbit.workdir.iterdir())
    r = lowbit.run(*args, check=False)
    assert r.returncode != 0
    assert "error" in r.stderr
    if expect:
        assert expect in r.stderr, r.stderr
    after = set(p.name for p in lowbit.workdir.iterdir())
    assert after == before, after - before  # no output, no temporary file
