"""Does CaVE's QF head learn, and after how many steps? Stage 1 in PyTorch on a GPU (or the CPU), with the official
data recipe (crop, dihedral transform, QF draw, PIL JPEG 4:2:0, shifted grid) and the trainer's official init, until
a wall-clock deadline. Every 45 s: the QF estimate's mean absolute error on whole validation photos (eval mode) at
QF 10..90; at the end, per QF on the test photos. One JSON line per report in OUT/NAME.log. Run several variants
side by side, e.g. on a lent GPU (see packages/train/README.md, 'What the lite run showed'):

  python3 bench/qf_sweep.py --name lite --photos ../../../shared/photos --seconds 330 [--patch 128 --lr 1e-3 ...]
"""
import argparse, functools, io, json, os, random, sys, time, glob
import numpy as np, torch
from PIL import Image
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_stage1_step import Cave

a = argparse.ArgumentParser()
a.add_argument('--name', required=True, help='the variant, and its log file name')
a.add_argument('--patch', type=int, default=64)
a.add_argument('--batch', type=int, default=16)
a.add_argument('--lr', type=float, default=5e-4)
a.add_argument('--qfw', type=float, default=1.0, help='QF loss weight (official 1e-3)')
a.add_argument('--recon', type=float, default=1.0, help='reconstruction loss weight (0: QF loss only)')
a.add_argument('--init', default='official', help="'official' (orthogonal x 0.2, as the trainer) or torch's default")
a.add_argument('--nc', default='16,32,64,128', help='CaVE widths')
a.add_argument('--nb', type=int, default=2, help='ResBlocks per stage')
a.add_argument('--shift', type=float, default=.5, help='probability of a shifted 8x8 grid')
a.add_argument('--center', type=int, default=0, help='1: inputs in [-0.5, 0.5] instead of [0, 1]')
a.add_argument('--seconds', type=float, default=360, help='training time (evaluations come on top)')
a.add_argument('--photos', default='../../../shared/photos', help='folder with train/, val/, test/')
a.add_argument('--out', default='.')
args = a.parse_args()
torch.manual_seed(0); random.seed(0); np.random.seed(0)
dev = 'cuda' if torch.cuda.is_available() else 'cpu'

@functools.lru_cache(maxsize=None)  # each evaluation reads the same photos
def load(folder):
    fs = sorted(glob.glob(f'{args.photos}/{folder}/**/*.png', recursive=True))
    return [(f, np.asarray(Image.open(f).convert('RGB'))) for f in fs]

P = args.patch
def draw_q(rng):
    return rng.randint(8, 96) if rng.random() < .25 else rng.choice([10, 20, 30, 40, 50, 60])
def jpeg(rgb, q):
    b = io.BytesIO(); Image.fromarray(rgb).save(b, 'JPEG', quality=q); return np.asarray(Image.open(b).convert('RGB'))

class Stream(torch.utils.data.IterableDataset):
    def __iter__(self):
        wi = torch.utils.data.get_worker_info()
        rng = random.Random(1000 + (wi.id if wi else 0))
        imgs = [im for _, im in load('train') if min(im.shape[:2]) >= P + 8]
        while True:
            im = rng.choice(imgs); h, w, _ = im.shape
            t = rng.randint(0, h - P - 8); l = rng.randint(0, w - P - 8)
            c = im[t:t + P + 8, l:l + P + 8]
            m = rng.randint(0, 7)
            c = np.ascontiguousarray(np.rot90(c, m % 4) if m < 4 else np.rot90(c[:, ::-1], m % 4))
            q = draw_q(rng)
            lq = jpeg(c, q)
            st, sl = (rng.randint(0, 8), rng.randint(0, 8)) if rng.random() < args.shift else (0, 0)
            yield (torch.from_numpy(c[st:st + P, sl:sl + P].copy()), torch.from_numpy(lq[st:st + P, sl:sl + P].copy()), q)

nc = [int(c) for c in args.nc.split(',')]
m = Cave(nc, args.nb).to(dev)
if args.init == 'official':
    torch.manual_seed(1)
    for mod in m.modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
            w = torch.empty_like(mod.weight, device='cpu'); torch.nn.init.orthogonal_(w, gain=0.2); mod.weight.data.copy_(w); mod.bias.data.zero_()
        elif isinstance(mod, torch.nn.BatchNorm2d):
            mod.weight.data.copy_(0.1 + 0.9 * torch.rand(mod.num_features)); mod.bias.data.zero_()
opt = torch.optim.Adam(m.parameters(), lr=args.lr)

def qf_only(x):
    t = x
    t = m.head(t)
    for d in m.down: t = d(t)
    return m.qf(m.body_enc(t)).squeeze(1)

def to_t(x): return x.to(dev).permute(0, 3, 1, 2).float() / 255 - (0.5 if args.center else 0)

@torch.no_grad()
def evaluate(folder, qs):
    m.eval(); per = {}
    for f, im in load(folder):
        h, w = (im.shape[0] // 8) * 8, (im.shape[1] // 8) * 8
        for q in qs:
            lq = jpeg(im[:h, :w], q)
            pred = 100 * (1 - qf_only(to_t(torch.from_numpy(lq.copy())[None])).item())
            per.setdefault(q, []).append(abs(pred - q))
    m.train()
    return {q: float(np.mean(v)) for q, v in per.items()}

dl = iter(torch.utils.data.DataLoader(Stream(), batch_size=args.batch, num_workers=2, persistent_workers=True, prefetch_factor=8))
log = open(os.path.join(args.out, f'{args.name}.log'), 'w')
def say(d): log.write(json.dumps(d) + '\n'); log.flush()
say(vars(args))
t0 = time.time(); step = 0; errs = []; next_eval = 45
while time.time() - t0 < args.seconds:
    hq, lq, q = next(dl); hq, lq = to_t(hq), to_t(lq); q = q.to(dev).float()
    rec, qf = m(lq); qf = qf.squeeze(1)
    loss = args.recon * (rec - hq).abs().mean() + args.qfw * (qf - (100 - q) / 100).abs().mean()
    opt.zero_grad(); loss.backward(); opt.step(); step += 1
    if step % 10 == 0:
        errs.append(((1 - qf.detach()) * 100 - q).abs().mean().item())
    if time.time() - t0 > next_eval:
        next_eval += 45
        v = evaluate('val', [10, 30, 50, 70, 90])
        say({'step': step, 's': round(time.time() - t0), 'trainMae': float(np.mean(errs[-20:])), 'valMae': float(np.mean(list(v.values()))), 'valPerQf': v})
t = evaluate('test', [1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90])
say({'final': True, 'step': step, 'testMae10to90': float(np.mean([t[q] for q in range(10, 100, 10)])), 'testPerQf': t})
