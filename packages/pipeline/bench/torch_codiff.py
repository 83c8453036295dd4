"""CODiff's restore in plain PyTorch (CPU), for timing against @codiff/pipeline on the same architecture and weights.

diffusers cannot be installed on this machine (not in Debian, no PyPI), so the SD 2.1 UNet and VAE are written here
from diffusers' documented architecture (UNet2DConditionModel with linear-projection transformers, AutoencoderKL),
with diffusers' parameter names so that one diffusers model folder loads into both implementations. It is checked
against ../shared/golden (unet-tiny, vae-tiny) before it is timed. Run with Debian's python3-torch:

  /usr/bin/python3 bench/torch_codiff.py check-golden ../../../shared/golden
  /usr/bin/python3 bench/torch_codiff.py make-model .bench/sd21-random        # SD 2.1-base shapes, seeded weights
  /usr/bin/python3 bench/torch_codiff.py restore .bench/sd21-random --size 512 --threads 2 [--save out.rgb] [--device cuda --repeat 3]

`restore` prints one JSON line (seconds, seconds per megapixel, stage times, peak RSS) and can save the restored
image (raw 8-bit RGB, HWC) to compare with ours.
"""
import argparse, json, math, os, resource, struct, sys, time
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------- safetensors (the package is not in Debian)
DTYPES = {'F32': (np.float32, torch.float32), 'F64': (np.float64, torch.float64), 'F16': (np.float16, torch.float16), 'I64': (np.int64, torch.int64)}


def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == '__metadata__':
            continue
        a, b = v['data_offsets']
        out[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype=DTYPES[v['dtype']][0]).reshape(v['shape']).copy())
    return out


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for k, t in tensors.items():
        dtype = 'I64' if t.dtype == torch.int64 else 'F32'
        b = t.detach().contiguous().to(DTYPES[dtype][1]).numpy().tobytes()
        header[k] = {'dtype': dtype, 'shape': list(t.shape), 'data_offsets': [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b' ' * (-len(h) % 8)
    with open(path + '.part', 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h)
        for b in blobs:
            f.write(b)
    os.replace(path + '.part', path)


# ---------------------------------------------------------------- shared blocks (diffusers names)
class ResnetBlock2D(nn.Module):
    def __init__(self, cin, cout, groups, eps, temb=None):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        if temb:
            self.time_emb_proj = nn.Linear(temb, cout)
        self.norm2 = nn.GroupNorm(groups, cout, eps)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.conv_shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x, temb=None):
        h = self.conv1(F.silu(self.norm1(x)))
        if temb is not None:
            h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.conv_shortcut(x) if hasattr(self, 'conv_shortcut') else x) + h


def attention(q, k, v, heads):
    """Scaled dot-product attention over [B, N, C] with `heads` heads (torch 1.13 has no fused kernel)."""
    b, n, c = q.shape
    d = c // heads
    split = lambda t: t.reshape(b, t.shape[1], heads, d).transpose(1, 2).reshape(b * heads, t.shape[1], d)
    q, k, v = split(q), split(k), split(v)
    w = (torch.bmm(q, k.transpose(1, 2)) / math.sqrt(d)).softmax(-1)
    return torch.bmm(w, v).reshape(b, heads, n, d).transpose(1, 2).reshape(b, n, c)


class Attention(nn.Module):
    def __init__(self, c, heads, context=None, bias=False):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(c, c, bias=bias)
        self.to_k = nn.Linear(context or c, c, bias=bias)
        self.to_v = nn.Linear(context or c, c, bias=bias)
        self.to_out = nn.ModuleList([nn.Linear(c, c)])

    def forward(self, x, context=None):
        ctx = x if context is None else context
        return self.to_out[0](attention(self.to_q(x), self.to_k(ctx), self.to_v(ctx), self.heads))


class GEGLU(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.proj = nn.Linear(c, 8 * c)

    def forward(self, x):
        h, gate = self.proj(x).chunk(2, dim=-1)
        return h * F.gelu(gate)


class BasicTransformerBlock(nn.Module):
    def __init__(self, c, heads, context):
        super().__init__()
        self.norm1, self.attn1 = nn.LayerNorm(c), Attention(c, heads)
        self.norm2, self.attn2 = nn.LayerNorm(c), Attention(c, heads, context)
        self.norm3 = nn.LayerNorm(c)
        self.ff = nn.Module()
        self.ff.net = nn.ModuleList([GEGLU(c), nn.Identity(), nn.Linear(4 * c, c)])

    def forward(self, x, context):
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), context) + x
        return self.ff.net[2](self.ff.net[0](self.norm3(x))) + x


class Transformer2DModel(nn.Module):
    """use_linear_projection=True (SD 2.x), one transformer layer."""

    def __init__(self, c, heads, context, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, c, 1e-6)
        self.proj_in = nn.Linear(c, c)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(c, heads, context)])
        self.proj_out = nn.Linear(c, c)

    def forward(self, x, context):
        b, c, h, w = x.shape
        t = self.proj_in(self.norm(x).permute(0, 2, 3, 1).reshape(b, h * w, c))
        t = self.proj_out(self.transformer_blocks[0](t, context))
        return t.reshape(b, h, w, c).permute(0, 3, 1, 2) + x


class Downsample2D(nn.Module):
    def __init__(self, c, padding):
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=padding)

    def forward(self, x):
        # The VAE's downsampler pads right and bottom only (padding 0 plus F.pad), the UNet's pads 1 all round.
        return self.conv(F.pad(x, (0, 1, 0, 1)) if self.padding == 0 else x)


class Upsample2D(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode='nearest'))


def heads_of(config, i):
    a = config['attention_head_dim']
    return a[i] if isinstance(a, list) else a


# ---------------------------------------------------------------- UNet2DConditionModel (the SD 2.x subset)
class UNet2DConditionModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ch, g, eps, ctx, lpb = cfg['block_out_channels'], cfg['norm_num_groups'], cfg['norm_eps'], cfg['cross_attention_dim'], cfg['layers_per_block']
        temb = 4 * ch[0]
        self.cfg = cfg
        self.conv_in = nn.Conv2d(cfg['in_channels'], ch[0], 3, padding=1)
        self.time_embedding = nn.Module()
        self.time_embedding.linear_1 = nn.Linear(ch[0], temb)
        self.time_embedding.linear_2 = nn.Linear(temb, temb)
        self.down_blocks = nn.ModuleList()
        cin = ch[0]
        for i, kind in enumerate(cfg['down_block_types']):
            blk = nn.Module()
            blk.resnets = nn.ModuleList([ResnetBlock2D(cin if j == 0 else ch[i], ch[i], g, eps, temb) for j in range(lpb)])
            if kind.startswith('CrossAttn'):
                blk.attentions = nn.ModuleList([Transformer2DModel(ch[i], heads_of(cfg, i), ctx, g) for _ in range(lpb)])
            if i < len(ch) - 1:
                blk.downsamplers = nn.ModuleList([Downsample2D(ch[i], 1)])
            self.down_blocks.append(blk)
            cin = ch[i]
        self.mid_block = nn.Module()
        self.mid_block.resnets = nn.ModuleList([ResnetBlock2D(ch[-1], ch[-1], g, eps, temb) for _ in range(2)])
        self.mid_block.attentions = nn.ModuleList([Transformer2DModel(ch[-1], heads_of(cfg, len(ch) - 1), ctx, g)])
        rch = list(reversed(ch))
        self.up_blocks = nn.ModuleList()
        prev = ch[-1]
        for i, kind in enumerate(cfg['up_block_types']):
            out, skip_in = rch[i], rch[min(i + 1, len(ch) - 1)]
            blk = nn.Module()
            blk.resnets = nn.ModuleList([ResnetBlock2D((prev if j == 0 else out) + (skip_in if j == lpb else out), out, g, eps, temb) for j in range(lpb + 1)])
            if kind.startswith('CrossAttn'):
                blk.attentions = nn.ModuleList([Transformer2DModel(out, heads_of(cfg, len(ch) - 1 - i), ctx, g) for _ in range(lpb + 1)])
            if i < len(ch) - 1:
                blk.upsamplers = nn.ModuleList([Upsample2D(out)])
            self.up_blocks.append(blk)
            prev = out
        self.conv_norm_out = nn.GroupNorm(g, ch[0], eps)
        self.conv_out = nn.Conv2d(ch[0], cfg['out_channels'], 3, padding=1)

    def time_proj(self, t):
        half = self.cfg['block_out_channels'][0] // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / (half - self.cfg['freq_shift']))
        e = t.float()[:, None] * freqs[None]
        e = torch.cat([e.sin(), e.cos()], -1)
        return torch.cat([e[:, half:], e[:, :half]], -1) if self.cfg['flip_sin_to_cos'] else e

    def forward(self, x, t, context):
        te = self.time_embedding.linear_2(F.silu(self.time_embedding.linear_1(self.time_proj(t))))
        h = self.conv_in(x)
        skips = [h]
        for blk in self.down_blocks:
            for j, r in enumerate(blk.resnets):
                h = r(h, te)
                if hasattr(blk, 'attentions'):
                    h = blk.attentions[j](h, context)
                skips.append(h)
            if hasattr(blk, 'downsamplers'):
                h = blk.downsamplers[0](h)
                skips.append(h)
        h = self.mid_block.attentions[0](self.mid_block.resnets[0](h, te), context)
        h = self.mid_block.resnets[1](h, te)
        for blk in self.up_blocks:
            for j, r in enumerate(blk.resnets):
                h = r(torch.cat([h, skips.pop()], 1), te)
                if hasattr(blk, 'attentions'):
                    h = blk.attentions[j](h, context)
            if hasattr(blk, 'upsamplers'):
                h = blk.upsamplers[0](h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


# ---------------------------------------------------------------- AutoencoderKL
class VaeAttention(nn.Module):
    def __init__(self, c, g):
        super().__init__()
        self.group_norm = nn.GroupNorm(g, c, 1e-6)
        self.to_q, self.to_k, self.to_v = nn.Linear(c, c), nn.Linear(c, c), nn.Linear(c, c)
        self.to_out = nn.ModuleList([nn.Linear(c, c)])

    def forward(self, x):
        b, c, h, w = x.shape
        t = self.group_norm(x).reshape(b, c, h * w).transpose(1, 2)
        t = self.to_out[0](attention(self.to_q(t), self.to_k(t), self.to_v(t), 1))
        return t.transpose(1, 2).reshape(b, c, h, w) + x


def vae_mid(c, g):
    m = nn.Module()
    m.resnets = nn.ModuleList([ResnetBlock2D(c, c, g, 1e-6) for _ in range(2)])
    m.attentions = nn.ModuleList([VaeAttention(c, g)])
    return m


def run_mid(m, x):
    return m.resnets[1](m.attentions[0](m.resnets[0](x)))


class AutoencoderKL(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ch, g, lpb, lat = cfg['block_out_channels'], cfg['norm_num_groups'], cfg['layers_per_block'], cfg['latent_channels']
        self.cfg = cfg
        e = self.encoder = nn.Module()
        e.conv_in = nn.Conv2d(cfg['in_channels'], ch[0], 3, padding=1)
        e.down_blocks = nn.ModuleList()
        for i in range(len(ch)):
            blk = nn.Module()
            blk.resnets = nn.ModuleList([ResnetBlock2D(ch[max(i - 1, 0)] if j == 0 else ch[i], ch[i], g, 1e-6) for j in range(lpb)])
            if i < len(ch) - 1:
                blk.downsamplers = nn.ModuleList([Downsample2D(ch[i], 0)])
            e.down_blocks.append(blk)
        e.mid_block = vae_mid(ch[-1], g)
        e.conv_norm_out = nn.GroupNorm(g, ch[-1], 1e-6)
        e.conv_out = nn.Conv2d(ch[-1], 2 * lat, 3, padding=1)
        self.quant_conv = nn.Conv2d(2 * lat, 2 * lat, 1)
        self.post_quant_conv = nn.Conv2d(lat, lat, 1)
        d = self.decoder = nn.Module()
        d.conv_in = nn.Conv2d(lat, ch[-1], 3, padding=1)
        d.mid_block = vae_mid(ch[-1], g)
        rch = list(reversed(ch))
        d.up_blocks = nn.ModuleList()
        for i in range(len(ch)):
            blk = nn.Module()
            blk.resnets = nn.ModuleList([ResnetBlock2D(rch[max(i - 1, 0)] if j == 0 else rch[i], rch[i], g, 1e-6) for j in range(lpb + 1)])
            if i < len(ch) - 1:
                blk.upsamplers = nn.ModuleList([Upsample2D(rch[i])])
            d.up_blocks.append(blk)
        d.conv_norm_out = nn.GroupNorm(g, ch[0], 1e-6)
        d.conv_out = nn.Conv2d(ch[0], cfg['out_channels'], 3, padding=1)

    def moments(self, x):
        e = self.encoder
        h = e.conv_in(x)
        for blk in e.down_blocks:
            for r in blk.resnets:
                h = r(h)
            if hasattr(blk, 'downsamplers'):
                h = blk.downsamplers[0](h)
        h = e.conv_out(F.silu(e.conv_norm_out(run_mid(e.mid_block, h))))
        return self.quant_conv(h)

    def decode(self, z):
        d = self.decoder
        h = run_mid(d.mid_block, d.conv_in(self.post_quant_conv(z)))
        for blk in d.up_blocks:
            for r in blk.resnets:
                h = r(h)
            if hasattr(blk, 'upsamplers'):
                h = blk.upsamplers[0](h)
        return d.conv_out(F.silu(d.conv_norm_out(h)))


# ---------------------------------------------------------------- CaVE (official key names; BN in eval mode)
def cave_res(c):
    m = nn.Module()
    m.res = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c, eps=1e-4), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1))
    return m


class CaVE(nn.Module):
    """The whole official module tree (so its state dict is complete); only the embedding path runs here."""

    def __init__(self, nc=(64, 128, 256, 512), nb=4):
        super().__init__()
        self.m_head = nn.Conv2d(3, nc[0], 3, padding=1)
        for i, k in ((1, 2), (2, 4), (3, 4)):
            setattr(self, f'm_down{i}', nn.Sequential(*[cave_res(nc[i - 1]) for _ in range(nb)], nn.Conv2d(nc[i - 1], nc[i], k, stride=k)))
        self.m_body_encoder = nn.Sequential(*[cave_res(nc[3]) for _ in range(nb)])
        self.qf_pred = nn.Sequential(*[cave_res(nc[3]) for _ in range(nb)], nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                     nn.Linear(nc[3], nc[3]), nn.ReLU(), nn.Linear(nc[3], nc[3]), nn.ReLU(), nn.Linear(nc[3], 1), nn.Sigmoid())
        self.m_body_decoder = nn.Sequential(*[cave_res(nc[3]) for _ in range(nb)])
        for i, k in ((3, 4), (2, 4), (1, 2)):
            setattr(self, f'm_up{i}', nn.Sequential(nn.ConvTranspose2d(nc[i], nc[i - 1], k, stride=k), *[cave_res(nc[i - 1]) for _ in range(nb)]))
        self.m_tail = nn.Conv2d(nc[0], 3, 3, padding=1)

    def tokens(self, x01):
        h = self.m_head(x01)
        for stage in (self.m_down1, self.m_down2, self.m_down3, self.m_body_encoder):
            for layer in stage:
                h = h + layer.res(h) if hasattr(layer, 'res') else layer(h)
        return h.flatten(2).transpose(1, 2)


# ---------------------------------------------------------------- the model folder (diffusers layout + CODiff parts)
SD21_BASE_UNET = {
    '_class_name': 'UNet2DConditionModel', 'in_channels': 4, 'out_channels': 4, 'block_out_channels': [320, 640, 1280, 1280],
    'layers_per_block': 2, 'attention_head_dim': [5, 10, 20, 20], 'cross_attention_dim': 1024, 'norm_num_groups': 32, 'norm_eps': 1e-5,
    'use_linear_projection': True, 'upcast_attention': False, 'flip_sin_to_cos': True, 'freq_shift': 0, 'sample_size': 64, 'act_fn': 'silu',
    'down_block_types': ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
    'up_block_types': ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'], 'mid_block_type': 'UNetMidBlock2DCrossAttn',
    'center_input_sample': False, 'downsample_padding': 1, 'mid_block_scale_factor': 1, 'transformer_layers_per_block': 1, 'dual_cross_attention': False,
    'only_cross_attention': False, 'resnet_time_scale_shift': 'default', 'time_embedding_type': 'positional', 'conv_in_kernel': 3, 'conv_out_kernel': 3,
}
SD21_BASE_VAE = {
    '_class_name': 'AutoencoderKL', 'in_channels': 3, 'out_channels': 3, 'block_out_channels': [128, 256, 512, 512], 'layers_per_block': 2,
    'latent_channels': 4, 'norm_num_groups': 32, 'scaling_factor': 0.18215, 'sample_size': 768, 'act_fn': 'silu',
    'down_block_types': ['DownEncoderBlock2D'] * 4, 'up_block_types': ['UpDecoderBlock2D'] * 4,
}


def make_model(folder, seed):
    """SD 2.1-base shapes with seeded torch-default weights (GroupNorm/LayerNorm and BN statistics perturbed so no
    layer is an identity), the official CaVE, and CODiff's `proj` (Linear 512 → 1024)."""
    torch.manual_seed(seed)
    parts = {'unet': (UNet2DConditionModel(SD21_BASE_UNET), SD21_BASE_UNET), 'vae': (AutoencoderKL(SD21_BASE_VAE), SD21_BASE_VAE)}
    cave, proj = CaVE(), nn.Linear(512, 1024)
    with torch.no_grad():
        for m in [p[0] for p in parts.values()] + [cave]:
            for mod in m.modules():
                if isinstance(mod, (nn.GroupNorm, nn.LayerNorm, nn.BatchNorm2d)):
                    mod.weight.normal_(1, 0.1)
                    mod.bias.normal_(0, 0.05)
                if isinstance(mod, nn.BatchNorm2d):
                    mod.running_mean.normal_(0, 0.1)
                    mod.running_var.uniform_(0.5, 1.5)
    for name, (model, config) in parts.items():
        os.makedirs(os.path.join(folder, name), exist_ok=True)
        with open(os.path.join(folder, name, 'config.json'), 'w') as f:
            json.dump(config, f, indent=1)
        write_safetensors(os.path.join(folder, name, 'diffusion_pytorch_model.safetensors'), model.state_dict())
    write_safetensors(os.path.join(folder, 'cave.safetensors'), cave.state_dict())
    write_safetensors(os.path.join(folder, 'proj.safetensors'), proj.state_dict())


def load_model(folder):
    unet = UNet2DConditionModel(json.load(open(os.path.join(folder, 'unet', 'config.json'))))
    vae = AutoencoderKL(json.load(open(os.path.join(folder, 'vae', 'config.json'))))
    cave, proj = CaVE(), nn.Linear(512, 1024)
    unet.load_state_dict(read_safetensors(os.path.join(folder, 'unet', 'diffusion_pytorch_model.safetensors')))
    vae.load_state_dict(read_safetensors(os.path.join(folder, 'vae', 'diffusion_pytorch_model.safetensors')))
    cave.load_state_dict(read_safetensors(os.path.join(folder, 'cave.safetensors')))
    proj.load_state_dict(read_safetensors(os.path.join(folder, 'proj.safetensors')))
    return unet.eval(), vae.eval(), cave.eval(), proj.eval()


# ---------------------------------------------------------------- the restore (an image that needs no tiling)
def alphas_cumprod_at(t, steps=1000):
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, steps, dtype=torch.float32) ** 2
    return torch.cumprod(1 - betas, 0)[t]


@torch.no_grad()
def restore(models, lq01, stages):
    """lq01: [1, 3, H, W] in [0, 1], H and W multiples of 8. Returns the 8-bit result, [1, 3, H, W]."""
    unet, vae, cave, proj = models
    cuda = lq01.device.type == 'cuda'
    tick = time.perf_counter()

    def mark(stage):
        nonlocal tick
        if cuda:
            torch.cuda.synchronize()
        now = time.perf_counter()
        stages[stage] = round(now - tick, 2)
        tick = now

    context = proj(cave.tokens(lq01))
    mark('conditioning')
    z = vae.moments(lq01 * 2 - 1)[:, :4] * vae.cfg['scaling_factor']
    mark('encode')
    eps = unet(z, torch.tensor([499], device=lq01.device), context)
    mark('unet')
    ab = alphas_cumprod_at(499).to(lq01.device)
    x0 = (z - (1 - ab).sqrt() * eps) / ab.sqrt()
    decoded = vae.decode(x0 / vae.cfg['scaling_factor']).clamp(-1, 1)
    mark('decode')
    # The official uint8 path with the AdaIN colour fix: truncate to 8 bits, take the JPEG's per-channel mean and
    # std (unbiased variance + 1e-5), clamp, truncate again.
    first = ((decoded * 0.5 + 0.5) * 255).floor() / 255
    mean = lambda t: t.mean((2, 3), keepdim=True)
    std = lambda t: (t.var((2, 3), keepdim=True, unbiased=True) + 1e-5).sqrt()
    fixed = (((first - mean(first)) / std(first) * std(lq01) + mean(lq01)).clamp(0, 1) * 255).floor().to(torch.uint8)
    mark('colorfix')
    return fixed


def test_image(size):
    """The same smooth pattern with edges as bench/restore-sd.ts, HWC uint8."""
    i = np.arange(size * size * 3)
    p, c = i // 3, i % 3
    x, y = p % size, p // size
    v = (128 + 100 * np.sin(x / 17 + c) * np.cos(y / 23) + ((x >> 5) + (y >> 5)) % 2 * 20).astype(np.int64) & 255
    return v.astype(np.uint8).reshape(size, size, 3)


# ---------------------------------------------------------------- golden check
def check_golden(golden):
    worst = {}
    u = UNet2DConditionModel(json.load(open(f'{golden}/unet-tiny/config.json')))
    u.load_state_dict(read_safetensors(f'{golden}/unet-tiny/weights.safetensors'))
    cases = read_safetensors(f'{golden}/unet-tiny/cases.safetensors')
    for c in ('caseA', 'caseB'):
        with torch.no_grad():
            out = u(cases[f'{c}.sample'], cases[f'{c}.timestep'], cases[f'{c}.encoder_hidden_states'])
        ref = cases[f'{c}.out']
        worst[f'unet {c}'] = float((out - ref).abs().max() / ref.abs().max())
    v = AutoencoderKL(json.load(open(f'{golden}/vae-tiny/config.json')))
    v.load_state_dict(read_safetensors(f'{golden}/vae-tiny/weights.safetensors'))
    cases = read_safetensors(f'{golden}/vae-tiny/cases.safetensors')
    for c in sorted({k.split('.')[0] for k in cases if k.endswith('.x')}):
        with torch.no_grad():
            m = v.moments(cases[f'{c}.x'])
            recon = v.decode(m[:, :4])
        for name, got in (('moments', m), ('recon', recon)):
            ref = cases[f'{c}.{name}']
            worst[f'vae {c} {name}'] = float((got - ref).abs().max() / ref.abs().max())
    print(json.dumps({'maxAbsErrorOverMaxRef': worst}))
    if max(worst.values()) > 1e-4:
        sys.exit('the PyTorch port does not match the diffusers goldens (tolerance 1e-4 of max|ref|)')


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest='cmd', required=True)
    g = sub.add_parser('check-golden')
    g.add_argument('golden')
    mk = sub.add_parser('make-model')
    mk.add_argument('folder')
    mk.add_argument('--seed', type=int, default=2026)
    r = sub.add_parser('restore')
    r.add_argument('folder')
    r.add_argument('--size', type=int, default=512)
    r.add_argument('--threads', type=int, default=2)
    r.add_argument('--save', help='write the restored image as raw 8-bit RGB')
    r.add_argument('--device', default='cpu', help="cpu, or cuda on a GPU machine")
    r.add_argument('--repeat', type=int, default=1, help='restores in a row, each reported (the first includes warm-up)')
    a = p.parse_args()
    if a.cmd == 'check-golden':
        return check_golden(a.golden)
    if a.cmd == 'make-model':
        return make_model(a.folder, a.seed)
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    models = [m.to(a.device) for m in load_model(a.folder)]
    load = time.perf_counter() - t0
    lq = (torch.from_numpy(test_image(a.size)).permute(2, 0, 1)[None].float() / 255).to(a.device)
    for run in range(a.repeat):
        stages = {}
        t0 = time.perf_counter()
        fixed = restore(models, lq, stages)
        seconds = time.perf_counter() - t0
        if a.save:
            fixed[0].permute(1, 2, 0).contiguous().cpu().numpy().tofile(a.save)
        print(json.dumps({'backend': f'torch-{a.device}', 'torch': torch.__version__, 'threads': a.threads, 'size': a.size, 'run': run + 1,
                          'loadSeconds': round(load, 1), 'restoreSeconds': round(seconds, 3), 'secondsPerMegapixel': round(seconds / (a.size * a.size / 1e6), 3),
                          'stageSeconds': stages, 'peakRssMiB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}), flush=True)


if __name__ == '__main__':
    main()
