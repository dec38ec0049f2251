"""The `--nan keep` rule for ggml blocks, judged by gguf-py.

docs/ggml_types.md ("NaN and inf") promises that under `lowbit quantize
--nan keep` every block whose input holds a NaN or an infinity decodes to NaN
in every element: the block is quantized with those values replaced by 0 and
its float16 scale fields (d, and dmin or m) are then set to 0x7E00.
lowbit/ggml/nonfinite_test.cc checks that the library writes exactly
those bytes; this file checks that the bytes mean what the docs say to a
reader that is not lowbit: gguf-py's dequantizer (and lowbit's own, through
`lowbit ggml dequantize`) decode such blocks to NaN everywhere, whatever
their other bytes hold, and leave the other blocks alone. gguf-py has no Q1_0
decoder; for it the check uses a numpy copy of ggml's dequantize_row_q1_0.

It also pins why MXFP4 and NVFP4 are refused: no scale byte of theirs decodes
to NaN in gguf-py (nor in ggml, whose formulas gguf-py copies).
"""
import pytest

from conftest import DEPS_REASON

np = pytest.importorskip("numpy", reason=DEPS_REASON)
gguf = pytest.importorskip("gguf", reason="gguf-py is needed for the ggml checks (pip install gguf)")
from gguf import GGMLQuantizationType as Q  # noqa: E402
from gguf import GGML_QUANT_SIZES, quants  # noqa: E402

# The documented rule: byte offsets, in each block, of the float16 fields
# that carry the NaN.
NAN_FIELDS = {"Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0], "Q2_K": [80, 82],
              "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208], "IQ4_NL": [0], "IQ4_XS": [0],
              "TQ1_0": [52], "TQ2_0": [64], "Q1_0": [0]}
COLS = 1024


def sizes(qtype):
    return GGML_QUANT_SIZES[Q[qtype]]


def mark(qtype, data):
    """Applies the rule to every block of data, a (blocks, block_bytes) array."""
    for off in NAN_FIELDS[qtype]:
        data[:, off] = 0x00
        data[:, off + 1] = 0x7E
    return data


def gguf_decode(qtype, data):
    """gguf-py's decode of (blocks, block_bytes) bytes; for Q1_0, ggml's formula."""
    if qtype == "Q1_0":
        d = data[:, :2].copy().view(np.float16).astype(np.float32)
        bits = np.unpackbits(data[:, 2:], axis=1, bitorder="little")
        return np.where(bits == 1, d, -d)
    with np.errstate(all="ignore"):
        return np.asarray(quants.dequantize(data, Q[qtype]), dtype=np.float32).reshape(len(data), -1)


def lowbit_decode(lowbit, qtype, data):
    be, _ = sizes(qtype)
    data.tofile(lowbit.workdir / "in.bin")
    lowbit.run("ggml", "dequantize", "--type", qtype, "--shape", f"1,{be * len(data)}", "in.bin", "y.npy")
    return np.load(lowbit.workdir / "y.npy").reshape(len(data), be)


@pytest.mark.parametrize("qtype", sorted(NAN_FIELDS))
def test_marked_random_blocks_decode_to_nan(lowbit, qtype):
    # Any other bytes: random ones, and all-zero and all-one codes and
    # sub-block scales (a zero product times a NaN d is still NaN).
    be, bb = sizes(qtype)
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, size=(3000, bb), dtype=np.uint8)
    data[:500] = 0x00
    data[500:1000] = 0xFF
    data = mark(qtype, data)
    assert np.isnan(gguf_decode(qtype, data)).all()
    assert np.isnan(lowbit_decode(lowbit, qtype, data)).all()
    # d alone is enough; the second field (dmin or m) is belt and braces.
    if len(NAN_FIELDS[qtype]) > 1:
        off = NAN_FIELDS[qtype][1]
        data[:, off:off + 2] = rng.integers(0, 256, size=(len(data), 2), dtype=np.uint8)
        assert np.isnan(gguf_decode(qtype, data)).all()


@pytest.mark.parametrize("qtype", sorted(NAN_FIELDS))
def test_quantized_tensor_with_nan_and_inf(lowbit, qtype):
    # Rows with NaN, +inf and -inf at the first, middle and last element of a
    # block and of a super-block, quantized as the rule says (the raw codec
    # on a zero-filled copy, then the marks): exactly the blocks with a
    # non-finite input decode to NaN, the others to what the zero-filled copy
    # gives, in both decoders.
    be, bb = sizes(qtype)
    rng = np.random.default_rng(2)
    positions = sorted({0, be // 2, be - 1, 128, 255})
    rows = 1 + 3 * len(positions)
    x = rng.standard_normal((rows, COLS)).astype(np.float32)
    r = 1
    for v in (np.nan, np.inf, -np.inf):
        for p in positions:
            x[r, 256 + p] = v
            r += 1
    z = np.where(np.isfinite(x), x, np.float32(0))
    np.save(lowbit.workdir / "z.npy", z)
    lowbit.run("ggml", "quantize", "--type", qtype, "z.npy", "q.bin")
    plain = np.fromfile(lowbit.workdir / "q.bin", dtype=np.uint8).reshape(-1, bb)
    bad = ~np.isfinite(x.reshape(-1, be)).all(axis=1)
    assert bad.sum() == rows - 1
    marked = plain.copy()
    marked[bad] = mark(qtype, marked[bad])
    for y in (gguf_decode(qtype, marked), lowbit_decode(lowbit, qtype, marked)):
        assert np.isnan(y[bad]).all()
        same = gguf_decode(qtype, plain)[~bad]
        assert np.array_equal(y[~bad].view(np.uint32), same.view(np.uint32))


@pytest.mark.parametrize("qtype", ["MXFP4", "NVFP4"])
def test_fp4_types_have_no_nan_block(qtype):
    be, bb = sizes(qtype)
    scales = 1 if qtype == "MXFP4" else 4
    data = np.zeros((256, bb), dtype=np.uint8)
    data[:, :scales] = np.arange(256, dtype=np.uint8)[:, None]
    data[:, scales:] = np.arange(bb - scales, dtype=np.uint8) * 17  # every code in both nibbles
    assert not np.isnan(gguf_decode(qtype, data)).any()
