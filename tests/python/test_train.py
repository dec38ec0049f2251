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
