"""The bad-input and output-safety battery (issue "Never lose a user's data").

Every case runs the CLI as a user would and checks four things: the exit
status (0, 1 for input and I/O problems, 2 for usage), the message, that
every input file is byte-for-byte what it was (sha256 before and after), and
that nothing else is left in the working directory: no output, no
`*.tmp.*` file and no `*.lowbit-tmp-*` folder, unless the case expects one.
"""
import hashlib
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import time

import pytest

np = pytest.importorskip("numpy")
gguf = pytest.importorskip("gguf")
st_numpy = pytest.importorskip("safetensors.numpy")


from real_models import MINILM_DIR, SMOL_GGUF, need_minilm, need_smol
REPO = pathlib.Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ helpers

def sha(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def tree(root):
    """Every file and directory under root, relative, sorted."""
    root = pathlib.Path(root)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def strays(root):
    """Temporary outputs left behind."""
    return [p for p in tree(root) if ".tmp." in p or ".lowbit-tmp-" in p or ".lowbit-old-" in p]


class Case:
    """Runs one command and checks status, message, inputs and leftovers."""

    def __init__(self, lowbit, tmp_path):
        self.lowbit = lowbit
        self.dir = pathlib.Path(tmp_path)

    def run(self, *args, env=None, stdin=subprocess.DEVNULL):
        e = dict(os.environ)
        e.pop("LOWBIT_NUM_THREADS", None)
        if env:
            e.update(env)
        return subprocess.run([str(self.lowbit.exe), *map(str, args)], cwd=self.dir, capture_output=True, text=True,
                              timeout=300, env=e, stdin=stdin)

    def expect(self, args, status, message=None, inputs=(), leaves=None, env=None):
        """Runs args; checks the status, the message (a regex searched in
        stderr), that `inputs` are unchanged, and that the directory then
        holds exactly `leaves` (default: what it held before)."""
        before = {str(p): sha(self.dir / p) for p in inputs}
        listing = tree(self.dir)
        r = self.run(*args, env=env)
        assert r.returncode == status, f"{args}: exit {r.returncode}, wanted {status}\n{r.stderr}"
        if status:
            assert r.stderr.startswith("lowbit: error: ") or "lowbit: error: " in r.stderr, r.stderr
            assert "terminate called" not in r.stderr and "what():" not in r.stderr, r.stderr
        if message:
            assert re.search(message, r.stderr), f"{args}: {message!r} not in\n{r.stderr}"
        for p, h in before.items():
            assert sha(self.dir / p) == h, f"{args} changed its input {p}"
        assert not strays(self.dir), f"{args} left {strays(self.dir)}"
        if leaves is None:
            assert tree(self.dir) == listing, f"{args} left {sorted(set(tree(self.dir)) - set(listing))}"
        else:
            now = set(tree(self.dir))
            for p in leaves:
                assert p in now, f"{args} did not write {p}"
        return r


@pytest.fixture
def case(lowbit, tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.standard_normal((64, 256)).astype(np.float32))
    np.save(tmp_path / "w.npy", np.ones(256, np.float32))
    st_numpy.save_file({"l.weight": rng.standard_normal((64, 256)).astype(np.float32),
                        "l.bias": rng.standard_normal(64).astype(np.float32)}, str(tmp_path / "m.safetensors"))
    return Case(lowbit, tmp_path)


def ulimit_run(case, limit_kib, *args):
    return subprocess.run(["bash", "-c", f'ulimit -f {limit_kib}; exec "$0" "$@"', str(case.lowbit.exe),
                           *map(str, args)], cwd=case.dir, capture_output=True, text=True, timeout=300)


# ------------------------------------------------------------------ 1. data loss

def test_a_folder_of_the_users_files_is_never_deleted(case):
    d = case.dir / "d"
    d.mkdir()
    (d / "notes.txt").write_text("mine")
    (d / "sub").mkdir()
    (d / "sub" / "more.txt").write_text("also mine")
    case.expect(["quantize", "m.safetensors", "d", "--scheme", "int8/channel", "--quiet"], 2,
                r"holds files lowbit did not write \(such as '(notes.txt|sub/more.txt)'\).*--overwrite",
                inputs=["m.safetensors", "d/notes.txt", "d/sub/more.txt"])
    # --overwrite: lowbit's files go in, the user's stay as they were.
    case.expect(["quantize", "m.safetensors", "d", "--scheme", "int8/channel", "--quiet", "--overwrite"], 0,
                inputs=["m.safetensors", "d/notes.txt", "d/sub/more.txt"],
                leaves=["d/model.safetensors", "d/.lowbit-output.json", "d/notes.txt", "d/sub/more.txt"])
    assert (d / "notes.txt").read_text() == "mine"
    manifest = json.loads((d / ".lowbit-output.json").read_text())
    assert manifest["written_by"] == "lowbit" and "notes.txt" not in manifest["files"]
    # A previous lowbit output is replaced without --overwrite; an empty
    # folder is simply used.
    case.expect(["quantize", "m.safetensors", "o", "--scheme", "int8/channel", "--quiet"], 0, leaves=["o/model.safetensors"])
    case.expect(["quantize", "m.safetensors", "o", "--scheme", "int4/g128/asym", "--quiet"], 0, leaves=["o/model.safetensors"])
    (case.dir / "e").mkdir()
    case.expect(["quantize", "m.safetensors", "e", "--scheme", "int8/channel", "--quiet"], 0, leaves=["e/model.safetensors"])
    # A user's file added to a lowbit output makes it the user's again.
    (case.dir / "o" / "added.txt").write_text("mine")
    case.expect(["quantize", "m.safetensors", "o", "--scheme", "int8/channel", "--quiet"], 2, "added.txt",
                inputs=["o/added.txt", "o/model.safetensors"])
    # A comparison folder follows the same rule.
    case.expect(["quantize", "m.safetensors", "d", "--scheme", "int8/channel", "--scheme", "mxfp4", "--quiet"], 2,
                "holds files lowbit did not write", inputs=["d/notes.txt"])


def test_trailing_slash(case):
    case.expect(["quantize", "m.safetensors", "out/", "--scheme", "int8/channel", "--quiet"], 0,
                leaves=["out/model.safetensors"])
    case.expect(["quantize", "m.safetensors", "out.gguf/", "--scheme", "q8_0", "--quiet"], 2, "ends in '/'")
    case.expect(["fakequant", "--format", "e4m3", "x.npy", "y.npy/"], 2, "ends in '/'", inputs=["x.npy"])


@pytest.mark.parametrize("spelling", ["same", "dot", "symlink", "hardlink"])
def test_an_output_that_is_an_input_is_refused_before_any_work(case, spelling):
    made = []

    def alias(name):
        if spelling == "same":
            return name
        if spelling == "dot":
            return f"./{name}"
        link = f"alias{len(made)}-{spelling}-{name}"
        made.append(link)
        (os.symlink if spelling == "symlink" else os.link)(case.dir / name, case.dir / link)
        return link
    same = "is the same file as|never writes over what it reads"
    for args in (["fakequant", "--format", "e4m3", "x.npy", alias("x.npy")],
                 ["encode", "--format", "e4m3", "x.npy", alias("x.npy")],
                 ["qtensor", "--scheme", "int8/channel", "x.npy", alias("x.npy")],
                 ["qtensor", "--scheme", "int8/channel", "--importance", "w.npy", "x.npy", alias("w.npy")],
                 ["ggml", "quantize", "--type", "q8_0", "x.npy", alias("x.npy")],
                 ["study", "qsnr", "--dist", "x.npy", "--schemes", "mxfp4", "--plot", alias("x.npy")],
                 ["quantize", "m.safetensors", alias("m.safetensors"), "--scheme", "int8/channel"],
                 ["quantize", "m.safetensors", "o.gguf", "--scheme", "q8_0", "--report", alias("m.safetensors")],
                 ["quantize", "m.safetensors", "o.gguf", "--scheme", "q8_0", "--report", "./o.gguf"]):
        listing = tree(case.dir)
        case.expect(args, 2, same, inputs=["x.npy", "w.npy", "m.safetensors"], leaves=listing)
    raw = case.dir / "codes.bin"
    raw.write_bytes(bytes(range(256)) * 4)
    case.expect(["decode", "--format", "e4m3", "codes.bin", alias("codes.bin")], 2, same, inputs=["codes.bin"],
                leaves=tree(case.dir))


def test_a_directory_output_that_is_or_holds_the_input_is_refused(case):
    model = case.dir / "model"
    shutil.copytree(MINILM_DIR, model) if MINILM_DIR.is_dir() else model.mkdir()
    shutil.copy(case.dir / "m.safetensors", model / "model.safetensors")
    inputs = [str(p.relative_to(case.dir)) for p in model.rglob("*") if p.is_file()]
    case.expect(["quantize", "model", "model", "--scheme", "int8/channel"], 2, "never writes over what it reads",
                inputs=inputs)
    case.expect(["quantize", "model/model.safetensors", "model", "--scheme", "int8/channel", "--overwrite"], 2,
                "holds the input", inputs=inputs)
    # Inside the input's folder is fine, and the output is not copied into itself.
    case.expect(["quantize", "model", "model/q", "--scheme", "int8/channel", "--quiet"], 0, inputs=inputs,
                leaves=["model/q/model.safetensors"])
    assert not (model / "q" / "q").exists()


def test_a_report_that_cannot_be_written_fails_before_the_model_is_written(case):
    (case.dir / "afile").write_text("x")
    case.expect(["quantize", "m.safetensors", "o.gguf", "--scheme", "q8_0", "--report", "missing/r.json"], 1,
                "cannot write 'missing/r.json'", inputs=["m.safetensors"])
    case.expect(["quantize", "m.safetensors", "o", "--scheme", "int8/channel", "--report", "afile/r.json"], 1,
                "afile", inputs=["m.safetensors", "afile"])
    case.expect(["quantize", "m.safetensors", "o", "--scheme", "int8/channel", "--report", "rdir/"], 2, "ends in '/'")
    # A directory output is replaced whole: a report inside it would go with it.
    case.expect(["quantize", "m.safetensors", "o", "--scheme", "int8/channel", "--report", "o/r.json"], 2,
                "inside the output directory")


def test_an_empty_array_is_refused_before_anything_is_written(case):
    np.save(case.dir / "z.npy", np.zeros((0,), np.float32))
    np.save(case.dir / "z2.npy", np.zeros((0, 8), np.float32))
    for args in (["qtensor", "--scheme", "int8/channel", "z.npy", "z.st"],
                 ["qtensor", "--scheme", "int4/g128/asym", "z2.npy", "z.st"],
                 ["ggml", "quantize", "--type", "q8_0", "z2.npy", "z.q8"]):
        case.expect(args, 1, "holds no elements", inputs=["z.npy", "z2.npy"])


def test_full_disk_leaves_no_output_in_any_command(case):
    # A file-size limit stands in for a full disk: each write fails part way.
    rng = np.random.default_rng(2)
    np.save(case.dir / "big.npy", rng.standard_normal((512, 1024)).astype(np.float32))
    (case.dir / "codes.bin").write_bytes(rng.integers(0, 256, 1 << 20, dtype=np.uint8).tobytes())
    (case.dir / "big.f32").write_bytes(rng.standard_normal(512 * 1024).astype(np.float32).tobytes())
    st_numpy.save_file({"l.weight": rng.standard_normal((512, 1024)).astype(np.float32)}, str(case.dir / "big.safetensors"))
    listing = tree(case.dir)
    for args in (["fakequant", "--format", "e4m3", "big.npy", "o.npy"],
                 ["encode", "--format", "e4m3", "big.npy", "o.bin"],
                 ["qtensor", "--scheme", "int8/channel", "big.npy", "o.st"],
                 ["ggml", "quantize", "--type", "f32", "big.npy", "o.bin"],
                 ["ggml", "dequantize", "--type", "f32", "--shape", "512,1024", "big.f32", "o.npy"],
                 ["decode", "--format", "bfloat16", "codes.bin", "o.npy"],
                 ["quantize", "big.safetensors", "o.gguf", "--scheme", "f32", "--quiet"],
                 ["quantize", "big.safetensors", "odir", "--scheme", "int8/channel", "--quiet"],
                 ["quantize", "big.safetensors", "cmp", "--scheme", "int8/channel", "--scheme", "float8_e4m3fn/channel",
                  "--quiet"]):
        r = ulimit_run(case, 256, *args)
        assert r.returncode == 1, (args, r.returncode, r.stderr)
        assert "lowbit: error:" in r.stderr and "file-size limit" in r.stderr, r.stderr
        assert tree(case.dir) == listing, (args, sorted(set(tree(case.dir)) - set(listing)))


def test_missing_output_folders_are_refused_by_both_containers(case):
    for out in ("missing/o.gguf", "missing/o", "missing/o.safetensors"):
        case.expect(["quantize", "m.safetensors", out, "--scheme", "q8_0" if out.endswith("gguf") else "int8/channel"],
                    1, "does not exist", inputs=["m.safetensors"])
    case.expect(["fakequant", "--format", "e4m3", "x.npy", "missing/y.npy"], 1, "does not exist")


# ------------------------------------------------------------------ signals

def _kill_during(case, args, sig, point, watch):
    """Starts args, sends sig at `point` ("start": at once; "temp": as soon
    as a temporary output exists; "mid": 0.3 s later), returns (status,
    stderr)."""
    import resource
    # No core file from SIGQUIT: it would be a file lowbit did not remove.
    p = subprocess.Popen([str(case.lowbit.exe), *map(str, args)], cwd=case.dir, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0)))
    if point != "start":
        t0 = time.time()
        while not any(watch(x) for x in tree(case.dir)) and time.time() - t0 < 60 and p.poll() is None:
            time.sleep(0.005)
        if point == "mid":
            time.sleep(0.3)
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    return p.returncode, err


@need_smol
@need_minilm
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT], ids=lambda s: s.name)
def test_each_catchable_signal_at_several_points_leaves_nothing(case, sig):
    jobs = [
        (["quantize", "smollm2", "s.gguf", "--scheme", "q4_k", "--method", "mse", "--quiet"], lambda p: ".tmp." in p),
        (["quantize", "minilm", "ct", "--scheme", "int4/g128/asym", "--method", "hqq", "--quiet"],
         lambda p: ".lowbit-tmp-" in p),
        (["quantize", "minilm", "cmp", "--scheme", "int4/g128/asym", "--scheme", "nvfp4", "--method", "mse", "--quiet"],
         lambda p: ".lowbit-tmp-" in p),
    ]
    listing = tree(case.dir)
    interrupted = 0
    for args, watch in jobs:
        for point in ("start", "temp", "mid"):
            status, err = _kill_during(case, args, sig, point, watch)
            # The process dies of the signal (the shell's 128 + n) or, at the
            # very start, before lowbit's handlers exist, also of the signal.
            assert status in (-sig, 0), (args, point, status, err)
            if status == 0:  # finished first: then its output is whole; clear it
                out = case.dir / args[2]
                assert out.exists() and not strays(case.dir)
                shutil.rmtree(out) if out.is_dir() else out.unlink()
                continue
            interrupted += 1
            assert not strays(case.dir), (args, point, strays(case.dir))
            assert tree(case.dir) == listing, (args, point, sorted(set(tree(case.dir)) - set(listing)))
            if point != "start":
                assert f"interrupted by {sig.name}" in err and "output was removed" in err, err
    assert interrupted >= 6


@need_smol
def test_a_truncated_input_is_an_error_naming_it(case):
    shutil.copy(SMOL_GGUF, case.dir / "copy.gguf")
    p = subprocess.Popen([str(case.lowbit.exe), "quantize", "copy.gguf", "t.gguf", "--scheme", "q4_k", "--method",
                          "mse", "--quiet"], cwd=case.dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not any(".tmp." in x for x in tree(case.dir)) and time.time() - t0 < 60:
        time.sleep(0.005)
    time.sleep(0.2)
    os.truncate(case.dir / "copy.gguf", 10_000_000)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 1, err
    assert "cannot read 'copy.gguf': it was truncated while lowbit was reading it" in err, err
    assert not (case.dir / "t.gguf").exists() and not strays(case.dir)


# ------------------------------------------------------------------ 2. numbers that lie

def _gguf_read(path):
    """The reader and {name: (type name, decoded array)} of the floating tensors."""
    reader = gguf.GGUFReader(str(path))
    out = {}
    for t in reader.tensors:
        if t.tensor_type.name in ("I8", "I16", "I32", "I64"):
            continue
        shape = tuple(int(d) for d in reversed(t.shape.tolist()))
        out[t.name] = (t.tensor_type.name, gguf.quants.dequantize(t.data, t.tensor_type).reshape(shape))
    return reader, out


def _qsnr(x, y):
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    return -10 * np.log10(np.sum((x - y) ** 2) / np.sum(x * x))


@pytest.mark.parametrize("scheme,big,fallback", [("q8_0", 1e7, "BF16"), ("f16", 1e5, "BF16"), ("q4_0", 1e6, "BF16"),
                                                 ("iq4_nl", 1e7, "BF16"), ("bf16", 3.3999e38, "F32"),
                                                 ("q8_0", 3.3999e38, "F32")])
def test_finite_weights_never_decode_to_inf_and_the_report_says_so(case, scheme, big, fallback):
    w = np.random.default_rng(3).standard_normal((64, 256)).astype(np.float32)
    w[5, 9] = big
    st_numpy.save_file({"a.weight": w, "b.weight": w[::-1].copy() / big}, str(case.dir / "big.safetensors"))
    case.expect(["quantize", "big.safetensors", "o.gguf", "--scheme", scheme, "--report", "r.json"], 0,
                inputs=["big.safetensors"], leaves=["o.gguf", "r.json"])
    rep = json.loads((case.dir / "r.json").read_text())
    _, ts = _gguf_read(case.dir / "o.gguf")
    for t in rep["tensors"]:
        typ, x_hat = ts[t["name"]]
        x = w if t["name"] == "a.weight" else w[::-1] / big
        assert np.isfinite(x_hat).all(), t["name"]
        # The report's number is the decoded file's (JSON null: lossless).
        with np.errstate(divide="ignore"):
            q = _qsnr(x, x_hat)
        if t["qsnr_db"] is None:
            assert q == np.inf, (t["name"], q)
        else:
            assert abs(q - t["qsnr_db"]) < 1e-6, (t["name"], t["qsnr_db"], q)
        assert typ == t["scheme"]
    a = rep["tensors"][0]
    assert a["scheme"] == fallback and "would decode some of its finite weights to inf" in a["fallback"]
    assert rep["tensors"][1]["scheme"] == scheme.upper() and "fallback" not in rep["tensors"][1]
    assert any(f"fell back from {scheme.upper()} to {fallback}" in n for n in rep["notes"]), rep["notes"]


def test_random_bf16_bits_never_decode_to_inf(case):
    rng = np.random.default_rng(4)
    bits = rng.integers(0, 1 << 16, size=(32, 256), dtype=np.uint32).astype(np.uint16)
    exp = (bits >> 7) & 0xFF
    bits[exp == 0xFF] &= 0x807F  # finite only: NaN and inf patterns made finite
    import ml_dtypes
    w = bits.view(ml_dtypes.bfloat16)
    st_numpy.save_file({"r.weight": w}, str(case.dir / "bf.safetensors"))
    for scheme in ("q8_0", "f16", "q4_k"):
        case.expect(["quantize", "bf.safetensors", f"{scheme}.gguf", "--scheme", scheme, "--report", f"{scheme}.json"],
                    0, inputs=["bf.safetensors"], leaves=[f"{scheme}.gguf"])
        _, ts = _gguf_read(case.dir / f"{scheme}.gguf")
        assert np.isfinite(ts["r.weight"][1]).all(), scheme


@pytest.mark.parametrize("scheme", ["int8/channel", "int4/g128/asym", "float8_e4m3fn/channel", "nvfp4", "mxfp4",
                                    "mxfp8_e4m3", "float8_e4m3fn/b128x128"])
def test_lowbits_own_schemes_saturate_so_finite_weights_stay_finite(case, scheme):
    # The compressed-tensors side of the rule: scales saturate (docs/recipes.md,
    # "Weights a type cannot hold"), so even 3e38 decodes finite; the
    # report's QSNR is the decoded file's, however poor.
    w = np.random.default_rng(9).standard_normal((64, 256)).astype(np.float32)
    w[5, 9] = 3e38
    st_numpy.save_file({"a.weight": w}, str(case.dir / "big.safetensors"))
    case.expect(["quantize", "big.safetensors", "o", "--scheme", scheme, "--report", "r.json", "--quiet"], 0,
                leaves=["o/model.safetensors"])
    t = json.loads((case.dir / "r.json").read_text())["tensors"][0]
    assert t["lost"] == 0 and t["qsnr_db"] is not None, t


@pytest.mark.parametrize("scheme", ["q8_0", "q4_0", "q4_k", "iq4_nl", "q5_k", "q6_k", "tq2_0", "f16"])
def test_nan_keep_to_gguf_decodes_the_nan_blocks_to_nan(case, scheme):
    w = np.random.default_rng(5).standard_normal((8, 256)).astype(np.float32)
    w[2, 40] = np.nan
    w[6, 255] = np.inf
    st_numpy.save_file({"a.weight": w}, str(case.dir / "n.safetensors"))
    case.expect(["quantize", "n.safetensors", "o.gguf", "--scheme", scheme, "--nan", "keep", "--report", "r.json"], 0,
                inputs=["n.safetensors"], leaves=["o.gguf"])
    _, ts = _gguf_read(case.dir / "o.gguf")
    x_hat = ts["a.weight"][1]
    block = 1 if scheme == "f16" else (256 if scheme[-1] == "k" or scheme.startswith("tq") else 32)
    bad = np.zeros_like(w, dtype=bool)
    for r, c in ((2, 40), (6, 255)):
        bad[r, c // block * block:(c // block + 1) * block] = True
    assert np.isnan(x_hat[bad]).all() if scheme != "f16" else (np.isnan(x_hat[2, 40]) and np.isinf(x_hat[6, 255]))
    assert np.isfinite(x_hat[~bad]).all()
    rep = json.loads((case.dir / "r.json").read_text())
    t = rep["tensors"][0]
    assert t["nonfinite"] == 2
    if scheme != "f16":
        # Finite weights in those blocks decode to NaN: the error is unbounded.
        assert t["lost"] == 2 * block - 2 and t["qsnr_db"] is None
        assert any("decode to NaN" in n for n in rep["notes"])


@pytest.mark.parametrize("scheme", ["mxfp4", "nvfp4"])
def test_nan_keep_is_refused_where_the_type_cannot_hold_nan(case, scheme):
    w = np.random.default_rng(6).standard_normal((8, 256)).astype(np.float32)
    w[2, 40] = np.nan
    st_numpy.save_file({"a.weight": w}, str(case.dir / "n.safetensors"))
    case.expect(["quantize", "n.safetensors", "o.gguf", "--scheme", scheme, "--nan", "keep"], 1,
                r"(?i)nan", inputs=["n.safetensors"])


def test_nan_in_a_kept_1d_tensor_is_caught(case):
    w = np.random.default_rng(7).standard_normal((64, 256)).astype(np.float32)
    b = np.ones(64, np.float32)
    b[3] = np.nan
    st_numpy.save_file({"l.weight": w, "l.bias": b}, str(case.dir / "b.safetensors"))
    for out, scheme in (("o.gguf", "q8_0"), ("o", "int8/channel")):
        case.expect(["quantize", "b.safetensors", out, "--scheme", scheme], 1,
                    r"tensor 'l.bias' holds 1 NaN .*kept, not quantized", inputs=["b.safetensors"])
        case.expect(["quantize", "b.safetensors", out, "--scheme", scheme, "--nan", "zero", "--report", "r.json"], 0,
                    leaves=[out])
        rep = json.loads((case.dir / "r.json").read_text())
        assert [t["nonfinite"] for t in rep["tensors"] if t["name"] == "l.bias"] == [1]
    _, ts = _gguf_read(case.dir / "o.gguf")
    assert ts["l.bias"][1][3] == 0 and ts["l.bias"][1][2] == 1


@need_minilm
def test_file_type_is_the_requested_type_and_fallbacks_are_summarised(case):
    case.expect(["quantize", "minilm", "q.gguf", "--scheme", "q4_k", "--report", "r.json", "--quiet"], 0,
                leaves=["q.gguf"])
    reader, ts = _gguf_read(case.dir / "q.gguf")
    assert int(reader.fields["general.file_type"].parts[-1][0]) == 15  # MOSTLY_Q4_K_M
    name = bytes(reader.fields["general.name"].parts[-1]).decode()
    assert name == "all-MiniLM-L6-v2"
    rep = json.loads((case.dir / "r.json").read_text())
    fell = [t for t in rep["tensors"] if t["quantized"] and t["scheme"] != "Q4_K"]
    assert fell and all("not whole Q4_K blocks" in t["fallback"] for t in fell)
    assert any(re.match(rf"{len(fell)} tensors fell back from Q4_K to Q5_0: rows of \d+ are not whole Q4_K", n)
               for n in rep["notes"]) or sum(int(n.split()[0]) for n in rep["notes"] if "fell back" in n) == len(fell)
    # From a path, the name is the model folder's, never a path.
    shutil.copytree(MINILM_DIR, case.dir / "my-model")
    case.expect(["quantize", "my-model", "p.gguf", "--scheme", "q8_0", "--quiet"], 0, leaves=["p.gguf"])
    reader, _ = _gguf_read(case.dir / "p.gguf")
    assert bytes(reader.fields["general.name"].parts[-1]).decode() == "my-model"


@need_minilm
def test_a_recipe_that_splits_a_fused_layer_is_refused_for_vllm(case):
    (case.dir / "split.json").write_text(json.dumps({"default_scheme": "int8/channel", "rules": [
        {"match": r"attention\.self\.key\.weight$", "scheme": "int4/g128/asym"}]}))
    case.expect(["quantize", "minilm", "o", "--recipe", "split.json"], 2, "as one layer", inputs=["split.json"])
    (case.dir / "keepq.json").write_text(json.dumps({"default_scheme": "int8/channel", "rules": [
        {"match": r"attention\.self\.query\.weight$", "keep": True}]}))
    case.expect(["quantize", "minilm", "o", "--recipe", "keepq.json"], 2, "as one layer")
    # GGUF: llama.cpp loads each projection by itself; no such rule.
    (case.dir / "keepq8.json").write_text(json.dumps({"default_scheme": "q8_0", "rules": [
        {"match": r"attention\.self\.query\.weight$", "keep": True}]}))
    case.expect(["quantize", "minilm", "o.gguf", "--recipe", "keepq8.json", "--quiet"], 0, leaves=["o.gguf"])


# ------------------------------------------------------------------ 3. consistent validation

THREADED = [
    ["quantize", "m.safetensors", "o", "--scheme", "int8/channel", "--quiet"],
    ["fakequant", "--format", "e4m3", "x.npy", "y.npy"],
    ["encode", "--format", "e4m3", "x.npy", "y.bin"],
    ["qtensor", "--scheme", "int8/channel", "x.npy", "y.st"],
    ["ggml", "quantize", "--type", "q8_0", "x.npy", "y.q8"],
    ["study", "qsnr", "--dist", "normal", "--n", "4096", "--schemes", "mxfp4"],
    ["bench", "--filter", "float8_e4m3fn rne fakequant", "--reps", "1", "--elements", "65536"],
]


@pytest.mark.parametrize("args", THREADED, ids=lambda a: " ".join(a[:2]))
def test_threads_are_checked_the_same_way_everywhere(case, args):
    for bad in ("0", "-1", "abc", "1.5", ""):
        case.expect([*args, "--threads", bad], 2, "threads", inputs=["x.npy", "m.safetensors"])
    case.expect(args, 2, "LOWBIT_NUM_THREADS", env={"LOWBIT_NUM_THREADS": "zero"})
    # Above the cores: capped, with a note, and the count run with is the one reported.
    r = case.run(*args, "--threads", "100000")
    assert r.returncode == 0, r.stderr
    cores = len(os.sched_getaffinity(0))
    assert f"asks for 100000 threads, more than the {cores} cores available; using {cores}" in r.stderr, r.stderr


def test_the_thread_count_used_is_reported(case):
    cores = len(os.sched_getaffinity(0))
    case.expect(["quantize", "m.safetensors", "o", "--scheme", "int8/channel", "--threads", "100000", "--report",
                 "r.json", "--quiet"], 0, leaves=["r.json"])
    assert json.loads((case.dir / "r.json").read_text())["threads"] == cores
    r = case.run("qtensor", "--scheme", "int8/channel", "x.npy", "q.st", "--json", "--threads", "1")
    assert json.loads(r.stdout)["threads"] == 1
    r = case.run("fakequant", "--format", "e4m3", "--stats", "x.npy", "y.npy", "--threads", "1")
    assert "1 thread)" in r.stderr, r.stderr


@pytest.mark.parametrize("args", [["fakequant", "--format", "e4m3", "--round", "stochastic", "x.npy", "y.npy"],
                                  ["encode", "--format", "e4m3", "--round", "stochastic", "x.npy", "y.bin"],
                                  ["study", "qsnr", "--dist", "normal", "--n", "4096", "--schemes", "mxfp4"]],
                         ids=lambda a: a[0])
def test_seeds_outside_the_64_bit_range_are_refused_everywhere(case, args):
    for bad in ("-1", "18446744073709551616", "1e3", "abc", "0x10"):
        case.expect([*args, "--seed", bad], 2, "seed", inputs=["x.npy"])
    case.expect([*args, "--seed", "18446744073709551615"], 0, leaves=[])


def test_conflicting_scheme_parts_are_errors(case):
    for spec, msg in (("int4/g32/scale=mse/scale=absmax", "'scale' is given twice"),
                      ("int4/g32/asym/asym=float", "'asym' is given twice"),
                      ("e4m3/g32/round=rne/round=odd", "'round' is given twice"),
                      ("fp:e9m2/g32", "bad element format: "),
                      ("int:0/g32", "bad element format: ")):
        case.expect(["qtensor", "--scheme", spec, "x.npy", "q.st"], 2, re.escape(msg), inputs=["x.npy"])


def test_every_recipe_rule_is_checked_before_any_work(case):
    (case.dir / "r.json").write_text(json.dumps({"default_scheme": "int8/channel", "rules": [
        {"match": "no-tensor-is-called-this", "scheme": "int4/g33/nonsense"}]}))
    case.expect(["quantize", "m.safetensors", "o", "--recipe", "r.json"], 2, "nonsense", inputs=["r.json"])
    (case.dir / "r2.json").write_text(json.dumps({"default_scheme": "q8_0", "rules": [
        {"match": "no-tensor-is-called-this", "scheme": "int4/g128/asym"}]}))
    case.expect(["quantize", "m.safetensors", "o.gguf", "--recipe", "r2.json"], 2, "GGUF output stores ggml types")


def test_readable_messages_not_exception_text(case):
    case.expect(["quantize", "m.safetensors", "", "--scheme", "q8_0"], 2, "OUT is an empty path")
    case.expect(["quantize", "", "o", "--scheme", "q8_0"], 2, "IN is an empty path")
    case.expect(["quantize", "m.safetensors", "o", "--scheme", ""], 2, "--scheme is empty")
    r = case.run("study", "qsnr", "--dist", "normal", "--n", "18446744073709551615", "--schemes", "mxfp4")
    assert r.returncode in (1, 2) and r.stderr.startswith("lowbit: error: "), r.stderr
    assert "std::" not in r.stderr and "what()" not in r.stderr and "bad_alloc" not in r.stderr, r.stderr


def test_input_problems_exit_1_usage_problems_exit_2(case):
    (case.dir / "bad.npy").write_bytes(b"\x93NUMPY\x01\x00" + b"\x00" * 10)
    np.save(case.dir / "c.npy", np.zeros(4, np.complex64))
    np.save(case.dir / "odd.npy", np.ones((4, 33), np.float32))
    (case.dir / "t.safetensors").write_bytes((case.dir / "m.safetensors").read_bytes()[:200])
    for args in (["fakequant", "--format", "e4m3", "bad.npy", "y.npy"],
                 ["fakequant", "--format", "e4m3", "c.npy", "y.npy"],
                 ["qtensor", "--scheme", "q8_0", "odd.npy", "y.st"],
                 ["qtensor", "--scheme", "int8/channel:1", "w.npy", "y.st"],
                 ["quantize", "t.safetensors", "o", "--scheme", "int8/channel"],
                 ["quantize", "missing.safetensors", "o", "--scheme", "int8/channel"],
                 ["ggml", "dequantize", "--type", "q8_0", "--shape", "2,32", "x.npy", "y.npy"]):
        case.expect(args, 1, None, inputs=["x.npy"])
    for args in (["fakequant", "--format", "nosuch", "x.npy", "y.npy"],
                 ["quantize", "m.safetensors", "o", "--scheme", "int8/channel", "--method", "gptq"],
                 ["quantize", "m.safetensors", "o", "--scheme", "int8/channel", "--nan", "sometimes"],
                 ["quantize", "m.safetensors", "o", "--scheme", "int8/channel", "--to", "onnx"]):
        case.expect(args, 2, None, inputs=["x.npy"])


@need_minilm
def test_the_docs_example_recipe_works_as_printed(case):
    text = (REPO / "docs" / "recipes.md").read_text()
    recipe = re.search(r"```json\n(.*?)```", text, re.S).group(1)
    (case.dir / "recipe.json").write_text(recipe)
    case.expect(["quantize", "minilm", "out", "--recipe", "recipe.json", "--report", "r.json", "--quiet"], 0,
                leaves=["out/model.safetensors"])
    rep = json.loads((case.dir / "r.json").read_text())
    assert any(t["reason"].startswith("rule") for t in rep["tensors"])


# ------------------------------------------------------------------ 4. papercuts

@need_minilm
def test_quiet_prints_the_totals_only_and_the_table_is_aligned(case):
    r = case.expect(["quantize", "minilm", "q", "--scheme", "int4/g128/asym", "--quiet"], 0, leaves=["q"])
    assert r.stderr == ""
    lines = r.stdout.strip().splitlines()
    assert lines[0].endswith("(compressed-tensors)") and len(lines) < 10, r.stdout
    assert not any(".weight" in ln.split()[0] for ln in lines[1:]), r.stdout
    r = case.expect(["quantize", "minilm", "t", "--scheme", "nvfp4"], 0, leaves=["t"])
    table = r.stdout.split("\n\n")[0].splitlines()  # the table ends at the first blank line
    header = table[0]
    assert header.startswith("tensor") and len(table) == 105, table[:2]
    # The bits column ends at the same place in every row, whatever the
    # length of the "stored as" entry before it.
    end = header.index("bits") + len("bits")
    for ln in table[1:]:
        fields = ln[:end + 1]
        assert re.search(r"\d\.\d{3}$", fields[:end]), (header, ln)


def test_an_all_zero_tensor_is_flagged_not_shown_as_minus_zero(case):
    w = np.full((8, 256), 1e-30, np.float32)
    st_numpy.save_file({"z.weight": w}, str(case.dir / "z.safetensors"))
    r = case.expect(["quantize", "z.safetensors", "z.gguf", "--scheme", "q4_0"], 0, leaves=["z.gguf"])
    assert "-0.00" not in r.stdout, r.stdout
    assert "decodes to all zeros" in r.stdout, r.stdout


def test_output_names_that_say_the_other_container_are_refused(case):
    case.expect(["quantize", "m.safetensors", "out.gguf", "--scheme", "int8/channel", "--to", "safetensors"], 2,
                "ends in .gguf")
    case.expect(["quantize", "m.safetensors", "out.safetensors", "--scheme", "q8_0", "--to", "gguf"], 2,
                "ends in .safetensors")
    # Upper case extensions are the same names.
    case.expect(["quantize", "m.safetensors", "OUT.GGUF", "--scheme", "q8_0", "--quiet"], 0, leaves=["OUT.GGUF"])
    assert (case.dir / "OUT.GGUF").read_bytes()[:4] == b"GGUF"


def test_upper_case_npy_is_read_as_npy(case):
    shutil.copy(case.dir / "x.npy", case.dir / "X.NPY")
    case.expect(["fakequant", "--format", "e4m3", "X.NPY", "Y.NPY"], 0, inputs=["X.NPY"], leaves=["Y.NPY"])
    y = np.load(case.dir / "Y.NPY")
    assert y.shape == (64, 256)


def test_help_and_readme_name_every_option(case):
    r = case.run("ggml", "quantize", "--help")
    for t in ("NVFP4", "Q1_0", "Q4_K", "MXFP4", "TQ2_0"):
        assert t in r.stdout, r.stdout
    readme = (REPO / "README.md").read_text()
    assert re.search(r"lowbit bench .*--filter", readme)
    assert re.search(r"lowbit fakequant .*--stats", readme)
    assert re.search(r"lowbit quantize .*--overwrite", readme)


def test_fakequant_stats_for_float64(case):
    np.save(case.dir / "d.npy", np.random.default_rng(8).standard_normal(1000))
    r = case.expect(["fakequant", "--format", "e4m3", "--stats", "d.npy", "e.npy"], 0, leaves=["e.npy"])
    m = re.search(r"QSNR (-?\d+\.\d+) dB", r.stderr)
    assert m, r.stderr
    x = np.load(case.dir / "d.npy")
    y = np.load(case.dir / "e.npy")
    assert abs(float(m.group(1)) - _qsnr(x, y)) < 0.01
