"""PSNR/SSIM reference values from scikit-image for the golden PNG pairs, for test/skimage-vectors.json.

Regenerate (Debian 12: apt-get install python3-skimage):
    /usr/bin/python3 packages/metrics/scripts/skimage_vectors.py ../shared/golden > packages/metrics/test/skimage-vectors.json
"""
import json
import sys
from pathlib import Path

import numpy as np
import skimage
from PIL import Image
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

golden = Path(sys.argv[1])


def load(path):
    return np.asarray(Image.open(path).convert("RGB"))


def cropped(a, border):
    return a[border:a.shape[0] - border, border:a.shape[1] - border] if border else a


def wang_ssim(a, b, channel_axis=None):
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=255, channel_axis=channel_axis)


pairs = []
images = golden / "dists-lpips" / "images"
for size, distortions in [("s64", ["noise", "blur3x3", "jpeg_q15"]), ("s96x128", ["noise", "contrast", "jpeg_q15"])]:
    for d in distortions:
        pairs.append((f"dists-lpips/images/{size}_ref.png", f"dists-lpips/images/{size}_{d}.png"))
for name in ["grad_noise_w64_h48", "odd_w37_h53", "natural_w128_h128"]:
    for q in [10, 50, 90]:
        pairs.append((f"jpeg/images/{name}.png", f"jpeg/decoded/{name}/pil_q{q}_djpeg.png"))

rows = []
for ref_path, test_path in pairs:
    ref, test = load(golden / ref_path), load(golden / test_path)
    for border in [0, 4]:
        r, t = cropped(ref, border), cropped(test, border)
        # rgb2ycbcr on uint8 scales to [0, 1] first: Y = 16 + 65.481 R + 128.553 G + 24.966 B, unrounded.
        ry, ty = rgb2ycbcr(r)[..., 0], rgb2ycbcr(t)[..., 0]
        rows.append({
            "reference": ref_path,
            "test": test_path,
            "crop": border,
            "psnr_rgb": peak_signal_noise_ratio(r, t, data_range=255),
            "psnr_y": peak_signal_noise_ratio(ry, ty, data_range=255),
            "ssim_y": wang_ssim(ry, ty),
            "ssim_rgb": wang_ssim(r.astype(np.float64), t.astype(np.float64), channel_axis=2),
        })

json.dump({
    "generator": "packages/metrics/scripts/skimage_vectors.py",
    "command": "/usr/bin/python3 packages/metrics/scripts/skimage_vectors.py ../shared/golden > packages/metrics/test/skimage-vectors.json",
    "scikit_image": skimage.__version__,
    "ssim_call": "structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)",
    "rows": rows,
}, sys.stdout, indent=1)
print()
