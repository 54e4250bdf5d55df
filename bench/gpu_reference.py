"""The `hoc` preset protocol as a typical PyTorch user writes it: the reference bench/gpu.sh times.

LightweightCNN_HOC (141,473 parameters, as native/models.cc builds it), Adam lr 1e-3, batch 32,
at most 30 epochs, early stopping on validation loss (patience 3, best weights restored), a 10%
stratified validation split carved from train, test accuracy of the restored model.

Deliberately *not* an optimised loop: a map-style Dataset over decoded uint8 images (HWC, as PIL
gives them) that converts each image in __getitem__, a DataLoader(shuffle, num_workers=4,
pin_memory) that collates batches on the CPU, one host-to-device copy per batch, `loss.item()`
every batch for the running loss. No torchvision (it may be absent): JPEGs are decoded from the zip
once with PIL (or torchvision / OpenCV when PIL is missing) and cached as .npy files, so only the
first run pays for decoding.

Differences from the native trainer, on purpose (a typical user's choices, documented here):
  - the validation split is a seeded numpy permutation per class (same sizes, round(n * 0.1) per
    class, not the same files as the native split, which orders files by a hash of their names);
  - validation and test run through DataLoaders at the training batch size (native: 1024);
  - no channels-last, no cudnn.benchmark, no fused HOC conv: the two convs are computed separately.
Training seconds are the summed time of the training passes only (no validation), as the native
trainer's `trainSeconds`; `loop_seconds` adds the validation passes; the caller times the wall.

Usage:
  python3 bench/gpu_reference.py --data cifake.zip [--device cuda] [--epochs 30] [--batch-size 32]
      [--lr 1e-3] [--amp none|bf16|fp16] [--limit N] [--workers 4] [--out result.json]
  python3 bench/gpu_reference.py --data cifake.zip --prepare-only     # decode + cache, then exit
Prints one line per epoch and a summary to stderr; with --out writes the result as JSON.
"""
import argparse
import contextlib
import copy
import hashlib
import io
import json
import os
import re
import sys
import time
import zipfile

import numpy as np
import torch
import torch.nn as nn

CLASSES = ("FAKE", "REAL")  # label 0 = FAKE, 1 = REAL (alphabetical, as ImageFolder does)
HOC_PARAMETERS = 141_473
ENTRY_RE = re.compile(r"(?:^|/)(train|test)/(FAKE|REAL)/[^/]+\.(?:jpe?g|png)$", re.IGNORECASE)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# data: decode once, cache as .npy


def _decoder():
    """A function bytes -> uint8 array (32, 32, 3) RGB, from whatever image library is installed."""
    try:
        from PIL import Image

        def dec(b):
            with Image.open(io.BytesIO(b)) as im:
                return np.asarray(im.convert("RGB"), dtype=np.uint8)

        return dec, "PIL " + Image.__version__
    except ImportError:
        pass
    try:
        from torchvision.io import ImageReadMode, decode_image

        def dec(b):
            t = decode_image(torch.frombuffer(bytearray(b), dtype=torch.uint8), mode=ImageReadMode.RGB)
            return t.permute(1, 2, 0).numpy()

        return dec, "torchvision.io"
    except ImportError:
        pass
    try:
        import cv2

        def dec(b):
            bgr = cv2.imdecode(np.frombuffer(b, dtype=np.uint8), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError("cv2.imdecode failed")
            return bgr[:, :, ::-1]

        return dec, "OpenCV " + cv2.__version__
    except ImportError:
        pass
    sys.exit(
        "gpu_reference.py: no JPEG decoder: install one of pillow, torchvision or opencv-python-headless "
        "(offline: carry its wheel and `pip install --no-index ./pillow-*.whl`)"
    )


def _list_entries(data):
    """[(split, label, name, reader)] for every image of train/ and test/ (zip or folder)."""
    out = []
    if os.path.isdir(data):
        for root, _dirs, files in os.walk(data):
            for f in files:
                full = os.path.join(root, f)
                rel = os.path.relpath(full, data).replace(os.sep, "/")
                m = ENTRY_RE.search(rel)
                if m:
                    out.append((m.group(1).lower(), CLASSES.index(m.group(2).upper()), rel, full))
        return out, None
    zf = zipfile.ZipFile(data)
    for info in zf.infolist():
        m = ENTRY_RE.search(info.filename)
        if m and not info.is_dir():
            out.append((m.group(1).lower(), CLASSES.index(m.group(2).upper()), info.filename, info))
    return out, zf


def _cache_paths(data, cache_dir):
    st = os.stat(data)
    key = hashlib.sha1(f"{os.path.abspath(data)}|{st.st_size}|{int(st.st_mtime)}".encode()).hexdigest()[:16]
    base = os.path.join(cache_dir, f"cifake-{key}")
    return {s: (f"{base}-{s}-images.npy", f"{base}-{s}-labels.npy") for s in ("train", "test")}


def _save_npy(path, arr):
    tmp = f"{path}.tmp-{os.getpid()}.npy"
    np.save(tmp, arr)
    os.replace(tmp, path)


def load_data(data, cache_dir):
    """{'train': (images uint8 N,32,32,3, labels uint8 N), 'test': (...)} decoded once, then cached."""
    paths = _cache_paths(data, cache_dir)
    if all(os.path.exists(p) for pair in paths.values() for p in pair):
        t0 = time.perf_counter()
        out = {s: (np.load(i), np.load(l)) for s, (i, l) in paths.items()}
        log(f"data: cached decode of {data} ({', '.join(f'{s} {len(v[1])}' for s, v in out.items())}) "
            f"read in {time.perf_counter() - t0:.1f} s from {cache_dir}")
        return out
    dec, decoder_name = _decoder()
    entries, zf = _list_entries(data)
    if not entries:
        sys.exit(f"gpu_reference.py: no train/ or test/ REAL/FAKE images found in {data}")
    t0 = time.perf_counter()
    out = {}
    for split in ("train", "test"):
        rows = sorted((e for e in entries if e[0] == split), key=lambda e: (e[1], e[2]))
        images = np.empty((len(rows), 32, 32, 3), dtype=np.uint8)
        labels = np.empty(len(rows), dtype=np.uint8)
        n = 0
        for _s, label, name, src in rows:
            raw = zf.read(src) if zf is not None else open(src, "rb").read()
            try:
                img = dec(raw)
            except Exception as e:  # noqa: BLE001 - skip unreadable files, as the native loader does
                log(f"skipping {name}: {e}")
                continue
            if img.shape != (32, 32, 3):
                log(f"skipping {name}: {img.shape[1]}x{img.shape[0]}, not 32x32")
                continue
            images[n] = img
            labels[n] = label
            n += 1
        out[split] = (images[:n], labels[:n])
    log(f"data: decoded {data} with {decoder_name} in {time.perf_counter() - t0:.1f} s "
        f"(train {len(out['train'][1])}, test {len(out['test'][1])})")
    if len(out["train"][1]) == 0 or len(out["test"][1]) == 0:
        sys.exit(f"gpu_reference.py: {data} lacks a train or a test split")
    os.makedirs(cache_dir, exist_ok=True)
    for s, (i, l) in paths.items():
        _save_npy(i, out[s][0])
        _save_npy(l, out[s][1])
    log(f"data: cached in {cache_dir}")
    return out


def stratified_split(labels, val_fraction, seed):
    """Per class, round(n * val_fraction) indices (at least one) to validation; the rest to train."""
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for c in range(len(CLASSES)):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = int(round(len(idx) * val_fraction))
        if val_fraction > 0 and n_val == 0 and len(idx) >= 2:
            n_val = 1
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(val_idx))


def limit_per_class(labels, limit, seed):
    rng = np.random.default_rng(seed + 1)
    keep = [rng.permutation(np.flatnonzero(labels == c))[:limit] for c in range(len(CLASSES))]
    return np.sort(np.concatenate(keep))


class CifakeDataset(torch.utils.data.Dataset):
    """uint8 HWC images -> float CHW in [0, 1], label as float (for BCEWithLogitsLoss)."""

    def __init__(self, images, labels):
        self.images = images
        self.labels = labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        x = torch.from_numpy(self.images[i]).permute(2, 0, 1).float().div(255.0)
        return x, torch.tensor(float(self.labels[i]))


# ---------------------------------------------------------------------------------------------
# the model: LightweightCNN_HOC exactly as native/models.cc builds it (unfused)


class HOCConvBlock(nn.Module):
    """conv3x3(x) + conv3x3'(x*x), both same-padded and both with a bias (as native/models.cc:
    parameter count 141,473 needs both biases), then BatchNorm + ReLU + maxpool 2."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv_sq = nn.Conv2d(cin, cout, 3, padding=1)
        self.bn = nn.BatchNorm2d(cout)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        return self.pool(torch.relu(self.bn(self.conv(x) + self.conv_sq(x * x))))


class LightweightCNN_HOC(nn.Module):
    def __init__(self):
        super().__init__()
        self.block1 = HOCConvBlock(3, 16)
        self.block2 = HOCConvBlock(16, 32)
        self.dense1 = nn.Linear(32 * 8 * 8, 64)
        self.dropout = nn.Dropout(0.5)
        self.out = nn.Linear(64, 1)

    def forward(self, x):
        x = self.block2(self.block1(x))
        x = torch.flatten(x, 1)
        x = self.dropout(torch.relu(self.dense1(x)))
        return self.out(x).view(-1)


# ---------------------------------------------------------------------------------------------
# training


def autocast_ctx(device, amp):
    if amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def evaluate(model, loader, device, amp, loss_fn):
    model.eval()
    total_loss, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with autocast_ctx(device, amp):
                logits = model(x)
            logits = logits.float()
            total_loss += loss_fn(logits, y).item() * len(y)
            correct += ((logits >= 0) == (y > 0.5)).sum().item()
            n += len(y)
    return total_loss / n, correct / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="CIFAKE zip or folder (train/ and test/ with REAL/ and FAKE/)")
    ap.add_argument("--device", default="cuda", help="cuda | cuda:N | cpu")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--val-fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--amp", choices=["none", "bf16", "fp16"], default="none")
    ap.add_argument("--limit", type=int, default=None, help="at most N train images per class (quick runs)")
    ap.add_argument("--workers", type=int, default=4, help="DataLoader num_workers")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU runs)")
    ap.add_argument("--cache-dir", default=os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "cifake-torch-py"))
    ap.add_argument("--prepare-only", action="store_true", help="decode and cache the data, then exit")
    ap.add_argument("--out", default=None, help="write the result JSON here")
    a = ap.parse_args()

    t_start = time.perf_counter()
    device = torch.device(a.device)
    if not a.prepare_only:
        if device.type == "cuda" and not torch.cuda.is_available():
            sys.exit(f"gpu_reference.py: --device {a.device} but torch {torch.__version__} sees no CUDA device")
        if a.amp != "none" and device.type != "cuda":
            sys.exit(f"gpu_reference.py: --amp {a.amp} needs a CUDA device")
    data = load_data(a.data, a.cache_dir)
    if a.prepare_only:
        return
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)

    train_images, train_labels = data["train"]
    if a.limit:
        keep = limit_per_class(train_labels, a.limit, a.seed)
        train_images, train_labels = train_images[keep], train_labels[keep]
    tr, va = stratified_split(train_labels, a.val_fraction, a.seed)
    train_ds = CifakeDataset(train_images[tr], train_labels[tr])
    val_ds = CifakeDataset(train_images[va], train_labels[va])
    test_ds = CifakeDataset(*data["test"])
    pin = device.type == "cuda"
    workers = a.workers

    def loaders(nw):
        kw = dict(batch_size=a.batch_size, num_workers=nw, pin_memory=pin)
        return (torch.utils.data.DataLoader(train_ds, shuffle=True, **kw),
                torch.utils.data.DataLoader(val_ds, shuffle=False, **kw),
                torch.utils.data.DataLoader(test_ds, shuffle=False, **kw))

    train_loader, val_loader, test_loader = loaders(workers)
    if workers > 0:
        # Some sandboxes lack the shared memory worker processes need: fall back, and say so.
        try:
            next(iter(val_loader))
        except Exception as e:  # noqa: BLE001
            log(f"DataLoader with {workers} workers failed ({type(e).__name__}: {e}); using num_workers=0")
            workers = 0
            train_loader, val_loader, test_loader = loaders(0)

    model = LightweightCNN_HOC().to(device)
    params = sum(p.numel() for p in model.parameters())
    if params != HOC_PARAMETERS:
        log(f"WARNING: {params} parameters, expected {HOC_PARAMETERS} (native/models.cc)")
    optimizer = torch.optim.Adam(model.parameters(), lr=a.lr)
    loss_fn = nn.BCEWithLogitsLoss()
    scaler = None
    if a.amp == "fp16":  # fp16 needs loss scaling; bf16 does not
        scaler = torch.amp.GradScaler("cuda") if hasattr(torch.amp, "GradScaler") else torch.cuda.amp.GradScaler()
    log(f"python reference: torch {torch.__version__} (CUDA {torch.version.cuda}), device {device}"
        f"{' ' + torch.cuda.get_device_name(device) if device.type == 'cuda' else ''}, {params} parameters, "
        f"train {len(train_ds)} val {len(val_ds)} test {len(test_ds)}, batch {a.batch_size}, lr {a.lr}, amp {a.amp}, "
        f"num_workers {workers}")

    best_loss, best_epoch, best_state, wait = float("inf"), 0, None, 0
    history = []
    train_seconds = loop_seconds = 0.0
    for epoch in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        running_loss, correct, seen = 0.0, 0, 0
        for x, y in train_loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            optimizer.zero_grad()
            with autocast_ctx(device, a.amp):
                logits = model(x)
                loss = loss_fn(logits.float(), y)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            running_loss += loss.item() * len(y)
            correct += ((logits.detach() >= 0) == (y > 0.5)).sum().item()
            seen += len(y)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t_train = time.perf_counter() - t0
        val_loss, val_acc = evaluate(model, val_loader, device, a.amp, loss_fn)
        t_epoch = time.perf_counter() - t0
        train_seconds += t_train
        loop_seconds += t_epoch
        improved = val_loss < best_loss
        if improved:
            best_loss, best_epoch, wait = val_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            wait += 1
        history.append(dict(epoch=epoch, train_loss=running_loss / seen, train_acc=correct / seen, val_loss=val_loss,
                            val_acc=val_acc, seconds=t_train, images_per_sec=seen / t_train))
        log(f"epoch {epoch}: train loss {running_loss / seen:.4f} acc {100 * correct / seen:.2f}% | val loss {val_loss:.4f} "
            f"acc {100 * val_acc:.2f}% | {t_train:.1f} s train ({seen / t_train:.0f} img/s), {t_epoch:.1f} s with val"
            f"{' *' if improved else ''}")
        if wait >= a.patience > 0:
            log(f"early stopping after epoch {epoch}: no val_loss improvement for {a.patience} epochs; best epoch {best_epoch}")
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    test_loss, test_acc = evaluate(model, test_loader, device, a.amp, loss_fn)
    ips = sorted(h["images_per_sec"] for h in history)
    result = dict(
        system="python",
        torch=torch.__version__,
        cuda=torch.version.cuda,
        device=str(device),
        gpu=torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        parameters=params,
        batch_size=a.batch_size,
        lr=a.lr,
        amp=a.amp,
        num_workers=workers,
        limit=a.limit,
        train_count=len(train_ds),
        val_count=len(val_ds),
        test_count=len(test_ds),
        epochs_run=len(history),
        best_epoch=best_epoch,
        train_seconds=train_seconds,
        loop_seconds=loop_seconds,
        process_seconds=time.perf_counter() - t_start,
        images_per_sec=len(train_ds) * len(history) / train_seconds,
        median_epoch_images_per_sec=ips[len(ips) // 2],
        test_loss=test_loss,
        test_acc=test_acc,
        history=history,
    )
    log(f"python reference: {len(history)} epochs (best {best_epoch}), {train_seconds:.1f} s training "
        f"({loop_seconds:.1f} s with validation), {result['images_per_sec']:.0f} img/s, test accuracy {100 * test_acc:.2f}%")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
