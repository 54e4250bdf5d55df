#!/usr/bin/env python3
"""Checks the safetensors export against PyTorch (Debian's python3-torch), both ways.

  export_check.py check REFERENCE.py FILE.safetensors IMAGES.u8 NATIVE_LOGITS.f32
      loads an exported file into the reference module (cifake export --print-pytorch) and prints
      {"n", "maxAbsDiff"} of its logits against the native ones (raw logits, no temperature).
  export_check.py make REFERENCE.py SPEC.json OUT.safetensors IMAGES.u8 OUT_LOGITS.f32
      builds the reference module with PyTorch's own random init and random BatchNorm statistics
      (as if trained in PyTorch), writes it as safetensors and its logits on the images.
Images: uint8 N x 3 x 32 x 32 (CHW, RGB), the package's input. Used by test/export-torch.test.ts.
"""
import importlib.util
import json
import sys

import torch


def reference(path):
    spec = importlib.util.spec_from_file_location("cifake_reference", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def images(path):
    raw = open(path, "rb").read()
    x = torch.frombuffer(bytearray(raw), dtype=torch.uint8).reshape(-1, 3, 32, 32)
    return x.float() / 255


def main(argv):
    torch.set_num_threads(1)
    mode, ref = argv[1], reference(argv[2])
    if mode == "check":
        tensors, meta = ref.read_safetensors(argv[3])
        model, _ = ref.build_model(tensors, meta)
        with torch.no_grad():
            logits = model(images(argv[4]))
        native = torch.frombuffer(bytearray(open(argv[5], "rb").read()), dtype=torch.float32)
        print(json.dumps({"n": logits.numel(), "maxAbsDiff": (logits - native).abs().max().item(),
                          "logitRange": (logits.max() - logits.min()).item()}))
    elif mode == "make":
        spec = json.load(open(argv[3]))
        torch.manual_seed(3)
        model = ref.CifakeNet(spec)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)
                m.num_batches_tracked.fill_(7)
        model.eval()
        ref.write_safetensors(argv[4], model, spec, {"temperature": "1", "threshold": "0.5"})
        with torch.no_grad():
            logits = model(images(argv[5]))
        open(argv[6], "wb").write(logits.numpy().astype("float32").tobytes())
        print(json.dumps({"n": logits.numel(), "tensors": len(model.state_dict())}))
    else:
        raise SystemExit(f"unknown mode {mode!r} (check | make)")


if __name__ == "__main__":
    main(sys.argv)
