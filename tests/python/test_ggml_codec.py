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
READ = ["F32", "F16", "BF16"] + EXACT + SEARCHED + ["NVFP4"]
# Byte offsets of the float16 scale fields in each block.
FP16_FIELDS = {"Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0], "Q2_K": [80, 82],
               "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208], "IQ4_NL": [0], "IQ4_XS": [0],
               "TQ1_0": [52], "TQ2_0": [64], "MXFP4": [], "NVFP4": [], "F32": [], "BF16": [], "F16": [0]}

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
        # Per-row scales 2^-14 .. 2^11: block scales from the subnormal to
        # the saturated ends of every scale format.
        "wide": rng.standard_normal(shape) * np.ldexp(1.0, rng.integers(-14, 12, (shape[0], 1))),
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


# NVFP4 (type 40) and Q1_0 (41): gguf-py decodes NVFP4 but quantizes
# neither, so these numpy ports of quantize_row_nvfp4_ref and
# quantize_row_q1_0_ref are the references (NVFP4's UE4M3 conversion is
# gguf-py's own port of ggml_fp32_to_ue4m3).

def nvfp4_reference(x):
    sub = x.reshape(-1, 16)
    with np.errstate(invalid="ignore"):
        amax = np.where(np.isnan(sub), np.float32(0), np.abs(sub)).max(axis=1).astype(np.float32)
    ue = quants.NVFP4.fp32_to_ue4m3((amax / np.float32(6)).astype(np.float32)).astype(np.uint8)
    d = quants.NVFP4.ue4m3_to_fp32(ue).astype(np.float32)
    k = np.array(quants.NVFP4.kvalues, dtype=np.float32)
    with np.errstate(all="ignore"):
        err = np.abs((k[None, None, :] * d[:, None, None]).astype(np.float32) - sub[:, :, None]).astype(np.float32)
    # best_index_mxfp4: the first index with the smallest error, strict <
    # (so NaN errors never win and code 0 stays).
    codes = np.zeros(sub.shape, np.uint8)
    best = err[:, :, 0]
    for i in range(1, 16):
        better = err[:, :, i] < best
        codes[better] = i
        best = np.where(better, err[:, :, i], best)
    qs = (codes[:, :8] | (codes[:, 8:] << 4)).astype(np.uint8)  # (subs, 8)
    blocks = ue.size // 4
    return np.concatenate([ue.reshape(blocks, 4), qs.reshape(blocks, 32)], axis=1).reshape(-1)


def q1_0_reference(x):
    b = x.reshape(-1, 128)
    # Element order, in float32 (np.sum would add pairwise).
    with np.errstate(over="ignore"):
        total = np.add.accumulate(np.abs(b), axis=1, dtype=np.float32)[:, -1]
    d = (total / np.float32(128)).astype(np.float32).astype(np.float16)
    bits = np.packbits((b >= 0).astype(np.uint8), axis=1, bitorder="little")
    return np.concatenate([d.view(np.uint8).reshape(-1, 2), bits], axis=1).reshape(-1)


def q1_0_dequantize_reference(data):
    blocks = data.reshape(-1, 18)
    d = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    bits = np.unpackbits(blocks[:, 2:], axis=1, bitorder="little").astype(bool)
    return np.where(bits, d, -d).astype(np.float32)


@pytest.mark.parametrize("qtype", ["NVFP4", "Q1_0"])
def test_bytes_equal_numpy_ports_of_the_reference_quantizers(lowbit, qtype):
    ref_of = {"NVFP4": nvfp4_reference, "Q1_0": q1_0_reference}[qtype]
    for name, x in varied_data(6).items():
        ours = quantize(lowbit, qtype, x)
        ref = ref_of(x)
        assert ours.size == ref.size, name
        if not np.array_equal(ours, ref):
            block = GGML_QUANT_SIZES[Q[qtype]][1]
            bad = np.nonzero((ours.reshape(-1, block) != ref.reshape(-1, block)).any(axis=1))[0]
            pytest.fail(f"{qtype} {name}: {bad.size} blocks differ from the reference, first {bad[:5]}")
        y = dequantize(lowbit, qtype, ours, 16, COLS)
        want = gguf_dequantize(qtype, ours, 16) if qtype == "NVFP4" else q1_0_dequantize_reference(ours).reshape(16, COLS)
        assert same_bits(want, y), name


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
