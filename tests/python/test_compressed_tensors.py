"""lowbit's compressed-tensors checkpoints, dequantized by an independent reader.

The C++ test binary compressed_tensors_test writes sample checkpoints when
LOWBIT_CT_TEST_OUT names a directory (CompressedTensorsSamples.WriteForPython):
per case a <case>.safetensors file and a <case>.config.json, and per module
the float32 input, lowbit's own dequantization (.lowbit.npy) and the
dequantization of what lowbit reads back (.readback.npy). The binary is found
in LOWBIT_BUILD_DIR, else beside LOWBIT_CLI, else in build/.

This file reads the checkpoints with its own safetensors parser and
dequantizes them as compressed-tensors 0.20 and vLLM 0.33 define the layouts
(facts from their sources, restated here, not taken from lowbit):

- pack-quantized: weight_packed int32 [out, ceil(in*b/32)]; value i of a row
  occupies bits [i*b, i*b+b) of the row's little-endian word stream and is
  stored as q + 2^(b-1) (pack_to_int32). weight_zero_point is packed the same
  way along dim 0 (pack_to_int32(zp, b, packed_dim=0)). weight_shape int64
  [2]. x_hat = (q - zp) * scale, per group of group_size columns or per row.
- float-quantized: weight float8_e4m3fn [out, in], weight_scale [1], [out, 1]
  or one per block_structure tile (edge tiles cut short).
- nvfp4-pack-quantized: weight_packed uint8 [out, in/2], two E2M1 codes per
  byte, low nibble first; weight_scale float8_e4m3fn [out, in/16];
  weight_global_scale float32 [1], the divisor: vLLM scales by 1.0f / g.
- mxfp4-pack-quantized / mxfp8-quantized: E8M0 scales as uint8 exponents,
  scale = 2^(e - 127).

Every product is taken in float32 in the order lowbit documents
(value * scale), so the comparison with lowbit's x_hat is bit for bit.
When torch and compressed-tensors are importable, compressed-tensors' own
decompressors are run on the same files too (skipped otherwise).
"""
import json
import os
import pathlib
import subprocess

import pytest

from conftest import DEPS_REASON, REPO

np = pytest.importorskip("numpy", reason=DEPS_REASON)
ml_dtypes = pytest.importorskip("ml_dtypes", reason=DEPS_REASON)

f32 = np.float32

# Fields of compressed-tensors' QuantizationArgs (extra="forbid": anything
# else makes its pydantic model, and so vLLM's config parser, refuse).
QUANT_ARGS_FIELDS = {"num_bits", "type", "symmetric", "group_size", "strategy", "block_structure", "dynamic",
                     "actorder", "scale_dtype", "zp_dtype", "observer", "observer_kwargs"}
E2M1 = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0], f32)


def _test_binary_path():
    if "LOWBIT_BUILD_DIR" in os.environ:
        return pathlib.Path(os.environ["LOWBIT_BUILD_DIR"]) / "compressed_tensors_test", True
    if "LOWBIT_CLI" in os.environ:
        return pathlib.Path(os.environ["LOWBIT_CLI"]).parent / "compressed_tensors_test", False
    return REPO / "build" / "compressed_tensors_test", False


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    exe, explicit = _test_binary_path()
    if not (exe.is_file() and os.access(exe, os.X_OK)):
        msg = f"{exe} not found; build it (ninja compressed_tensors_test) or set LOWBIT_BUILD_DIR"
        if explicit:
            pytest.fail(msg)
        pytest.skip(msg)
    out = tmp_path_factory.mktemp("compressed_tensors")
    r = subprocess.run([str(exe), "--gtest_filter=CompressedTensorsSamples.*"], capture_output=True, text=True,
                       env={**os.environ, "LOWBIT_CT_TEST_OUT": str(out)}, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    manifest = json.loads((out / "cases.json").read_text())
    assert len(manifest) > 20
    return out, manifest


def read_safetensors(path):
    """name -> (dtype, shape, bytes), parsed from the raw file."""
    data = pathlib.Path(path).read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    body = data[8 + n:]
    return {k: (v["dtype"], tuple(v["shape"]), body[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in header.items()}


def as_float32(dtype, shape, raw):
    kinds = {"F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16, "F8_E4M3": ml_dtypes.float8_e4m3fn}
    return np.frombuffer(raw, dtype=kinds[dtype]).reshape(shape).astype(f32)


def unpack_int32(words, n, b):
    """pack_to_int32's streams back: words [streams, W] -> unsigned values [streams, n]."""
    bits = np.unpackbits(words.astype("<u4").view(np.uint8).reshape(words.shape[0], -1), axis=1, bitorder="little")
    bits = bits[:, :n * b].reshape(words.shape[0], n, b).astype(np.int64)
    return (bits << np.arange(b)).sum(axis=2)


def expand(scale, out, inn, rows, cols):
    """One scale per rows x cols tile -> one per element (edge tiles short)."""
    return np.repeat(np.repeat(scale, rows, axis=0), cols, axis=1)[:out, :inn]


def dequantize(tensors, module, fmt, args):
    """x_hat of one module, as vLLM reads the checkpoint, in float32."""
    t = {k[len(module) + 1:]: v for k, v in tensors.items() if k.startswith(module + ".")}
    if fmt == "pack-quantized":
        b = args["num_bits"]
        dt, shape, raw = t["weight_shape"]
        assert dt == "I64" and shape == (2,)
        out, inn = (int(v) for v in np.frombuffer(raw, "<i8"))
        dt, shape, raw = t["weight_packed"]
        assert dt == "I32" and shape == (out, -(-inn * b // 32))
        q = unpack_int32(np.frombuffer(raw, "<i4").reshape(shape), inn, b) - (1 << (b - 1))
        groups = inn // args["group_size"] if args["strategy"] == "group" else 1
        dt, shape, raw = t["weight_scale"]
        assert shape == (out, groups)
        scale = as_float32(dt, shape, raw)
        if args["symmetric"]:
            assert "weight_zero_point" not in t
            zp = np.zeros((out, groups), np.int64)
        else:
            dt, shape, raw = t["weight_zero_point"]
            assert dt == "I32" and shape == (-(-out * b // 32), groups)
            zp = unpack_int32(np.frombuffer(raw, "<i4").reshape(shape).T.copy(), out, b).T - (1 << (b - 1))
        per = inn // groups
        return (q - expand(zp, out, inn, 1, per)).astype(f32) * expand(scale, out, inn, 1, per)
    if fmt == "float-quantized":
        dt, shape, raw = t["weight"]
        assert dt == "F8_E4M3"
        w = as_float32(dt, shape, raw)
        out, inn = shape
        dt, sshape, raw = t["weight_scale"]
        scale = as_float32(dt, sshape, raw)
        if args["strategy"] == "tensor":
            assert sshape == (1,)
            return w * scale[0]
        if args["strategy"] == "channel":
            assert sshape == (out, 1)
            return w * scale
        r, c = args["block_structure"]
        assert sshape == (-(-out // r), -(-inn // c))
        return w * expand(scale, out, inn, r, c)
    if fmt in ("nvfp4-pack-quantized", "mxfp4-pack-quantized", "mxfp8-quantized"):
        if fmt == "mxfp8-quantized":
            dt, shape, raw = t["weight"]
            assert dt == "F8_E4M3"
            v = as_float32(dt, shape, raw)
        else:
            dt, shape, raw = t["weight_packed"]
            assert dt == "U8"
            packed = np.frombuffer(raw, np.uint8).reshape(shape)
            codes = np.stack([packed & 15, packed >> 4], axis=-1).reshape(shape[0], shape[1] * 2)
            v = E2M1[codes]
        out, inn = v.shape
        g = args["group_size"]
        dt, shape, raw = t["weight_scale"]
        assert shape == (out, inn // g)
        if fmt == "nvfp4-pack-quantized":
            assert dt == "F8_E4M3"
            dt_g, shape_g, raw_g = t["weight_global_scale"]
            assert dt_g == "F32" and shape_g == (1,)
            # vLLM: weight_global_scale = 1.0 / weight_global_scale (float32).
            st = f32(1.0) / np.frombuffer(raw_g, "<f4")[0]
            scale = as_float32(dt, shape, raw) * st
        else:
            assert dt == "U8"
            e = np.frombuffer(raw, np.uint8).reshape(shape).astype(np.int64)
            scale = np.where(e == 255, np.nan, np.ldexp(1.0, e - 127)).astype(f32)
        return v * expand(scale, out, inn, 1, g)
    raise AssertionError(f"unexpected format {fmt}")


def module_config(config, module):
    qc = config["quantization_config"]
    for name, group in qc["config_groups"].items():
        if module in group["targets"]:
            return group.get("format") or qc["format"], group["weights"]
    raise AssertionError(f"{module} is in no config group")


def bits(a):
    return np.ascontiguousarray(a, f32).view(np.uint32)


def test_config_is_what_vllm_parses(samples):
    out, manifest = samples
    for case in manifest:
        config = json.loads((out / f"{case['name']}.config.json").read_text())
        qc = config["quantization_config"]
        assert qc["quant_method"] == "compressed-tensors"
        assert qc["quantization_status"] == "compressed"
        assert qc["ignore"] == ["lm_head"]
        formats = set()
        for group in qc["config_groups"].values():
            assert set(group) <= {"targets", "weights", "input_activations", "output_activations", "format"}
            assert group["input_activations"] is None
            assert set(group["weights"]) <= QUANT_ARGS_FIELDS
            assert group["weights"]["dynamic"] is False
            formats.add(group.get("format", qc["format"]))
        if len(formats) > 1:
            assert qc["format"] == "mixed-precision"
            assert all("format" in g for g in qc["config_groups"].values())
        else:
            assert qc["format"] == formats.pop()


def test_reference_dequantization_equals_lowbit(samples):
    out, manifest = samples
    checked = set()
    for case in manifest:
        tensors = read_safetensors(out / f"{case['name']}.safetensors")
        config = json.loads((out / f"{case['name']}.config.json").read_text())
        for m in case["modules"]:
            fmt, args = module_config(config, m["name"])
            ref = dequantize(tensors, m["name"], fmt, args)
            base = out / f"{case['name']}.{m['name']}"
            x = np.load(f"{base}.input.npy")
            lowbit = np.load(f"{base}.lowbit.npy")
            readback = np.load(f"{base}.readback.npy")
            assert ref.shape == x.shape == tuple(m["shape"])
            # lowbit reads back exactly what vLLM sees.
            assert np.array_equal(bits(ref), bits(readback)), f"{case['name']} {m['scheme']}"
            if m["exact"]:
                assert np.array_equal(bits(ref), bits(lowbit)), f"{case['name']} {m['scheme']}"
            else:
                assert fmt == "nvfp4-pack-quantized"
                np.testing.assert_allclose(ref, lowbit, rtol=2 ** -22, atol=0)
            # And it is the input, quantized: a wrong layout would scramble it.
            assert np.corrcoef(ref.ravel(), x.ravel())[0, 1] > 0.8, m["scheme"]
            checked.add(fmt)
    assert not all(m["exact"] for c in manifest for m in c["modules"])  # the inexact NVFP4 case ran
    assert checked == {"pack-quantized", "float-quantized", "nvfp4-pack-quantized", "mxfp4-pack-quantized",
                       "mxfp8-quantized"}


def test_reference_reader_can_fail(samples):
    """The reader notices a layout change: swapping the nibble order of an
    int4 checkpoint breaks the equality."""
    out, manifest = samples
    case = next(c for c in manifest if c["modules"][0]["scheme"].startswith("int4/g128/"))
    m = case["modules"][0]
    tensors = read_safetensors(out / f"{case['name']}.safetensors")
    key = m["name"] + ".weight_packed"
    dt, shape, raw = tensors[key]
    b = np.frombuffer(raw, np.uint8)
    tensors[key] = (dt, shape, ((b >> 4) | ((b & 15) << 4)).astype(np.uint8).tobytes())
    fmt, args = module_config(json.loads((out / f"{case['name']}.config.json").read_text()), m["name"])
    lowbit = np.load(out / f"{case['name']}.{m['name']}.lowbit.npy")
    assert not np.array_equal(bits(dequantize(tensors, m["name"], fmt, args)), bits(lowbit))


def test_compressed_tensors_decompressors(samples):
    """compressed-tensors' own decompressors on the same files. They compute
    in the scale's dtype (bfloat16 for the FP4 and MX layouts), so lowbit's
    float32 x_hat is compared after the same rounding; NVFP4 divides by the
    global scale where vLLM multiplies by its reciprocal, so it gets a
    tolerance of one bfloat16 ulp."""
    torch = pytest.importorskip("torch", reason="torch is needed to run compressed-tensors")
    pytest.importorskip("compressed_tensors", reason="compressed-tensors is not installed")
    from compressed_tensors.compressors import BaseCompressor
    from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
    out, manifest = samples
    checked = set()
    torch_dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                    "F8_E4M3": torch.float8_e4m3fn, "U8": torch.uint8, "I32": torch.int32, "I64": torch.int64}
    for case in manifest:
        tensors = read_safetensors(out / f"{case['name']}.safetensors")
        config = json.loads((out / f"{case['name']}.config.json").read_text())
        for m in case["modules"]:
            fmt, args = module_config(config, m["name"])
            state = {}
            for k, (dt, shape, raw) in tensors.items():
                if k.startswith(m["name"] + "."):
                    t = torch.frombuffer(bytearray(raw), dtype=torch_dtypes[dt])
                    state[k[len(m["name"]) + 1:]] = t.reshape(shape)
            scheme = QuantizationScheme(targets=["Linear"], weights=QuantizationArgs(**args))
            w = BaseCompressor.load_from_registry(fmt).decompress(state, scheme)["weight"]
            lowbit = torch.from_numpy(np.load(out / f"{case['name']}.{m['name']}.readback.npy")).to(w.dtype)
            if fmt == "nvfp4-pack-quantized":
                torch.testing.assert_close(w.float(), lowbit.float(), rtol=2 ** -7, atol=0)
            else:
                assert torch.equal(w, lowbit), f"{case['name']} {m['scheme']}"
            checked.add(fmt)
    assert len(checked) == 5
