"""docs/formats.md must describe the formats the program actually has."""
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_format_table_matches_the_program(lowbit_exe):
    expected = subprocess.check_output(
        [sys.executable, str(ROOT / "scripts" / "format_table.py"), str(lowbit_exe)], text=True
    ).strip()
    doc = (ROOT / "docs" / "formats.md").read_text()
    assert expected in doc, "docs/formats.md's format table is stale: regenerate it with scripts/format_table.py"
