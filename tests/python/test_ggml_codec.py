"""`lowbit ggml quantize` / `lowbit ggml dequantize` against gguf-py.

gguf-py (gguf.quants) is llama.cpp's own numpy port of ggml's block codecs:
its quantizers for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, TQ1_0, TQ2_0 and MXFP4 are
kept bit-exact with ggml-quants.c's reference quantizers, and its
dequantizers cover every type lowbit reads. So:

- for those eight types lowbit's bytes must equal gguf-py's, byte for byte;
- for the searched types (Q2_K..Q6_K, IQ4_NL, IQ4_XS), which gguf-py cannot
  quantize, gguf-py must decode lowbit's blocks to exactly lowbit's floats
  (and those floats must be close to the input);
- for all 18 read types, random block bytes (float16 scale fields forced
  finite) decode identically.

The data covers Gaussian and heavy-tailed values, ties on the largest
magnitude with both signs, all-zero blocks, subnormal and tiny values,
values whose float16 scale overflows, and thousands of blocks.
"""
import numpy as np
import pytest

from conftest import DEPS_REASON

np = pytest.importorskip("numpy", reason=DEPS_REASON)
gguf = pytest.importorskip("gguf", reason="gguf-py is needed for the ggml checks (pip install gguf)")
from gguf import GGMLQuantizationType as Q  # noqa: E402
from gguf import GGML_QUANT_SIZES, quants  # noqa: E402

EXACT = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "TQ1_0", "TQ2_0", "MXFP4"]
SEARCHED = ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"]
READ = ["F32", "F16", "BF16"] + EXACT + SEARCHED
# Byte offsets of the float16 scale fields in each block.
FP16_FIELDS = {"Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0], "Q2_K": [80, 82],
               "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208], "IQ4_NL": [0], "IQ4_XS": [0],
               "TQ1_0": [52], "TQ2_0": [64], "MXFP4": [], "F32": [], "BF16": [], "F16": [0]}

COLS = 1024


def quantize(lowbit, qtype, x, importance=None):
    np.save(lowbit.workdir / "x.npy", x)
    args = ["ggml", "quantize", "--type", qtype, "x.npy", "q.bin", "--threads", "2"]
    if importance is not None:
        np.save(lowbit.workdir / "w.npy", importance)
        args += ["--importance", "w.npy"]
    lowbit.run(*args)
    return np.fromfile(lowbit.workdir / "q.bin", dtype=np.uint8)


def dequantize(lowbit, qtype, data, rows, cols):
    data.tofile(lowbit.workdir / "in.bin")
    lowbit.run("ggml", "dequantize", "--type", qtype, "--shape", f"{rows},{cols}", "in.bin", "y.npy")
    y = np.load(lowbit.workdir / "y.npy")
    assert y.dtype == np.float32 and y.shape == (rows, cols)
    return y


def gguf_dequantize(qtype, data, rows):
    with np.errstate(all="ignore"):
        return np.asarray(quants.dequantize(data.reshape(rows, -1), Q[qtype]), dtype=np.float32)


def same_bits(a, b):
    return np.array_equal(np.asarray(a, np.float32).view(np.uint32), np.asarray(b, np.float32).view(np.uint32))


def varied_data(seed):
    """name -> float32 array of 16 rows x 1024 (512 blocks of 32, 64 of 256)."""
    rng = np.random.default_rng(seed)
    shape = (16, COLS)
    ties = rng.uniform(-1, 1, shape)
    ties[:, 3::32] = -1.5  # the first largest magnitude is negative...
    ties[:, 10::32] = 1.5
    ties[::2, 3::32] = 1.5  # ...or positive, in every other row
    ties[::2, 10::32] = -1.5
    zeros = rng.standard_normal(shape)
    zeros[:, :256] = 0.0  # whole blocks and super-blocks of zeros
    zeros[:, 512:544] = 0.0
    # Multiples of quarter steps of a per-row power of two: values on and
    # between the codes' grids and their midpoints (ties everywhere).
    grid = rng.choice([0, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 7.5, 8, 10, 12, 15.5], shape)
    grid *= rng.choice([-1.0, 1.0], shape) * np.ldexp(1.0, rng.integers(-30, 30, (shape[0], 1)))
    cases = {
        "normal": rng.standard_normal(shape),
        "grid": grid,
        "heavy": rng.standard_t(1.5, shape),
        "ties": ties,
        "zeros": zeros,
        "subnormal": rng.standard_normal(shape) * 1e-41,
        "tiny": rng.standard_normal(shape) * 1e-36,
        "scale_overflow": rng.standard_normal(shape) * 1e7,
        "near_max": rng.uniform(-3.4e38, 3.4e38, shape),
        "integers": rng.integers(-9, 10, shape).astype(np.float64),
    }
    return {k: v.astype(np.float32) for k, v in cases.items()}


@pytest.mark.parametrize("qtype", EXACT)
def test_bytes_equal_gguf_py(lowbit, qtype):
    for name, x in varied_data(1).items():
        ours = quantize(lowbit, qtype, x)
        with np.errstate(all="ignore"):
            ref = np.asarray(quants.quantize(x, Q[qtype])).reshape(-1)
        assert ours.size == ref.size, name
        if not np.array_equal(ours, ref):
            block = GGML_QUANT_SIZES[Q[qtype]][1]
            bad = np.nonzero((ours.reshape(-1, block) != ref.reshape(-1, block)).any(axis=1))[0]
            pytest.fail(f"{qtype} {name}: {bad.size} blocks differ from gguf-py, first {bad[:5]}")
        assert same_bits(gguf_dequantize(qtype, ours, 16), dequantize(lowbit, qtype, ours, 16, COLS)), name


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "importance"])
@pytest.mark.parametrize("qtype", SEARCHED)
def test_gguf_py_decodes_searched_types_to_lowbits_floats(lowbit, qtype, weighted):
    rng = np.random.default_rng(2)
    w = rng.exponential(size=COLS).astype(np.float32) if weighted else None
    for name, x in varied_data(3).items():
        ours = quantize(lowbit, qtype, x, w)
        y = dequantize(lowbit, qtype, ours, 16, COLS)
        assert same_bits(gguf_dequantize(qtype, ours, 16), y), f"{qtype} {name}"
        if name == "normal":
            rel = np.sqrt(np.mean((y - x) ** 2) / np.mean(x ** 2))
            assert rel < 0.5, f"{qtype}: relative RMS error {rel}"


@pytest.mark.parametrize("qtype", READ)
def test_random_blocks_decode_like_gguf_py(lowbit, qtype):
    rng = np.random.default_rng(4)
    block, size = GGML_QUANT_SIZES[Q[qtype]]
    rows, cols = 8, 256 * 8
    data = rng.integers(0, 256, (rows, cols // block, size), dtype=np.uint8)
    for off in FP16_FIELDS[qtype]:
        # Clear the top exponent bit of inf/NaN patterns: finite scales.
        hi = data[..., off + 1]
        data[..., off + 1] = np.where((hi & 0x7C) == 0x7C, hi & 0xBF, hi)
    if qtype == "F16":
        words = data.view(np.uint16)
        data = np.where((words & 0x7C00) == 0x7C00, words & 0xBFFF, words).astype(np.uint16).view(np.uint8)
    data = data.reshape(-1)
    assert same_bits(gguf_dequantize(qtype, data, rows), dequantize(lowbit, qtype, data, rows, cols))


def test_plain_types_round_trip_like_numpy(lowbit):
    x = varied_data(5)["heavy"]
    assert np.array_equal(quantize(lowbit, "F16", x).view(np.float16), x.astype(np.float16).reshape(-1))
    assert np.array_equal(quantize(lowbit, "F32", x).view(np.float32), x.reshape(-1))
    with np.errstate(all="ignore"):
        ref = np.asarray(quants.quantize(x, Q.BF16)).reshape(-1)
    assert np.array_equal(quantize(lowbit, "BF16", x), ref)


def test_bad_input_fails_cleanly(lowbit):
    x = np.ones((2, 48), np.float32)
    np.save(lowbit.workdir / "x.npy", x)
    r = lowbit.run("ggml", "quantize", "--type", "Q4_K", "x.npy", "q.bin", check=False)
    assert r.returncode == 1 and "not a whole number of Q4_K blocks" in r.stderr
    assert not (lowbit.workdir / "q.bin").exists()
    r = lowbit.run("ggml", "quantize", "--type", "Q4_Z", "x.npy", "q.bin", check=False)
    assert r.returncode == 2 and "unknown ggml type 'Q4_Z'" in r.stderr
    r = lowbit.run("ggml", "quantize", "--type", "IQ2_XXS", "x.npy", "q.bin", check=False)
    assert r.returncode == 2 and "supported: " in r.stderr
    x = np.ones((2, 64), np.float32)
    x[1, 5] = np.nan
    np.save(lowbit.workdir / "x.npy", x)
    r = lowbit.run("ggml", "quantize", "--type", "Q8_0", "x.npy", "q.bin", check=False)
    assert r.returncode == 1 and "non-finite" in r.stderr
    lowbit.run("ggml", "quantize", "--type", "Q8_0", "--allow-nonfinite", "x.npy", "q.bin")
    np.save(lowbit.workdir / "w.npy", np.ones(7, np.float32))
    r = lowbit.run("ggml", "quantize", "--type", "Q8_0", "--allow-nonfinite", "--importance", "w.npy", "x.npy", "q2.bin",
                   check=False)
    assert r.returncode == 1 and "one per column" in r.stderr
    r = lowbit.run("ggml", "dequantize", "--type", "Q8_0", "--shape", "3,64", "q.bin", "y.npy", check=False)
    assert r.returncode == 1 and "holds 136 bytes" in r.stderr
    assert not (lowbit.workdir / "y.npy").exists()
    r = lowbit.run("ggml", "dequantize", "--type", "Q8_0", "--shape", "2x64", "q.bin", "y.npy", check=False)
    assert r.returncode == 2
