"""Stage-1 step time (forward + backward + Adam) of a CaVE configuration in PyTorch on the CPU.

The architecture is written here from the paper's and the golden README's description (not the official code):
ResBlock = x + conv3(relu(bn(conv3(x)))), strided-conv downsampling 2/4/4, QF head, transposed-conv decoder with
skips and the +1 of QFAttention. Run with Debian's python3-torch:
  /usr/bin/python3 bench/torch_stage1_step.py --channels 16,32,64,128 --blocks 2 --patch 96 --batch 8 --threads 2
Prints one JSON line.
"""
import argparse, json, resource, time
import torch
from torch import nn


class Res(nn.Module):
    def __init__(self, c, plus_one=False):
        super().__init__()
        self.res = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c, eps=1e-4, momentum=0.9), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1))
        self.plus_one = plus_one

    def forward(self, x):
        return x + self.res(x) + (1.0 if self.plus_one else 0.0)


class Cave(nn.Module):
    def __init__(self, nc, nb):
        super().__init__()
        blocks = lambda c, plus=False: [Res(c, plus) for _ in range(nb)]
        self.head = nn.Conv2d(3, nc[0], 3, padding=1)
        self.down = nn.ModuleList([nn.Sequential(*blocks(nc[i]), nn.Conv2d(nc[i], nc[i + 1], k, stride=k)) for i, k in enumerate((2, 4, 4))])
        self.body_enc = nn.Sequential(*blocks(nc[3]))
        self.qf = nn.Sequential(*blocks(nc[3]), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(nc[3], nc[3]), nn.ReLU(), nn.Linear(nc[3], nc[3]), nn.ReLU(), nn.Linear(nc[3], 1), nn.Sigmoid())
        self.body_dec = nn.Sequential(*blocks(nc[3]))
        self.up = nn.ModuleList([nn.Sequential(nn.ConvTranspose2d(nc[3 - i], nc[2 - i], k, stride=k), *blocks(nc[2 - i], True)) for i, k in enumerate((4, 4, 2))])
        self.tail = nn.Conv2d(nc[0], 3, 3, padding=1)

    def forward(self, x):
        skips = [self.head(x)]
        for d in self.down:
            skips.append(d(skips[-1]))
        t = self.body_enc(skips[-1])
        qf = self.qf(t)
        y = self.body_dec(t) + skips[3]
        for u, s in zip(self.up, (skips[2], skips[1], skips[0])):
            y = u(y) + s
        return self.tail(y), qf


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--channels', default='16,32,64,128')
    p.add_argument('--blocks', type=int, default=2)
    p.add_argument('--patch', type=int, default=96)
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--steps', type=int, default=5)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    nc = [int(c) for c in a.channels.split(',')]
    model = Cave(nc, a.blocks).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    lq, hq, target = torch.rand(a.batch, 3, a.patch, a.patch), torch.rand(a.batch, 3, a.patch, a.patch), torch.rand(a.batch)
    times = []
    for s in range(a.steps + 1):
        t0 = time.perf_counter()
        recon, qf = model(lq)
        loss = (recon - hq).abs().mean() + 1e-3 * (qf.squeeze(1) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if s > 0:
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    print(json.dumps({'backend': 'torch-cpu', 'torch': torch.__version__, 'threads': a.threads, 'channels': nc, 'blocks': a.blocks, 'patch': a.patch, 'batch': a.batch,
                      'parameters': sum(q.numel() for q in model.parameters()), 'medianStepMs': times[len(times) // 2],
                      'peakRssMiB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))


if __name__ == '__main__':
    main()
