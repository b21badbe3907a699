#!/usr/bin/env python3
"""Which small network learns the study's distortions? A quick Python probe (docs/study.md).

Trains one baseline model (no OHEM) on a study split and prints the held-out SRCC, overall and per
distortion type, every 5 epochs. It is how the study's CNNIQA variant was chosen: it approximates the
C++ trainer (in-batch pairs, binary labels, a logistic approximation of the fidelity loss's normal CDF,
Adam, random crops and flips, no learning-rate schedule or weight decay); the figures in docs/study.md
that it produced are marked as such. Needs Debian's python3-torch, python3-scipy and python3-pil.

    /usr/bin/python3 examples/study/prototype/architecture_probe.py --splits build/study/splits \
        --seed 0 --net lcn_sd --l2 --epochs 20
"""
import argparse
import csv
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from scipy.stats import spearmanr


def load(splits, name):
    rows = list(csv.DictReader(open(os.path.join(splits, name))))
    x = np.stack([np.asarray(Image.open(os.path.join(splits, r["path"])).convert("RGB"), dtype=np.float32) / 255
                  for r in rows])
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = (torch.tensor(x).permute(0, 3, 1, 2) - mean) / std
    return x.contiguous(), torch.tensor([float(r["mos"]) for r in rows]), [r["type"] for r in rows]


def local_stats(x, window=7, eps=0.05):
    """The grey image's local normalisation and local standard deviation (as the C++ CNNIQA)."""
    g = x.mean(1, keepdim=True)
    mu = F.avg_pool2d(g, window, 1, window // 2, count_include_pad=False)
    sd = (F.avg_pool2d(g * g, window, 1, window // 2, count_include_pad=False) - mu * mu).clamp_min(0).sqrt()
    return (g - mu) / (sd + eps), sd


class CNNIQA(nn.Module):
    """conv (k kernels, 7x7) -> global max and min -> FC h -> FC h -> score; `inputs` picks what it sees."""

    def __init__(self, inputs, kernels=50, hidden=800, l2=False):
        super().__init__()
        self.inputs, self.l2 = inputs, l2
        channels = {"rgb": 3, "lcn": 1, "lcn_sd": 2, "rgb_lcn_sd": 5}[inputs]
        self.conv = nn.Conv2d(channels, kernels, 7)
        self.fc1, self.fc2, self.out = nn.Linear(2 * kernels, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, 1)

    def forward(self, x):
        if self.inputs != "rgb":
            lcn, sd = local_stats(x)
            x = {"lcn": lcn, "lcn_sd": torch.cat([lcn, sd], 1), "rgb_lcn_sd": torch.cat([x, lcn, sd], 1)}[self.inputs]
        y = self.conv(x).flatten(2)
        y = torch.cat([y.max(2)[0], y.min(2)[0]], 1)
        y = F.relu(self.fc2(F.relu(self.fc1(y))))
        if self.l2:
            y = F.normalize(y, dim=1)
        return self.out(y).view(-1)


class SmallCNN(nn.Module):
    """Four 3x3 convolutions with BatchNorm, mean and standard-deviation pooling."""

    def __init__(self, w=32):
        super().__init__()
        def block(i, o, s=1):
            return [nn.Conv2d(i, o, 3, s, 1), nn.BatchNorm2d(o), nn.ReLU()]
        self.f = nn.Sequential(*block(3, w), *block(w, w), *block(w, 2 * w, 2), *block(2 * w, 2 * w))
        self.out = nn.Linear(4 * w, 1)

    def forward(self, x):
        y = self.f(x)
        return self.out(torch.cat([y.mean((2, 3)), y.std((2, 3))], 1)).view(-1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--splits", default="build/study/splits", help="the study's splits folder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--net", default="lcn_sd", choices=["rgb", "lcn", "lcn_sd", "rgb_lcn_sd", "small"])
    ap.add_argument("--l2", action="store_true", help="L2-normalise the features (BaseCNN's head)")
    ap.add_argument("--hidden", type=int, default=800)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--crop", type=int, default=56)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    xtr, ytr, _ = load(a.splits, f"train_{a.seed}.csv")
    xte, yte, tte = load(a.splits, f"test_{a.seed}.csv")
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    net = SmallCNN() if a.net == "small" else CNNIQA(a.net, hidden=a.hidden, l2=a.l2)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    batch, start = 16, time.time()
    for epoch in range(a.epochs):
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr) - batch + 1, batch):
            idx = perm[i:i + batch]
            oy, ox = rng.integers(0, xtr.shape[2] - a.crop + 1, 2)
            x = xtr[idx][:, :, oy:oy + a.crop, ox:ox + a.crop]
            if rng.random() < 0.5:
                x = x.flip(3)
            s, y = net(x), ytr[idx]
            j = torch.randperm(batch)
            p = torch.sigmoid(1.702 * (s - s[j]))  # ~ the normal CDF of the score difference
            g = (y > y[j]).float() + 0.5 * (y == y[j]).float()
            loss = (1 - torch.sqrt(p * g + 1e-8) - torch.sqrt((1 - p) * (1 - g) + 1e-8)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        if epoch % 5 == 4 or epoch == a.epochs - 1:
            net.eval()
            with torch.no_grad():
                pred = torch.cat([net(xte[i:i + 128]) for i in range(0, len(xte), 128)]).numpy()
            net.train()
            out = [f"overall={spearmanr(pred, yte.numpy())[0]:.3f}"]
            for t in sorted(set(tte)):
                m = np.array([v == t for v in tte])
                out.append(f"{t}={spearmanr(pred[m], yte.numpy()[m])[0]:.3f}")
            print(f"epoch {epoch + 1} ({time.time() - start:.0f} s): " + " ".join(out), flush=True)


if __name__ == "__main__":
    main()
