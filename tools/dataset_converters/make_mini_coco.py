"""Make the bundled mini COCO-format instance segmentation set.

The set is small enough to live in the repository and to train the demo
configs (``configs/det/*_demo.py``) on a CPU in minutes::

    python tools/dataset_converters/make_mini_coco.py [--out data/mini_coco]
        [--seed 0] [--check]

Layout (standard COCO, relative to ``--out``)::

    train/000001.jpg ... train/000024.jpg
    val/000001.jpg ... val/000008.jpg
    annotations/instances_train.json
    annotations/instances_val.json

Categories (ids start at 1, as in COCO):

    ==  ==========  ======================================================
    id  name        shape (fill)
    ==  ==========  ======================================================
    1   circle      disc (red, gravel texture)
    2   square      square rotated by a random angle (blue, brick texture)
    3   triangle    equilateral triangle, random rotation (green, grass)
    4   star        five-pointed star, random rotation (orange, camera)
    ==  ==========  ======================================================

How the images are made: each background is a random crop of a photo that
ships inside scikit-image (``skimage.data``: astronaut, coffee, chelsea,
rocket, immunohistochemistry, hubble_deep_field, coins, camera, moon; no
download), resized to a random size with sides in [160, 320] (the first
training image is 197 x 263, w x h).  One to four objects of 20 to 100 px are
drawn on it, in order, with hard (exact) masks.  Later objects occlude
earlier ones; the annotation of an object is its *visible* mask.  A new
object that would leave an earlier one less than 30 % visible, or with a
hole (which a COCO polygon cannot express), is dropped and re-drawn.

Annotations: ``bbox`` ([x, y, w, h], pixel-edge convention) and ``area``
(pixel count) come from the visible mask; ``segmentation`` holds polygons
that trace the mask's pixel edges, so that ``pycocotools`` decodes them back
to the same mask (the script checks IoU > 0.9 and the bbox for every
annotation after writing).

Edge cases present on purpose: ``val/000001.jpg`` has no annotation, and
``train/000002.jpg`` and ``val/000002.jpg`` each hold one tiny 6 x 6 px
square next to the usual objects.

The output is deterministic: the same seed gives byte-identical files
(fixed JPEG quality, sorted JSON keys, no time stamps) with the pinned
environment of ``tools/setup.sh``.  ``--check`` regenerates into a temporary
directory and compares file hashes with ``--out``; it exits with status 1 and
lists the differing files when they differ.
"""
import argparse
import contextlib
import hashlib
import io
import json
import os
import os.path as osp
import sys
import tempfile

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage import data as skdata
from skimage import draw, measure

CATEGORIES = ('circle', 'square', 'triangle', 'star')
# fill colour (RGB) and grey texture source of each category, in id order
FILL_COLOURS = ((220, 20, 60), (0, 130, 255), (20, 160, 20), (250, 170, 30))
TEXTURES = ('gravel', 'brick', 'grass', 'camera')
BACKGROUNDS = ('astronaut', 'coffee', 'chelsea', 'rocket',
               'immunohistochemistry', 'hubble_deep_field', 'coins', 'camera',
               'moon')
SPLITS = (('train', 24), ('val', 8))
# (width, height) forced for some images; the others are random
FIXED_SIZES = {('train', 0): (197, 263), ('val', 2): (231, 175)}
EMPTY_IMAGES = {('val', 0)}
TINY_IMAGES = {('train', 1), ('val', 1)}
TINY_SIDE = 6
SIDE_RANGE = (160, 320)
OBJECT_SIZE_RANGE = (20, 100)
MIN_VISIBLE = 0.3
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
        src (np.ndarray): Source image (H, W, 3) or (H, W).
        width (int): Output width.
        height (int): Output height.

    Returns:
        np.ndarray: Resized crop of shape (height, width[, 3]).
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


def regular_polygon(center, radius, num_vertices, angle, inner_ratio=None):
    """Vertices (x, y) of a regular polygon or star.

    Args:
        center (tuple[float, float]): Centre (x, y).
        radius (float): Circum-radius.
        num_vertices (int): Number of outer vertices.
        angle (float): Rotation in radians.
        inner_ratio (float, optional): For a star, the inner radius as a
            fraction of ``radius``. Defaults to None (plain polygon).

    Returns:
        np.ndarray: Array of shape (N, 2).
    """
    steps = num_vertices * (2 if inner_ratio else 1)
    theta = angle + np.arange(steps) * 2 * np.pi / steps
    radii = np.full(steps, float(radius))
    if inner_ratio:
        radii[1::2] *= inner_ratio
    return np.stack([center[0] + radii * np.cos(theta),
                     center[1] + radii * np.sin(theta)], axis=1)


def shape_mask(category, center, size, angle, height, width):
    """Rasterise one object into a boolean mask.

    Args:
        category (int): Category id (1..4).
        center (tuple[float, float]): Centre (x, y) in pixels.
        size (float): Diameter of the circle / side of the square /
            circum-diameter of the triangle and the star.
        angle (float): Rotation in radians (ignored for the circle).
        height (int): Image height.
        width (int): Image width.

    Returns:
        np.ndarray: Boolean mask of shape (height, width).
    """
    if category == 1:
        rr, cc = draw.disk((center[1], center[0]), size / 2,
                           shape=(height, width))
    else:
        if category == 2:
            verts = regular_polygon(center, size / np.sqrt(2), 4, angle)
        elif category == 3:
            verts = regular_polygon(center, size / 2, 3, angle)
        else:
            verts = regular_polygon(center, size / 2, 5, angle,
                                    inner_ratio=0.45)
        rr, cc = draw.polygon(verts[:, 1], verts[:, 0], shape=(height, width))
    mask = np.zeros((height, width), dtype=bool)
    mask[rr, cc] = True
    return mask


def random_object(rng, category, height, width):
    """Sample the full (unoccluded) mask of a random object.

    Args:
        rng (np.random.Generator): Random generator.
        category (int): Category id (1..4).
        height (int): Image height.
        width (int): Image width.

    Returns:
        np.ndarray: Boolean mask of shape (height, width), fully inside the
        image.
    """
    size = rng.uniform(*OBJECT_SIZE_RANGE)
    half = size / 2 + 1
    center = (rng.uniform(half, width - half),
              rng.uniform(half, height - half))
    angle = rng.uniform(0, 2 * np.pi)
    return shape_mask(category, center, size, angle, height, width)


def visible_masks(masks):
    """Visible part of each mask when drawn in order (later on top).

    Args:
        masks (list[np.ndarray]): Full boolean masks in drawing order.

    Returns:
        list[np.ndarray]: Visible boolean masks.
    """
    covered = np.zeros_like(masks[0])
    visible = []
    for mask in reversed(masks):
        visible.append(mask & ~covered)
        covered |= mask
    return visible[::-1]


def acceptable(masks):
    """Whether every object is >= 30 % visible and hole-free.

    Args:
        masks (list[np.ndarray]): Full boolean masks in drawing order.

    Returns:
        bool: True when the layout can be annotated with polygons.
    """
    for full, vis in zip(masks, visible_masks(masks)):
        if vis.sum() < MIN_VISIBLE * full.sum():
            return False
        if not np.array_equal(ndimage.binary_fill_holes(vis), vis):
            return False
    return True


def place_objects(rng, categories, height, width, max_tries=20):
    """Place objects one by one, dropping those that break the layout rules.

    Args:
        rng (np.random.Generator): Random generator.
        categories (list[int]): Category ids to place, in drawing order.
        height (int): Image height.
        width (int): Image width.
        max_tries (int): Attempts per object before it is dropped.

    Returns:
        tuple[list[int], list[np.ndarray]]: Kept category ids and full masks.
    """
    kept_cats, kept_masks = [], []
    for category in categories:
        for _ in range(max_tries):
            mask = random_object(rng, category, height, width)
            if acceptable(kept_masks + [mask]):
                kept_cats.append(category)
                kept_masks.append(mask)
                break
    return kept_cats, kept_masks


def place_tiny_square(rng, masks, height, width):
    """Mask of a 6 x 6 axis-aligned square that touches no other object.

    Args:
        rng (np.random.Generator): Random generator.
        masks (list[np.ndarray]): Masks already placed.
        height (int): Image height.
        width (int): Image width.

    Returns:
        np.ndarray: Boolean mask of shape (height, width).
    """
    occupied = np.zeros((height, width), dtype=bool)
    for mask in masks:
        occupied |= mask
    occupied = ndimage.binary_dilation(occupied, iterations=3)
    while True:
        x0 = int(rng.integers(4, width - TINY_SIDE - 4))
        y0 = int(rng.integers(4, height - TINY_SIDE - 4))
        if not occupied[y0:y0 + TINY_SIDE, x0:x0 + TINY_SIDE].any():
            mask = np.zeros((height, width), dtype=bool)
            mask[y0:y0 + TINY_SIDE, x0:x0 + TINY_SIDE] = True
            return mask


def object_fill(rng, category, textures, height, width):
    """Textured colour layer of one object, covering the whole image.

    Args:
        rng (np.random.Generator): Random generator.
        category (int): Category id (1..4).
        textures (dict[str, np.ndarray]): Grey texture maps by name.
        height (int): Image height.
        width (int): Image width.

    Returns:
        np.ndarray: Float RGB layer of shape (height, width, 3).
    """
    tex = textures[TEXTURES[category - 1]]
    y0 = int(rng.integers(0, tex.shape[0] - height + 1))
    x0 = int(rng.integers(0, tex.shape[1] - width + 1))
    tex = tex[y0:y0 + height, x0:x0 + width, None]
    colour = np.asarray(FILL_COLOURS[category - 1], dtype=np.float64)
    colour = colour * rng.uniform(0.85, 1.15)
    noise = rng.normal(0, 6, size=(height, width, 1))
    return colour * (0.6 + 0.4 * tex) + noise


def mask_to_polygons(mask):
    """COCO polygons that trace the pixel edges of a boolean mask.

    The mask is upsampled 2x so that the 0.5 iso-contour runs along the
    original pixel edges (corners are cut by a quarter pixel); the contours
    are then simplified with a 0.5 px tolerance.

    Args:
        mask (np.ndarray): Boolean mask of shape (H, W).

    Returns:
        list[list[float]]: Polygons as flat [x1, y1, x2, y2, ...] lists,
        each with at least 3 points.
    """
    up = np.kron(mask.astype(np.uint8), np.ones((2, 2), dtype=np.uint8))
    up = np.pad(up, 1)
    polygons = []
    for contour in measure.find_contours(up, 0.5):
        contour = measure.approximate_polygon(contour, tolerance=1.0)[:-1]
        if len(contour) < 3:
            continue
        xy = (contour[:, ::-1] - 0.5) / 2
        polygons.append([float(v) for v in xy.ravel()])
    return polygons


def mask_bbox(mask):
    """Tight [x, y, w, h] box of a boolean mask (pixel-edge convention).

    Args:
        mask (np.ndarray): Non-empty boolean mask.

    Returns:
        list[int]: The box.
    """
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
            int(ys.max() - ys.min() + 1)]


class CategoryDeck:
    """Draws category ids from reshuffled decks so counts stay balanced.

    Args:
        rng (np.random.Generator): Random generator.
    """

    def __init__(self, rng):
        self.rng = rng
        self.deck = []

    def draw(self):
        """Return the next category id (1..4)."""
        if not self.deck:
            self.deck = list(self.rng.permutation(len(CATEGORIES)) + 1)
        return int(self.deck.pop())


def image_size(rng, split, index):
    """(width, height) of one image: forced for a few, random otherwise."""
    if (split, index) in FIXED_SIZES:
        return FIXED_SIZES[(split, index)]
    return tuple(int(v) for v in rng.integers(SIDE_RANGE[0], SIDE_RANGE[1] + 1,
                                              size=2))


def make_image(rng, split, index, deck, sources):
    """Render one image and the visible masks of its objects.

    Args:
        rng (np.random.Generator): Random generator.
        split (str): 'train' or 'val'.
        index (int): Index of the image in its split.
        deck (CategoryDeck): Category sampler of the split.
        sources (dict[str, dict[str, np.ndarray]]): RGB backgrounds
            ('backgrounds') and grey textures ('textures') by name.

    Returns:
        tuple[np.ndarray, list[tuple[int, np.ndarray]]]: The RGB uint8 image
        and (category id, visible mask) pairs.
    """
    width, height = image_size(rng, split, index)
    background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    img = random_crop_resize(rng, sources['backgrounds'][background], width,
                             height)
    img = img.astype(np.float64)
    categories, masks = [], []
    if (split, index) not in EMPTY_IMAGES:
        wanted = [deck.draw() for _ in range(int(rng.integers(1, 5)))]
        categories, masks = place_objects(rng, wanted, height, width)
    if (split, index) in TINY_IMAGES:
        categories.append(2)
        masks.append(place_tiny_square(rng, masks, height, width))
    for category, mask in zip(categories, masks):
        fill = object_fill(rng, category, sources['textures'], height, width)
        img[mask] = fill[mask]
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    objects = list(zip(categories, visible_masks(masks))) if masks else []
    return img, objects


def coco_split(rng, split, num_images, out_dir, sources):
    """Write the images of one split and return its COCO dictionary.

    Args:
        rng (np.random.Generator): Random generator.
        split (str): 'train' or 'val'.
        num_images (int): Number of images.
        out_dir (str): Dataset root.
        sources (dict[str, dict[str, np.ndarray]]): See :func:`make_image`.

    Returns:
        tuple[dict, dict[int, np.ndarray]]: The COCO dictionary and the drawn
        visible mask of every annotation id.
    """
    os.makedirs(osp.join(out_dir, split), exist_ok=True)
    deck = CategoryDeck(rng)
    images, annotations, drawn = [], [], {}
    for index in range(num_images):
        img, objects = make_image(rng, split, index, deck, sources)
        image_id = index + 1
        file_name = f'{image_id:06d}.jpg'
        Image.fromarray(img).save(
            osp.join(out_dir, split, file_name), quality=JPEG_QUALITY,
            subsampling=2, optimize=False)
        images.append(dict(id=image_id, file_name=file_name,
                           height=img.shape[0], width=img.shape[1]))
        for category, mask in objects:
            ann_id = len(annotations) + 1
            annotations.append(dict(
                id=ann_id, image_id=image_id, category_id=category,
                bbox=mask_bbox(mask), area=int(mask.sum()), iscrowd=0,
                segmentation=mask_to_polygons(mask)))
            drawn[ann_id] = mask
    categories = [dict(id=i + 1, name=name, supercategory='shape')
                  for i, name in enumerate(CATEGORIES)]
    info = dict(description=f'mmtpspike mini COCO ({split})', version='1.0')
    coco = dict(info=info, licenses=[], images=images,
                annotations=annotations, categories=categories)
    return coco, drawn


def verify_split(ann_file, drawn):
    """Decode every annotation with pycocotools and compare to the drawing.

    Args:
        ann_file (str): Path of the written COCO json.
        drawn (dict[int, np.ndarray]): Drawn visible mask per annotation id.

    Raises:
        AssertionError: If a decoded mask has IoU <= 0.9 with the drawn one,
            or its box differs by more than 1 px from the annotated box.
    """
    from pycocotools.coco import COCO
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(ann_file)
    for ann_id, mask in drawn.items():
        ann = coco.anns[ann_id]
        assert all(len(p) >= 6 for p in ann['segmentation']), ann_id
        decoded = coco.annToMask(ann).astype(bool)
        iou = (decoded & mask).sum() / (decoded | mask).sum()
        assert iou > 0.9, f'{ann_file}: annotation {ann_id} IoU {iou:.3f}'
        assert ann['bbox'] == mask_bbox(mask), ann_id
        diff = np.abs(np.subtract(mask_bbox(decoded), ann['bbox']))
        assert diff.max() <= 1, f'{ann_file}: annotation {ann_id} bbox {diff}'


def generate(out_dir, seed):
    """Write the whole dataset and verify it with pycocotools.

    Args:
        out_dir (str): Dataset root.
        seed (int): Random seed.

    Returns:
        dict[str, tuple[int, int]]: (images, annotations) per split.
    """
    rng = np.random.default_rng(seed)
    sources = dict(
        backgrounds={name: load_rgb(name) for name in BACKGROUNDS},
        textures={name: load_grey(name) for name in TEXTURES})
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    counts = {}
    for split, num_images in SPLITS:
        coco, drawn = coco_split(rng, split, num_images, out_dir, sources)
        ann_file = osp.join(out_dir, 'annotations', f'instances_{split}.json')
        with open(ann_file, 'w') as f:
            json.dump(coco, f, sort_keys=True, separators=(',', ':'))
            f.write('\n')
        verify_split(ann_file, drawn)
        counts[split] = (len(coco['images']), len(coco['annotations']))
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
        description='Make the mini COCO-format instance segmentation set')
    parser.add_argument('--out', default='data/mini_coco', help='output root')
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
    summary = ', '.join(f'{split}: {n_img} images / {n_ann} annotations'
                        for split, (n_img, n_ann) in counts.items())
    print(f'wrote {args.out} ({summary})')


if __name__ == '__main__':
    main()
