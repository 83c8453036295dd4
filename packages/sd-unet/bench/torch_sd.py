"""SD 2.1-base UNet and VAE in plain PyTorch (random weights), for timing against @codiff/sd-unet on the same
configuration. Mirrors the module structure of src/ (diffusers' architecture); numerics are not compared here, the
golden tests do that. Prints one JSON object with timings.

Usage: python3 torch_sd.py [--threads N]
"""
import argparse, json, math, time
import torch
import torch.nn as nn
import torch.nn.functional as F


def gn(c, eps):
    return nn.GroupNorm(32, c, eps=eps)


class Resnet(nn.Module):
    def __init__(self, cin, cout, temb=None, eps=1e-5):
        super().__init__()
        self.norm1, self.conv1 = gn(cin, eps), nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb, cout) if temb else None
        self.norm2, self.conv2 = gn(cout, eps), nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, t=None):
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time_emb_proj is not None:
            h = h + self.time_emb_proj(F.silu(t))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.conv_shortcut(x) if self.conv_shortcut is not None else x) + h


class Attention(nn.Module):
    def __init__(self, dim, heads, kv=None, bias=False):
        super().__init__()
        self.heads = heads
        self.to_q, self.to_k, self.to_v = nn.Linear(dim, dim, bias=bias), nn.Linear(kv or dim, dim, bias=bias), nn.Linear(kv or dim, dim, bias=bias)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x, ctx=None):
        ctx = x if ctx is None else ctx
        b, n, c = x.shape
        q, k, v = (t.reshape(b, -1, self.heads, c // self.heads).transpose(1, 2) for t in (self.to_q(x), self.to_k(ctx), self.to_v(ctx)))
        w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(c // self.heads), dim=-1)
        return self.to_out((w @ v).transpose(1, 2).reshape(b, n, c))


class Transformer(nn.Module):
    def __init__(self, c, heads, ctx_dim):
        super().__init__()
        self.norm, self.proj_in, self.proj_out = nn.GroupNorm(32, c, eps=1e-6), nn.Linear(c, c), nn.Linear(c, c)
        self.norm1, self.attn1 = nn.LayerNorm(c), Attention(c, heads)
        self.norm2, self.attn2 = nn.LayerNorm(c), Attention(c, heads, ctx_dim)
        self.norm3, self.geglu, self.ff_out = nn.LayerNorm(c), nn.Linear(c, 8 * c), nn.Linear(4 * c, c)

    def forward(self, x, ctx):
        b, c, h, w = x.shape
        t = self.proj_in(self.norm(x).reshape(b, c, h * w).transpose(1, 2))
        t = self.attn1(self.norm1(t)) + t
        t = self.attn2(self.norm2(t), ctx) + t
        a, g = self.geglu(self.norm3(t)).chunk(2, dim=-1)
        t = self.ff_out(a * F.gelu(g)) + t
        return self.proj_out(t).transpose(1, 2).reshape(b, c, h, w) + x


class UNet(nn.Module):
    def __init__(self, ch=(320, 640, 1280, 1280), heads=(5, 10, 20, 20), cross=(True, True, True, False), ctx_dim=1024, layers=2):
        super().__init__()
        temb = ch[0] * 4
        self.ch0 = ch[0]
        self.conv_in = nn.Conv2d(4, ch[0], 3, padding=1)
        self.time = nn.Sequential(nn.Linear(ch[0], temb), nn.SiLU(), nn.Linear(temb, temb))
        self.down = nn.ModuleList()
        prev = ch[0]
        for i, c in enumerate(ch):
            blk = nn.Module()
            blk.resnets = nn.ModuleList([Resnet(prev if j == 0 else c, c, temb) for j in range(layers)])
            blk.attns = nn.ModuleList([Transformer(c, heads[i], ctx_dim) for _ in range(layers)]) if cross[i] else None
            blk.down = nn.Conv2d(c, c, 3, stride=2, padding=1) if i < len(ch) - 1 else None
            self.down.append(blk)
            prev = c
        self.mid = nn.ModuleList([Resnet(ch[-1], ch[-1], temb), Transformer(ch[-1], heads[-1], ctx_dim), Resnet(ch[-1], ch[-1], temb)])
        self.up = nn.ModuleList()
        rev, rh, rc = ch[::-1], heads[::-1], cross[::-1]
        for i, c in enumerate(rev):
            blk = nn.Module()
            prev_out, cin = rev[max(i - 1, 0)], rev[min(i + 1, len(ch) - 1)]
            blk.resnets = nn.ModuleList([Resnet((prev_out if j == 0 else c) + (cin if j == layers else c), c, temb) for j in range(layers + 1)])
            blk.attns = nn.ModuleList([Transformer(c, rh[i], ctx_dim) for _ in range(layers + 1)]) if rc[i] else None
            blk.upconv = nn.Conv2d(c, c, 3, padding=1) if i < len(ch) - 1 else None
            self.up.append(blk)
        self.norm_out, self.conv_out = gn(ch[0], 1e-5), nn.Conv2d(ch[0], 4, 3, padding=1)

    def forward(self, x, t, ctx):
        half = self.ch0 // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        args = t[:, None].float() * freqs[None]
        temb = self.time(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))
        h = self.conv_in(x)
        skips = [h]
        for blk in self.down:
            for j, r in enumerate(blk.resnets):
                h = r(h, temb)
                if blk.attns is not None:
                    h = blk.attns[j](h, ctx)
                skips.append(h)
            if blk.down is not None:
                h = blk.down(h)
                skips.append(h)
        h = self.mid[2](self.mid[1](self.mid[0](h, temb), ctx), temb)
        for blk in self.up:
            for j, r in enumerate(blk.resnets):
                h = r(torch.cat([h, skips.pop()], dim=1), temb)
                if blk.attns is not None:
                    h = blk.attns[j](h, ctx)
            if blk.upconv is not None:
                h = blk.upconv(F.interpolate(h, scale_factor=2.0, mode='nearest'))
        return self.conv_out(F.silu(self.norm_out(h)))


class VaeMid(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.r1, self.r2, self.norm, self.attn = Resnet(c, c, eps=1e-6), Resnet(c, c, eps=1e-6), gn(c, 1e-6), Attention(c, 1, bias=True)

    def forward(self, x):
        h = self.r1(x)
        b, c, hh, ww = h.shape
        t = self.attn(self.norm(h).reshape(b, c, hh * ww).transpose(1, 2))
        return self.r2(t.transpose(1, 2).reshape(b, c, hh, ww) + h)


class VAE(nn.Module):
    def __init__(self, ch=(128, 256, 512, 512), layers=2):
        super().__init__()
        self.enc_in = nn.Conv2d(3, ch[0], 3, padding=1)
        self.enc = nn.ModuleList()
        prev = ch[0]
        for i, c in enumerate(ch):
            self.enc.append(nn.ModuleList([Resnet(prev if j == 0 else c, c, eps=1e-6) for j in range(layers)] + ([nn.Conv2d(c, c, 3, stride=2)] if i < len(ch) - 1 else [])))
            prev = c
        self.enc_mid, self.enc_norm, self.enc_out = VaeMid(ch[-1]), gn(ch[-1], 1e-6), nn.Conv2d(ch[-1], 8, 3, padding=1)
        self.quant, self.post_quant = nn.Conv2d(8, 8, 1), nn.Conv2d(4, 4, 1)
        rev = ch[::-1]
        self.dec_in, self.dec_mid = nn.Conv2d(4, rev[0], 3, padding=1), VaeMid(rev[0])
        self.dec = nn.ModuleList()
        prev = rev[0]
        for i, c in enumerate(rev):
            self.dec.append(nn.ModuleList([Resnet(prev if j == 0 else c, c, eps=1e-6) for j in range(layers + 1)] + ([nn.Conv2d(c, c, 3, padding=1)] if i < len(ch) - 1 else [])))
            prev = c
        self.dec_norm, self.dec_out = gn(ch[0], 1e-6), nn.Conv2d(ch[0], 3, 3, padding=1)

    def encode(self, x):
        h = self.enc_in(x)
        for blk in self.enc:
            for m in blk:
                h = m(h) if isinstance(m, Resnet) else m(F.pad(h, (0, 1, 0, 1)))
        return self.quant(self.enc_out(F.silu(self.enc_norm(self.enc_mid(h)))))[:, :4]

    def decode(self, z):
        h = self.dec_mid(self.dec_in(self.post_quant(z)))
        for blk in self.dec:
            for m in blk:
                h = m(h) if isinstance(m, Resnet) else m(F.interpolate(h, scale_factor=2.0, mode='nearest'))
        return self.dec_out(F.silu(self.dec_norm(h)))


def timed(fn, repeats=2):
    fn()  # warm-up
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--threads', type=int, default=0)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    out = {'torch': torch.__version__, 'threads': torch.get_num_threads()}
    with torch.no_grad():
        unet = UNet().eval()
        out['unet_params_m'] = sum(x.numel() for x in unet.parameters()) / 1e6
        z, ctx = torch.randn(1, 4, 32, 32), torch.randn(1, 77, 1024)
        out['unet_32x32_s'] = timed(lambda: unet(z, torch.tensor([499]), ctx))
        del unet
        vae = VAE().eval()
        img = torch.rand(1, 3, 256, 256) * 2 - 1
        out['vae_params_m'] = sum(x.numel() for x in vae.parameters()) / 1e6
        out['vae_encode_decode_256_s'] = timed(lambda: vae.decode(vae.encode(img)))
    conv = nn.Conv2d(320, 320, 3, padding=1)
    x = torch.randn(1, 320, 64, 64, requires_grad=True)
    flops = 2 * 64 * 64 * 320 * 320 * 9
    with torch.no_grad():
        out['conv_fwd_gflops'] = flops / timed(lambda: conv(x), 5) / 1e9
    def fwd_bwd():
        conv.zero_grad(); x.grad = None
        conv(x).sum().backward()
    out['conv_fwd_bwd_gflops'] = 3 * flops / timed(fwd_bwd, 5) / 1e9
    print(json.dumps(out))


if __name__ == '__main__':
    main()
