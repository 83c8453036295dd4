"""DISTS in plain PyTorch for timing against @codiff/losses: VGG16 trunk with L2 pooling and DISTS's S1/S2 terms,
weights read from the same safetensors files (default: the golden random VGG). Numerics are compared by the
golden tests, not here. Prints one JSON object.

Usage: python3 torch_dists.py --weights DIR [--threads N] [--size 256]
"""
import argparse, json, struct, time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}
CONVS = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
STAGES = [[0, 2], [5, 7], [10, 12, 14], [17, 19, 21], [24, 26, 28]]


def read_safetensors(path):
    raw = Path(path).read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for key, e in header.items():
        if key == "__metadata__":
            continue
        b, en = e["data_offsets"]
        out[key] = torch.from_numpy(np.frombuffer(raw[8 + n + b:8 + n + en], DTYPES[e["dtype"]]).astype(np.float32).reshape(e["shape"]))
    return out


class Dists(nn.Module):
    def __init__(self, vgg, weights):
        super().__init__()
        self.convs = nn.ModuleDict()
        for i in CONVS:
            w = vgg[f"features.{i}.weight"]
            conv = nn.Conv2d(w.shape[1], w.shape[0], 3, padding=1)
            conv.weight.data, conv.bias.data = w, vgg[f"features.{i}.bias"]
            self.convs[str(i)] = conv
        self.requires_grad_(False)
        a = torch.outer(torch.tensor([0.5, 1.0, 0.5]), torch.tensor([0.5, 1.0, 0.5]))
        self.register_buffer("filter", (a / a.sum())[None, None])
        self.alpha, self.beta = weights["alpha"], weights["beta"]
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, -1, 1, 1))

    def l2pool(self, x):
        c = x.shape[1]
        return (F.conv2d(x ** 2, self.filter.expand(c, 1, 3, 3), stride=2, padding=1, groups=c) + 1e-12).sqrt()

    def features(self, x):
        feats, h = [x], (x - self.mean) / self.std
        for s, convs in enumerate(STAGES):
            if s:
                h = self.l2pool(h)
            for i in convs:
                h = F.relu(self.convs[str(i)](h))
            feats.append(h)
        return feats

    def forward(self, x, y):
        chns = [3, 64, 128, 256, 512, 512]
        total = self.alpha.sum() + self.beta.sum()
        alpha = torch.split(self.alpha / total, chns, dim=1)
        beta = torch.split(self.beta / total, chns, dim=1)
        d1 = d2 = 0
        for k, (fx, fy) in enumerate(zip(self.features(x), self.features(y))):
            xm, ym = fx.mean([2, 3], keepdim=True), fy.mean([2, 3], keepdim=True)
            s1 = (2 * xm * ym + 1e-6) / (xm ** 2 + ym ** 2 + 1e-6)
            xv, yv = ((fx - xm) ** 2).mean([2, 3], keepdim=True), ((fy - ym) ** 2).mean([2, 3], keepdim=True)
            cov = (fx * fy).mean([2, 3], keepdim=True) - xm * ym
            s2 = (2 * cov + 1e-6) / (xv + yv + 1e-6)
            d1 = d1 + (alpha[k] * s1).sum(1, keepdim=True)
            d2 = d2 + (beta[k] * s2).sum(1, keepdim=True)
        return 1 - (d1 + d2).squeeze()


def best(fn, repeats=3):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--weights", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--size", type=int, default=256)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    d = Path(args.weights)
    model = Dists(read_safetensors(d / "vgg16.safetensors"), read_safetensors(d / "dists_weights.safetensors"))
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(1, 3, args.size, args.size, generator=g)
    test = torch.rand(1, 3, args.size, args.size, generator=g)

    def forward():
        with torch.no_grad():
            model(ref, test)

    def forward_backward():
        x = test.clone().requires_grad_(True)
        model(ref, x).sum().backward()

    print(json.dumps({"torch": torch.__version__, "threads": args.threads,
                      "dists_forward_s": best(forward), "dists_forward_backward_s": best(forward_backward)}))


if __name__ == "__main__":
    main()
