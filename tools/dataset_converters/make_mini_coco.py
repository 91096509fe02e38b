"""Make the bundled mini COCO-format instance segmentation set.

The set is small enough to live in the repository and to train the demo
configs (``configs/det/*_demo.py``) on a CPU in minutes::

    python tools/dataset_converters/make_mini_coco.py [--mode textured]
        [--out data/mini_coco_textured] [--seed 0] [--check]

``--mode textured`` (the default) writes ``data/mini_coco_textured``, the set
of the demo configs; ``--mode tinted`` writes ``data/mini_coco``, the first
bundled set (see ``synthetic_scenes.py`` for the two fill modes).

Layout (standard COCO, relative to ``--out``)::

    train/000001.jpg ... train/000024.jpg
    val/000001.jpg ... val/000008.jpg
    annotations/instances_train.json
    annotations/instances_val.json

Categories (ids start at 1, as in COCO):

    ==  ==========  =========================  ==============================
    id  name        shape                      fill: textured / tinted
    ==  ==========  =========================  ==============================
    1   circle      disc                       chelsea photo / red, gravel
    2   square      square, random rotation    coffee photo / blue, brick
    3   triangle    equilateral triangle,      astronaut photo / green, grass
                    random rotation
    4   star        five-pointed star,         rocket photo / orange, camera
                    random rotation
    ==  ==========  =========================  ==============================

How the images are made: each background is a random crop of a photo that
ships inside scikit-image (``skimage.data``, no download; textured mode:
immunohistochemistry, hubble_deep_field, coins, camera, moon, brick, grass,
gravel; tinted mode: astronaut, coffee, chelsea, rocket,
immunohistochemistry, hubble_deep_field, coins, camera, moon), resized to a
random size with sides in [160, 320] (the first training image is 197 x 263,
w x h).  One to four objects of 20 to 100 px are
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
environment of ``tools/setup.sh``, up to the vertices of simplified polygons,
which can differ by a few pixels between CPUs.  ``--check`` regenerates into
a temporary directory and compares file hashes with ``--out`` (annotation
files: the same annotations, segmentations decoding to masks within 8
pixels); it exits with status 1 and lists the differing files when they
differ.
"""
import contextlib
import io
import json
import os
import os.path as osp
import sys

import numpy as np
from scipy import ndimage
from skimage import measure

# the shared helpers sit next to this script; make them importable however
# the script is run or loaded
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import synthetic_scenes as scenes  # noqa: E402

# category names double as shape names of :func:`scenes.shape_mask` and
# :func:`scenes.shape_fill`
CATEGORIES = ('circle', 'square', 'triangle', 'star')
SPLITS = (('train', 24), ('val', 8))
# (width, height) forced for some images; the others are random
FIXED_SIZES = {('train', 0): (197, 263), ('val', 2): (231, 175)}
EMPTY_IMAGES = {('val', 0)}
TINY_IMAGES = {('train', 1), ('val', 1)}
TINY_SIDE = 6
SIDE_RANGE = (160, 320)
OBJECT_SIZE_RANGE = (20, 100)
MIN_VISIBLE = 0.3
DEFAULT_OUTS = {'textured': 'data/mini_coco_textured',
                'tinted': 'data/mini_coco'}


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
            mask = scenes.random_shape_mask(
                rng, CATEGORIES[category - 1], OBJECT_SIZE_RANGE, height,
                width)
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


def make_image(rng, split, index, deck, sources):
    """Render one image and the visible masks of its objects.

    Args:
        rng (np.random.Generator): Random generator.
        split (str): 'train' or 'val'.
        index (int): Index of the image in its split.
        deck (scenes.BalancedDeck): Category sampler of the split.
        sources (dict[str, dict[str, np.ndarray]]): See
            :func:`scenes.load_sources`.

    Returns:
        tuple[np.ndarray, list[tuple[int, np.ndarray]]]: The RGB uint8 image
        of shape (H, W, 3) and (category id, visible (H, W) mask) pairs.
    """
    width, height = scenes.image_size(rng, (split, index), FIXED_SIZES,
                                      SIDE_RANGE)
    img = scenes.random_background(rng, sources['backgrounds'], width, height)
    categories, masks = [], []
    if (split, index) not in EMPTY_IMAGES:
        wanted = [deck.draw() for _ in range(int(rng.integers(1, 5)))]
        categories, masks = place_objects(rng, wanted, height, width)
    if (split, index) in TINY_IMAGES:
        categories.append(2)
        masks.append(place_tiny_square(rng, masks, height, width))
    for category, mask in zip(categories, masks):
        fill = scenes.shape_fill(rng, CATEGORIES[category - 1], sources,
                                 height, width)
        img[mask] = fill[mask]
    img = scenes.to_uint8(img)
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
    deck = scenes.BalancedDeck(rng, len(CATEGORIES), first=1)
    images, annotations, drawn = [], [], {}
    for index in range(num_images):
        img, objects = make_image(rng, split, index, deck, sources)
        image_id = index + 1
        file_name = f'{image_id:06d}.jpg'
        scenes.save_jpeg(img, osp.join(out_dir, split, file_name))
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
    textured = ', textured' if sources['mode'] == 'textured' else ''
    info = dict(description=f'mmtpspike mini COCO{textured} ({split})',
                version='1.0')
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


def generate(out_dir, seed, mode='textured'):
    """Write the whole dataset and verify it with pycocotools.

    Args:
        out_dir (str): Dataset root.
        seed (int): Random seed.
        mode (str): Fill mode, one of :data:`scenes.FILL_MODES`.

    Returns:
        dict[str, tuple[int, int]]: (images, annotations) per split.
    """
    rng = np.random.default_rng(seed)
    sources = scenes.load_sources(CATEGORIES, mode)
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


def same_annotations(fresh_file, committed_file, max_pixels=8):
    """Whether two annotation files differ only in how polygons were
    simplified: everything else equal, and every segmentation decoding to a
    mask that differs from the committed one in at most ``max_pixels``
    pixels. ``skimage.measure.approximate_polygon`` keeps slightly different
    vertices on CPUs with other floating-point code paths.

    Args:
        fresh_file (str): Freshly generated json (``instances_*.json``).
        committed_file (str): Committed json of the same name.
        max_pixels (int): Largest accepted mask difference.

    Returns:
        bool: True when the files describe the same annotations.
    """
    from pycocotools import mask as mask_utils
    if not fresh_file.endswith('.json'):
        return False
    with open(fresh_file) as f:
        fresh = json.load(f)
    with open(committed_file) as f:
        committed = json.load(f)
    fresh_anns = fresh.pop('annotations')
    committed_anns = committed.pop('annotations')
    if fresh != committed or len(fresh_anns) != len(committed_anns):
        return False
    images = {img['id']: img for img in fresh['images']}

    def decode(ann):
        img = images[ann['image_id']]
        rles = mask_utils.frPyObjects(ann['segmentation'], img['height'],
                                      img['width'])
        return mask_utils.decode(mask_utils.merge(rles)).astype(bool)

    def without_segmentation(ann):
        return {key: value for key, value in ann.items()
                if key != 'segmentation'}

    for new, old in zip(fresh_anns, committed_anns):
        if without_segmentation(new) != without_segmentation(old):
            return False
        if new['segmentation'] != old['segmentation'] and \
                (decode(new) != decode(old)).sum() > max_pixels:
            return False
    return True


def describe(counts):
    """Summary of :func:`generate`'s counts for the closing message."""
    return ', '.join(f'{split}: {n_img} images / {n_ann} annotations'
                     for split, (n_img, n_ann) in counts.items())


def main(argv=None):
    scenes.run_cli('Make the mini COCO-format instance segmentation set',
                   DEFAULT_OUTS, generate, describe, argv=argv,
                   equivalent=same_annotations)


if __name__ == '__main__':
    main()
