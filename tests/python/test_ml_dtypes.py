"""The `lowbit` CLI against ml_dtypes (and numpy for float16), bit for bit.

ml_dtypes' default cast is round-to-nearest-even and non-saturating, which is
`lowbit --overflow ieee`. Its fp6/fp4 casts have no inf or NaN and clamp to
±max, which is also what `--overflow ieee` gives for formats without
specials. Inputs are float32 .npy files; NaN inputs are left out of the
cross-checks because fp6/fp4 have no NaN and ml_dtypes maps NaN to ±0 there
(a documented quirk that lowbit need not copy).
"""
import pytest

from conftest import DEPS_REASON

np = pytest.importorskip("numpy", reason=DEPS_REASON)
ml_dtypes = pytest.importorskip("ml_dtypes", reason=DEPS_REASON)

# lowbit name -> (reference dtype, code width in bits)
FORMATS = {
    "float8_e4m3fn": (ml_dtypes.float8_e4m3fn, 8),
    "float8_e5m2": (ml_dtypes.float8_e5m2, 8),
    "float8_e4m3fnuz": (ml_dtypes.float8_e4m3fnuz, 8),
    "float8_e5m2fnuz": (ml_dtypes.float8_e5m2fnuz, 8),
    "float8_e4m3b11fnuz": (ml_dtypes.float8_e4m3b11fnuz, 8),
    "float8_e3m4": (ml_dtypes.float8_e3m4, 8),
    "float8_e4m3": (ml_dtypes.float8_e4m3, 8),
    "float6_e2m3fn": (ml_dtypes.float6_e2m3fn, 6),
    "float6_e3m2fn": (ml_dtypes.float6_e3m2fn, 6),
    "float4_e2m1fn": (ml_dtypes.float4_e2m1fn, 4),
    "bfloat16": (ml_dtypes.bfloat16, 16),
    "float16": (np.float16, 16),
}
NAMES = list(FORMATS)


def code_dtype(bits):
    return np.uint16 if bits > 8 else np.uint8


def all_codes(name):
    dtype, bits = FORMATS[name]
    return np.arange(2**bits, dtype=code_dtype(bits))


def reference_values(name):
    """Every code of the format decoded by the reference, as float32."""
    dtype, _ = FORMATS[name]
    return all_codes(name).view(dtype).astype(np.float32)


def make_inputs(name, n_random=200_000, seed=0):
    """Structured values (every representable value, every midpoint, their
    float32 neighbours, the overflow threshold, tiny values), then random ones:
    raw bit patterns, log-uniform magnitudes in [2^-40, 2^40], and N(0, 1).
    No NaN."""
    rng = np.random.default_rng(seed)
    vals = reference_values(name)
    vals = np.unique(vals[np.isfinite(vals)]).astype(np.float64)
    mids = (vals[:-1] + vals[1:]) / 2  # exact in float64; exact in float32 for every format here
    top = vals[-1]
    ulp_top = vals[-1] - vals[-2]
    extra = np.array([top + ulp_top / 2, -(top + ulp_top / 2), top + ulp_top, top * 4, -top * 4], np.float64)
    pos = vals[vals > 0]
    tiny = np.array([pos[0] / 2, pos[0] / 4, pos[0] * 0.75, -pos[0] / 2, -pos[0] / 4], np.float64)
    with np.errstate(over="ignore"):  # top * 4 is inf in float32 for bfloat16: intended
        base = np.concatenate([vals, mids, extra, tiny]).astype(np.float32)
    structured = np.concatenate(
        [base, np.nextafter(base, np.float32(np.inf)), np.nextafter(base, np.float32(-np.inf))]
    )
    if structured.size > 100_000:  # the 16-bit formats: sample
        structured = rng.choice(structured, 100_000, replace=False)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, 3.4028235e38, -3.4028235e38, 1e-45, -1e-45], np.float32)

    k = n_random // 4
    raw = rng.integers(0, 2**32, size=k, dtype=np.uint64).astype(np.uint32).view(np.float32)
    raw = raw[~np.isnan(raw)]
    mag = np.exp2(rng.uniform(-40, 40, size=2 * k))
    logu = (mag * rng.choice([-1.0, 1.0], size=2 * k)).astype(np.float32)
    normal = rng.standard_normal(k).astype(np.float32)
    x = np.concatenate([specials, structured.astype(np.float32), raw, logu, normal])
    assert not np.isnan(x).any()
    return x


def same_floats(a, b):
    """Bit-identical, or both NaN (any payload)."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    return (a.view(np.uint32) == b.view(np.uint32)) | (np.isnan(a) & np.isnan(b))


def describe_mismatch(x, got, want, ok, fmt_hex=True, limit=8):
    bad = np.flatnonzero(~ok)
    lines = [f"{bad.size} of {ok.size} differ; first ones:"]
    for i in bad[:limit]:
        g, w = got[i], want[i]
        if fmt_hex:
            lines.append(f"  [{i}] x={x[i]!r} ({np.float32(x[i]).view(np.uint32):#010x}) lowbit={int(g):#x} ref={int(w):#x}")
        else:
            lines.append(f"  [{i}] x={x[i]!r} lowbit={g!r} ref={w!r}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def inputs():
    return {name: make_inputs(name, seed=i) for i, name in enumerate(NAMES)}


@pytest.mark.parametrize("name", NAMES)
def test_encode_matches_ml_dtypes(lowbit, inputs, name):
    dtype, bits = FORMATS[name]
    x = inputs[name]
    np.save(lowbit.workdir / "x.npy", x)
    lowbit.run("encode", "--format", name, "--overflow", "ieee", "x.npy", "codes.npy")
    got = np.load(lowbit.workdir / "codes.npy")
    assert got.dtype == code_dtype(bits)
    assert got.shape == x.shape
    with np.errstate(over="ignore"):  # numpy warns when float16 overflows to inf
        want = x.astype(dtype).view(code_dtype(bits))
    ok = got == want
    assert ok.all(), describe_mismatch(x, got, want, ok)


@pytest.mark.parametrize("name", NAMES)
def test_encode_saturating(lowbit, inputs, name):
    """The default --overflow saturate clamps finite values to ±max; an
    infinite input still becomes inf, or NaN where the format has no inf."""
    dtype, bits = FORMATS[name]
    x = inputs[name]
    vals = reference_values(name)
    top = np.max(vals[np.isfinite(vals)])
    np.save(lowbit.workdir / "x.npy", x)
    lowbit.run("encode", "--format", name, "x.npy", "codes.npy")
    got = np.load(lowbit.workdir / "codes.npy")
    clamped = np.where(np.isfinite(x), np.clip(x, -top, top), x).astype(np.float32)
    want = clamped.astype(dtype).view(code_dtype(bits))
    ok = got == want
    assert ok.all(), describe_mismatch(x, got, want, ok)


@pytest.mark.parametrize("name", NAMES)
def test_fakequant_matches_ml_dtypes(lowbit, inputs, name):
    dtype, _ = FORMATS[name]
    x = inputs[name]
    np.save(lowbit.workdir / "x.npy", x)
    lowbit.run("fakequant", "--format", name, "--overflow", "ieee", "x.npy", "y.npy")
    got = np.load(lowbit.workdir / "y.npy")
    assert got.dtype == np.float32
    assert got.shape == x.shape
    with np.errstate(over="ignore"):
        want = x.astype(dtype).astype(np.float32)
    ok = same_floats(got, want)
    assert ok.all(), describe_mismatch(x, got, want, ok, fmt_hex=False)


@pytest.mark.parametrize("name", NAMES)
def test_decode_every_code(lowbit, name):
    codes = all_codes(name)
    np.save(lowbit.workdir / "codes.npy", codes)
    lowbit.run("decode", "--format", name, "codes.npy", "y.npy")
    got = np.load(lowbit.workdir / "y.npy")
    want = reference_values(name)
    assert got.dtype == np.float32 and got.shape == codes.shape
    ok = same_floats(got, want)
    assert ok.all(), describe_mismatch(codes, got, want, ok, fmt_hex=False)
    # The sign of zero, spelled out: same_floats compares bits, but make the
    # intent explicit.
    zeros = want == 0
    assert (np.signbit(got[zeros]) == np.signbit(want[zeros])).all()
    # Raw code files decode the same as .npy ones.
    codes.tofile(lowbit.workdir / "codes.bin")
    lowbit.run("decode", "--format", name, "codes.bin", "y.bin")
    assert np.fromfile(lowbit.workdir / "y.bin", np.float32).tobytes() == got.tobytes()


@pytest.mark.parametrize("name", [n for n in NAMES if not n.startswith(("float6", "float4"))])
def test_nan_inputs_give_nan(lowbit, name):
    """Formats with a NaN: every NaN input (either sign, any payload) encodes
    to a NaN code, and fakequant gives NaN."""
    dtype, bits = FORMATS[name]
    payloads = np.array([0x7FC00000, 0x7F800001, 0x7FFFFFFF, 0x7FA00000, 0x7FC00001], np.uint32)
    x = np.concatenate([payloads, payloads | 0x80000000]).view(np.float32)
    np.save(lowbit.workdir / "x.npy", x)
    lowbit.run("encode", "--format", name, "x.npy", "codes.npy")
    lowbit.run("fakequant", "--format", name, "x.npy", "y.npy")
    codes = np.load(lowbit.workdir / "codes.npy")
    assert np.isnan(codes.view(dtype).astype(np.float32)).all(), codes
    assert np.isnan(np.load(lowbit.workdir / "y.npy")).all()


# ------------------------------------------------------------ stochastic rounding

@pytest.mark.parametrize(
    "name,value,lo,hi",
    [
        ("float8_e4m3fn", 1.3, 1.25, 1.375),
        ("float8_e5m2", -0.3, -0.3125, -0.25),
        ("bfloat16", 1.0 + 1.0 / 300, 1.0, 1.0078125),
        ("float4_e2m1fn", 2.6, 2.0, 3.0),
        ("int4", 1.3, 1.0, 2.0),
    ],
)
def test_stochastic_rounding_is_unbiased_and_thread_independent(lowbit, name, value, lo, hi):
    x32 = np.float32(value)
    n = 100_000
    x = np.full(n, x32, np.float32)
    np.save(lowbit.workdir / "x.npy", x)
    seeds = [1, 2, 3]
    outs = []
    for seed in seeds:
        lowbit.run("fakequant", "--format", name, "--round", "stochastic", "--seed", seed, "--threads", 1,
                   "x.npy", f"y{seed}_1.npy")
        lowbit.run("fakequant", "--format", name, "--round", "stochastic", "--seed", seed, "--threads", 2,
                   "x.npy", f"y{seed}_2.npy")
        a = (lowbit.workdir / f"y{seed}_1.npy").read_bytes()
        b = (lowbit.workdir / f"y{seed}_2.npy").read_bytes()
        assert a == b, f"seed {seed}: --threads 1 and --threads 2 differ"
        outs.append(np.load(lowbit.workdir / f"y{seed}_1.npy"))
    assert not np.array_equal(outs[0], outs[1]), "different seeds should round differently"
    y = np.concatenate(outs).astype(np.float64)
    # Only the two neighbours of x occur.
    assert set(np.unique(y)) <= {lo, hi}, np.unique(y)
    p = (float(x32) - lo) / (hi - lo)
    sigma = (hi - lo) * np.sqrt(p * (1 - p) / y.size)
    assert abs(y.mean() - float(x32)) <= 4 * sigma, (y.mean(), float(x32), sigma)

    # Encode + decode reproduces fakequant for the same seed, at any thread count.
    lowbit.run("encode", "--format", name, "--round", "stochastic", "--seed", seeds[0], "--threads", 2,
               "x.npy", "c.npy")
    lowbit.run("decode", "--format", name, "c.npy", "d.npy")
    assert np.load(lowbit.workdir / "d.npy").tobytes() == outs[0].tobytes()


def test_stochastic_rounding_of_representable_values_is_exact(lowbit):
    """Values of the format never move under stochastic rounding."""
    vals = reference_values("float8_e4m3fn")
    vals = vals[np.isfinite(vals)]
    x = np.tile(vals, 50)
    np.save(lowbit.workdir / "x.npy", x)
    lowbit.run("fakequant", "--format", "float8_e4m3fn", "--round", "stochastic", "--seed", 9, "x.npy", "y.npy")
    assert np.load(lowbit.workdir / "y.npy").tobytes() == x.tobytes()
