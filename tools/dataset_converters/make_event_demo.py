"""Make the bundled Gen1-layout event-camera detection demo recordings.

Simulated recordings, small enough to live in the repository, that train
and test the demo event detectors (``configs/event_det/*_gen1_demo.py``,
dataset type ``Gen1Dataset``) on a CPU in minutes::

    python tools/dataset_converters/make_event_demo.py [--out data/gen1_demo]
        [--seed 0] [--check] [--overwrite]

``--num-train`` / ``--num-val`` / ``--num-test`` and ``--duration-ms`` make
other sets (the tests write five recordings of 200 ms); ``--check`` needs the
options the set was made with.

Layout (that of the Prophesee Gen1 download, relative to ``--out``)::

    train/demo_train_00_td.dat, demo_train_00_bbox.npy ... (6 recordings)
    val/demo_val_00_td.dat ...                              (2 recordings)
    test/demo_test_00_td.dat ...                            (2 recordings)

Each ``*_td.dat`` holds the events of a 304 x 240 sensor (Prophesee ``.dat``
with a header); each ``*_bbox.npy`` the boxes of the recording: top-left
``x, y``, size ``w, h`` (float32, sensor pixels), ``class_id``
(0 car, 1 pedestrian), ``track_id`` (one per object) and
``class_confidence`` 1, at every label time (50 ms apart from 100 ms on, so
that the evaluation's "skip the first 0.5 s" filter has labels to drop).

How a recording is made: grey intensity frames are rendered at 500 Hz and
turned into events by :class:`~mmtpspike.datasets.events.simulator.
EventSimulator` (contrast threshold 0.2 with 3 % per-pixel jitter, a
0.5 ms refractory period and a little background noise), which interpolates
event times between frames. A frame is a textured background (a crop of a
``skimage.data`` photo, the backgrounds of the textured mini sets) that
drifts slowly (camera ego-motion), with one to three textured objects drawn
over it with sub-pixel positions: cars (class 0) are wide rounded boxes cut
from the coffee photo, pedestrians (class 1) tall narrow ellipses with a
head, cut from the astronaut photo (classes are dealt from one balanced deck
per split, so that every split holds both). Each object moves along a
quadratic Bezier path: a straight line or a turn. Textures are normalised in
log intensity (their contrast sets the event rate), objects are brighter or
darker than the background. The default set holds 704 k events (5.7 MB) and
takes about 20 s of one core.

Boxes the evaluation filters must drop, present on purpose: a tiny
pedestrian (8 x 18 px: side below 10, diagonal below 30) in
``demo_train_01``, ``demo_val_00`` and ``demo_test_01``, and an object that
ends its path partly outside the frame in ``demo_train_02``, ``demo_val_01``
and ``demo_test_00`` (its boxes are written unclipped, as real labels
sometimes are). ``demo_val_01_bbox.npy`` is written in the legacy dtype
(``ts`` and ``confidence``).

The output is deterministic: the same seed and options give byte-identical
files with the pinned numpy and scipy (photos are resampled by scipy, not
Pillow, so both tested stacks make the same bytes). ``--check`` regenerates
into a temporary directory and compares file hashes with ``--out``; it exits
with status 1 and lists the differing files when they differ. Existing files
are not overwritten unless ``--overwrite`` is given.
"""
import argparse
import functools
import os
import os.path as osp
import sys
import time
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# the shared helpers sit next to this script; make them importable however
# the script is run or loaded
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import synthetic_scenes as scenes  # noqa: E402

from mmtpspike.datasets.events.bbox_labels import (  # noqa: E402
    BBOX_DTYPE, write_bbox_npy)
from mmtpspike.datasets.events.events import Events  # noqa: E402
from mmtpspike.datasets.events.prophesee_dat import write_dat  # noqa: E402
from mmtpspike.datasets.events.simulator import EventSimulator  # noqa: E402

WIDTH, HEIGHT = 304, 240  # the Gen1 sensor
CLASSES = ('car', 'pedestrian')
DEFAULT_OUT = 'data/gen1_demo'
DEFAULT_RECORDINGS = dict(train=6, val=2, test=2)
DEFAULT_DURATION_MS = 2000
FRAME_RATE_HZ = 500
LABEL_PERIOD_MS = 50
FIRST_LABEL_MS = 100
SIMULATOR = dict(contrast_threshold=0.2, threshold_sigma=0.03,
                 refractory_us=500, noise_rate_hz=0.01, eps=1e-3)
# edge cases, by (split, index)
TINY_OBJECT = {('train', 1), ('val', 0), ('test', 1)}
TINY_SIZE = (8, 18)  # (w, h) of the tiny pedestrian
LEAVING_OBJECT = {('train', 2), ('val', 1), ('test', 0)}
LEAVING_OUTSIDE = 0.4  # part of its width outside the frame at the end
LEGACY_LABELS = {('val', 1)}
# photo each class is cut from (those of the mini sets)
CLASS_PHOTOS = dict(car='coffee', pedestrian='astronaut')
# sizes in px: car width and width / height; pedestrian height and
# width / height
CAR_WIDTH = (40, 84)
CAR_ASPECT = (1.5, 2.3)
PEDESTRIAN_HEIGHT = (36, 76)
PEDESTRIAN_ASPECT = (0.32, 0.45)
NUM_OBJECTS = (1, 3)
SPEED_PX_S = (12, 36)
TURN = 0.35  # largest sideways offset of a path's control point / length
BACKGROUND_SPEED_PX_S = 8
# intensity (frames are in [0, 1]) and contrast (std of log intensity)
BACKGROUND_MEAN = (0.25, 0.5)
BACKGROUND_CONTRAST = 0.12
BACKGROUND_BLUR_PX = 1.5
OBJECT_CONTRAST = 0.2
OBJECT_BLUR_PX = 0.5
OBJECT_OFFSET = (0.3, 0.6)  # |log of object over background brightness|


def grey_crop(rng, photo, width, height):
    """A random crop of a photo, resized, in grey.

    Resampled with scipy (a Gaussian anti-alias filter of half the
    reduction factor, then bilinear samples at the output pixel centres),
    not with Pillow, whose resampling changed between the releases our two
    stacks pin: the bundled recordings must come out byte-identical on both.

    Args:
        rng (np.random.Generator): Random generator.
        photo (np.ndarray): RGB uint8 photo, ``[H, W, 3]``.
        width (int): Output width.
        height (int): Output height.

    Returns:
        np.ndarray: Grey levels in [0, 255], ``[height, width]`` float64.
    """
    src_h, src_w = photo.shape[:2]
    max_factor = min(src_h / height, src_w / width)
    factor = rng.uniform(0.5 * max_factor, max_factor)
    crop_h = min(src_h, max(1, round(height * factor)))
    crop_w = min(src_w, max(1, round(width * factor)))
    y0 = int(rng.integers(0, src_h - crop_h + 1))
    x0 = int(rng.integers(0, src_w - crop_w + 1))
    grey = photo[y0:y0 + crop_h, x0:x0 + crop_w].astype(np.float64).mean(-1)
    scale = np.array([crop_h / height, crop_w / width])
    grey = ndimage.gaussian_filter(grey, np.maximum(scale - 1, 0) / 2)
    rows = (np.arange(height) + 0.5) * scale[0] - 0.5
    cols = (np.arange(width) + 0.5) * scale[1] - 0.5
    grid = np.meshgrid(rows, cols, indexing='ij')
    return ndimage.map_coordinates(grey, grid, order=1, mode='nearest')


def texture(rng, photo, width, height, mean, contrast, blur):
    """Grey texture of a random photo crop with a given log contrast.

    Args:
        rng (np.random.Generator): Random generator.
        photo (np.ndarray): RGB uint8 photo, ``[H, W, 3]``.
        width (int): Texture width.
        height (int): Texture height.
        mean (float): Intensity of the texture's mean log level.
        contrast (float): Standard deviation of its log intensity.
        blur (float): Standard deviation in px of the Gaussian blur of the
            crop (fine texture makes many events).

    Returns:
        np.ndarray: Intensity, ``[height, width]`` float64, positive.
    """
    grey = ndimage.gaussian_filter(grey_crop(rng, photo, width, height),
                                   blur)
    z = (grey - grey.mean()) / max(grey.std(), 1e-6)
    return mean * np.exp(contrast * np.clip(z, -2.5, 2.5))


def sample_window(canvas, x, y, width, height):
    """Bilinear samples of ``canvas`` on a grid shifted by ``(x, y)``.

    Args:
        canvas (np.ndarray): ``[H, W]`` float map, at least
            ``floor(y) + height + 1`` rows and ``floor(x) + width + 1``
            columns.
        x (float): Column of the first sample, >= 0.
        y (float): Row of the first sample, >= 0.
        width (int): Number of columns.
        height (int): Number of rows.

    Returns:
        np.ndarray: ``[height, width]``, ``out[i, j] = canvas(y + i, x + j)``.
    """
    col, row = int(np.floor(x)), int(np.floor(y))
    fx, fy = x - col, y - row
    patch = canvas[row:row + height + 1, col:col + width + 1]
    rows = patch[:-1] * (1 - fy) + patch[1:] * fy
    return rows[:, :-1] * (1 - fx) + rows[:, 1:] * fx


@dataclass
class Backdrop:
    """A textured plane that drifts at constant velocity (ego-motion).

    Args:
        canvas (np.ndarray): Intensity, ``[HEIGHT + 2 m, WIDTH + 2 m]``.
        velocity (np.ndarray): Drift in px / s, ``[2]`` (x, y).
        margin (int): ``m``, more than the drift of the recording.
    """
    canvas: np.ndarray
    velocity: np.ndarray
    margin: int

    def render(self, t_s):
        """The sensor's view at ``t_s`` seconds, ``[HEIGHT, WIDTH]``."""
        x, y = self.margin + self.velocity * t_s
        return sample_window(self.canvas, x, y, WIDTH, HEIGHT)


@dataclass
class MovingObject:
    """A textured sprite whose top-left corner follows a Bezier path.

    Args:
        class_id (int): Index in :data:`CLASSES`.
        track_id (int): Identity in its recording.
        premultiplied (np.ndarray): Intensity times coverage, ``[h, w]``,
            padded by one zero pixel before and two after on both axes.
        alpha (np.ndarray): Coverage in [0, 1], padded the same way.
        path (np.ndarray): Control points of a quadratic Bezier curve of
            the top-left corner, ``[3, 2]`` (x, y), over the recording.
    """
    class_id: int
    track_id: int
    premultiplied: np.ndarray
    alpha: np.ndarray
    path: np.ndarray

    @property
    def size(self):
        """(w, h) of the sprite, also that of its box."""
        return self.alpha.shape[1] - 3, self.alpha.shape[0] - 3

    def position(self, s):
        """Top-left (x, y) at the fraction ``s`` in [0, 1] of the path."""
        start, control, end = self.path
        return ((1 - s)**2 * start + 2 * s * (1 - s) * control +
                s**2 * end)

    def draw(self, frame, s):
        """Composite the sprite over ``frame`` (``[H, W]``, in place)."""
        x, y = self.position(s)
        width, height = self.size
        col, row = int(np.floor(x)), int(np.floor(y))
        # frame pixels [row, row + height] x [col, col + width] sample the
        # padded sprite from (1 - fy, 1 - fx) on
        sx, sy = 1 - (x - col), 1 - (y - row)
        alpha = sample_window(self.alpha, sx, sy, width + 1, height + 1)
        ink = sample_window(self.premultiplied, sx, sy, width + 1,
                            height + 1)
        top, left = max(row, 0), max(col, 0)
        bottom = min(row + height + 1, frame.shape[0])
        right = min(col + width + 1, frame.shape[1])
        if top >= bottom or left >= right:
            return
        crop = np.s_[top - row:bottom - row, left - col:right - col]
        region = frame[top:bottom, left:right]
        region *= 1 - alpha[crop]
        region += ink[crop]


def car_mask(width, height):
    """A box with rounded corners, ``[height, width]`` bool, tight."""
    radius = 0.25 * min(width, height)
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    dx = np.maximum(np.abs(xs - width / 2) - (width / 2 - radius), 0)
    dy = np.maximum(np.abs(ys - height / 2) - (height / 2 - radius), 0)
    return dx**2 + dy**2 <= radius**2


def pedestrian_mask(width, height):
    """An upright ellipse under a head disc, ``[height, width]`` bool,
    tight."""
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    head = 0.3 * width
    body_top = 1.6 * head
    body = (((xs - width / 2) / (width / 2))**2 +
            ((ys - (body_top + height) / 2) / ((height - body_top) / 2))**2
            <= 1)
    head_disc = (xs - width / 2)**2 + (ys - head)**2 <= head**2
    return body | head_disc


def object_size(rng, class_name):
    """Random (w, h) in px of an object of a class."""
    if class_name == 'car':
        width = rng.uniform(*CAR_WIDTH)
        height = width / rng.uniform(*CAR_ASPECT)
    else:
        height = rng.uniform(*PEDESTRIAN_HEIGHT)
        width = height * rng.uniform(*PEDESTRIAN_ASPECT)
    return int(round(width)), int(round(height))


def object_path(rng, width, height, duration_s, leaving=False):
    """Control points of a top-left corner's path that keeps the object in
    the frame (``leaving``: ends partly beyond the left or right edge).

    Args:
        rng (np.random.Generator): Random generator.
        width (int): Object width.
        height (int): Object height.
        duration_s (float): Length of the recording.
        leaving (bool): Whether the path ends with
            :data:`LEAVING_OUTSIDE` of the width outside the frame.

    Returns:
        np.ndarray: ``[3, 2]`` float64 (x, y) start, control and end.
    """
    low = np.zeros(2)
    high = np.array([WIDTH - width, HEIGHT - height], dtype=np.float64)
    start = rng.uniform(low, high)
    angle = rng.uniform(0, 2 * np.pi)
    step = rng.uniform(*SPEED_PX_S) * duration_s * np.array(
        [np.cos(angle), np.sin(angle)])
    # of the two opposite directions, the one the frame cuts less
    end = max((np.clip(start + sign * step, low, high) for sign in (1, -1)),
              key=lambda end: np.linalg.norm(end - start))
    if leaving:
        outside = LEAVING_OUTSIDE * width
        end[0] = -outside if end[0] < high[0] / 2 else high[0] + outside
    chord = end - start
    normal = np.array([-chord[1], chord[0]])
    control = (start + end) / 2 + rng.uniform(-TURN, TURN) * normal
    control = np.clip(control, np.minimum(low, end), np.maximum(high, end))
    return np.stack([start, control, end])


def make_object(rng, class_id, track_id, size, background_mean, photos,
                duration_s, leaving=False):
    """A textured object of a class on a random path.

    Args:
        rng (np.random.Generator): Random generator.
        class_id (int): Index in :data:`CLASSES`.
        track_id (int): Identity in the recording.
        size (tuple[int, int]): (w, h) in px.
        background_mean (float): Mean intensity of the background.
        photos (dict[str, np.ndarray]): RGB uint8 photos by name.
        duration_s (float): Length of the recording.
        leaving (bool): See :func:`object_path`.

    Returns:
        MovingObject: The object.
    """
    class_name = CLASSES[class_id]
    width, height = size
    shape = car_mask if class_name == 'car' else pedestrian_mask
    alpha = shape(width, height).astype(np.float64)
    offset = rng.uniform(*OBJECT_OFFSET) * rng.choice([-1., 1.])
    intensity = texture(rng, photos[CLASS_PHOTOS[class_name]], width,
                        height, background_mean * np.exp(offset),
                        OBJECT_CONTRAST, OBJECT_BLUR_PX)
    pad = ((1, 2), (1, 2))
    path = object_path(rng, width, height, duration_s, leaving)
    return MovingObject(class_id, track_id, np.pad(alpha * intensity, pad),
                        np.pad(alpha, pad), path)


def make_scene(rng, key, duration_s, photos, deck):
    """Background and objects of one recording.

    Args:
        rng (np.random.Generator): Random generator.
        key (tuple[str, int]): (split, index) of the recording.
        duration_s (float): Length of the recording.
        photos (dict[str, np.ndarray]): RGB uint8 photos by name.
        deck (scenes.BalancedDeck): Class sampler of the split (so that
            every split of two objects or more holds both classes).

    Returns:
        tuple[Backdrop, list[MovingObject]]: The scene.
    """
    names = list(scenes.TEXTURED_BACKGROUNDS)
    mean = rng.uniform(*BACKGROUND_MEAN)
    margin = int(np.ceil(BACKGROUND_SPEED_PX_S * duration_s)) + 1
    canvas = texture(rng, photos[names[int(rng.integers(len(names)))]],
                     WIDTH + 2 * margin, HEIGHT + 2 * margin, mean,
                     BACKGROUND_CONTRAST, BACKGROUND_BLUR_PX)
    angle = rng.uniform(0, 2 * np.pi)
    velocity = BACKGROUND_SPEED_PX_S * np.array([np.cos(angle),
                                                 np.sin(angle)])
    num_objects = int(rng.integers(NUM_OBJECTS[0], NUM_OBJECTS[1] + 1))
    objects = []
    for track_id in range(num_objects):
        class_id = deck.draw()
        size = object_size(rng, CLASSES[class_id])
        leaving = key in LEAVING_OBJECT and track_id == 0
        objects.append(make_object(rng, class_id, track_id, size, mean,
                                   photos, duration_s, leaving))
    if key in TINY_OBJECT:
        objects.append(make_object(rng, CLASSES.index('pedestrian'),
                                   len(objects), TINY_SIZE, mean, photos,
                                   duration_s))
    return Backdrop(canvas, velocity, margin), objects


def render(backdrop, objects, t_s, duration_s):
    """Intensity frame at ``t_s`` seconds, ``[HEIGHT, WIDTH]``, in
    [0, 1]."""
    frame = backdrop.render(t_s)
    for obj in objects:
        obj.draw(frame, t_s / duration_s)
    return np.clip(frame, 0., 1.)


def label_boxes(objects, duration_us):
    """Boxes of every object at every label time.

    Args:
        objects (list[MovingObject]): The objects.
        duration_us (int): Length of the recording.

    Returns:
        np.ndarray: ``[N]`` structured ``BBOX_DTYPE``, sorted by time.
    """
    period, first = LABEL_PERIOD_MS * 1000, FIRST_LABEL_MS * 1000
    times = np.arange(first, duration_us + 1, period)
    boxes = np.zeros(len(times) * len(objects), dtype=BBOX_DTYPE)
    for i, (t, obj) in enumerate(
            (t, obj) for t in times for obj in objects):
        x, y = obj.position(t / duration_us)
        width, height = obj.size
        boxes[i] = (t, x, y, width, height, obj.class_id, obj.track_id, 1.)
    return boxes


def simulate(backdrop, objects, duration_us, seed):
    """Events of a scene, rendered at :data:`FRAME_RATE_HZ`.

    Args:
        backdrop (Backdrop): Background.
        objects (list[MovingObject]): Objects, drawn in order.
        duration_us (int): Length of the recording.
        seed (int): Seed of the simulator's jitter and noise.

    Returns:
        Events: Sorted by time, in ``(0, duration_us]``.
    """
    simulator = EventSimulator(seed=seed, **SIMULATOR)
    period_us = 1_000_000 // FRAME_RATE_HZ
    parts = [
        simulator.step(render(backdrop, objects, t_us * 1e-6,
                              duration_us * 1e-6), t_us)
        for t_us in range(0, duration_us + 1, period_us)
    ]
    return Events.concatenate(parts)


def recording_keys(recordings):
    """(split, index) of every recording, in generation order."""
    return [(split, index) for split, count in recordings.items()
            for index in range(count)]


def recording_paths(out_dir, key):
    """(events, labels) paths of the recording ``key``."""
    split, index = key
    stem = osp.join(out_dir, split, f'demo_{split}_{index:02d}')
    return stem + '_td.dat', stem + '_bbox.npy'


def generate(out_dir, seed, recordings=None,
             duration_ms=DEFAULT_DURATION_MS, overwrite=False):
    """Write every recording and its labels.

    Args:
        out_dir (str): Dataset root.
        seed (int): Random seed.
        recordings (dict[str, int], optional): Number of recordings per
            split. Defaults to :data:`DEFAULT_RECORDINGS`.
        duration_ms (int): Length of each recording.
        overwrite (bool): Whether to replace existing files.

    Returns:
        dict[str, tuple[int, int, int]]: (recordings, events, label times)
        per split.
    """
    recordings = recordings or DEFAULT_RECORDINGS
    rng = np.random.default_rng(seed)
    photos = {name: scenes.load_rgb(name) for name in
              (*scenes.TEXTURED_BACKGROUNDS, *CLASS_PHOTOS.values())}
    duration_us = duration_ms * 1000
    counts = {split: [0, 0, 0] for split in recordings}
    decks = {split: scenes.BalancedDeck(rng, len(CLASSES), first=0)
             for split in recordings}
    for key in recording_keys(recordings):
        start = time.perf_counter()
        backdrop, objects = make_scene(rng, key, duration_ms * 1e-3, photos,
                                       decks[key[0]])
        sim_seed = int(rng.integers(2**31))
        events = simulate(backdrop, objects, duration_us, sim_seed)
        boxes = label_boxes(objects, duration_us)
        events_path, labels_path = recording_paths(out_dir, key)
        os.makedirs(osp.dirname(events_path), exist_ok=True)
        write_dat(events_path, events, WIDTH, HEIGHT, overwrite=overwrite)
        write_bbox_npy(labels_path, boxes, legacy=key in LEGACY_LABELS,
                       overwrite=overwrite)
        num_times = len(np.unique(boxes['t']))
        counts[key[0]] = [a + b for a, b in zip(
            counts[key[0]], (1, len(events), num_times))]
        print(f'{osp.relpath(events_path, out_dir)}: {len(events)} events, '
              f'{len(objects)} object(s), {len(boxes)} boxes at {num_times} '
              f'label times ({time.perf_counter() - start:.1f} s)',
              flush=True)
    return counts


def describe(counts):
    """Summary of :func:`generate`'s counts for the closing message."""
    return ', '.join(
        f'{split}: {num} recordings / {events} events / {times} label times'
        for split, (num, events, times) in counts.items() if num)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Make the bundled Gen1-layout event-camera detection '
        'demo recordings (simulated events and boxes)')
    parser.add_argument('--out', default=DEFAULT_OUT,
                        help=f'output root (default: {DEFAULT_OUT})')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    for split, count in DEFAULT_RECORDINGS.items():
        parser.add_argument(
            f'--num-{split}', type=int, default=count, metavar='N',
            help=f'recordings in {split}/ (default: {count})')
    parser.add_argument(
        '--duration-ms', type=int, default=DEFAULT_DURATION_MS,
        help='length of each recording in ms (default: '
        f'{DEFAULT_DURATION_MS})')
    parser.add_argument(
        '--check', action='store_true',
        help='regenerate into a temporary directory and compare the hashes '
        'with the files under --out instead of writing')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace existing recordings under --out')
    args = parser.parse_args(argv)
    args.recordings = {split: getattr(args, f'num_{split}')
                       for split in DEFAULT_RECORDINGS}
    if min(args.recordings.values()) < 0 or args.duration_ms < \
            FIRST_LABEL_MS:
        parser.error('recording counts must be >= 0 and --duration-ms at '
                     f'least {FIRST_LABEL_MS} (the first label time)')
    return args


def main(argv=None):
    args = parse_args(argv)
    write = functools.partial(generate, recordings=args.recordings,
                              duration_ms=args.duration_ms)
    existing = [path for key in recording_keys(args.recordings)
                for path in recording_paths(args.out, key) if osp.exists(path)]
    scenes.run_event_generator(args, write, existing, describe)


if __name__ == '__main__':
    main()
