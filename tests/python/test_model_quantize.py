"""End-to-end checks of `lowbit quantize` on the real models the setup installs.

- all-MiniLM-L6-v2 (fp32 safetensors) to compressed-tensors and GGUF;
- SmolLM2-135M-Instruct (GGUF Q4_1) to GGUF and compressed-tensors.

Outputs are read back by independent readers (gguf-py for GGUF, the numpy
compressed-tensors decoder of test_compressed_tensors.py), and the error of
the decoded weights against the input is compared with what the report
says. The default policy, metadata preservation, the methods' ordering
(mse and hqq beat rtn) and the refusals of bad input are checked too.
"""
import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest

np = pytest.importorskip("numpy")
gguf = pytest.importorskip("gguf")
st_numpy = pytest.importorskip("safetensors.numpy")


from real_models import MINILM_DIR, SMOL_GGUF, need_minilm, need_smol


def qsnr_db(x, y):
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    return -10 * np.log10(np.sum((x - y) ** 2) / np.sum(x * x))


def quantize(lowbit, inp, out, *args):
    report = pathlib.Path(lowbit.workdir) / (pathlib.Path(out).name + ".report.json")
    r = lowbit.run("quantize", inp, out, "--report", report, "--quiet", *args)
    return json.loads(report.read_text()), r.stdout


def gguf_tensors(path):
    reader = gguf.GGUFReader(str(path))
    out = {}
    for t in reader.tensors:
        out[t.name] = (t.tensor_type, t)
    return reader, out


def gguf_dequant(t):
    shape = tuple(int(d) for d in reversed(t.shape.tolist()))
    return gguf.quants.dequantize(t.data, t.tensor_type).reshape(shape).astype(np.float32)


# ------------------------------------------------------------------ MiniLM

@need_minilm
def test_minilm_default_policy_and_report(lowbit):
    rep, stdout = quantize(lowbit, "minilm", "out_int8", "--scheme", "int8/channel")
    src = st_numpy.load_file(str(MINILM_DIR / "model.safetensors"))
    by_name = {t["name"]: t for t in rep["tensors"]}
    assert set(by_name) >= {k for k in src}  # every input tensor is accounted for
    for name, x in src.items():
        t = by_name[name]
        embedding = "embeddings" in name
        assert t["quantized"] == (x.ndim == 2 and not embedding), name
    assert rep["params_total"] == sum(x.size for x in src.values())
    assert rep["peak_rss_bytes"] > 0 and rep["seconds"] > 0
    assert "bits per weight" in stdout and "QSNR" in stdout
    # The directory is a loadable compressed-tensors checkpoint.
    out = pathlib.Path(lowbit.workdir) / "out_int8"
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["quantization_config"]["quant_method"] == "compressed-tensors"
    assert cfg["model_type"] == "bert"  # the input's config is kept
    assert (out / "tokenizer.json").is_file() and (out / "1_Pooling").is_dir()


@need_minilm
@pytest.mark.parametrize("scheme", ["int8/channel", "int4/g128/asym", "mxfp4", "nvfp4", "float8_e4m3fn/channel",
                                    "float8_e4m3fn/b128x128"])
def test_minilm_compressed_tensors_decode_matches_report(lowbit, scheme):
    ct = pytest.importorskip("test_compressed_tensors", reason="numpy compressed-tensors decoder")
    slug = scheme.replace("/", "_")
    rep, _ = quantize(lowbit, "minilm", slug, "--scheme", scheme)
    out = pathlib.Path(lowbit.workdir) / slug
    cfg = json.loads((out / "config.json").read_text())
    # (safetensors' numpy loader cannot open files holding F8 tensors.)
    raw = ct.read_safetensors(out / "model.safetensors")
    src = st_numpy.load_file(str(MINILM_DIR / "model.safetensors"))
    checked = 0
    for t in rep["tensors"]:
        if not t["quantized"]:
            assert raw[t["name"]][2] == src[t["name"]].tobytes(), t["name"]
            continue
        module = t["name"][: -len(".weight")]
        y = ct.dequantize(raw, module, *ct.module_config(cfg, module))
        assert y.shape == src[t["name"]].shape
        # The report measured the same decoded tensor.
        assert abs(qsnr_db(src[t["name"]], y) - t["qsnr_db"]) < 1e-6 * max(1.0, abs(t["qsnr_db"])), t["name"]
        checked += 1
    assert checked == 37  # 6 layers x (q, k, v, o, intermediate, output), and the pooler


@need_minilm
def test_block_fp8_output_notes_that_vllm_refuses_it(lowbit):
    """vLLM 0.33 asserts on every weight-only block-FP8 layer at load
    (docs/compressed_tensors.md); the report says so, for those outputs only."""
    rep, out = quantize(lowbit, "minilm", "fp8_block", "--scheme", "float8_e4m3fn/b128x128")
    assert len(rep["notes"]) == 1
    assert rep["notes"][0].startswith("37 module(s) are weight-only block FP8, which vLLM 0.33 does not load")
    assert "note              37 module(s)" in out
    for scheme in ("float8_e4m3fn/channel", "int4/g128/asym"):
        rep, out = quantize(lowbit, "minilm", "no_note_" + scheme.replace("/", "_"), "--scheme", scheme)
        assert rep["notes"] == [], scheme
        assert "note " not in out


def _quantize_with_stderr_on_a_terminal(lowbit, out, *args):
    """Runs quantize with stderr on a pseudo-terminal; returns what it drew."""
    import pty
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([str(lowbit.exe), "quantize", "minilm", out, *args], cwd=lowbit.workdir,
                                stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        slave = -1
        drawn = b""
        while True:  # drain as it runs, so a full terminal buffer cannot stall it
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not chunk:
                break
            drawn += chunk
        assert proc.wait(timeout=120) == 0
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    return drawn.decode()


@need_minilm
def test_progress_bar_draws_only_on_a_terminal(lowbit):
    # hqq, slow enough for redraws on most machines.
    drawn = _quantize_with_stderr_on_a_terminal(lowbit, "tty", "--scheme", "int4/g128/asym", "--method", "hqq")
    frames = [f for f in drawn.split("\r\x1b[K") if f]
    assert frames, repr(drawn)
    assert frames[0].startswith("[>") and " 0/104 tensors " in frames[0] and "ETA --:--" in frames[0], frames[0]
    # The last frame counts every tensor at a measured rate; a frame between
    # (redraws are 0.1 s apart, so a fast machine may draw none) also gives
    # the time left.
    # The rate is in float32 bytes of the tensors quantized, as the summary's.
    last = re.match(r"\[=+\] 104/104 tensors +(\d+) float32 MB/s +ETA --:-- ", frames[-1])
    assert last and int(last.group(1)) > 0, frames[-1]
    # Kept tensors (the embeddings come first) count for no work: until a
    # tensor is quantized there is no rate and so no estimate.
    for f in frames[1:-1]:
        m = re.match(r"\[=*>? *\] \d+/104 tensors +(\d+) float32 MB/s +ETA (\d+:\d\d|--:--) ", f)
        assert m and (m.group(2) == "--:--") == (m.group(1) == "0"), f
    assert drawn.endswith("\r\x1b[K")  # the line is cleared before the report
    # --quiet on a terminal, and no terminal at all: nothing drawn.
    assert _quantize_with_stderr_on_a_terminal(lowbit, "tty_quiet", "--scheme", "int4/g128/asym", "--quiet") == ""
    r = lowbit.run("quantize", "minilm", "piped", "--scheme", "int4/g128/asym", "--method", "hqq")
    assert r.stderr == ""


@need_minilm
def test_minilm_mse_and_hqq_beat_rtn(lowbit):
    q = {}
    for method in ("rtn", "mse", "hqq"):
        rep, _ = quantize(lowbit, "minilm", f"m_{method}", "--scheme", "int4/g128/asym", "--method", method)
        q[method] = {t["name"]: t["qsnr_db"] for t in rep["tensors"] if t["quantized"]}
    assert q["mse"].keys() == q["rtn"].keys() == q["hqq"].keys()
    mean = {m: np.mean(list(v.values())) for m, v in q.items()}
    assert mean["mse"] > mean["rtn"] + 0.2, mean
    assert mean["hqq"] > mean["rtn"], mean
    # Per tensor too: the search never loses to its own starting point.
    assert all(q["mse"][n] >= q["rtn"][n] - 1e-9 for n in q["rtn"])


@need_minilm
def test_minilm_compare_table(lowbit):
    r = lowbit.run("quantize", "minilm", "cmp", "--quiet", "--scheme", "int8/channel", "--scheme", "int4/g128/asym",
                   "--scheme", "mxfp4", "--scheme", "nvfp4")
    lines = r.stdout.splitlines()
    header = next(i for i, l in enumerate(lines) if l.startswith("scheme"))
    rows = [l.split() for l in lines[header + 1: header + 5]]
    assert [r[0] for r in rows] == ["int8/channel", "int4/g128/asym", "mxfp4", "nvfp4"]
    bits = [float(r[2]) for r in rows]
    assert bits[0] > 8 and 4 < bits[1] < 4.3 and bits[2] == pytest.approx(4.25, abs=0.01)
    assert all((pathlib.Path(lowbit.workdir) / "cmp" / s).is_dir()
               for s in ("int8_channel", "int4_g128_asym", "mxfp4", "nvfp4"))


def bert_gguf_name(name):
    """A MiniLM tensor's name in a GGUF file, by gguf-py's own tensor map
    (llama.cpp's converter's): lowbit writes BERT in llama.cpp's layout."""
    return gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, 6).get_name(name, try_suffixes=(".weight", ".bias"))


@need_minilm
def test_minilm_to_gguf_q8_0(lowbit):
    rep, _ = quantize(lowbit, "minilm", "minilm-q8.gguf", "--scheme", "q8_0")
    reader, ts = gguf_tensors(pathlib.Path(lowbit.workdir) / "minilm-q8.gguf")
    src = st_numpy.load_file(str(MINILM_DIR / "model.safetensors"))
    # The file has llama.cpp's BERT layout: gguf-py's own tensor map (the
    # converter's) names each tensor; what the converter leaves out, lowbit
    # leaves out and says so.
    assert reader.fields["general.architecture"].contents() == "bert"
    written = 0
    for t in rep["tensors"]:
        gguf_name = bert_gguf_name(t["name"])
        if t["scheme"] == "left out":
            assert t["name"] in ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")
            assert not t["quantized"] and t["bytes_out"] == 0 and "converter leaves it out" in t["reason"]
            continue
        written += 1
        kind, info = ts[gguf_name]
        if t["quantized"]:
            assert kind == gguf.GGMLQuantizationType.Q8_0
            y = gguf_dequant(info)
            assert abs(qsnr_db(src[t["name"]], y) - t["qsnr_db"]) < 1e-6 * abs(t["qsnr_db"])
            # gguf-py's own quantizer writes the same bytes (rtn is llama.cpp's reference).
            ref = gguf.quants.quantize(src[t["name"]], gguf.GGMLQuantizationType.Q8_0)
            np.testing.assert_array_equal(np.asarray(info.data).reshape(-1).view(np.uint8), ref.reshape(-1).view(np.uint8))
        else:
            np.testing.assert_array_equal(np.asarray(info.data).reshape(src[t["name"]].shape), src[t["name"]])
    assert written == len(ts)  # every tensor of the file is one of the report's
    # The pooler is not in the output, so no QSNR of it is reported.
    assert all(t["name"] != "pooler.dense.weight" for t in rep["tensors"] if t["quantized"])


# ------------------------------------------------------------------ SmolLM2

@need_smol
@pytest.mark.parametrize("scheme,method", [("q4_k", "rtn"), ("q4_k", "mse"), ("q8_0", "rtn"), ("mxfp4", "rtn"),
                                           ("q4_0", "rtn")])
def test_smollm2_gguf_keeps_metadata_and_matches_report(lowbit, scheme, method):
    out = pathlib.Path(lowbit.workdir) / f"smol-{scheme}-{method}.gguf"
    rep, _ = quantize(lowbit, "smollm2", out, "--scheme", scheme, "--method", method)
    rin, tin = gguf_tensors(SMOL_GGUF)
    rout, tout = gguf_tensors(out)
    kin = {f.name: f for f in rin.fields.values()}
    kout = {f.name: f for f in rout.fields.values()}
    assert set(kin) == set(kout)  # every key kept (GGUF.* header fields included)
    for name, f in kin.items():
        if name in ("general.file_type", "general.quantization_version"):
            continue
        assert [bytes(p) for p in f.parts] == [bytes(p) for p in kout[name].parts], name
    assert list(tin) == list(tout)
    checked = 0
    for t in rep["tensors"]:
        kind_in, info_in = tin[t["name"]]
        kind_out, info_out = tout[t["name"]]
        if not t["quantized"]:
            assert kind_in == kind_out
            assert bytes(np.asarray(info_in.data).view(np.uint8)) == bytes(np.asarray(info_out.data).view(np.uint8))
            continue
        x = gguf_dequant(info_in)
        y = gguf_dequant(info_out)
        assert abs(qsnr_db(x, y) - t["qsnr_db"]) < 1e-5 * abs(t["qsnr_db"]), t["name"]
        checked += 1
    assert checked > 100  # 30 layers x 7 linear weights


@need_smol
def test_smollm2_mse_beats_rtn_on_q4_k(lowbit):
    means = {}
    for method in ("rtn", "mse"):
        rep, _ = quantize(lowbit, "smollm2", f"s-{method}.gguf", "--scheme", "q4_k", "--method", method)
        means[method] = np.mean([t["qsnr_db"] for t in rep["tensors"] if t["quantized"]])
    assert means["mse"] > means["rtn"], means


@need_smol
def test_smollm2_lossless_requantization_reports_infinite_qsnr(lowbit):
    # Q4_1 into Q4_1 keeps every weight: each tensor's QSNR and their mean
    # are infinite (JSON null), not 0 dB.
    rep, out = quantize(lowbit, "smollm2", "same.gguf", "--scheme", "q4_1")
    quantized = [t for t in rep["tensors"] if t["quantized"]]
    assert quantized and all(t["qsnr_db"] is None for t in quantized)
    assert rep["mean_qsnr_db"] is None and rep["worst_qsnr_db"] is None
    assert "mean inf dB, worst inf dB" in out


@need_smol
def test_streaming_keeps_peak_memory_far_below_the_model(lowbit):
    # SmolLM2 widened to a float32 GGUF (540 MB, embedding included), then
    # quantized: tensor by tensor, each one's mapped pages released after
    # use, so the peak resident set stays near the largest tensor (the
    # 113 MB embedding, copied as it is) and never reaches the whole file.
    recipe = pathlib.Path(lowbit.workdir) / "f32.json"
    recipe.write_text(json.dumps({"rules": [{"match": ".*", "scheme": "f32"}]}))
    lowbit.run("quantize", "smollm2", "f32.gguf", "--recipe", recipe, "--quiet")
    size = (pathlib.Path(lowbit.workdir) / "f32.gguf").stat().st_size
    assert size > 500e6
    rep, _ = quantize(lowbit, "f32.gguf", "q4_0.gguf", "--scheme", "q4_0")
    assert rep["peak_rss_bytes"] < 0.4 * size, (rep["peak_rss_bytes"], size)


@need_minilm
def test_minilm_nvfp4_fused_shards_share_one_global_scale(lowbit):
    # vLLM loads BERT's query/key/value (and Llama's q/k/v_proj, gate/up_proj)
    # as one layer with one global scale: lowbit gives the shards the same.
    ct = pytest.importorskip("test_compressed_tensors", reason="numpy compressed-tensors decoder")
    quantize(lowbit, "minilm", "minilm-nvfp4", "--scheme", "nvfp4")
    raw = ct.read_safetensors(pathlib.Path(lowbit.workdir) / "minilm-nvfp4" / "model.safetensors")

    def g(name):
        return np.frombuffer(raw[name + ".weight_global_scale"][2], dtype=np.float32)[0]

    layers = sorted({n.split(".attention.self.")[0] for n in raw if ".attention.self.query." in n})
    assert len(layers) == 6
    distinct = set()
    for layer in layers:
        a = f"{layer}.attention.self"
        assert g(f"{a}.query") == g(f"{a}.key") == g(f"{a}.value"), layer
        distinct |= {g(f"{a}.query"), g(f"{layer}.attention.output.dense"), g(f"{layer}.intermediate.dense"),
                     g(f"{layer}.output.dense")}
    # Unfused layers keep their own scales.
    assert len(distinct) > 12


@need_minilm
@pytest.mark.parametrize("scheme", ["int4/g128/asym", "nvfp4", "float8_e4m3fn/channel"])
def test_compressed_tensors_input_is_read_dequantized(lowbit, scheme):
    # A compressed-tensors checkpoint (here lowbit's own) is an input like
    # any other: each weight is read dequantized and quantized again, here
    # to GGUF Q8_0. The second report's QSNR, measured against the input as
    # lowbit read it, equals the QSNR against the numpy decoder's reading of
    # the first output (to 1e-6 relative).
    ct = pytest.importorskip("test_compressed_tensors", reason="numpy compressed-tensors decoder")
    slug = "ct-in-" + scheme.replace("/", "_")
    quantize(lowbit, "minilm", slug, "--scheme", scheme)
    rep, _ = quantize(lowbit, slug, slug + ".gguf", "--scheme", "q8_0")
    out = pathlib.Path(lowbit.workdir) / slug
    cfg = json.loads((out / "config.json").read_text())
    raw = ct.read_safetensors(out / "model.safetensors")
    _, tensors = gguf_tensors(pathlib.Path(lowbit.workdir) / (slug + ".gguf"))
    fmt = cfg["quantization_config"]["format"]
    checked = 0
    for t in rep["tensors"]:
        if not t["name"].endswith(".weight") or t["name"][: -len(".weight")] + ".weight_scale" not in raw:
            assert not t["dtype_in"].startswith("ct:"), t["name"]
            continue
        module = t["name"][: -len(".weight")]
        assert t["dtype_in"] == "ct:" + fmt, t["name"]
        if t["scheme"] == "left out":  # not in llama.cpp's BERT layout: the pooler
            assert module == "pooler.dense" and not t["quantized"]
            continue
        assert t["quantized"], t["name"]
        x = ct.dequantize(raw, module, *ct.module_config(cfg, module))
        kind, info = tensors[bert_gguf_name(t["name"])]  # llama.cpp's BERT layout
        assert kind == gguf.GGMLQuantizationType.Q8_0
        y = gguf_dequant(info)
        assert y.shape == x.shape
        assert abs(qsnr_db(x, y) - t["qsnr_db"]) < 1e-6 * max(1.0, abs(t["qsnr_db"])), t["name"]
        checked += 1
    assert checked == 36  # 37 linear weights, the pooler left out of the GGUF
    # Quantizing a compressed-tensors input to compressed-tensors replaces
    # its config; keeping every weight writes them plain, without one.
    recipe = pathlib.Path(lowbit.workdir) / "keep-all.json"
    recipe.write_text(json.dumps({"rules": [{"match": ".*", "keep": True}]}))
    quantize(lowbit, slug, slug + "-plain", "--recipe", recipe)
    plain = json.loads((pathlib.Path(lowbit.workdir) / (slug + "-plain") / "config.json").read_text())
    assert "quantization_config" not in plain
    assert plain["model_type"] == cfg["model_type"]


@need_minilm
def test_inspect_shows_the_compressed_tensors_weights_quantize_reads(lowbit):
    # `lowbit inspect` on a compressed-tensors directory lists the stored
    # tensors of each file and, beside them, each quantized weight as one
    # row: the shape quantize reads, ct:<format>, and the bytes of all its
    # stored parts.
    work = pathlib.Path(lowbit.workdir)
    rep, _ = quantize(lowbit, "minilm", "insp-int4", "--scheme", "int4/g128/asym")
    got = json.loads(lowbit.run("inspect", work / "insp-int4", "--json").stdout)
    assert [pathlib.Path(f["file"]).name for f in got["files"]] == ["model.safetensors"]
    stored = {t["name"]: t for t in got["files"][0]["tensors"]}
    quantized = {t["name"]: t for t in rep["tensors"] if t["quantized"]}
    logical = {t["name"]: t for t in got["compressed_tensors"]}
    assert logical.keys() == quantized.keys() and len(logical) == 37
    for name, t in logical.items():
        module = name[: -len(".weight")]
        parts = [p for n, p in stored.items() if n.startswith(module + ".weight")]
        assert {n[len(module) + 1:] for n in stored if n.startswith(module + ".weight")} == {
            "weight_packed", "weight_scale", "weight_zero_point", "weight_shape"}
        assert t["dtype"] == "ct:pack-quantized"
        assert t["shape"] == quantized[name]["shape"] and t["elements"] == quantized[name]["numel"]
        assert t["bytes"] == sum(p["bytes"] for p in parts) == quantized[name]["bytes_out"]
    assert "omitted_tensors" not in got
    # The file alone (config.json beside it) gives the same logical rows.
    one = json.loads(lowbit.run("inspect", work / "insp-int4" / "model.safetensors", "--json").stdout)
    assert one["compressed_tensors"] == got["compressed_tensors"] and one["tensors"] == got["files"][0]["tensors"]
    table = lowbit.run("inspect", work / "insp-int4").stdout
    assert "compressed-tensors weights, as lowbit quantize reads them (37)" in table
    # A config lowbit cannot decode: inspect lists the stored tensors and
    # says why; quantize refuses rather than take codes for weights.
    bad = work / "insp-bad"
    shutil.copytree(work / "insp-int4", bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["quantization_config"]["config_groups"]["group_0"]["targets"] = ["re:(?=lookahead).*"]
    (bad / "config.json").write_text(json.dumps(cfg))
    r = lowbit.run("inspect", bad, "--json")
    assert "compressed_tensors" not in json.loads(r.stdout) and "cannot be read" in r.stderr and "lookaround" in r.stderr
    r = lowbit.run("quantize", bad, work / "insp-bad-out", "--scheme", "int8/channel", "--quiet", check=False)
    assert r.returncode == 1 and "compressed-tensors checkpoint lowbit cannot decode" in r.stderr, r.stderr
    assert not (work / "insp-bad-out").exists()
    # A plain checkpoint has no such rows.
    plain = json.loads(lowbit.run("inspect", MINILM_DIR, "--json").stdout)
    assert len(plain["files"]) == 1 and "compressed_tensors" not in plain


@need_minilm
def test_activation_scales_of_a_compressed_tensors_input_are_omitted(lowbit):
    # An llm-compressor W4A4/W8A8 checkpoint stores activation scales beside
    # the weights. lowbit's output quantizes weights only and declares no
    # activation scheme, so the scales must not reach it (vLLM would meet
    # parameters its model lacks); the report names them.
    ct = pytest.importorskip("test_compressed_tensors", reason="numpy compressed-tensors decoder")
    work = pathlib.Path(lowbit.workdir)
    quantize(lowbit, "minilm", "act-src", "--scheme", "nvfp4")
    src = work / "act-src"
    cfg = json.loads((src / "config.json").read_text())
    qc = cfg["quantization_config"]
    for g in qc["config_groups"].values():
        g["input_activations"] = dict(g["weights"])
    (src / "config.json").write_text(json.dumps(cfg))
    # Raw (dtype, shape, bytes) triples: numpy has no float8 for the scales.
    tensors = ct.read_safetensors(src / "model.safetensors")
    added = []
    for name in list(tensors):
        if name.endswith(".weight_global_scale"):
            module = name[: -len(".weight_global_scale")]
            tensors[module + ".input_global_scale"] = ("F32", (1,), np.float32(448.0 * 6.0).tobytes())
            added.append(module + ".input_global_scale")
    assert len(added) == 37
    header, body = {"__metadata__": {"format": "pt"}}, bytearray()
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [len(body), len(body) + len(raw)]}
        body += raw
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    (src / "model.safetensors").write_bytes(len(text).to_bytes(8, "little") + text + bytes(body))
    for out, scheme in (("act-int4", "int4/g128/asym"), ("act-q8.gguf", "q8_0")):
        rep, _ = quantize(lowbit, "act-src", out, "--scheme", scheme)
        assert sorted(rep["omitted_tensors"]) == sorted(added)
        names = {t["name"] for t in rep["tensors"]}
        assert not any(n.endswith("input_global_scale") for n in names)
        if out.endswith(".gguf"):
            _, written = gguf_tensors(work / out)
        else:
            written = ct.read_safetensors(work / out / "model.safetensors")
            assert all(g["input_activations"] is None
                       for g in json.loads((work / out / "config.json").read_text())["quantization_config"]
                       ["config_groups"].values())
        assert not any(n.endswith("input_global_scale") for n in written)
        assert sum(n.endswith(".weight") or n.endswith(".weight_packed") for n in written) >= 37
    # inspect names them too.
    assert sorted(json.loads(lowbit.run("inspect", src, "--json").stdout)["omitted_tensors"]) == sorted(added)


@need_minilm
def test_minilm_nvfp4_blocks_are_quantized_with_the_scale_vllm_reads(lowbit):
    # vLLM reads NVFP4's tensor scale as float32(1 / weight_global_scale).
    # Every block of the file must be the NVFP4 reference quantization with
    # exactly that s_t (and the fused q/k/v amax), also where
    # float32(amax / 2688) has no float32 reciprocal preimage and lowbit
    # moved s_t by an ulp before quantizing. (That ulp rarely changes a code;
    # quantizer_test and compressed_tensors_test pin the move itself.)
    ct = pytest.importorskip("test_compressed_tensors", reason="numpy compressed-tensors decoder")
    tq = pytest.importorskip("test_quant", reason="numpy NVFP4 reference")
    quantize(lowbit, "minilm", "minilm-nvfp4-vllm", "--scheme", "nvfp4")
    raw = ct.read_safetensors(pathlib.Path(lowbit.workdir) / "minilm-nvfp4-vllm" / "model.safetensors")
    src = st_numpy.load_file(str(MINILM_DIR / "model.safetensors"))
    fused_amax = {}
    for name, x in src.items():
        if ".attention.self." in name and name.endswith(".weight"):
            key = name.split(".attention.self.")[0]
            fused_amax[key] = max(fused_amax.get(key, 0.0), float(np.abs(x).max()))
    checked = moved = 0
    for name, x in src.items():
        module = name[: -len(".weight")]
        if module + ".weight_global_scale" not in raw:
            continue
        g = np.frombuffer(raw[module + ".weight_global_scale"][2], dtype=np.float32)[0]
        s_t = np.float32(1) / g
        amax = fused_amax.get(module.split(".attention.self.")[0], 0.0) if ".attention.self." in module else 0.0
        amax = np.float32(max(amax, float(np.abs(x).max())))
        if s_t != np.float32(amax / np.float32(2688)):
            moved += 1
            assert abs(int(s_t.view(np.uint32)) - int(np.float32(amax / np.float32(2688)).view(np.uint32))) == 1, module
        _, ref_sb, ref_codes, _ = tq.nvfp4_reference(x.astype(np.float32), s_t)
        sb = np.frombuffer(raw[module + ".weight_scale"][2], dtype=np.uint8).astype(np.uint32)
        packed = np.frombuffer(raw[module + ".weight_packed"][2], dtype=np.uint8)
        codes = np.stack([packed & 0xF, packed >> 4], axis=-1).reshape(-1).astype(np.uint32)
        assert np.array_equal(sb, ref_sb), module
        assert np.array_equal(codes, ref_codes), module
        checked += 1
    print(f"{checked} NVFP4 tensors, {moved} with s_t moved by an ulp")
    assert checked == sum(1 for n, x in src.items() if x.ndim == 2 and "embeddings" not in n)
    # The case this test is for occurs in MiniLM (about one tensor scale in six).
    assert moved >= 1


@need_smol
def test_smollm2_to_compressed_tensors_with_hqq(lowbit):
    reps = {}
    for method in ("rtn", "hqq"):
        reps[method], _ = quantize(lowbit, "smollm2", f"smol-ct-{method}", "--scheme", "int4/g64/asym", "--method", method)
    mean = {m: np.mean([t["qsnr_db"] for t in r["tensors"] if t["quantized"]]) for m, r in reps.items()}
    assert mean["hqq"] > mean["rtn"], mean
    files = st_numpy.load_file(str(pathlib.Path(lowbit.workdir) / "smol-ct-hqq" / "model.safetensors"))
    assert any(k.endswith(".weight_zero_point") for k in files)


# ------------------------------------------------------------------ bad input

@need_minilm
@pytest.mark.parametrize("scheme,container", [("int4/g128/asym", "safetensors"), ("q4_k", "gguf")])
def test_recipe_importance_steers_the_mse_search(lowbit, scheme, container):
    """A recipe's importance file (per-column weights, llama.cpp's imatrix
    layout) makes `mse` minimize the weighted error: wmse on lowbit schemes,
    llama.cpp's imatrix search on ggml types. Compared on the same weights
    with and without it, the importance-weighted error must fall."""
    ct = pytest.importorskip("test_compressed_tensors", reason="numpy compressed-tensors decoder")
    src = st_numpy.load_file(str(MINILM_DIR / "model.safetensors"))
    rng = np.random.default_rng(7)
    imp = {n: rng.lognormal(0.0, 1.5, x.shape[1]).astype(np.float32)
           for n, x in src.items() if x.ndim == 2 and n.startswith("encoder.")}
    work = pathlib.Path(lowbit.workdir)
    _write_safetensors(work / "imatrix.safetensors", imp)
    ext = ".gguf" if container == "gguf" else ""

    def weighted_errors(recipe, out):
        (work / (out + ".json")).write_text(json.dumps(recipe))
        rep, _ = quantize(lowbit, "minilm", out + ext, "--recipe", out + ".json")
        if container == "gguf":
            _, ts = gguf_tensors(work / (out + ext))
            # The file has llama.cpp's BERT names: back to the checkpoint's.
            hf = {bert_gguf_name(n): n for n in imp}
            decoded = {hf[n]: gguf_dequant(t) for n, (qt, t) in ts.items()
                       if qt == gguf.GGMLQuantizationType.Q4_K}
        else:
            raw = ct.read_safetensors(work / out / "model.safetensors")
            cfg = json.loads((work / out / "config.json").read_text())
            decoded = {t["name"]: ct.dequantize(raw, t["name"][:-7], *ct.module_config(cfg, t["name"][:-7]))
                       for t in rep["tensors"] if t["quantized"]}
        return {n: float(np.sum(imp[n] * (src[n] - y) ** 2)) for n, y in decoded.items() if n in imp}

    base = {"default_scheme": scheme, "method": "mse"}
    plain = weighted_errors(base, "plain")
    weighted = weighted_errors(dict(base, importance="imatrix.safetensors"), "weighted")
    # (Q4_K holds the 1536-column weights; 384-column rows fall back to Q5_0.)
    assert plain.keys() == weighted.keys() and len(plain) == (6 if container == "gguf" else 36), sorted(plain)
    ratio = sum(weighted.values()) / sum(plain.values())
    better = sum(weighted[n] < plain[n] for n in plain)
    print(f"{scheme}: {len(plain)} tensors, weighted error ratio {ratio:.4f}, lower on {better}")
    assert ratio < 0.97, ratio
    assert better >= 0.9 * len(plain), (better, len(plain))
    # A wrong importance length is an input error naming the tensor, with no output.
    name = sorted(imp)[0]
    _write_safetensors(work / "bad_imatrix.safetensors", {name: imp[name][:-1]})
    (work / "bad.json").write_text(json.dumps(dict(base, importance="bad_imatrix.safetensors")))
    err = _bad(lowbit, "minilm", work / ("bad_out" + ext), "--recipe", work / "bad.json")
    assert name in err and "one per column" in err, err
    assert not (work / ("bad_out" + ext)).exists()


def _bad(lowbit, *args):
    r = lowbit.run("quantize", *args, "--quiet", check=False)
    assert r.returncode != 0
    assert "lowbit: error:" in r.stderr
    return r.stderr


def _write_safetensors(path, tensors):
    st_numpy.save_file(tensors, str(path))


def test_refusals_leave_no_output(lowbit, tmp_path):
    w = np.random.default_rng(0).standard_normal((64, 256)).astype(np.float32)
    good = tmp_path / "good.safetensors"
    _write_safetensors(good, {"l.weight": w})
    # NaN weights: refused by default, accepted by policy.
    wn = w.copy()
    wn[3, 7] = np.nan
    nan_file = tmp_path / "nan.safetensors"
    _write_safetensors(nan_file, {"l.weight": wn})
    assert "NaN" in _bad(lowbit, nan_file, tmp_path / "o1", "--scheme", "int8/channel")
    assert not (tmp_path / "o1").exists()
    lowbit.run("quantize", nan_file, tmp_path / "o2", "--scheme", "int8/channel", "--nan", "zero", "--quiet")
    # A scheme the container cannot hold.
    assert "GGUF output stores ggml types" in _bad(lowbit, good, tmp_path / "o3.gguf", "--scheme", "int4/g128/asym")
    assert "compressed-tensors" in _bad(lowbit, good, tmp_path / "o4", "--scheme", "fp:e3m2/g32")
    assert not (tmp_path / "o3.gguf").exists() and not (tmp_path / "o4").exists()
    # Truncated and corrupted inputs.
    data = good.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    _bad(lowbit, tmp_path / "trunc.safetensors", tmp_path / "o5", "--scheme", "int8/channel")
    (tmp_path / "trunc.gguf").write_bytes(SMOL_GGUF.read_bytes()[:100000] if SMOL_GGUF.is_file() else b"GGUF\x03\x00")
    _bad(lowbit, tmp_path / "trunc.gguf", tmp_path / "o6.gguf", "--scheme", "q8_0")
    assert not (tmp_path / "o5").exists() and not (tmp_path / "o6.gguf").exists()
    # Unwritable output directory.
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.geteuid() != 0:  # root writes anywhere
            _bad(lowbit, good, ro / "out", "--scheme", "int8/channel")
        _bad(lowbit, good, tmp_path / "missing" / "deeper" / "x.gguf", "--scheme", "q8_0")
    finally:
        ro.chmod(0o700)
    # Usage errors exit 2.
    r = lowbit.run("quantize", good, tmp_path / "o7", "--scheme", "int8/channel", "--method", "awq", check=False)
    assert r.returncode == 2 and "unknown method" in r.stderr
    # A data-aware method without its statistics: said before any output.
    r = lowbit.run("quantize", good, tmp_path / "o7", "--scheme", "int8/channel", "--method", "gptq", check=False)
    assert r.returncode == 2 and "needs calibration statistics" in r.stderr and "--gram" in r.stderr, r.stderr
    assert os.listdir(tmp_path) and not any(p.name.startswith(("o1", "o3", "o4", "o5", "o6", "o7")) or
                                            ".lowbit-tmp" in p.name or ".tmp" in p.name
                                            for p in tmp_path.iterdir())


def test_full_disk_leaves_no_output(lowbit, tmp_path):
    w = np.random.default_rng(1).standard_normal((512, 1024)).astype(np.float32)
    src = tmp_path / "w.safetensors"
    _write_safetensors(src, {"l.weight": w})
    # A file-size limit stands in for a full disk: the write fails part way.
    for out, scheme in ((tmp_path / "f.gguf", "q8_0"), (tmp_path / "fdir", "int8/channel")):
        r = subprocess.run(["bash", "-c", f'ulimit -f 64; exec "$0" "$@"', str(lowbit.exe), "quantize", str(src),
                            str(out), "--scheme", scheme, "--quiet"], capture_output=True, text=True, timeout=120)
        assert r.returncode != 0, r.stdout
        assert "lowbit: error:" in r.stderr
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]
