"""lowbit's BERT GGUF against llama.cpp (issue 14 §2): `lowbit quantize minilm
x.gguf` writes llama.cpp's BERT layout, llama.cpp loads and runs it (through
lowbit-llama-embed, the small llama.h driver scripts/llama_cpp.sh builds),
and its sentence embeddings agree with `lowbit embed` to cosine >= 0.9999
on KJV verses; llama-tokenize on the file gives lowbit's token ids; a Q8_0
file still embeds close to lowbit's float32."""
import os
import pathlib
import subprocess

import pytest

from real_models import MINILM_DIR, need, need_minilm

np = pytest.importorskip("numpy")

REPO = pathlib.Path(__file__).resolve().parents[2]
LLAMA_BIN = pathlib.Path(os.environ.get("LOWBIT_LLAMA_CPP_BIN", REPO / "build-llama-cpp" / "build" / "bin"))
KJV = REPO / "build-corpora" / "kjv.txt"
N_VERSES = 200


def verses(tmp_path, n=N_VERSES):
    need(f"corpus {KJV} (python3 scripts/corpora.py)", KJV.is_file())
    lines = [l for l in KJV.read_text(encoding="utf-8").splitlines() if l.strip()][:n]
    path = tmp_path / "verses.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, lines


def llama_embed(gguf, lines_path, n, tmp_path):
    exe = LLAMA_BIN / "lowbit-llama-embed"
    need(f"{exe} (bash scripts/llama_cpp.sh)", exe.is_file())
    out = tmp_path / (gguf.stem + ".f32")
    # max_seq_length 256, as lowbit embed truncates (KJV verses are shorter).
    r = subprocess.run([str(exe), "-m", str(gguf), "-f", str(lines_path), "-o", str(out), "-t", "2", "-b", "32",
                        "--max-tokens", "256"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return np.fromfile(out, dtype=np.float32).reshape(n, -1)


def cosines(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@need_minilm
def test_llama_cpp_embeds_lowbits_f32_gguf_as_lowbit_does(lowbit, tmp_path):
    path, lines = verses(tmp_path)
    lowbit.run("quantize", "minilm", tmp_path / "minilm-f32.gguf", "--scheme", "f32")
    ours = tmp_path / "ours.npy"
    lowbit.run("embed", "minilm", "--file", path, "-o", ours, "--threads", "2", "--quiet")
    a = np.load(ours)
    b = llama_embed(tmp_path / "minilm-f32.gguf", path, len(lines), tmp_path)
    c = cosines(a, b)
    print(f"cosine lowbit vs llama.cpp (f32 GGUF), {len(lines)} verses: min {c.min():.7f} mean {c.mean():.7f}")
    assert c.min() >= 0.9999, (c.min(), int(c.argmin()))

    # lowbit itself still reads the file.
    r = lowbit.run("inspect", tmp_path / "minilm-f32.gguf")
    assert "bert" in r.stdout

    # A Q8_0 file loads and stays close to lowbit's float32 embeddings.
    lowbit.run("quantize", "minilm", tmp_path / "minilm-q8_0.gguf", "--scheme", "q8_0")
    q = llama_embed(tmp_path / "minilm-q8_0.gguf", path, len(lines), tmp_path)
    cq = cosines(a, q)
    print(f"cosine lowbit f32 vs llama.cpp (q8_0 GGUF): min {cq.min():.6f} mean {cq.mean():.6f}")
    assert cq.min() > 0.99


@need_minilm
def test_llama_tokenize_on_the_gguf_equals_lowbit_tokenize(lowbit, tmp_path):
    exe = LLAMA_BIN / "llama-tokenize"
    need(f"{exe} (bash scripts/llama_cpp.sh)", exe.is_file())
    _, lines = verses(tmp_path, 8)
    gguf = tmp_path / "minilm-f32.gguf"
    lowbit.run("quantize", "minilm", gguf, "--scheme", "f32")
    for text in lines + ["Héllo, WORLD!! naïve café", "unbelievably tokenization"]:
        r = subprocess.run([str(exe), "-m", str(gguf), "--ids", "--log-disable", "-p", text], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        theirs = [int(x) for x in r.stdout.strip().strip("[]").split(",") if x.strip()]
        mine = [int(x) for x in lowbit.run("tokenize", "minilm", text).stdout.split()]
        assert theirs == mine, text
