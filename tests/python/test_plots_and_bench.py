"""The QSNR study's chart as a reader sees it, and the error paths of
`lowbit bench --filter` and `lowbit study qsnr` (issue 13, "Papercuts").

The chart checks render every point label alone with librsvg (rsvg-convert,
Debian package librsvg2-bin) and measure where its glyphs really land, so the
layout is judged by the real renderer and font rather than by lowbit's own
text-width estimate (lowbit/eval/svg_plot_test.cc checks the estimate's side).
Without rsvg-convert those checks skip and say how to install it.
"""
import json
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib

import pytest

NS = "{http://www.w3.org/2000/svg}"
ET.register_namespace("", NS[1:-1])
README_SCHEMES = "mxfp4,nvfp4,mxint4,int4/g128/asym,mxfp8_e4m3,mxint8,q4_0,int4/g32/scale=mse"
# Fourteen schemes, twelve of them within half a bit and 4 dB of each other
# (two pairs on the very same spot: int4/g128/asym is w4g128).
CROWDED_SCHEMES = ("mxfp4,nvfp4,mxint4,nvint4,int4/g32,int4/g64,int4/g128/asym,int4/g32/asym,q4_0,w4g128,"
                   "int4/g32/scale=mse,nvfp4/b16x16,e2m1/g16/sf=ue4m3/scale=mse,mxint8")


def run(lowbit, *args):
    return lowbit.run(*args, check=False)


def assert_error(r, code, words):
    """A clean failure: the exit status, one 'lowbit: error:' message naming
    `words`, no C++ exception text, nothing on stdout."""
    assert r.returncode == code, f"exit {r.returncode}, wanted {code}:\n{r.stderr}"
    assert r.stderr.startswith("lowbit: error: "), r.stderr
    for w in words:
        assert w in r.stderr, f"{w!r} not in {r.stderr!r}"
    for raw in ("std::", "vector", "max_size", "bad_alloc", "terminate"):
        assert raw not in r.stderr, r.stderr
    assert r.stdout == ""


# ---------------------------------------------------------------------------
# Rendering with librsvg


def need_rsvg():
    if shutil.which("rsvg-convert") is None:
        pytest.skip("rsvg-convert not found: apt-get install librsvg2-bin (scripts/setup.sh installs it)")
    return pytest.importorskip("numpy", reason="numpy decodes the rendered PNGs (pip install numpy)")


def png_alpha(data, np):
    """The alpha channel of the 8-bit RGBA PNG that rsvg-convert writes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", data[pos + 8:pos + 8 + n])
        elif kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    assert (depth, ctype, interlace) == (8, 6, 0)
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 4 * w)
    out = np.zeros((h, 4 * w), np.int64)
    prev = np.zeros(4 * w, np.int64)
    for y in range(h):
        f, line = raw[y, 0], raw[y, 1:].astype(np.int64)
        if f == 0:
            cur = line
        elif f == 1:  # Sub: a running sum per channel
            cur = np.cumsum(line.reshape(w, 4), axis=0).reshape(-1) & 255
        elif f == 2:  # Up
            cur = (line + prev) & 255
        else:  # Average, Paeth: byte by byte
            cur = np.zeros(4 * w, np.int64)
            for i in range(4 * w):
                a = int(cur[i - 4]) if i >= 4 else 0
                b = int(prev[i])
                if f == 3:
                    p = (a + b) >> 1
                else:
                    c = int(prev[i - 4]) if i >= 4 else 0
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[i] = (int(line[i]) + p) & 255
        out[y] = cur
        prev = cur
    return out.reshape(h, w, 4)[:, :, 3]


def ink_box(root, elements, region, np):
    """Render `elements` (black, nothing else) and return the box their
    pixels cover in the chart's coordinates, or None. `region` is the part
    of the chart to render: (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = (int(v) for v in region)
    doc = ET.Element("svg", {"xmlns": "http://www.w3.org/2000/svg", "width": str(x1 - x0), "height": str(y1 - y0),
                             "viewBox": f"{x0} {y0} {x1 - x0} {y1 - y0}",
                             "font-family": root.get("font-family"), "font-size": root.get("font-size")})
    for e in elements:
        e = ET.fromstring(ET.tostring(e))
        for n in [e, *e.iter()]:
            n.tag = n.tag.replace(NS, "")
            for k in ("fill", "stroke"):
                if n.get(k) not in (None, "none"):
                    n.set(k, "black")
        doc.append(e)
    png = subprocess.run(["rsvg-convert"], input=ET.tostring(doc), capture_output=True, check=True).stdout
    ys, xs = np.nonzero(png_alpha(png, np) > 0)
    if xs.size == 0:
        return None
    return (x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1)


def overlaps(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def dist_to_box(x, y, b):
    dx = max(b[0] - x, 0, x - b[2])
    dy = max(b[1] - y, 0, y - b[3])
    return (dx * dx + dy * dy) ** 0.5


def check_chart(svg_path, np):
    """Everything the reader must be able to read: point labels inside the
    frame, clear of each other, of every marker and of other labels' leader
    lines; the legend beside the frame; all text on the canvas. Returns the
    number of point labels."""
    root = ET.parse(svg_path).getroot()
    width, height = float(root.get("width")), float(root.get("height"))
    frame_el = [r for r in root.iter(NS + "rect") if r.get("class") == "frame"]
    assert len(frame_el) == 1
    f = frame_el[0]
    frame = (float(f.get("x")), float(f.get("y")), float(f.get("x")) + float(f.get("width")),
             float(f.get("y")) + float(f.get("height")))
    markers = [(float(c.get("cx")), float(c.get("cy")), float(c.get("r"))) for c in root.iter(NS + "circle")]
    for cx, cy, r in markers:
        assert frame[0] < cx - r and cx + r < frame[2] and frame[1] < cy - r and cy + r < frame[3], \
            f"marker at ({cx}, {cy}) on or outside the frame {frame}"
    leaders = [e for e in root.iter(NS + "line") if e.get("class") == "leader"]
    labels = [e for e in root.iter(NS + "text") if e.get("class") == "label"]
    boxes = []
    for t in labels:
        x, y = float(t.get("x")), float(t.get("y"))
        b = ink_box(root, [t], (x - 30, y - 30, x + 16 * len(t.text) + 30, y + 20), np)
        assert b is not None, t.text
        boxes.append((t.text, b))
    for i, (name, b) in enumerate(boxes):
        # The frame's stroke is a pixel wide, centred on its edge.
        assert frame[0] + 1 <= b[0] and b[2] <= frame[2] - 1 and frame[1] + 1 <= b[1] and b[3] <= frame[3] - 1, \
            f"label {name!r} {b} not inside the frame {frame}"
        for other, ob in boxes[i + 1:]:
            assert not overlaps(b, ob), f"labels {name!r} {b} and {other!r} {ob} overlap"
        for cx, cy, r in markers:
            # Half a pixel for anti-aliasing: a pixel touched at its corner.
            assert dist_to_box(cx, cy, b) >= r - 0.5, f"label {name!r} {b} covers the marker at ({cx}, {cy})"
        inner = (b[0] + 0.5, b[1] + 0.5, b[2] - 0.5, b[3] - 0.5)
        for ln in leaders:
            x1, y1, x2, y2 = (float(ln.get(k)) for k in ("x1", "y1", "x2", "y2"))
            if ln.get("stroke") == labels[i].get("fill") and dist_to_box(x2, y2, b) < 2:
                continue  # its own leader, which ends at it
            for k in range(201):
                px, py = x1 + (x2 - x1) * k / 200, y1 + (y2 - y1) * k / 200
                assert not (inner[0] < px < inner[2] and inner[1] < py < inner[3]), \
                    f"a leader line runs through label {name!r}"
    legend = [g for g in root.iter(NS + "g") if g.get("class") == "legend"]
    assert len(legend) == 1
    lb = ink_box(root, [legend[0]], (-100, -100, width + 100, height + 100), np)
    if lb is not None:
        assert lb[0] >= frame[2] + 1, f"the legend {lb} reaches into the frame {frame}"
        assert lb[2] <= width and lb[3] <= height and lb[1] >= 0, \
            f"the legend {lb} runs off the {width}x{height} canvas"
    texts = [t for t in root.iter(NS + "text")]
    allb = ink_box(root, texts, (-200, -200, width + 200, height + 200), np)
    assert allb[0] >= 0 and allb[1] >= 0 and allb[2] <= width and allb[3] <= height, \
        f"text at {allb} runs off the {width}x{height} canvas"
    return len(labels)


def test_readme_plot_labels_are_clear(lowbit):
    np = need_rsvg()
    args = ["study", "qsnr", "--dist", "student-t:5", "--n", 4194304, "--seed", 1, "--schemes", README_SCHEMES]
    lowbit.run(*args, "--plot", "a.svg")
    lowbit.run(*args, "--plot", "b.svg", "--threads", 1)
    assert check_chart(lowbit.workdir / "a.svg", np) == 8
    # The layout is a function of the results alone.
    assert (lowbit.workdir / "a.svg").read_bytes() == (lowbit.workdir / "b.svg").read_bytes()


def test_chart_check_can_fail(lowbit):
    # The same chart with one label moved onto another, or across the
    # frame's edge: the check must refuse both.
    np = need_rsvg()
    ok, bad = lowbit.workdir / "ok.svg", lowbit.workdir / "bad.svg"
    lowbit.run("study", "qsnr", "--dist", "student-t:5", "--n", 65536, "--seed", 1, "--schemes", README_SCHEMES,
               "--plot", ok)
    assert check_chart(ok, np) == 8
    root = ET.parse(ok).getroot()
    labels = [e for e in root.iter(NS + "text") if e.get("class") == "label"]
    frame_x = float([r for r in root.iter(NS + "rect") if r.get("class") == "frame"][0].get("x"))
    for name, x, y, why in [(labels[1].text, float(labels[0].get("x")) + 3, labels[0].get("y"), "overlap"),
                            (labels[2].text, frame_x - 3, labels[2].get("y"), "not inside the frame")]:
        tree = ET.parse(ok)
        for e in tree.getroot().iter(NS + "text"):
            if e.get("class") == "label" and e.text == name:
                e.set("x", str(x))
                e.set("y", y)
        tree.write(bad)
        with pytest.raises(AssertionError, match=why):
            check_chart(bad, np)


def test_crowded_plot_labels_are_clear(lowbit):
    np = need_rsvg()
    lowbit.run("study", "qsnr", "--dist", "normal", "--n", 65536, "--seed", 3, "--schemes", CROWDED_SCHEMES,
               "--plot", "crowd.svg")
    assert check_chart(lowbit.workdir / "crowd.svg", np) == 14


def test_crest_plot_is_clear(lowbit):
    np = need_rsvg()
    lowbit.run("study", "qsnr", "--dist", "normal", "--n", 1048576, "--schemes", "mxfp8_e4m3,mxint8,mxfp4,mxint4",
               "--sweep-crest", "--plot", "crest.svg")
    assert check_chart(lowbit.workdir / "crest.svg", np) == 0  # lines and a legend, no point labels
    root = ET.parse(lowbit.workdir / "crest.svg").getroot()
    assert len([p for p in root.iter(NS + "path") if p.get("fill") == "none"]) == 4
    assert len(list(root.iter(NS + "circle"))) == 4 * 12


# ---------------------------------------------------------------------------
# bench --filter

BENCH = ["bench", "--elements", 40960, "--reps", 1]


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_bench_filter_matching_nothing_is_a_usage_error(lowbit, json_flag):
    r = run(lowbit, *BENCH, *json_flag, "--filter", "no-such-row")
    # The message lists what exists, of every kind of row.
    assert_error(r, 2, ["--filter 'no-such-row' matches no benchmark row", "float8_e4m3fn rne fakequant absmax",
                        "mxfp4 qdq", "q4_0 rtn quantize gguf", "int4/g128/asym hqq quantize safetensors"])


def test_bench_filter_prints_only_tables_with_rows(lowbit):
    r = lowbit.run(*BENCH, "--filter", "qdq")
    lines = r.stdout.splitlines()
    assert any(ln.startswith("scheme ") for ln in lines)  # the qdq table's header
    assert not any(ln.startswith("format ") for ln in lines)  # no kernel table
    assert not any(ln.startswith("scheme (lowbit quantize)") for ln in lines)  # no quantize table
    rows = [ln for ln in lines if " qdq " in ln]
    assert len(rows) >= 12
    r = lowbit.run(*BENCH, "--filter", "q4_k mse quantize")
    lines = r.stdout.splitlines()
    assert [ln.startswith("scheme (lowbit quantize)") for ln in lines].count(True) == 1
    assert not any(ln.startswith(("format ", "scheme  ")) for ln in lines)
    assert any(ln.startswith("q4_k ") and " mse " in ln for ln in lines)


def test_bench_filter_json(lowbit):
    d = json.loads(lowbit.run(*BENCH, "--json", "--filter", "float8_e4m3fn rne fakequant").stdout)
    assert d["records"] and all(r["op"] == "fakequant" and r["format"] == "float8_e4m3fn" for r in d["records"])


def test_bench_filter_for_rows_the_shape_rules_out(lowbit):
    # Quantize rows time matrices of rows of 4096: an --elements that is no
    # multiple of it has none, and a filter that selects only them says so.
    r = run(lowbit, "bench", "--elements", 40961, "--reps", 1, "--filter", "quantize gguf")
    assert_error(r, 2, ["matches no benchmark row", "multiple of 4096"])


@pytest.mark.parametrize("value, code, words", [
    ("-1", 2, ["--elements", "'-1'"]),
    ("18446744073709551616", 2, ["--elements", "18446744073709551616"]),
    ("18446744073709551615", 2, ["--elements 18446744073709551615", "more than any machine can hold"]),
])
def test_bench_absurd_elements(lowbit, value, code, words):
    assert_error(run(lowbit, "bench", "--elements", value, "--reps", 1, "--filter", "qdq"), code, words)


# ---------------------------------------------------------------------------
# study qsnr on tiny inputs, and absurd sizes

STUDY = ["study", "qsnr", "--schemes", "mxfp4,mxint4"]


def test_crest_sweep_on_two_blocks(lowbit):
    # 64 elements are two blocks of 32: two bins of one block each, and a
    # note saying why there are not twelve.
    r = lowbit.run(*STUDY, "--dist", "normal", "--n", 64, "--sweep-crest", "--plot", "tiny.svg")
    assert "QSNR dB by block crest factor (2 bins, not 12: only 2 blocks):" in r.stdout
    table = r.stdout.split("by block crest factor")[1].splitlines()[2:4]
    assert len(table) == 2 and all(row.split()[1] == "1" for row in table), r.stdout
    d = json.loads(lowbit.run(*STUDY, "--dist", "normal", "--n", 64, "--sweep-crest", "--json").stdout)
    assert [b["blocks"] for b in d["crest_bins"]] == [1, 1]
    root = ET.parse(lowbit.workdir / "tiny.svg").getroot()
    assert len(list(root.iter(NS + "circle"))) == 2 * 2


def test_crest_sweep_with_equal_crest_factors(lowbit):
    # Blocks of one element all have crest factor 1: one bin, not twelve
    # empty ones reported as inf.
    r = lowbit.run(*STUDY, "--dist", "normal", "--n", 96, "--crest-block", 1, "--sweep-crest")
    assert "(1 bin, not 12: blocks with equal crest factors share a bin)" in r.stdout
    assert "inf" not in r.stdout


def test_crest_sweep_too_small(lowbit, tmp_path):
    np = pytest.importorskip("numpy")
    assert_error(run(lowbit, *STUDY, "--dist", "normal", "--n", 63, "--sweep-crest", "--plot", "p.svg"), 2,
                 ["--n 63", "--sweep-crest", "at least 2 blocks", "--crest-block 32", "64 elements"])
    assert_error(run(lowbit, *STUDY, "--dist", "normal", "--n", 1024, "--crest-block", 2 ** 64 - 1, "--sweep-crest"),
                 2, ["at least 2 blocks", "--crest-block 18446744073709551615"])
    np.save(tmp_path / "five.npy", np.arange(1, 6, dtype=np.float32))
    r = run(lowbit, *STUDY, "--dist", tmp_path / "five.npy", "--sweep-crest", "--json", "--plot", "p.svg")
    assert_error(r, 1, ["five.npy has 5 elements", "at least 2 blocks", "64 elements"])
    # Enough elements, but all-zero blocks have no crest factor.
    np.save(tmp_path / "zeros.npy", np.zeros(128, np.float32))
    r = run(lowbit, *STUDY, "--dist", tmp_path / "zeros.npy", "--sweep-crest", "--plot", "p.svg")
    assert_error(r, 1, ["crest sweep needs at least 2 blocks", "not all zero", "only 0 of the data's 4 blocks"])
    assert not (lowbit.workdir / "p.svg").exists()


def test_study_smaller_than_one_block(lowbit):
    r = lowbit.run(*STUDY, "--dist", "normal", "--n", 16)
    assert "block crest factor n/a" in r.stdout
    d = json.loads(lowbit.run(*STUDY, "--dist", "normal", "--n", 16, "--json").stdout)
    assert d["crest"]["blocks"] == 0 and d["crest"]["mean"] is None
    assert len(d["records"]) == 2


@pytest.mark.parametrize("args, code, words", [
    (["--n", "18446744073709551615"], 2, ["--n 18446744073709551615", "more elements than any machine can hold"]),
    (["--n", "1099511627776"], 1, ["cannot allocate", "GiB", "--n 1099511627776"]),
    (["--n", "18446744073709551616"], 2, ["--n", "18446744073709551616"]),
    (["--n", "-1"], 2, ["--n", "'-1'"]),
    (["--n", "1024", "--cols", "-1"], 2, ["--cols", "'-1'"]),
    (["--n", "1024", "--cols", "0"], 2, ["--cols"]),
    (["--n", "1024", "--crest-block", "0"], 2, ["--crest-block"]),
    (["--n", "1024", "--crest-block", "-32"], 2, ["--crest-block", "'-32'"]),
    (["--n", "1024", "--seed", "-1"], 2, ["--seed", "'-1'"]),
    (["--n", "1024", "--threads", "-1"], 2, ["--threads"]),
])
def test_study_absurd_sizes(lowbit, args, code, words):
    r = run(lowbit, *STUDY, "--dist", "normal", *args, "--plot", "p.svg")
    assert_error(r, code, words)
    assert not (lowbit.workdir / "p.svg").exists()


def test_study_huge_crest_block_without_sweep(lowbit):
    # A block larger than the data is no error without the sweep: there is
    # just no crest factor to report.
    r = lowbit.run(*STUDY, "--dist", "normal", "--n", 1024, "--crest-block", 2 ** 64 - 1)
    assert "block crest factor n/a (no nonzero block of 18446744073709551615 elements)" in r.stdout
