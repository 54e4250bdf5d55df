/**
 * The PyTorch reference module of a CifakeNet (printed by `cifake export --print-pytorch`): its
 * state_dict() names are exactly the names of an exported safetensors file, so
 * `model.load_state_dict(safetensors.torch.load_file(f))` (or the loader below) just works.
 */
export const PYTORCH_REFERENCE = `# cifake-torch reference module: the same network as native/models.cc, in plain PyTorch.
# Input: float N x 3 x 32 x 32 = uint8 RGB pixel / 255 (no mean/std). Output: logit N;
# P(REAL) = sigmoid(logit / temperature), temperature from the file's metadata (1 when absent).
import json

import torch
from torch import nn
import torch.nn.functional as F


class ConvBlock(nn.Module):
    def __init__(self, cin, cout, spec):
        super().__init__()
        self.hoc = spec["hoc"]
        self.residual = spec.get("residual", False)
        pad = 1 if spec["padding"] == "same" else 0
        self.conv = nn.Conv2d(cin, cout, 3, padding=pad)
        if self.hoc:  # diagonal higher-order term: conv(x) + conv_sq(x * x)
            self.conv_sq = nn.Conv2d(cin, cout, 3, padding=pad)
        self.bn = nn.BatchNorm2d(cout) if spec["batchNorm"] else None
        self.more = []
        for k in range(2, spec.get("convsPerBlock", 1) + 1):
            setattr(self, f"conv{k}", nn.Conv2d(cout, cout, 3, padding=pad, bias=False))
            setattr(self, f"bn{k}", nn.BatchNorm2d(cout))
            self.more.append((f"conv{k}", f"bn{k}"))
        self.proj = None
        if self.residual and cin != cout:
            self.proj = nn.Conv2d(cin, cout, 1, bias=False)
            self.proj_bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        y = self.conv(x)
        if self.hoc:
            y = y + self.conv_sq(x * x)
        if self.bn is not None:
            y = self.bn(y)
        for conv, bn in self.more:
            y = getattr(self, bn)(getattr(self, conv)(F.relu(y)))
        if self.residual:
            y = y + (self.proj_bn(self.proj(x)) if self.proj is not None else x)
        return F.max_pool2d(F.relu(y), 2)


class CifakeNet(nn.Module):
    def __init__(self, spec):
        super().__init__()
        self.spec = spec
        self.members = []
        if spec.get("members", 1) > 1:  # an ensemble: member1..memberK, logits averaged
            for k in range(1, spec["members"] + 1):
                setattr(self, f"member{k}", CifakeNet({**spec, "members": 1}))
                self.members.append(f"member{k}")
            return
        channels, size = 3, 32
        self.blocks = []
        for i, f in enumerate(spec["convFilters"]):
            setattr(self, f"block{i + 1}", ConvBlock(channels, f, spec))
            self.blocks.append(f"block{i + 1}")
            channels = f
            size = ((size - 2) if spec["padding"] == "valid" else size) // 2
        features = channels * size * size
        self.dense = []
        for i, u in enumerate(spec["dense"]):
            setattr(self, f"dense{i + 1}", nn.Linear(features, u))
            self.dense.append(f"dense{i + 1}")
            features = u
        self.dropout = nn.Dropout(spec["dropout"]) if spec["dropout"] > 0 else None
        self.out = nn.Linear(features, 1)

    def forward(self, x):
        if self.members:
            return torch.stack([getattr(self, m)(x) for m in self.members], 1).mean(1)
        for b in self.blocks:
            x = getattr(self, b)(x)
        x = torch.flatten(x, 1)  # NCHW order: channel, row, column
        for d in self.dense:
            x = F.relu(getattr(self, d)(x))
        if self.dropout is not None:
            x = self.dropout(x)
        return self.out(x).view(-1)


def load_cifake(path):
    """-> (model in eval mode, metadata dict) from a \`cifake export --format safetensors\` file."""
    from safetensors.torch import load_file  # pip install safetensors (or read it by hand, see below)
    return build_model(load_file(path), _metadata(path))


def _metadata(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(n)).get("__metadata__", {})


def read_safetensors(path):
    """The container without the safetensors package: {name: tensor}, metadata."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}
    tensors = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:end]), dtype=dtypes[e["dtype"]])
        tensors[name] = t.reshape(e["shape"])
    return tensors, header.get("__metadata__", {})


def write_safetensors(path, model, spec, metadata=None):
    """A PyTorch-trained CifakeNet -> a file \`cifake import --safetensors\` reads (no safetensors package)."""
    codes = {torch.float32: "F32", torch.int64: "I64"}
    header, blobs, offset = {"__metadata__": {"spec": json.dumps(spec), **(metadata or {})}}, [], 0
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        if t.dtype not in codes:
            t = t.float()
        b = t.numpy().tobytes()
        header[name] = {"dtype": codes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    head = json.dumps(header).encode()
    head += b" " * ((8 - (8 + len(head)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(head).to_bytes(8, "little") + head + b"".join(blobs))


def build_model(tensors, metadata):
    """{name: tensor} and metadata (with its "spec" JSON) -> (CifakeNet in eval mode, metadata)."""
    model = CifakeNet(json.loads(metadata["spec"]))
    model.load_state_dict(tensors, strict=True)
    return model.eval(), metadata
`;
