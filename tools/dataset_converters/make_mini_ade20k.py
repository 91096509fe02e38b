"""Make the bundled mini ADE20K-format semantic segmentation set.

The set is small enough to live in the repository and to train the demo
configs (``configs/seg/*_demo.py``, dataset type ``MiniADE20KDataset``) on a
CPU in minutes::

    python tools/dataset_converters/make_mini_ade20k.py [--out data/mini_ade]
        [--seed 0] [--check]

Layout (that of ``ADEChallengeData2016``, relative to ``--out``)::

    images/training/ADE_train_00000001.jpg ...        (24 images)
    images/validation/ADE_val_00000001.jpg ...        (8 images)
    annotations/training/ADE_train_00000001.png ...   (same stems)
    annotations/validation/ADE_val_00000001.png ...

Classes and label convention (as ADE20K, read with
``reduce_zero_label=True``): the annotation PNGs are single-channel uint8
('L') with the image's height and width, where

    ======  ===========  ============  ========================================
    PNG     class index  name          region
    ======  ===========  ============  ========================================
    0       255 (ignore) --            2-px band on every region boundary, and
                                       a small rectangle in every third image
    1       0            background    the photo itself
    2       1            circle        disc (red, gravel texture)
    3       2            square        rotated square (blue, brick texture)
    4       3            triangle      rotated triangle (green, grass texture)
    5       4            stripes       rotated ellipse filled with stripes of
                                       two random colours
    ======  ===========  ============  ========================================

``reduce_zero_label`` maps PNG value ``v`` to class ``v - 1`` and 0 to the
ignore index 255.

How the images are made: each background is a random crop of a photo that
ships inside scikit-image (``skimage.data``: astronaut, coffee, chelsea,
rocket, immunohistochemistry, hubble_deep_field, coins, camera, moon; no
download), resized to a random size with sides in [128, 320];
``ADE_train_00000001`` is 255 x 131 and ``ADE_val_00000001`` 161 x 97
(w x h, the one image below 128 px).  One to four regions of 24 to 120 px
are drawn on it in order (later ones occlude earlier ones) and written to the
label map with the same exact masks.

The output is deterministic: the same seed gives byte-identical files (fixed
JPEG quality and PNG compression, no time stamps) with the pinned
environment of ``tools/setup.sh``.  ``--check`` regenerates into a temporary
directory and compares file hashes with ``--out``; it exits with status 1 and
lists the differing files when they differ.
"""
import argparse
import hashlib
import os
import os.path as osp
import sys
import tempfile

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage import data as skdata
from skimage import draw

CLASSES = ('background', 'circle', 'square', 'triangle', 'stripes')
IGNORE, BACKGROUND, CIRCLE, SQUARE, TRIANGLE, STRIPES = range(6)
# fill colour (RGB) and grey texture source of the plain shapes, by PNG value
FILL_COLOURS = {CIRCLE: (220, 20, 60), SQUARE: (0, 130, 255),
                TRIANGLE: (20, 160, 20)}
TEXTURES = {CIRCLE: 'gravel', SQUARE: 'brick', TRIANGLE: 'grass'}
BACKGROUNDS = ('astronaut', 'coffee', 'chelsea', 'rocket',
               'immunohistochemistry', 'hubble_deep_field', 'coins', 'camera',
               'moon')
SPLITS = (('training', 'train', 24), ('validation', 'val', 8))
# (width, height) forced for some images; the others are random
FIXED_SIZES = {('training', 0): (255, 131), ('validation', 0): (161, 97)}
SIDE_RANGE = (128, 320)
REGION_SIZE_RANGE = (24, 120)
IGNORE_RECT_EVERY = 3
JPEG_QUALITY = 85


def load_rgb(name):
    """Load a bundled ``skimage.data`` image as an RGB uint8 array.

    Args:
        name (str): Name of the ``skimage.data`` function.

    Returns:
        np.ndarray: Array of shape (H, W, 3), dtype uint8.
    """
    img = np.asarray(getattr(skdata, name)())
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[..., :3].astype(np.uint8))


def load_grey(name):
    """Load a bundled ``skimage.data`` image as a float grey map in [0, 1].

    Args:
        name (str): Name of the ``skimage.data`` function.

    Returns:
        np.ndarray: Array of shape (H, W), dtype float64.
    """
    img = np.asarray(getattr(skdata, name)(), dtype=np.float64)
    if img.ndim == 3:
        img = img[..., :3].mean(axis=-1)
    return img / 255.


def random_crop_resize(rng, src, width, height):
    """Crop a random window with the target aspect ratio and resize it.

    Args:
        rng (np.random.Generator): Random generator.
        src (np.ndarray): Source image (H, W, 3).
        width (int): Output width.
        height (int): Output height.

    Returns:
        np.ndarray: Resized crop of shape (height, width, 3).
    """
    src_h, src_w = src.shape[:2]
    max_factor = min(src_h / height, src_w / width)
    factor = rng.uniform(0.5 * max_factor, max_factor)
    crop_h = min(src_h, max(1, round(height * factor)))
    crop_w = min(src_w, max(1, round(width * factor)))
    y0 = int(rng.integers(0, src_h - crop_h + 1))
    x0 = int(rng.integers(0, src_w - crop_w + 1))
    crop = Image.fromarray(src[y0:y0 + crop_h, x0:x0 + crop_w])
    return np.asarray(crop.resize((width, height), Image.BILINEAR))


def polygon_vertices(center, radius, num_vertices, angle):
    """Vertices (x, y) of a regular polygon.

    Args:
        center (tuple[float, float]): Centre (x, y).
        radius (float): Circum-radius.
        num_vertices (int): Number of vertices.
        angle (float): Rotation in radians.

    Returns:
        np.ndarray: Array of shape (num_vertices, 2).
    """
    theta = angle + np.arange(num_vertices) * 2 * np.pi / num_vertices
    return np.stack([center[0] + radius * np.cos(theta),
                     center[1] + radius * np.sin(theta)], axis=1)


def region_mask(rng, label, height, width):
    """Rasterise one random region of the given class into a boolean mask.

    Args:
        rng (np.random.Generator): Random generator.
        label (int): PNG value of the class (2..5).
        height (int): Image height.
        width (int): Image width.

    Returns:
        np.ndarray: Boolean mask of shape (height, width), inside the image.
    """
    size = rng.uniform(REGION_SIZE_RANGE[0],
                       min(REGION_SIZE_RANGE[1], min(height, width) - 8))
    half = size / 2 + 1
    cx, cy = rng.uniform(half, width - half), rng.uniform(half, height - half)
    angle = rng.uniform(0, 2 * np.pi)
    shape = (height, width)
    if label == CIRCLE:
        rr, cc = draw.disk((cy, cx), size / 2, shape=shape)
    elif label == STRIPES:
        minor = size / 2 * rng.uniform(0.5, 0.9)
        rr, cc = draw.ellipse(cy, cx, minor, size / 2, shape=shape,
                              rotation=angle)
    else:
        if label == SQUARE:
            verts = polygon_vertices((cx, cy), size / np.sqrt(2), 4, angle)
        else:
            verts = polygon_vertices((cx, cy), size / 2, 3, angle)
        rr, cc = draw.polygon(verts[:, 1], verts[:, 0], shape=shape)
    mask = np.zeros(shape, dtype=bool)
    mask[rr, cc] = True
    return mask


def textured_fill(rng, label, textures, height, width):
    """Colour layer of a plain shape class, covering the whole image.

    Args:
        rng (np.random.Generator): Random generator.
        label (int): PNG value of the class (2..4).
        textures (dict[str, np.ndarray]): Grey texture maps by name.
        height (int): Image height.
        width (int): Image width.

    Returns:
        np.ndarray: Float RGB layer of shape (height, width, 3).
    """
    tex = textures[TEXTURES[label]]
    y0 = int(rng.integers(0, tex.shape[0] - height + 1))
    x0 = int(rng.integers(0, tex.shape[1] - width + 1))
    tex = tex[y0:y0 + height, x0:x0 + width, None]
    colour = np.asarray(FILL_COLOURS[label], dtype=np.float64)
    colour = colour * rng.uniform(0.85, 1.15)
    noise = rng.normal(0, 6, size=(height, width, 1))
    return colour * (0.6 + 0.4 * tex) + noise


def striped_fill(rng, height, width):
    """Layer of straight stripes of two random colours at a random angle.

    Args:
        rng (np.random.Generator): Random generator.
        height (int): Image height.
        width (int): Image width.

    Returns:
        np.ndarray: Float RGB layer of shape (height, width, 3).
    """
    period = rng.uniform(6, 14)
    angle = rng.uniform(0, np.pi)
    colours = rng.integers(0, 256, size=(2, 3)).astype(np.float64)
    yy, xx = np.mgrid[:height, :width]
    phase = (xx * np.cos(angle) + yy * np.sin(angle)) / period
    return colours[(np.floor(phase) % 2).astype(np.int64)]


def boundary_band(label_map):
    """Pixels that have a differently labelled 8-neighbour (2 px wide band).

    Args:
        label_map (np.ndarray): uint8 label map.

    Returns:
        np.ndarray: Boolean mask of the band.
    """
    hi = ndimage.maximum_filter(label_map, size=3, mode='nearest')
    lo = ndimage.minimum_filter(label_map, size=3, mode='nearest')
    return hi != lo


def random_rect(rng, height, width):
    """Boolean mask of a random 8 to 24 px rectangle.

    Args:
        rng (np.random.Generator): Random generator.
        height (int): Image height.
        width (int): Image width.

    Returns:
        np.ndarray: Boolean mask of shape (height, width).
    """
    rect_h, rect_w = (int(v) for v in rng.integers(8, 25, size=2))
    y0 = int(rng.integers(0, height - rect_h + 1))
    x0 = int(rng.integers(0, width - rect_w + 1))
    mask = np.zeros((height, width), dtype=bool)
    mask[y0:y0 + rect_h, x0:x0 + rect_w] = True
    return mask


class LabelDeck:
    """Draws region classes from reshuffled decks so counts stay balanced.

    Args:
        rng (np.random.Generator): Random generator.
    """

    def __init__(self, rng):
        self.rng = rng
        self.deck = []

    def draw(self):
        """Return the next PNG value of a region class (2..5)."""
        if not self.deck:
            self.deck = list(self.rng.permutation(4) + CIRCLE)
        return int(self.deck.pop())


def image_size(rng, split, index):
    """(width, height) of one image: forced for a few, random otherwise."""
    if (split, index) in FIXED_SIZES:
        return FIXED_SIZES[(split, index)]
    return tuple(int(v) for v in rng.integers(SIDE_RANGE[0], SIDE_RANGE[1] + 1,
                                              size=2))


def make_sample(rng, split, index, deck, sources):
    """Render one image and its label map.

    Args:
        rng (np.random.Generator): Random generator.
        split (str): 'training' or 'validation'.
        index (int): Index of the image in its split.
        deck (LabelDeck): Region class sampler of the split.
        sources (dict[str, dict[str, np.ndarray]]): RGB backgrounds
            ('backgrounds') and grey textures ('textures') by name.

    Returns:
        tuple[np.ndarray, np.ndarray]: RGB uint8 image (H, W, 3) and uint8
        label map (H, W) with PNG values 0..5.
    """
    width, height = image_size(rng, split, index)
    background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    img = random_crop_resize(rng, sources['backgrounds'][background], width,
                             height).astype(np.float64)
    label_map = np.full((height, width), BACKGROUND, dtype=np.uint8)
    for _ in range(int(rng.integers(1, 5))):
        label = deck.draw()
        mask = region_mask(rng, label, height, width)
        if label == STRIPES:
            fill = striped_fill(rng, height, width)
        else:
            fill = textured_fill(rng, label, sources['textures'], height,
                                 width)
        img[mask] = fill[mask]
        label_map[mask] = label
    label_map[boundary_band(label_map)] = IGNORE
    if index % IGNORE_RECT_EVERY == IGNORE_RECT_EVERY - 1:
        label_map[random_rect(rng, height, width)] = IGNORE
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return img, label_map


def generate(out_dir, seed):
    """Write the whole dataset.

    Args:
        out_dir (str): Dataset root.
        seed (int): Random seed.

    Returns:
        dict[str, np.ndarray]: Pixel count of each PNG value (0..5) per
        split.
    """
    rng = np.random.default_rng(seed)
    sources = dict(
        backgrounds={name: load_rgb(name) for name in BACKGROUNDS},
        textures={name: load_grey(name) for name in set(TEXTURES.values())})
    counts = {}
    for split, prefix, num_images in SPLITS:
        img_dir = osp.join(out_dir, 'images', split)
        ann_dir = osp.join(out_dir, 'annotations', split)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        deck = LabelDeck(rng)
        counts[split] = np.zeros(len(CLASSES) + 1, dtype=np.int64)
        for index in range(num_images):
            img, label_map = make_sample(rng, split, index, deck, sources)
            stem = f'ADE_{prefix}_{index + 1:08d}'
            Image.fromarray(img).save(
                osp.join(img_dir, stem + '.jpg'), quality=JPEG_QUALITY,
                subsampling=2, optimize=False)
            Image.fromarray(label_map).save(
                osp.join(ann_dir, stem + '.png'), compress_level=9,
                optimize=False)
            counts[split] += np.bincount(label_map.ravel(),
                                         minlength=len(CLASSES) + 1)
    return counts


def file_hashes(root):
    """SHA-256 of every file under ``root``, keyed by relative path."""
    hashes = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                hashes[osp.relpath(path, root)] = hashlib.sha256(
                    f.read()).hexdigest()
    return hashes


def check(out_dir, seed):
    """Regenerate into a temporary directory and compare with ``out_dir``.

    Args:
        out_dir (str): Dataset root holding the committed files.
        seed (int): Random seed.

    Returns:
        list[str]: Relative paths that are missing, extra or different.
    """
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp, seed)
        expected = file_hashes(tmp)
    actual = file_hashes(out_dir) if osp.isdir(out_dir) else {}
    return sorted(path for path in set(expected) | set(actual)
                  if expected.get(path) != actual.get(path))


def parse_args():
    parser = argparse.ArgumentParser(
        description='Make the mini ADE20K-format semantic segmentation set')
    parser.add_argument('--out', default='data/mini_ade', help='output root')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--check', action='store_true',
        help='regenerate into a temporary directory and compare the hashes '
        'with the files under --out instead of writing')
    return parser.parse_args()


def main():
    args = parse_args()
    if args.check:
        differing = check(args.out, args.seed)
        if differing:
            shown = ', '.join(differing[:5])
            if len(differing) > 5:
                shown += f' and {len(differing) - 5} more'
            print(f'{args.out} differs from a fresh generation with seed '
                  f'{args.seed} in {len(differing)} file(s): {shown}',
                  file=sys.stderr)
            sys.exit(1)
        print(f'{args.out} matches a fresh generation with seed {args.seed}')
        return
    counts = generate(args.out, args.seed)
    summary = '; '.join(
        f'{split}: ' + ', '.join(f'{v}={n}' for v, n in enumerate(c))
        for split, c in counts.items())
    print(f'wrote {args.out} (pixels per PNG value, {summary})')


if __name__ == '__main__':
    main()
