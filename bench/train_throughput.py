"""Idiomatic PyTorch training loop for the three CIFAKE models, for bench/train-throughput.ts.

Prints one JSON line per timed epoch: {"model", "batch", "epoch", "images_per_sec"}.
Usage: python3 bench/train_throughput.py --model hoc --batch 32 --images 90000 --epochs 1 --warmup 2000 --threads 2
The caller sets the environment (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, OMP_WAIT_POLICY, MALLOC_*_).
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class HOCConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv_sq = nn.Conv2d(cin, cout, 3, padding=1)

    def forward(self, x):
        return self.conv(x) + self.conv_sq(x * x)


def make_model(name):
    if name == "original":
        return nn.Sequential(
            nn.Conv2d(3, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 6 * 6, 64), nn.ReLU(), nn.Linear(64, 1))
    conv = (lambda i, o: HOCConv(i, o)) if name == "hoc" else (lambda i, o: nn.Conv2d(i, o, 3, padding=1))
    return nn.Sequential(
        conv(3, 16), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        conv(16, 32), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 8 * 8, 64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="hoc")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2000, help="images in the untimed warm-up epoch")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default=None, help="raw uint8 file N*3*32*32 then N labels")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.data:
        raw = torch.from_file(a.data, dtype=torch.uint8, size=a.images * 3073)
        x = raw[: a.images * 3072].view(a.images, 3, 32, 32)
        y = raw[a.images * 3072:].float()
    else:
        x = torch.randint(0, 256, (a.images, 3, 32, 32), dtype=torch.uint8)
        y = torch.randint(0, 2, (a.images,)).float()
    ds = torch.utils.data.TensorDataset(x.float() / 255.0, y)
    loader = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True)
    warmup = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, range(min(a.warmup, a.images))), batch_size=a.batch, shuffle=True)
    model = make_model(a.model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    for epoch in range(a.epochs + 1):  # epoch 0 is the warm-up
        model.train()
        t0 = time.perf_counter()
        n = 0
        for xb, yb in (warmup if epoch == 0 else loader):
            opt.zero_grad()
            loss = loss_fn(model(xb).view(-1), yb)
            loss.backward()
            opt.step()
            n += len(yb)
        dt = time.perf_counter() - t0
        if epoch > 0:
            print(json.dumps({"model": a.model, "batch": a.batch, "epoch": epoch, "images_per_sec": n / dt}), flush=True)


if __name__ == "__main__":
    main()
