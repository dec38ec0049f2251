"""`lowbit train`: its backward pass against an independent numpy implementation
(float64, written here from the equations), and the command's behaviour on
bad input.

`lowbit train --dump-gradients F` writes the initial parameters, the first
batch, its mean loss and the gradient of that loss; numpy recomputes all of
it from the parameters and the batch."""
import json
import pathlib

import pytest

np = pytest.importorskip("numpy")
safetensors_numpy = pytest.importorskip("safetensors.numpy")


def write_config(tmp_path, *, tied=True, kv_heads=2, layers=2, seq=16, batch=2, extra_train=None):
    text = tmp_path / "text.txt"
    # Varied bytes: every row of the embedding sees a few tokens.
    text.write_bytes(bytes((i * 37 + (i // 7) * 11) % 97 + 30 for i in range(6000)))
    cfg = {
        "model": {"dim": 32, "ffn_dim": 48, "layers": layers, "heads": 4, "kv_heads": kv_heads,
                  "context_length": seq, "tied_embeddings": tied},
        "data": {"files": [text.name], "tokenizer": "bytes", "holdout": 0.1},
        "train": {"batch": batch, "seq": seq, "steps": 3, "seed": 5, **(extra_train or {})},
    }
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg))
    return path, cfg


# ---------------------------------------------------------------- numpy model

def rms(x, w, eps):
    r = 1.0 / np.sqrt((x * x).mean(-1, keepdims=True) + eps)
    return x * r * w, r


def rms_back(x, w, r, dy):
    """y = x·r·w, r = (mean(x²) + eps)^(-1/2)."""
    dw = (dy * x * r).reshape(-1, x.shape[-1]).sum(0)
    dn = dy * w
    dx = r * dn - x * r ** 3 * (dn * x).mean(-1, keepdims=True)
    return dx, dw


def rope(x, heads, hd, theta, sign=1.0):
    """Adjacent pairs (x[2i], x[2i+1]) rotated by pos·theta^(-2i/hd); sign -1: the transpose."""
    B, T, _ = x.shape
    x = x.reshape(B, T, heads, hd)
    inv = theta ** (-2.0 * np.arange(hd // 2) / hd)
    ang = np.arange(T)[:, None] * inv[None, :]
    c = np.cos(ang)[None, :, None, :]
    s = sign * np.sin(ang)[None, :, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    y = np.empty_like(x)
    y[..., 0::2] = x0 * c - x1 * s
    y[..., 1::2] = x0 * s + x1 * c
    return y.reshape(B, T, heads * hd)


def forward_backward(p, inp, tgt, m):
    D, H, KV, L = m["dim"], m["heads"], m["kv_heads"], m["layers"]
    hd, eps, theta = D // H, 1e-5, 10000.0
    grp = H // KV
    B, T = inp.shape
    E = p["token_embd.weight"]
    Wout = E if m["tied_embeddings"] else p["output.weight"]
    x = E[inp]
    saved = []
    for l in range(L):
        P = lambda n: p[f"blk.{l}.{n}.weight"]
        s = {"x_in": x}
        s["xn1"], s["r1"] = rms(x, P("attn_norm"), eps)
        q = rope(s["xn1"] @ P("attn_q").T, H, hd, theta)
        k = rope(s["xn1"] @ P("attn_k").T, KV, hd, theta)
        v = s["xn1"] @ P("attn_v").T
        q4, k4, v4 = q.reshape(B, T, H, hd), k.reshape(B, T, KV, hd), v.reshape(B, T, KV, hd)
        mask = np.tril(np.ones((T, T), dtype=bool))
        probs = np.zeros((B, H, T, T))
        att = np.zeros((B, T, H, hd))
        for h in range(H):
            g = h // grp
            S = np.einsum("btd,bsd->bts", q4[:, :, h], k4[:, :, g]) / np.sqrt(hd)
            S = np.where(mask, S, -np.inf)
            S = np.exp(S - S.max(-1, keepdims=True))
            probs[:, h] = S / S.sum(-1, keepdims=True)
            att[:, :, h] = np.einsum("bts,bsd->btd", probs[:, h], v4[:, :, g])
        s.update(q=q4, k=k4, v=v4, probs=probs, att=att.reshape(B, T, D))
        x = x + s["att"] @ P("attn_output").T
        s["x_mid"] = x
        s["xn2"], s["r2"] = rms(x, P("ffn_norm"), eps)
        s["g"], s["u"] = s["xn2"] @ P("ffn_gate").T, s["xn2"] @ P("ffn_up").T
        sig = 1.0 / (1.0 + np.exp(-s["g"]))
        s["sig"] = sig
        s["h"] = s["g"] * sig * s["u"]
        x = x + s["h"] @ P("ffn_down").T
        saved.append(s)
    xf, rf = rms(x, p["output_norm.weight"], eps)
    z = xf @ Wout.T
    z = z - z.max(-1, keepdims=True)
    lse = np.log(np.exp(z).sum(-1))
    n = B * T
    loss = (lse - np.take_along_axis(z, tgt[..., None], -1)[..., 0]).mean()
    dz = np.exp(z - lse[..., None])
    np.put_along_axis(dz, tgt[..., None], np.take_along_axis(dz, tgt[..., None], -1) - 1.0, -1)
    dz /= n
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    gW = grads["token_embd.weight"] if m["tied_embeddings"] else grads["output.weight"]
    gW += dz.reshape(n, -1).T @ xf.reshape(n, -1)
    dx, grads["output_norm.weight"] = rms_back(x, p["output_norm.weight"], rf, dz @ Wout)
    for l in reversed(range(L)):
        P = lambda nm: p[f"blk.{l}.{nm}.weight"]
        G = lambda nm: f"blk.{l}.{nm}.weight"
        s = saved[l]
        grads[G("ffn_down")] = dx.reshape(n, -1).T @ s["h"].reshape(n, -1)
        dh = dx @ P("ffn_down")
        sig, g, u = s["sig"], s["g"], s["u"]
        du = dh * g * sig
        dg = dh * u * sig * (1 + g * (1 - sig))
        grads[G("ffn_gate")] = dg.reshape(n, -1).T @ s["xn2"].reshape(n, -1)
        grads[G("ffn_up")] = du.reshape(n, -1).T @ s["xn2"].reshape(n, -1)
        dxn2 = dg @ P("ffn_gate") + du @ P("ffn_up")
        d, grads[G("ffn_norm")] = rms_back(s["x_mid"], P("ffn_norm"), s["r2"], dxn2)
        dx = dx + d
        grads[G("attn_output")] = dx.reshape(n, -1).T @ s["att"].reshape(n, -1)
        datt = (dx @ P("attn_output")).reshape(B, T, H, hd)
        dq = np.zeros((B, T, H, hd))
        dk = np.zeros((B, T, KV, hd))
        dv = np.zeros((B, T, KV, hd))
        for h in range(H):
            gi = h // grp
            pr = s["probs"][:, h]
            dP = np.einsum("btd,bsd->bts", datt[:, :, h], s["v"][:, :, gi])
            dv[:, :, gi] += np.einsum("bts,btd->bsd", pr, datt[:, :, h])
            dS = pr * (dP - (pr * dP).sum(-1, keepdims=True)) / np.sqrt(hd)
            dq[:, :, h] = np.einsum("bts,bsd->btd", dS, s["k"][:, :, gi])
            dk[:, :, gi] += np.einsum("bts,btd->bsd", dS, s["q"][:, :, h])
        dq = rope(dq.reshape(B, T, -1), H, hd, theta, -1.0)
        dk = rope(dk.reshape(B, T, -1), KV, hd, theta, -1.0)
        dv = dv.reshape(B, T, -1)
        for name, dy in (("attn_q", dq), ("attn_k", dk), ("attn_v", dv)):
            grads[G(name)] = dy.reshape(n, -1).T @ s["xn1"].reshape(n, -1)
        dxn1 = dq @ P("attn_q") + dk @ P("attn_k") + dv @ P("attn_v")
        d, grads[G("attn_norm")] = rms_back(s["x_in"], P("attn_norm"), s["r1"], dxn1)
        dx = dx + d
    np.add.at(grads["token_embd.weight"], inp.reshape(-1), dx.reshape(n, -1))
    return loss, grads


@pytest.mark.parametrize("tied,kv_heads", [(True, 2), (False, 4), (True, 1)])
def test_gradients_match_numpy(lowbit, tmp_path, tied, kv_heads):
    cfg_path, cfg = write_config(tmp_path, tied=tied, kv_heads=kv_heads)
    lowbit.run("train", "--config", cfg_path, "--dump-gradients", "g.safetensors", "--threads", "2")
    t = safetensors_numpy.load_file(str(tmp_path / "g.safetensors"))
    params = {k: v.astype(np.float64) for k, v in t.items() if not k.startswith(("grad.", "batch."))}
    m = dict(cfg["model"])
    assert ("output.weight" in params) == (not tied)
    # The parameters are lowbit's initialization (GPT-2's N(0, 0.02)); the C++
    # test (trainable_llama_test) checks larger weights by finite differences.
    assert 0.015 < params["blk.0.attn_q.weight"].std() < 0.025
    loss, grads = forward_backward(params, t["batch.inputs"].astype(np.int64), t["batch.targets"].astype(np.int64), m)
    from safetensors import safe_open
    with safe_open(str(tmp_path / "g.safetensors"), "np") as f:
        lowbit_loss = float(f.metadata()["loss"])
    assert lowbit_loss == pytest.approx(loss, rel=1e-5)
    for name, want in grads.items():
        got = t["grad." + name].astype(np.float64)
        scale = np.abs(want).max()
        assert scale > 0, name
        err = np.abs(got - want).max() / scale
        assert err < 2e-3, f"{name}: max error {err:.2e} of the largest gradient {scale:.2e}"


def test_train_runs_resumes_and_refuses_to_overwrite(lowbit, tmp_path):
    cfg_path, _ = write_config(tmp_path, extra_train={"eval_every": 1, "checkpoint_every": 1, "eval_windows": 4})
    r = lowbit.run("train", "--config", cfg_path, "-o", "run", "--json", "--threads", "1")
    out = json.loads(r.stdout)
    assert out["steps"] == 3
    log = json.loads((tmp_path / "run" / "log.json").read_text())
    assert [row["step"] for row in log] == [1, 2, 3]
    assert all("heldout" in row for row in log)
    assert out["heldout_loss"] == log[-1]["heldout"]
    svg = (tmp_path / "run" / "loss.svg").read_text()
    assert svg.startswith("<svg") or "<svg" in svg[:200]
    # A second run into the same directory is refused and changes nothing.
    before = (tmp_path / "run" / "checkpoint.safetensors").read_bytes()
    r = lowbit.run("train", "--config", cfg_path, "-o", "run", check=False)
    assert r.returncode == 2 and "--resume" in r.stderr
    assert (tmp_path / "run" / "checkpoint.safetensors").read_bytes() == before
    # --resume of a finished run has nothing to do and keeps the losses.
    r = lowbit.run("train", "--config", cfg_path, "-o", "run", "--resume", "--json")
    assert json.loads(r.stdout)["heldout_loss"] == out["heldout_loss"]
    # Two threads give the same log, bit for bit.
    lowbit.run("train", "--config", cfg_path, "-o", "run2", "--threads", "2")
    log2 = json.loads((tmp_path / "run2" / "log.json").read_text())
    assert [(a["loss"], a["grad_norm"], a["heldout"]) for a in log] == \
        [(b["loss"], b["grad_norm"], b["heldout"]) for b in log2]


@pytest.mark.parametrize("change,needle", [
    ({"model": {"dim": 30}}, "not a multiple of heads"),
    ({"train": {"seq": 64}}, "longer than model.context_length"),
    ({"train": {"learning_rate": 1}}, "unknown key \"train.learning_rate\""),
    ({"data": {"files": ["missing.txt"]}}, "missing.txt"),
    ({"model": {"vocab_size": 100}}, "smaller than the tokenizer"),
])
def test_bad_configs_are_refused(lowbit, tmp_path, change, needle):
    cfg_path, cfg = write_config(tmp_path)
    for section, values in change.items():
        cfg[section].update(values)
    cfg_path.write_text(json.dumps(cfg))
    r = lowbit.run("train", "--config", cfg_path, "-o", "run", check=False)
    assert r.returncode != 0
    assert needle in r.stderr, r.stderr
    assert not (tmp_path / "run").exists()


def test_resume_refuses_a_changed_config_and_a_corrupt_checkpoint(lowbit, tmp_path):
    cfg_path, cfg = write_config(tmp_path)
    lowbit.run("train", "--config", cfg_path, "-o", "run")
    cfg["train"]["lr"] = 1e-4
    (tmp_path / "c2.json").write_text(json.dumps(cfg))
    r = lowbit.run("train", "--config", "c2.json", "-o", "run", "--resume", check=False)
    assert r.returncode == 1 and "train.lr" in r.stderr, r.stderr
    ck = tmp_path / "run" / "checkpoint.safetensors"
    data = bytearray(ck.read_bytes())
    ck.write_bytes(bytes(data[: len(data) // 2]))
    r = lowbit.run("train", "--config", cfg_path, "-o", "run", "--resume", check=False)
    assert r.returncode == 1 and "checkpoint.safetensors" in r.stderr, r.stderr


# ---------------------------------------------------------------- llama.cpp as the judge

CORPORA = pathlib.Path(__file__).resolve().parents[2] / "build-corpora"


def test_exported_model_tokenizes_and_scores_like_llama_cpp(lowbit, tmp_path):
    """A model trained a few steps on a slice of jargon with its own BPE of 600
    tokens: llama.cpp loads the GGUF, tokenizes a KJV slice to the same ids as
    lowbit, and llama-perplexity agrees with `lowbit eval ppl` within 1%."""
    import os
    import subprocess
    from real_models import llama_perplexity_final, need
    llama_bin = pathlib.Path(os.environ.get("LOWBIT_LLAMA_CPP_BIN",
                                            pathlib.Path(__file__).resolve().parents[2] / "build-llama-cpp" / "build" / "bin"))
    need("llama-tokenize and llama-perplexity", (llama_bin / "llama-perplexity").is_file())
    need("the corpora (build-corpora/)", (CORPORA / "jargon.txt").is_file() and (CORPORA / "kjv.txt").is_file())
    (tmp_path / "train.txt").write_bytes((CORPORA / "jargon.txt").read_bytes()[:300_000])
    cfg = {
        "model": {"dim": 64, "ffn_dim": 160, "layers": 2, "heads": 4, "kv_heads": 2, "context_length": 128},
        "data": {"files": ["train.txt"], "tokenizer": "bpe:600", "holdout": 0.05},
        "train": {"batch": 4, "seq": 128, "steps": 30, "warmup": 5, "lr": 5e-3, "eval_every": 30, "eval_windows": 8},
    }
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    r = lowbit.run("train", "--config", "c.json", "-o", "run", "--json")
    out = json.loads(r.stdout)
    assert out["vocab_size"] == 600
    assert out["heldout_loss"] < 6.0  # well below uniform (6.4) after 30 steps
    gguf_path = tmp_path / "run" / "model.gguf"
    text = tmp_path / "kjv.txt"
    text.write_bytes((CORPORA / "kjv.txt").read_bytes()[:20_000])
    peer = subprocess.run([str(llama_bin / "llama-tokenize"), "-m", str(gguf_path), "-f", str(text), "--ids",
                           "--log-disable"], capture_output=True, text=True)
    assert peer.returncode == 0, peer.stderr
    peer_ids = json.loads(peer.stdout.strip().splitlines()[-1])
    ours = [int(t) for t in lowbit.run("tokenize", gguf_path, "--file", text).stdout.replace(",", " ").split()]
    assert len(ours) > 4000 and ours == peer_ids
    peer_ppl = llama_perplexity_final(llama_bin / "llama-perplexity",
                                      ["-m", gguf_path, "-f", text, "-c", 128, "--chunks", 8, "-t", 2])
    ours = json.loads(lowbit.run("eval", "ppl", gguf_path, "--text", text, "--ctx", 128, "--chunks", 8,
                                 "--json").stdout)
    assert abs(ours["ppl"] / peer_ppl - 1) < 0.01, (ours["ppl"], peer_ppl)


def test_study_train_compares_recipes(lowbit, tmp_path):
    """`lowbit study train`: the same model and batches under each recipe;
    fp32 is the reference, a diverging recipe is reported, not fatal."""
    cfg_path, cfg = write_config(tmp_path, extra_train={"eval_every": 4, "eval_windows": 4})
    (tmp_path / "diverge.json").write_text(json.dumps({"linear": {"all": "float16"}, "loss_scale": 1e30}))
    r = lowbit.run("study", "train", "--config", cfg_path, "-o", "study", "--recipes",
                   "fp32,bf16,fp8-te,nvfp4-no-sr,diverge.json", "--steps", 8, "--json")
    rows = {row["recipe"]: row for row in json.loads(r.stdout)}
    assert list(rows) == ["fp32", "bf16", "fp8-te", "nvfp4-no-sr", "diverge"]
    assert rows["fp32"]["heldout_minus_fp32"] == 0.0 and rows["fp32"]["time_vs_fp32"] == 1.0
    for name in ("bf16", "fp8-te"):
        assert rows[name]["final_heldout"] is not None and abs(rows[name]["heldout_minus_fp32"]) < 0.5
        assert len(rows[name]["heldout_curve"]) == 2
    assert "stopped" in rows["diverge"] and "gradient" in rows["diverge"]["stopped"]
    assert (tmp_path / "study" / "loss.svg").is_file() and (tmp_path / "study" / "study.json").is_file()
    # The differences from fp32: one line per other recipe that evaluated.
    delta = (tmp_path / "study" / "delta.svg").read_text()
    for name in ("bf16", "fp8-te", "nvfp4-no-sr"):
        assert f">{name}<" in delta
    assert ">fp32<" not in delta
    for name in rows:
        assert (tmp_path / "study" / name / "log.json").is_file() or name == "diverge"
    # --seed draws another initialization and other batches, the same ones
    # each time it is given.
    again = []
    for out in ("seed6a", "seed6b"):  # the config has seed 5
        r = lowbit.run("study", "train", "--config", cfg_path, "-o", out, "--recipes", "fp32", "--steps", 8,
                       "--seed", 6, "--json")
        again.append(json.loads(r.stdout)[0]["final_heldout"])
    assert again[0] == again[1] and again[0] != rows["fp32"]["final_heldout"]
    # A study never writes into a directory that holds something.
    r = lowbit.run("study", "train", "--config", cfg_path, "-o", "study", "--recipes", "fp32", check=False)
    assert r.returncode == 2
    r = lowbit.run("study", "train", "--config", cfg_path, "-o", "s2", "--recipes", "fp32,nosuch", check=False)
    assert r.returncode == 2 and "nosuch" in r.stderr


def test_a_precision_recipe_in_the_config(lowbit, tmp_path):
    """A config's "precision" (a file here) changes the run, and a resume
    under another recipe is refused by name."""
    cfg_path, cfg = write_config(tmp_path)
    (tmp_path / "fp8.json").write_text(json.dumps(
        {"linear": {"forward": {"x": "float8_e4m3fn/tensor", "w": "float8_e4m3fn/tensor"}}}))
    cfg["precision"] = "fp8.json"
    (tmp_path / "p.json").write_text(json.dumps(cfg))
    a = json.loads(lowbit.run("train", "--config", "p.json", "-o", "a", "--json").stdout)
    b = json.loads(lowbit.run("train", "--config", cfg_path, "-o", "b", "--json").stdout)
    assert a["final_loss"] != b["final_loss"]
    r = lowbit.run("train", "--config", cfg_path, "-o", "a", "--resume", check=False)
    assert r.returncode == 1 and "precision" in r.stderr
    cfg["precision"] = {"linear": {"forward": {"x": "fp9"}}}
    (tmp_path / "bad.json").write_text(json.dumps(cfg))
    r = lowbit.run("train", "--config", "bad.json", "-o", "c", check=False)
    assert r.returncode == 2 and "fp9" in r.stderr
    assert not (tmp_path / "c").exists()
