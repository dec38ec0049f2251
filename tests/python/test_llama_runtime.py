"""lowbit's Llama runtime on SmolLM2-135M (GGUF Q4_1), judged by
llama.cpp (docs/runtime.md).

- perplexity: `lowbit eval ppl` against `llama-perplexity` on the same
  file and settings (Genesis 1-3 of the King James Bible, ctx 128, 4
  chunks): equal within 1%. They cannot agree bit for bit: llama.cpp
  multiplies Q4_1 weights with activations rounded to Q8_1 blocks and keeps
  the KV cache in float16, lowbit dequantizes the weights to float32 and
  keeps everything in float32;
- determinism: the scored logits at --threads 1 and --threads 2 are the
  same bytes;
- decoding: greedy `generate` through the KV cache picks, at each step, the
  argmax of a fresh batched prefill over the same tokens;
- the Hugging Face loader: SmolLM2 rewritten as a safetensors + config.json
  directory (by gguf-py and numpy) gives the GGUF's logits;
- bad input: a model that is not a Llama decoder, an empty text, a
  context beyond the model's, a text too short, invalid UTF-8 in a prompt.

Timing is reported by the commands but never asserted.
"""
import json
import os
import pathlib
import re
import shutil
import subprocess

import numpy as np
import pytest

from real_models import LOWBIT, lowbit, MINILM_DIR, SMOL_GGUF, need, need_minilm, need_smol

REPO = pathlib.Path(__file__).resolve().parents[2]
LLAMA_BIN = pathlib.Path(os.environ.get("LOWBIT_LLAMA_CPP_BIN", REPO / "build-llama-cpp" / "build" / "bin"))

# The evaluation text: Genesis 1-3 (KJV), about 2,900 tokens, of which the
# 4 chunks of 128 use the first 512.
KJV_RANGE = "gen1:1-3:24"
CTX, CHUNKS = 128, 4


@pytest.fixture(scope="module")
def genesis(tmp_path_factory):
    need("the bible program (apt-get install bible-kjv bible-kjv-text)", shutil.which("bible") is not None)
    text = subprocess.run(["bible", KJV_RANGE], capture_output=True, check=True).stdout
    path = tmp_path_factory.mktemp("llama") / "genesis.txt"
    path.write_bytes(text)
    return path


@need_smol
def test_perplexity_matches_llama_perplexity(genesis):
    tool = LLAMA_BIN / "llama-perplexity"
    need("llama-perplexity", tool.is_file())
    peer = subprocess.run([str(tool), "-m", SMOL_GGUF, "-f", genesis, "-c", str(CTX), "--chunks", str(CHUNKS),
                           "-t", "2"], capture_output=True, text=True)
    assert peer.returncode == 0, peer.stderr
    m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", peer.stdout + peer.stderr)
    assert m, peer.stderr[-2000:]
    peer_ppl, peer_err = float(m.group(1)), float(m.group(2))
    r = json.loads(lowbit("eval", "ppl", SMOL_GGUF, "--text", genesis, "--ctx", CTX, "--chunks", CHUNKS,
                          "--threads", 2, "--json").stdout)
    assert r["chunks"] == CHUNKS and r["scored_tokens"] == CHUNKS * (CTX - 1 - CTX // 2)
    assert r["add_bos"] is False  # SmolLM2: tokenizer.ggml.add_bos_token false
    print(f"\nperplexity: lowbit {r['ppl']:.4f} +/- {r['ppl_error']:.5f}, llama.cpp {peer_ppl:.4f} +/- {peer_err:.5f}")
    assert abs(r["ppl"] / peer_ppl - 1) < 0.01
    assert abs(r["ppl_error"] / peer_err - 1) < 0.05


@need_smol
def test_logits_bit_identical_across_thread_counts(genesis, tmp_path):
    outs = []
    for threads in (1, 2):
        path = tmp_path / f"logits{threads}.npy"
        lowbit("eval", "ppl", SMOL_GGUF, "--text", genesis, "--ctx", 64, "--chunks", 2, "--threads", threads,
               "--save-logits", path)
        outs.append(path.read_bytes())
    assert outs[0] == outs[1]
    logits = np.load(tmp_path / "logits1.npy")
    assert logits.shape == (2 * (64 - 1 - 32), 49152) and np.isfinite(logits).all()


@need_smol
def test_greedy_decoding_agrees_with_prefill():
    r = json.loads(lowbit("generate", SMOL_GGUF, "-p", "In the beginning God created", "-n", 16, "--threads", 2,
                          "--json").stdout)
    prompt, ids = r["prompt_ids"], r["ids"]
    assert len(ids) == 16 and r["text"]
    # The same sequence again, as one prefill of prompt + ids[:k]: its last
    # row's argmax must be ids[k], the token the cached decode chose.
    for k in (1, 8, 15):
        again = json.loads(lowbit("generate", SMOL_GGUF, "--ids", " ".join(map(str, prompt + ids[:k])), "-n", 1,
                                  "--json").stdout)
        assert again["ids"] == [ids[k]], (k, again)
    # The stream prints the same text.
    streamed = lowbit("generate", SMOL_GGUF, "-p", "In the beginning God created", "-n", 16).stdout.decode()
    assert streamed == r["text"] + "\n"


@need_smol
def test_sampling_is_a_function_of_the_seed():
    args = ["generate", SMOL_GGUF, "-p", "The", "-n", 8, "--temp", 0.8, "--top-k", 40, "--json"]
    a = json.loads(lowbit(*args, "--seed", 5, "--threads", 1).stdout)
    b = json.loads(lowbit(*args, "--seed", 5, "--threads", 2).stdout)
    assert a["ids"] == b["ids"]


@need_minilm
def test_refuses_a_model_that_is_not_llama(genesis):
    r = lowbit("eval", "ppl", MINILM_DIR, "--text", genesis, check=False)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "'bert'" in err and "lowbit runs llama" in err, err


@need_smol
def test_bad_input(genesis, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"\n")
    r = lowbit("eval", "ppl", SMOL_GGUF, "--text", empty, check=False)
    assert r.returncode == 1 and b"empty" in r.stderr
    r = lowbit("eval", "ppl", SMOL_GGUF, "--text", genesis, "--ctx", 16384, check=False)
    assert r.returncode == 1 and b"context length 8192" in r.stderr, r.stderr
    short = tmp_path / "short.txt"
    short.write_text("In the beginning God created the heaven and the earth.\n")
    r = lowbit("eval", "ppl", SMOL_GGUF, "--text", short, "--ctx", 64, check=False)
    assert r.returncode == 1 and b"you need at least 128 tokens" in r.stderr, r.stderr
    r = lowbit("eval", "ppl", SMOL_GGUF, check=False)
    assert r.returncode == 2
    r = subprocess.run([str(LOWBIT), "generate", str(SMOL_GGUF), "-p", b"caf\xe9"], capture_output=True)
    assert r.returncode == 1 and b"not valid UTF-8" in r.stderr, r.stderr


def smollm2_as_hugging_face(gguf_path, out_dir):
    """SmolLM2's GGUF rewritten as a Hugging Face Llama directory, by gguf-py
    and numpy alone: config.json from the GGUF metadata, every tensor
    dequantized to float32 (gguf-py's numpy port of ggml), renamed, and Q and
    K put back in Hugging Face's order. convert_hf_to_gguf permutes their rows
    so that each head's rotary pairs are adjacent (llama.cpp's "normal" RoPE);
    Hugging Face pairs dimension i with i + head_dim/2 (rotate_half), so this
    undoes that permutation: a loader that got either convention wrong gives
    other logits."""
    import gguf
    from gguf.quants import dequantize
    from safetensors.numpy import save_file

    r = gguf.GGUFReader(str(gguf_path))

    def meta(key):
        f = r.fields[key]
        v = f.parts[f.data[0]]
        return v.tolist()[0] if v.dtype != np.uint8 else bytes(v).decode()

    heads, kv_heads = meta("llama.attention.head_count"), meta("llama.attention.head_count_kv")
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": meta("llama.embedding_length"), "intermediate_size": meta("llama.feed_forward_length"),
        "num_hidden_layers": meta("llama.block_count"), "num_attention_heads": heads,
        "num_key_value_heads": kv_heads, "max_position_embeddings": meta("llama.context_length"),
        "rms_norm_eps": meta("llama.attention.layer_norm_rms_epsilon"), "rope_theta": meta("llama.rope.freq_base"),
        "vocab_size": len(r.fields["tokenizer.ggml.tokens"].data), "tie_word_embeddings": True,
    }
    roles = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
             "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
             "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
             "ffn_down": "mlp.down_proj"}

    def unpermute(w, n_head):
        return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

    tensors = {}
    for t in r.tensors:
        w = dequantize(t.data, t.tensor_type).astype(np.float32)
        w = w.reshape([int(n) for n in reversed(t.shape)]) if w.ndim > 1 or len(t.shape) > 1 else w.reshape(-1)
        name = t.name
        if name == "token_embd.weight":
            hf = "model.embed_tokens.weight"
        elif name == "output_norm.weight":
            hf = "model.norm.weight"
        else:
            _, layer, role, _ = name.split(".")
            hf = f"model.layers.{layer}.{roles[role]}.weight"
            if role == "attn_q":
                w = unpermute(w, heads)
            elif role == "attn_k":
                w = unpermute(w, kv_heads)
        tensors[hf] = np.ascontiguousarray(w)
    assert "output.weight" not in [t.name for t in r.tensors]  # tied, as config says
    out_dir.mkdir()
    save_file(tensors, str(out_dir / "model.safetensors"))
    (out_dir / "config.json").write_text(json.dumps(config, indent=1))
    return out_dir


@need_smol
def test_hugging_face_directory_of_the_real_model_gives_the_gguf_logits(genesis, tmp_path):
    # The same weights through lowbit's two loaders: GGUF (adjacent-pair
    # RoPE) and Hugging Face safetensors + config.json (rotate_half). Both
    # run the float32 prefill, so only the order of a few float sums differs
    # (RoPE's dimensions lie elsewhere in memory), and the KL divergence is
    # what the base's 16-bit log-probabilities leave (llama.cpp's base
    # format; a few 1e-6, of either sign). Skipping the un-permutation of Q
    # only (tried once) gives a mean KLD of 6.7 and no top token right.
    hf = smollm2_as_hugging_face(SMOL_GGUF, tmp_path / "smollm2-hf")
    r = json.loads(lowbit("eval", "kld", SMOL_GGUF, hf, "--text", genesis, "--ctx", CTX, "--chunks", 2,
                          "--threads", 2, "--json").stdout)["models"][0]
    print(f"\nGGUF vs HF directory: mean KLD {r['kld_mean']:.3g}, max {r['kld_max']:.3g}, "
          f"same top {r['same_top']:.4f}, ppl {r['ppl']:.6f} vs {r['ppl_base']:.6f}")
    assert r["tokens"] == 2 * (CTX - 1 - CTX // 2)
    assert abs(r["kld_mean"]) < 1e-5 and r["kld_max"] < 1e-4, r
    assert r["same_top"] == 1.0, r
    # The perplexities of both loaders, each from its float32 logits: the
    # report's ppl (the HF directory's) against `eval ppl` of the GGUF on
    # the same tokens. (The report's ppl_base comes from the base's 16-bit
    # log-probabilities, whose rounding alone moves the mean
    # log-probability by about 1e-5 on these 126 tokens: 1.2e-5 on an Intel
    # Xeon, less on a Zen 4; it gets a looser bound.)
    gguf_ppl = json.loads(lowbit("eval", "ppl", SMOL_GGUF, "--text", genesis, "--ctx", CTX, "--chunks", 2,
                                 "--threads", 2, "--json").stdout)["ppl"]
    print(f"eval ppl of the GGUF: {gguf_ppl:.6f}")
    assert abs(r["ppl"] / gguf_ppl - 1) < 1e-5, (r, gguf_ppl)
    assert abs(r["ppl"] / r["ppl_base"] - 1) < 5e-5, r
