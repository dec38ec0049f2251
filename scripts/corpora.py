#!/usr/bin/env python3
"""Writes lowbit's corpora, with their fixed splits, as plain UTF-8 text
files that `lowbit eval`, `lowbit calibrate` and the tests address by name
(docs/corpora.md lists every selection).

The sources are Debian packages that scripts/setup.sh installs: bible-kjv
(the `bible` program), sword-text-web + diatheke, linux-doc-6.1, fortunes
and jargon-text. Each corpus becomes <out>/<name>.txt (the splits
<name>.<split>.txt), the two Bibles also <name>.tsv (reference TAB verse,
aligned line by line), and manifest.json records the bytes and SHA-256 of
each file, so that a number measured on a corpus names exactly what it read.

Idempotent: files whose manifest entry matches are kept. Usage:
    python3 scripts/corpora.py [--out build-corpora]
"""
import argparse
import gzip
import hashlib
import json
import os
import pathlib
import re
import subprocess
import sys

LINUX_DOC = pathlib.Path("/usr/share/doc/linux-doc-6.1/html/_sources")
# linux-doc folders by split. Calibration and evaluation are disjoint;
# training takes every other English folder. translations/ (Chinese,
# Italian, Japanese, Korean, Spanish) is in no split.
LINUX_DOC_CALIB = ["admin-guide", "filesystems"]
LINUX_DOC_EVAL = ["process", "core-api", "RCU"]
LINUX_DOC_NONE = ["translations"]
FORTUNES = pathlib.Path("/usr/share/games/fortunes")
JARGON = pathlib.Path("/usr/share/doc/jargon-text/jargon.txt.gz")
VERSION = 1  # bump when a selection changes


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, timeout=600).stdout.decode("utf-8")


def book_key(name):
    """One spelling for a book in both Bibles: "II Samuel" and "2 Samuel"
    are 2samuel, "Revelation of John" is revelation."""
    name = re.sub(r"^(I{1,3}) ", lambda m: f"{len(m.group(1))} ", name)
    name = name.replace("Revelation of John", "Revelation")
    return name.lower().replace(" ", "")


def kjv_verses():
    """(book key, chapter, verse, reference, text) from `bible`, whose
    output is a "Book C" header, then "  N text" lines wrapped at 80
    columns."""
    out = []
    book, chapter = None, 0
    for line in run(["bible", "gen1:1-rev22:21"]).split("\n"):
        m = re.fullmatch(r"(\S.*) (\d+)", line)
        if m and not line.startswith(" "):
            book, chapter = m.group(1), int(m.group(2))
            continue
        m = re.match(r"\s+(\d+) (.*)", line)
        if m:
            out.append([book_key(book), chapter, int(m.group(1)), f"{book} {chapter}:{m.group(1)}", m.group(2)])
        elif line.strip() and out:
            out[-1][4] += " " + line.strip()
    return [(o, c, v, r, " ".join(t.split())) for o, c, v, r, t in out]


def web_verses():
    """The World English Bible (engWEB2015eb) through diatheke's OSIS
    output: markup removed, titles dropped, and a space put between two
    adjacent words where the module has none ("God</w><w>created")."""
    text = run(["diatheke", "-b", "engWEB2015eb", "-f", "OSIS", "-k", "Genesis 1:1-Revelation 22:21"])
    out = []
    for line in text.split("\n"):
        # diatheke repeats a psalm's title before each of its verses: the
        # reference may follow it on the line, and what precedes it is dropped.
        m = re.match(r"(?:.*?\s)??((?:(?:[1-3]|I{1,3}) )?[A-Z][a-z]+(?: of [A-Z][a-z]+| [A-Z][a-z]+)*) (\d+):(\d+): (.*)", line)
        if m:
            book = book_key(m.group(1))
            out.append([book, int(m.group(2)), int(m.group(3)), f"{m.group(1)} {m.group(2)}:{m.group(3)}", m.group(4)])
        elif line.strip() and out and line.strip() != "(engWEB2015eb)":
            out[-1][4] += " " + line
    result = []
    for o, c, v, r, t in out:
        # The module's glossary follows the last verse on its line.
        t = t.split("The following words used in the World English Bible")[0]
        t = re.sub(r"<title[^>]*>.*?</title>", " ", t)
        # Words the module runs together: "God</w><w>created", "Behold,<w>he".
        t = t.replace("</w><w", "</w> <w")
        t = re.sub(r"([,;:])(<w)", r"\1 \2", t)
        t = re.sub(r"<[^>]+>", "", t)
        result.append((o, c, v, r, " ".join(t.split())))
    return result


def rst_files(folders=None, exclude=()):
    files = []
    for p in sorted(LINUX_DOC.rglob("*.rst.txt")):
        top = p.relative_to(LINUX_DOC).parts[0]
        if (folders is None or top in folders) and top not in exclude:
            files.append(p)
    return files


def concat(files):
    return "".join(p.read_text(encoding="utf-8", errors="replace").rstrip("\n") + "\n\n" for p in files)


def build(out):
    corpora = {}
    kjv, web = kjv_verses(), web_verses()
    if len(kjv) != 31102:
        sys.exit(f"corpora: expected 31102 KJV verses, got {len(kjv)}")
    web_by_key = {(o, c, v): (r, t) for o, c, v, r, t in web}
    pairs = [(r, t, web_by_key[(o, c, v)]) for o, c, v, r, t in kjv if (o, c, v) in web_by_key and web_by_key[(o, c, v)][1]]
    corpora["kjv.txt"] = "".join(t + "\n" for *_, t in kjv)
    corpora["kjv.tsv"] = "".join(f"{r}\t{t}\n" for _, _, _, r, t in kjv)
    # The WEB's 66 books that the KJV has (engWEB2015eb also carries the
    # deuterocanon), in its own order.
    kjv_keys = {(o, c, v) for o, c, v, _, _ in kjv}
    corpora["web.txt"] = "".join(t + "\n" for o, c, v, _, t in web if t and (o, c, v) in kjv_keys)
    # The paraphrase pairs: KJV reference, KJV verse, WEB verse, for every
    # verse both translations have (the WEB merges or omits a few).
    corpora["kjv-web.tsv"] = "".join(f"{r}\t{t}\t{w[1]}\n" for r, t, w in pairs)
    corpora["linux-doc.calib.txt"] = concat(rst_files(LINUX_DOC_CALIB))
    corpora["linux-doc.eval.txt"] = concat(rst_files(LINUX_DOC_EVAL))
    corpora["linux-doc.train.txt"] = concat(rst_files(None, LINUX_DOC_CALIB + LINUX_DOC_EVAL + LINUX_DOC_NONE))
    fortunes = sorted(p for p in FORTUNES.iterdir() if p.is_file() and not p.is_symlink() and p.suffix not in (".dat", ".u8"))
    corpora["fortunes.txt"] = "".join(p.read_text(encoding="utf-8", errors="replace") for p in fortunes)
    with gzip.open(JARGON, "rt", encoding="utf-8", errors="replace") as f:
        corpora["jargon.txt"] = f.read()
    manifest = {"version": VERSION, "files": {}}
    for name, text in corpora.items():
        data = text.encode("utf-8")
        tmp = out / (name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, out / name)
        manifest["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifest["pairs"] = len(pairs)
    tmp = out / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, out / "manifest.json")
    return manifest


def current(out):
    try:
        m = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    if m.get("version") != VERSION:
        return False
    return all((out / n).is_file() and (out / n).stat().st_size == e["bytes"] for n, e in m["files"].items())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parents[1] / "build-corpora"))
    a = ap.parse_args()
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if current(out):
        print(f"corpora: present in {out}")
        return
    m = build(out)
    total = sum(e["bytes"] for e in m["files"].values())
    print(f"corpora: wrote {len(m['files'])} files ({total / 1e6:.1f} MB, {m['pairs']} KJV/WEB verse pairs) to {out}")


if __name__ == "__main__":
    main()
