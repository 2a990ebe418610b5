"""CT-like synthetic slices for the embedded default dataset (see :func:`medfeat.io.make_phantoms`).

Everything is drawn in Hounsfield units on a normalised grid ([-1, 1] on both axes, so the anatomy
scales with ``size``), blurred by a small point-spread function, given correlated ("textured") and
white noise, then shown through an abdominal window (centre 50 HU, width 350 HU) as uint8 — the way
MedMNIST stores its CT-derived sets.
"""

from __future__ import annotations

import numpy as np

#: Abdominal display window (centre, width) in HU used to store the slices as uint8.
WINDOW = (50.0, 350.0)
#: Noise: correlated texture (HU std, correlation length in pixels at size 64) and white noise.
TEXTURE_HU, TEXTURE_SIGMA, WHITE_HU = 5.0, 1.0, 10.0
#: Lesion contrast against its organ (HU, either sign) and radius (pixels at size 64). Tuned so
#: that a kNN on raw pixels stays near chance while a local-contrast detector reaches AUC > 0.9.
LESION_HU, LESION_RADIUS = (40.0, 70.0), (2.0, 4.0)

_AIR, _FAT, _SOFT, _LIVER, _SPLEEN, _KIDNEY, _VESSEL, _BONE, _CSF, _GAS = (
    -1000.0, -100.0, 40.0, 65.0, 50.0, 220.0, 200.0, 600.0, 15.0, -600.0)


def _ellipse(yy, xx, cy, cx, ry, rx, angle):
    """Inside-test of a rotated ellipse on the normalised grid (values <= 1 are inside)."""
    c, s = np.cos(angle), np.sin(angle)
    dy, dx = yy - cy, xx - cx
    u = (c * dx + s * dy) / rx
    v = (-s * dx + c * dy) / ry
    return u * u + v * v


def _draw_anatomy(rng, yy, xx):
    """One slice in HU without lesion or noise; masks of soft tissue (``allowed``), of the solid
    organs where lesions grow, of the bright structures (kidneys, aorta, spine), and the organ
    label map (0 elsewhere, :data:`ORGANS` codes for liver and spleen)."""
    hu = np.full(yy.shape, _AIR)
    u = rng.uniform
    cy, cx = u(-0.05, 0.05), u(-0.05, 0.05)
    by, bx, ba = u(0.58, 0.74), u(0.78, 0.94), u(-0.12, 0.12)
    body = _ellipse(yy, xx, cy, cx, by, bx, ba) <= 1
    hu[body] = _FAT + u(-15, 15)
    k = u(0.84, 0.92)
    inner = _ellipse(yy, xx, cy, cx, by * k, bx * k, ba) <= 1
    hu[inner] = _SOFT + u(-10, 10)
    # liver (patient's right = image left), spleen, kidneys, aorta, spine
    liver = (_ellipse(yy, xx, cy + u(-0.15, 0.0), cx - u(0.28, 0.42), u(0.30, 0.42), u(0.28, 0.38),
                      u(-0.5, 0.5)) <= 1) & inner
    hu[liver] = _LIVER + u(-10, 10)
    spleen = (_ellipse(yy, xx, cy + u(-0.1, 0.1), cx + u(0.40, 0.55), u(0.12, 0.2), u(0.08, 0.14),
                       u(-0.6, 0.6)) <= 1) & inner
    hu[spleen] = _SPLEEN + u(-10, 10)
    organs = liver | spleen
    kidneys = np.zeros(yy.shape, dtype=bool)
    for side in (-1.0, 1.0):
        kid = (_ellipse(yy, xx, cy + u(0.18, 0.32), cx + side * u(0.26, 0.36), u(0.11, 0.16),
                        u(0.07, 0.11), side * u(0.2, 0.6)) <= 1) & inner
        hu[kid] = _KIDNEY + u(-20, 20)
        kidneys |= kid
    sy, sx = cy + u(0.36, 0.46), cx + u(-0.04, 0.04)
    vessel = (_ellipse(yy, xx, sy - u(0.18, 0.24), sx + u(0.04, 0.1), 0.06, 0.06, 0) <= u(0.7, 1.2)
              ) & inner
    hu[vessel] = _VESSEL + u(-20, 20)
    rs = u(0.10, 0.13)
    spine = _ellipse(yy, xx, sy, sx, rs, rs * u(0.9, 1.2), 0) <= 1
    hu[spine] = _BONE + u(-150, 150)
    hu[_ellipse(yy, xx, sy - 0.02, sx, 0.04, 0.04, 0) <= 1] = _CSF
    # bowel: fluid-filled or gas-filled loops in the anterior abdomen
    bowel = np.zeros(yy.shape, dtype=bool)
    for _ in range(rng.integers(2, 5)):
        loop = (_ellipse(yy, xx, cy + u(-0.45, 0.1), cx + u(-0.25, 0.35), u(0.11, 0.18),
                         u(0.12, 0.22), u(0, np.pi)) <= 1) & inner & ~organs & ~kidneys
        hu[loop] = _GAS if u() < 0.35 else u(0, 20)
        bowel |= loop
    bright = kidneys | vessel | spine
    solid = organs & ~bright & ~bowel
    allowed = inner & ~bright & ~bowel
    label_map = np.zeros(yy.shape, dtype=np.uint8)   # what is drawn last is what shows
    label_map[liver & ~spleen] = ORGANS["liver"]
    label_map[spleen] = ORGANS["spleen"]
    label_map[bright | bowel] = 0
    return hu, allowed, solid, bright, label_map


def _lesion(rng, yy, xx, allowed, organs, bright, pixel, scale):
    """Mask and HU offset of a small ellipse lying wholly inside the liver or spleen."""
    from scipy import ndimage

    r = rng.uniform(*LESION_RADIUS) * scale * pixel
    margin = int(np.ceil(r / pixel)) + 2  # the whole lesion lies inside the organ, off its border
    # away from bright structures too: a lesion is read against the organ around it
    clear = ~ndimage.binary_dilation(bright, iterations=margin + 3)
    where = ndimage.binary_erosion(organs & allowed, iterations=margin) & clear
    if not where.any():
        where = ndimage.binary_erosion(allowed, iterations=margin)
    if not where.any():
        where = allowed
    idx = np.flatnonzero(where)
    k = idx[rng.integers(idx.size)]
    cy, cx = yy.flat[k], xx.flat[k]
    ratio = rng.uniform(0.6, 1.0)
    mask = _ellipse(yy, xx, cy, cx, r * ratio, r, rng.uniform(0, np.pi)) <= 1
    sign = -1.0 if rng.uniform() < 0.6 else 1.0  # hypodense lesions are the commoner kind
    return mask & allowed, sign * rng.uniform(*LESION_HU)


def _half_labels(n, seed):
    """0/1 labels of ``n`` images in random order, exactly half of them 1 (a lesion)."""
    labels = np.zeros(n, dtype=np.int64)
    labels[n // 2:] = 1
    return np.random.default_rng(seed).permutation(labels)


def _windowed(hu):
    """Hounsfield units shown through :data:`WINDOW` as uint8, the way the phantoms are stored."""
    c, w = WINDOW
    return np.round(np.clip((hu - (c - w / 2)) / w, 0, 1) * 255).astype(np.uint8)


#: Codes of the organ label map (0 is everything else).
ORGANS = {"liver": 1, "spleen": 2}


def make_slices(n, size, seed, *, organs=False):
    """``n`` uint8 slices of ``size``×``size``, their 0/1 labels and lesion masks (and, with
    ``organs=True``, the organ label maps ``(n, size, size)`` uint8 of :data:`ORGANS`; the slices
    are the same either way)."""
    from scipy import ndimage

    label_seed, noise_seed, *image_seeds = np.random.SeedSequence(seed).spawn(n + 2)
    labels = _half_labels(n, label_seed)

    grid = (np.arange(size) + 0.5) / size * 2 - 1
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    pixel = 2.0 / size  # one pixel in normalised units
    scale = size / 64.0  # blur and texture follow the anatomy when size changes

    hu = np.empty((n, size, size))
    masks = np.zeros((n, size, size), dtype=bool)
    organ_maps = np.zeros((n, size, size), dtype=np.uint8)
    noise = np.empty((n, size, size))
    for i, ss in enumerate(image_seeds):
        rng = np.random.default_rng(ss)
        img, allowed, solid, bright, organ_maps[i] = _draw_anatomy(rng, yy, xx)
        if labels[i]:
            m, contrast = _lesion(rng, yy, xx, allowed, solid, bright, pixel, scale)
            img[m] += contrast
            masks[i] = m
        hu[i] = img
        noise[i] = rng.standard_normal((size, size))
    hu = ndimage.gaussian_filter(hu, sigma=(0, 0.7 * scale, 0.7 * scale))
    sigma = TEXTURE_SIGMA * scale
    texture = ndimage.gaussian_filter(noise, sigma=(0, sigma, sigma))
    texture /= texture.std(axis=(1, 2), keepdims=True)
    white = np.random.default_rng(noise_seed).standard_normal(hu.shape)
    hu += TEXTURE_HU * texture + WHITE_HU * white
    out = _windowed(hu)
    return (out, labels, masks, organ_maps) if organs else (out, labels, masks)


def make_volumes(n, shape, seed):
    """``n`` uint8 volumes of ``shape`` ``(D, H, W)`` (``H == W``), their 0/1 labels and lesion
    masks. Each volume is a stack of axial slices of one abdomen: the slice of
    :func:`_draw_anatomy` drawn with the same random numbers on a grid that widens towards both
    ends (the cross-section shrinks by up to 15 %), so organs continue from slice to slice.
    Label 1 carries one ellipsoid lesion in the liver or spleen: its in-plane centre and radius
    from :func:`_lesion` on a central slice, 1 to 2 slices of half-height; blur and correlated
    noise are 3-D."""
    from scipy import ndimage

    depth, size = int(shape[0]), int(shape[1])
    label_seed, noise_seed, *volume_seeds = np.random.SeedSequence(seed).spawn(n + 2)
    labels = _half_labels(n, label_seed)

    grid = (np.arange(size) + 0.5) / size * 2 - 1
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    pixel = 2.0 / size
    scale = size / 64.0
    half = max((depth - 1) / 2.0, 1.0)
    shrink = 1.0 - 0.15 * ((np.arange(depth) - (depth - 1) / 2.0) / half) ** 2

    hu = np.empty((n, depth, size, size))
    masks = np.zeros((n, depth, size, size), dtype=bool)
    for i, ss in enumerate(volume_seeds):
        anatomy_seed, lesion_seed = ss.spawn(2)
        allowed = solid = bright = None
        for z in range(depth):
            rng = np.random.default_rng(anatomy_seed)      # the same abdomen on every slice
            img, a, s, b, _ = _draw_anatomy(rng, yy / shrink[z], xx / shrink[z])
            hu[i, z] = img
            if z == depth // 2:
                allowed, solid, bright = a, s, b
        if labels[i]:
            rng = np.random.default_rng(lesion_seed)
            disc, contrast = _lesion(rng, yy, xx, allowed, solid, bright, pixel, scale)
            if disc.any():
                cy, cx = (np.mean(v[disc]) for v in (yy, xx))
                r = np.sqrt(disc.sum() / np.pi) * pixel
                rz = rng.uniform(1.0, 2.0) * max(depth / 16.0, 0.5)
                z0 = depth // 2 + int(rng.integers(-(depth // 8), depth // 8 + 1))
                for z in range(depth):
                    f = 1.0 - ((z - z0) / rz) ** 2
                    if f <= 0:
                        continue
                    m = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r * f
                    hu[i, z][m] += contrast
                    masks[i, z] = m
    hu = ndimage.gaussian_filter(hu, sigma=(0, 0.5, 0.7 * scale, 0.7 * scale))
    rng = np.random.default_rng(noise_seed)
    sigma = TEXTURE_SIGMA * scale
    texture = ndimage.gaussian_filter(rng.standard_normal(hu.shape), sigma=(0, sigma, sigma, sigma))
    texture /= texture.std(axis=(1, 2, 3), keepdims=True)
    hu += TEXTURE_HU * texture + WHITE_HU * rng.standard_normal(hu.shape)
    return _windowed(hu), labels, masks
