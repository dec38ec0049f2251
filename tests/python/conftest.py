"""Shared fixtures for the Python-side checks of the `lowbit` CLI.

The CLI is found through the LOWBIT_CLI environment variable, defaulting to
<repo>/build/lowbit. The checks compare against numpy and ml_dtypes; without
them the test modules skip themselves (pytest.importorskip) with a reason
that says what to install, and the report header says so too.
"""
import importlib.util
import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]

DEPS_REASON = "numpy and ml_dtypes are needed for the ml_dtypes conformance checks (pip install numpy ml_dtypes)"


def _missing_deps():
    missing = []
    for name in ("numpy", "ml_dtypes"):
        try:
            if importlib.util.find_spec(name) is None:
                missing.append(name)
        except (ImportError, ValueError):
            missing.append(name)
    return missing


def cli_path() -> pathlib.Path:
    return pathlib.Path(os.environ.get("LOWBIT_CLI", REPO / "build" / "lowbit"))


def pytest_report_header(config):
    missing = _missing_deps()
    lines = [f"lowbit CLI: {cli_path()}"]
    if missing:
        lines.append(f"lowbit: {', '.join(missing)} not importable; tests will be skipped. {DEPS_REASON}")
    return lines


class Lowbit:
    """Runs the CLI in a per-test directory; checks the exit status unless told not to."""

    def __init__(self, exe: pathlib.Path, workdir: pathlib.Path):
        self.exe = exe
        self.workdir = workdir

    def run(self, *args, check=True):
        r = subprocess.run([str(self.exe), *map(str, args)], cwd=self.workdir, capture_output=True, text=True,
                           timeout=120)
        if check and r.returncode != 0:
            pytest.fail(f"lowbit {' '.join(map(str, args))} exited {r.returncode}:\n{r.stderr}")
        return r


@pytest.fixture(scope="session")
def lowbit_exe():
    exe = cli_path()
    if not (exe.is_file() and os.access(exe, os.X_OK)):
        msg = f"lowbit CLI not found at {exe}; build it (ninja -C build) or set LOWBIT_CLI"
        if "LOWBIT_CLI" in os.environ:
            pytest.fail(msg)  # an explicit path that does not work is an error, not a skip
        pytest.skip(msg)
    return exe


@pytest.fixture
def lowbit(lowbit_exe, tmp_path):
    return Lowbit(lowbit_exe, tmp_path)
