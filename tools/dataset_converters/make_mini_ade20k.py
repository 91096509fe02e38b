"""Make the bundled mini ADE20K-format semantic segmentation set.

The set is small enough to live in the repository and to train the demo
configs (``configs/seg/*_demo.py``, dataset type ``MiniADE20KDataset``) on a
CPU in minutes::

    python tools/dataset_converters/make_mini_ade20k.py [--mode textured]
        [--out data/mini_ade_textured] [--seed 0] [--check]

``--mode textured`` (the default) writes ``data/mini_ade_textured``, the set
of the demo configs; ``--mode tinted`` writes ``data/mini_ade``, the first
bundled set (see ``synthetic_scenes.py`` for the two fill modes).

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
    2       1            circle        disc (textured: chelsea photo;
                                       tinted: red, gravel texture)
    3       2            square        rotated square (coffee photo; blue,
                                       brick texture)
    4       3            triangle      rotated triangle (astronaut photo;
                                       green, grass texture)
    5       4            stripes       rotated ellipse filled with stripes of
                                       two random colours (both modes)
    ======  ===========  ============  ========================================

``reduce_zero_label`` maps PNG value ``v`` to class ``v - 1`` and 0 to the
ignore index 255.

How the images are made: each background is a random crop of a photo that
ships inside scikit-image (``skimage.data``, no download; the photos of each
mode are listed in ``synthetic_scenes.py``), resized to a random size with
sides in [128, 320]; ``ADE_train_00000001`` is 255 x 131 and
``ADE_val_00000001`` 161 x 97 (w x h, the one image below 128 px).  One to
four regions of 24 to 120 px are drawn on it in order (later ones occlude
earlier ones) and written to the label map with the same exact masks.

The output is deterministic: the same seed gives byte-identical files (fixed
JPEG quality and PNG compression, no time stamps) with the pinned
environment of ``tools/setup.sh``.  ``--check`` regenerates into a temporary
directory and compares file hashes with ``--out``; it exits with status 1 and
lists the differing files when they differ.
"""
import os
import os.path as osp
import sys

import numpy as np
from scipy import ndimage

# the shared helpers sit next to this script; make them importable however
# the script is run or loaded
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import synthetic_scenes as scenes  # noqa: E402

CLASSES = ('background', 'circle', 'square', 'triangle', 'stripes')
IGNORE, BACKGROUND, CIRCLE, SQUARE, TRIANGLE, STRIPES = range(6)
# shape of each region class (see :func:`scenes.shape_mask`), by PNG value;
# the plain shapes are filled by :func:`scenes.shape_fill`
SHAPES = {CIRCLE: 'circle', SQUARE: 'square', TRIANGLE: 'triangle',
          STRIPES: 'ellipse'}
SPLITS = (('training', 'train', 24), ('validation', 'val', 8))
# (width, height) forced for some images; the others are random
FIXED_SIZES = {('training', 0): (255, 131), ('validation', 0): (161, 97)}
SIDE_RANGE = (128, 320)
REGION_SIZE_RANGE = (24, 120)
IGNORE_RECT_EVERY = 3
DEFAULT_OUTS = {'textured': 'data/mini_ade_textured',
                'tinted': 'data/mini_ade'}


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


def make_sample(rng, split, index, deck, sources):
    """Render one image and its label map.

    Args:
        rng (np.random.Generator): Random generator.
        split (str): 'training' or 'validation'.
        index (int): Index of the image in its split.
        deck (scenes.BalancedDeck): Region class sampler of the split.
        sources (dict[str, dict[str, np.ndarray]]): See
            :func:`scenes.load_sources`.

    Returns:
        tuple[np.ndarray, np.ndarray]: RGB uint8 image (H, W, 3) and uint8
        label map (H, W) with PNG values 0..5.
    """
    width, height = scenes.image_size(rng, (split, index), FIXED_SIZES,
                                      SIDE_RANGE)
    img = scenes.random_background(rng, sources['backgrounds'], width, height)
    label_map = np.full((height, width), BACKGROUND, dtype=np.uint8)
    size_range = (REGION_SIZE_RANGE[0],
                  min(REGION_SIZE_RANGE[1], min(height, width) - 8))
    for _ in range(int(rng.integers(1, 5))):
        label = deck.draw()
        mask = scenes.random_shape_mask(rng, SHAPES[label], size_range,
                                        height, width)
        if label == STRIPES:
            fill = striped_fill(rng, height, width)
        else:
            fill = scenes.shape_fill(rng, SHAPES[label], sources, height,
                                     width)
        img[mask] = fill[mask]
        label_map[mask] = label
    label_map[boundary_band(label_map)] = IGNORE
    if index % IGNORE_RECT_EVERY == IGNORE_RECT_EVERY - 1:
        label_map[random_rect(rng, height, width)] = IGNORE
    return scenes.to_uint8(img), label_map


def generate(out_dir, seed, mode='textured'):
    """Write the whole dataset.

    Args:
        out_dir (str): Dataset root.
        seed (int): Random seed.
        mode (str): Fill mode, one of :data:`scenes.FILL_MODES`.

    Returns:
        dict[str, np.ndarray]: Pixel count of each PNG value (0..5) per
        split.
    """
    rng = np.random.default_rng(seed)
    sources = scenes.load_sources(
        (SHAPES[label] for label in (CIRCLE, SQUARE, TRIANGLE)), mode)
    counts = {}
    for split, prefix, num_images in SPLITS:
        img_dir = osp.join(out_dir, 'images', split)
        ann_dir = osp.join(out_dir, 'annotations', split)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        # the region classes, PNG values CIRCLE..STRIPES
        deck = scenes.BalancedDeck(rng, len(SHAPES), first=CIRCLE)
        counts[split] = np.zeros(len(CLASSES) + 1, dtype=np.int64)
        for index in range(num_images):
            img, label_map = make_sample(rng, split, index, deck, sources)
            stem = f'ADE_{prefix}_{index + 1:08d}'
            scenes.save_jpeg(img, osp.join(img_dir, stem + '.jpg'))
            scenes.save_png(label_map, osp.join(ann_dir, stem + '.png'))
            counts[split] += np.bincount(label_map.ravel(),
                                         minlength=len(CLASSES) + 1)
    return counts


def describe(counts):
    """Summary of :func:`generate`'s counts for the closing message."""
    summary = '; '.join(
        f'{split}: ' + ', '.join(f'{v}={n}' for v, n in enumerate(c))
        for split, c in counts.items())
    return f'pixels per PNG value, {summary}'


def main(argv=None):
    scenes.run_cli('Make the mini ADE20K-format semantic segmentation set',
                   DEFAULT_OUTS, generate, describe, argv=argv)


if __name__ == '__main__':
    main()
