"""Helpers shared by the generators of the bundled mini datasets.

``make_mini_coco.py`` and ``make_mini_ade20k.py`` both draw shapes with
exact masks on random crops of photos that ship inside scikit-image, write
the result with fixed encoder settings and offer a ``--check`` mode that
regenerates into a temporary directory and compares file hashes.  This
module holds those shared parts; each generator keeps only its own layout,
labels and annotation format.

Two fill modes (``--mode``):

- ``textured`` (the default, the data of the demo configs): each shape is cut
  out of a colour photograph of its own (:data:`PHOTO_TEXTURES`), so object
  interiors carry natural texture, as in real images, and the backgrounds
  come from other photos (:data:`TEXTURED_BACKGROUNDS`).
- ``tinted`` (the first bundled sets): each shape is one bright colour,
  weakly modulated by a grey texture (:data:`SHAPE_STYLES`).  Object
  interiors are nearly flat, which favours any token score that keeps
  contrast and says little about natural images.

Every function that draws from a random generator does so in a fixed order,
so the generators stay byte-for-byte deterministic for a given seed.
"""
import argparse
import hashlib
import os
import os.path as osp
import sys
import tempfile

import numpy as np
from PIL import Image
from skimage import data as skdata
from skimage import draw

FILL_MODES = ('textured', 'tinted')
# ``skimage.data`` photos the backgrounds are cropped from (no download), in
# the 'tinted' mode
BACKGROUNDS = ('astronaut', 'coffee', 'chelsea', 'rocket',
               'immunohistochemistry', 'hubble_deep_field', 'coins', 'camera',
               'moon')
# 'textured' mode: the colour photo each shape is cut from, and the photos of
# the backgrounds (none of the former, so that a texture names its class)
PHOTO_TEXTURES = {
    'circle': 'chelsea',
    'square': 'coffee',
    'triangle': 'astronaut',
    'star': 'rocket',
}
TEXTURED_BACKGROUNDS = ('immunohistochemistry', 'hubble_deep_field', 'coins',
                        'camera', 'moon', 'brick', 'grass', 'gravel')
# 'tinted' mode: fill colour (RGB) and ``skimage.data`` grey texture of each
# shape
SHAPE_STYLES = {
    'circle': ((220, 20, 60), 'gravel'),
    'square': ((0, 130, 255), 'brick'),
    'triangle': ((20, 160, 20), 'grass'),
    'star': ((250, 170, 30), 'camera'),
}
JPEG_QUALITY = 85
PNG_COMPRESS_LEVEL = 9


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


def load_sources(shapes, mode):
    """Load the background photos and the fills of the given shapes.

    Args:
        shapes (Iterable[str]): Shapes that will be filled with
            :func:`shape_fill`.
        mode (str): One of :data:`FILL_MODES`.

    Returns:
        dict: ``mode``; ``backgrounds`` (RGB uint8 arrays of shape
        (H, W, 3)) and ``textures`` (RGB uint8 photos of shape (H, W, 3) in
        the 'textured' mode, float grey maps of shape (H, W) in the 'tinted'
        mode), each keyed by ``skimage.data`` name.

    Raises:
        ValueError: If ``mode`` is not one of :data:`FILL_MODES`.
    """
    if mode == 'textured':
        names = {PHOTO_TEXTURES[shape] for shape in shapes}
        return dict(
            mode=mode,
            backgrounds={name: load_rgb(name)
                         for name in TEXTURED_BACKGROUNDS},
            textures={name: load_rgb(name) for name in names})
    if mode == 'tinted':
        names = {SHAPE_STYLES[shape][1] for shape in shapes}
        return dict(
            mode=mode,
            backgrounds={name: load_rgb(name) for name in BACKGROUNDS},
            textures={name: load_grey(name) for name in names})
    raise ValueError(f'unknown fill mode {mode!r}: use one of {FILL_MODES}')


def image_size(rng, key, fixed_sizes, side_range):
    """Size of one image: forced for a few images, random otherwise.

    Args:
        rng (np.random.Generator): Random generator; not used for a forced
            size.
        key (Hashable): Identifies the image, e.g. ``(split, index)``.
        fixed_sizes (dict): Forced (width, height) by key.
        side_range (tuple[int, int]): Inclusive range of a random side.

    Returns:
        tuple[int, int]: (width, height).
    """
    if key in fixed_sizes:
        return fixed_sizes[key]
    return tuple(int(v) for v in rng.integers(side_range[0], side_range[1] + 1,
                                              size=2))


def random_crop_resize(rng, src, width, height):
    """Crop a random window with the target aspect ratio and resize it.

    Args:
        rng (np.random.Generator): Random generator.
        src (np.ndarray): Source image of shape (H, W, 3) or (H, W).
        width (int): Output width.
        height (int): Output height.

    Returns:
        np.ndarray: Resized crop of shape (height, width[, 3]), dtype of
        ``src``.
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


def random_background(rng, backgrounds, width, height):
    """Random crop of a random background photo, as a float canvas.

    Args:
        rng (np.random.Generator): Random generator.
        backgrounds (dict[str, np.ndarray]): RGB uint8 photos of shape
            (H, W, 3) keyed by ``skimage.data`` name, in a fixed order.
        width (int): Canvas width.
        height (int): Canvas height.

    Returns:
        np.ndarray: Float64 RGB canvas of shape (height, width, 3).
    """
    names = list(backgrounds)
    name = names[int(rng.integers(len(names)))]
    crop = random_crop_resize(rng, backgrounds[name], width, height)
    return crop.astype(np.float64)


def to_uint8(img):
    """Round and clip a float canvas to uint8.

    Args:
        img (np.ndarray): Float RGB canvas of shape (H, W, 3).

    Returns:
        np.ndarray: uint8 image of shape (H, W, 3).
    """
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


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
        np.ndarray: Array of shape (N, 2), N = ``num_vertices`` (twice that
        for a star).
    """
    steps = num_vertices * (2 if inner_ratio else 1)
    theta = angle + np.arange(steps) * 2 * np.pi / steps
    radii = np.full(steps, float(radius))
    if inner_ratio:
        radii[1::2] *= inner_ratio
    return np.stack([center[0] + radii * np.cos(theta),
                     center[1] + radii * np.sin(theta)], axis=1)


def shape_mask(shape, center, size, angle, height, width, aspect=None):
    """Rasterise one shape into a boolean mask.

    Args:
        shape (str): 'circle', 'square', 'triangle', 'star' (five points,
            inner radius 0.45) or 'ellipse'.
        center (tuple[float, float]): Centre (x, y) in pixels.
        size (float): Diameter of the circle / side of the square /
            circum-diameter of the triangle and the star / major axis of the
            ellipse.
        angle (float): Rotation in radians (ignored for the circle).
        height (int): Image height.
        width (int): Image width.
        aspect (float, optional): Minor over major axis; ellipse only.

    Returns:
        np.ndarray: Boolean mask of shape (height, width).

    Raises:
        ValueError: If ``shape`` is not one of the names above.
    """
    cx, cy = center
    grid = (height, width)
    if shape == 'circle':
        rr, cc = draw.disk((cy, cx), size / 2, shape=grid)
    elif shape == 'ellipse':
        rr, cc = draw.ellipse(cy, cx, size / 2 * aspect, size / 2,
                              shape=grid, rotation=angle)
    else:
        if shape == 'square':
            verts = regular_polygon(center, size / np.sqrt(2), 4, angle)
        elif shape == 'triangle':
            verts = regular_polygon(center, size / 2, 3, angle)
        elif shape == 'star':
            verts = regular_polygon(center, size / 2, 5, angle,
                                    inner_ratio=0.45)
        else:
            raise ValueError(f'unknown shape {shape!r}')
        rr, cc = draw.polygon(verts[:, 1], verts[:, 0], shape=grid)
    mask = np.zeros(grid, dtype=bool)
    mask[rr, cc] = True
    return mask


def random_shape_mask(rng, shape, size_range, height, width):
    """Mask of a shape of random size, position and rotation in the image.

    Draws, in this order, the size, the centre x and y (at least
    ``size / 2 + 1`` px from every edge), the angle in [0, 2 pi) and, for an
    ellipse, the minor over major axis ratio in [0.5, 0.9).

    Args:
        rng (np.random.Generator): Random generator.
        shape (str): Shape name, see :func:`shape_mask`.
        size_range (tuple[float, float]): Range of the size (see
            :func:`shape_mask`).
        height (int): Image height.
        width (int): Image width.

    Returns:
        np.ndarray: Boolean mask of shape (height, width), fully inside the
        image.
    """
    size = rng.uniform(*size_range)
    half = size / 2 + 1
    center = (rng.uniform(half, width - half),
              rng.uniform(half, height - half))
    angle = rng.uniform(0, 2 * np.pi)
    aspect = rng.uniform(0.5, 0.9) if shape == 'ellipse' else None
    return shape_mask(shape, center, size, angle, height, width, aspect)


def tinted_fill(rng, shape, textures, height, width):
    """Tinted colour layer of one shape, covering the whole image.

    The shape's colour (see :data:`SHAPE_STYLES`) is jittered by +-15 %,
    modulated by a random window of its grey texture and noised.

    Args:
        rng (np.random.Generator): Random generator.
        shape (str): Key of :data:`SHAPE_STYLES`.
        textures (dict[str, np.ndarray]): Grey texture maps of shape (H, W),
            at least (height, width), by name.
        height (int): Image height.
        width (int): Image width.

    Returns:
        np.ndarray: Float RGB layer of shape (height, width, 3).
    """
    colour, texture = SHAPE_STYLES[shape]
    tex = textures[texture]
    y0 = int(rng.integers(0, tex.shape[0] - height + 1))
    x0 = int(rng.integers(0, tex.shape[1] - width + 1))
    tex = tex[y0:y0 + height, x0:x0 + width, None]
    colour = np.asarray(colour, dtype=np.float64)
    colour = colour * rng.uniform(0.85, 1.15)
    noise = rng.normal(0, 6, size=(height, width, 1))
    return colour * (0.6 + 0.4 * tex) + noise


def photo_fill(rng, shape, photos, height, width):
    """Layer of one shape cut from its colour photo, covering the image.

    A random window of the shape's photo (see :data:`PHOTO_TEXTURES`,
    between half and all of the largest window of the image's aspect
    ratio), resized to the image, flipped left-right with probability 0.5
    and scaled in brightness by a factor in [0.85, 1.15].

    Args:
        rng (np.random.Generator): Random generator.
        shape (str): Key of :data:`PHOTO_TEXTURES`.
        photos (dict[str, np.ndarray]): RGB uint8 photos of shape (H, W, 3)
            by name.
        height (int): Image height.
        width (int): Image width.

    Returns:
        np.ndarray: Float RGB layer of shape (height, width, 3).
    """
    photo = photos[PHOTO_TEXTURES[shape]]
    layer = random_crop_resize(rng, photo, width, height).astype(np.float64)
    if rng.uniform() < 0.5:
        layer = layer[:, ::-1]
    return layer * rng.uniform(0.85, 1.15)


def shape_fill(rng, shape, sources, height, width):
    """Fill layer of one shape in the mode of ``sources``.

    Args:
        rng (np.random.Generator): Random generator.
        shape (str): Shape name.
        sources (dict): See :func:`load_sources`.
        height (int): Image height.
        width (int): Image width.

    Returns:
        np.ndarray: Float RGB layer of shape (height, width, 3).
    """
    fill = photo_fill if sources['mode'] == 'textured' else tinted_fill
    return fill(rng, shape, sources['textures'], height, width)


class BalancedDeck:
    """Draws labels from reshuffled decks so that their counts stay balanced.

    Args:
        rng (np.random.Generator): Random generator.
        num_labels (int): Number of distinct labels.
        first (int): Smallest label; labels are ``first .. first +
            num_labels - 1``.
    """

    def __init__(self, rng, num_labels, first):
        self.rng = rng
        self.num_labels = num_labels
        self.first = first
        self.deck = []

    def draw(self):
        """Return the next label (int)."""
        if not self.deck:
            self.deck = list(self.rng.permutation(self.num_labels) +
                             self.first)
        return int(self.deck.pop())


def save_jpeg(img, path):
    """Write an RGB image as a JPEG with fixed, deterministic settings.

    Args:
        img (np.ndarray): uint8 image of shape (H, W, 3).
        path (str): Output path.
    """
    Image.fromarray(img).save(path, quality=JPEG_QUALITY, subsampling=2,
                              optimize=False)


def save_png(label_map, path):
    """Write a label map as a single-channel ('L') PNG, deterministically.

    Args:
        label_map (np.ndarray): uint8 map of shape (H, W).
        path (str): Output path.
    """
    Image.fromarray(label_map).save(path, compress_level=PNG_COMPRESS_LEVEL,
                                    optimize=False)


def file_hashes(root):
    """SHA-256 of every file under a directory.

    Args:
        root (str): Directory.

    Returns:
        dict[str, str]: Hex digest keyed by path relative to ``root``.
    """
    hashes = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                hashes[osp.relpath(path, root)] = hashlib.sha256(
                    f.read()).hexdigest()
    return hashes


def check(generate, out_dir, seed, mode, equivalent=None):
    """Regenerate into a temporary directory and compare with ``out_dir``.

    Args:
        generate (Callable[[str, int, str], Any]): Writes the dataset under
            a root for a seed and a fill mode.
        out_dir (str): Dataset root holding the committed files.
        seed (int): Random seed.
        mode (str): Fill mode, one of :data:`FILL_MODES`.
        equivalent (Callable[[str, str], bool], optional): Given a fresh and
            a committed file whose bytes differ, whether they still say the
            same (e.g. polygons simplified differently by another CPU's
            floating point). Defaults to None: bytes must match.

    Returns:
        list[str]: Sorted relative paths that are missing, extra or
        different.
    """
    actual = file_hashes(out_dir) if osp.isdir(out_dir) else {}
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp, seed, mode)
        expected = file_hashes(tmp)
        differing = []
        for path in sorted(set(expected) | set(actual)):
            if expected.get(path) == actual.get(path):
                continue
            if equivalent is not None and path in expected and \
                    path in actual and equivalent(osp.join(tmp, path),
                                                  osp.join(out_dir, path)):
                continue
            differing.append(path)
    return differing


def parse_args(description, default_outs, argv=None):
    """Parse the command line shared by the generators.

    Args:
        description (str): Description shown by ``--help``.
        default_outs (dict[str, str]): Default of ``--out`` per fill mode.
        argv (list[str], optional): Arguments; defaults to ``sys.argv``.

    Returns:
        argparse.Namespace: ``mode``, ``out``, ``seed`` and ``check``.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        '--mode', choices=FILL_MODES, default=FILL_MODES[0],
        help='textured: shapes cut from colour photos (the demo data); '
        'tinted: bright shapes with a weak grey texture (the first sets)')
    parser.add_argument(
        '--out', help='output root (default: ' + ', '.join(
            f'{path} for --mode {mode}'
            for mode, path in default_outs.items()) + ')')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--check', action='store_true',
        help='regenerate into a temporary directory and compare the hashes '
        'with the files under --out instead of writing')
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = default_outs[args.mode]
    return args


def summary(differing):
    """``N file(s): a, b, ... and M more`` (five names at most)."""
    shown = ', '.join(differing[:5])
    if len(differing) > 5:
        shown += f' and {len(differing) - 5} more'
    return f'{len(differing)} file(s): {shown}'


def run_event_generator(args, write, existing, describe):
    """The end of an event-data generator's ``main``: ``--check`` the set
    under ``args.out`` or write it.

    Args:
        args (argparse.Namespace): ``out``, ``seed``, ``check``,
            ``overwrite``.
        write (Callable): ``write(root, seed, overwrite=False)`` writes the
            set and returns its counts.
        existing (list[str]): Output files under ``args.out`` already
            there (refused without ``--overwrite``).
        describe (Callable): Formats the counts for the closing line.
    """
    if args.check:
        differing = check(lambda root, seed, _: write(root, seed), args.out,
                          args.seed, mode=None)
        if differing:
            sys.exit(f'{args.out} differs from a fresh generation with seed '
                     f'{args.seed} in {summary(differing)}')
        print(f'{args.out} matches a fresh generation with seed {args.seed}')
        return
    if existing and not args.overwrite:
        sys.exit(f'{len(existing)} output file(s) exist already, e.g. '
                 f'{existing[0]}: pass --overwrite to replace them')
    counts = write(args.out, args.seed, overwrite=args.overwrite)
    print(f'wrote {args.out} ({describe(counts)})')


def run_cli(description, default_outs, generate, describe, argv=None,
            equivalent=None):
    """Entry point of a generator: write the dataset or ``--check`` it.

    With ``--check``, exits with status 1 and lists (up to five of) the
    differing files on stderr when a fresh generation differs from
    ``--out``.

    Args:
        description (str): Description shown by ``--help``.
        default_outs (dict[str, str]): Default of ``--out`` per fill mode.
        generate (Callable[[str, int, str], Any]): Writes the dataset under
            a root for a seed and a fill mode, and returns summary counts.
        describe (Callable[[Any], str]): Formats those counts for the
            closing ``wrote OUT (...)`` line.
        argv (list[str], optional): Arguments; defaults to ``sys.argv``.
        equivalent (Callable[[str, str], bool], optional): See
            :func:`check`.
    """
    args = parse_args(description, default_outs, argv)
    if args.check:
        differing = check(generate, args.out, args.seed, args.mode,
                          equivalent)
        if differing:
            print(f'{args.out} differs from a fresh {args.mode} generation '
                  f'with seed {args.seed} in {summary(differing)}',
                  file=sys.stderr)
            sys.exit(1)
        print(f'{args.out} matches a fresh {args.mode} generation with seed '
              f'{args.seed}')
        return
    counts = generate(args.out, args.seed, args.mode)
    print(f'wrote {args.out} ({describe(counts)})')
