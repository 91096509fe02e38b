"""Make the bundled FE108-layout event-camera single-object tracking demo.

Simulated sequences, small enough to live in the repository, that train and
test the demo event trackers (``configs/event_sot/*_sot_demo.py``, dataset
type ``EventSOTDataset``, ``layout='fe108'``) on a CPU in minutes::

    python tools/dataset_converters/make_event_sot_demo.py
        [--out data/sot_demo] [--seed 0] [--check] [--overwrite]

``--num-train`` / ``--num-test`` and ``--num-frames`` make other sets (the
tests write three sequences of six frames); ``--check`` needs the options
the set was made with.

Layout (that of the FE108 download, relative to ``--out``)::

    train/demo_train_00/events.aedat4, groundtruth_rect.txt ... (8)
    test/demo_test_00/events.aedat4, groundtruth_rect.txt ...   (4)

Each ``events.aedat4`` holds the events of a 160 x 120 sensor and the
timestamps of the annotated frames (as FE108's hold their APS frames);
``groundtruth_rect.txt`` one ``x,y,w,h`` line per annotated frame
(top-left corner and size in sensor pixels, two decimals; ``0,0,0,0`` where
the target is hidden). Frames are annotated at 25 Hz, the ``k``-th at
``(k + 1) * 40`` ms (events start at 0, so the first frame interval holds
events too); a sequence has 60 frames (2.4 s).

How a sequence is made: grey intensity frames are rendered at 500 Hz and
turned into events by :class:`~mmtpspike.datasets.events.simulator.
EventSimulator` (contrast threshold 0.25 with 3 % per-pixel jitter, a
0.5 ms refractory period and a little background noise). A frame is a
textured background (a crop of a ``skimage.data`` photo, those of the
Gen1-layout demo, ``make_event_demo.py``) that drifts slowly (camera
ego-motion, 2 to 10 px/s), with the target drawn over it: a textured sprite
(a rounded box or an ellipse cut from one of four colour photos) whose
top-left corner follows a quadratic Bezier path across the frame (40 to 70
px/s) while its size changes smoothly by a factor between 0.65 and 1.5 (so
it moves, scales and crosses the background texture). Odd-numbered
sequences hold a distractor drawn under the target: the same shape cut
from another crop of the same photo, of a similar size, on a path that
crosses the target's. In ``demo_train_03`` the target is hidden for a
tenth of the sequence from 40 % on (its rows are ``0,0,0,0``). The
rendering reuses the helpers of ``make_event_demo.py`` (photo crops
resampled with scipy, not Pillow, so both tested stacks make the same
bytes; sub-pixel bilinear sampling; its rounded-box mask). The default
set holds 12 sequences / 720 frames / 320 k events and takes about 20 s of
one core. It is 5.3 MB on disk: the events, 16 bytes each in uncompressed
AEDAT4, and one 1 x 1 placeholder APS frame per annotated frame, through
which AEDAT4 carries the frame times.

The output is deterministic: the same seed and options give byte-identical
files with the pinned numpy and scipy. ``--check`` regenerates into a
temporary directory and compares file hashes with ``--out``; it exits with
status 1 and lists the differing files when they differ. Existing files are
not overwritten unless ``--overwrite`` is given.
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
import make_event_demo as classic  # noqa: E402
import synthetic_scenes as scenes  # noqa: E402

from mmtpspike.datasets.events.aedat4 import write_aedat4  # noqa: E402
from mmtpspike.datasets.events.events import Events  # noqa: E402
from mmtpspike.datasets.events.simulator import EventSimulator  # noqa: E402

WIDTH, HEIGHT = 160, 120
DEFAULT_OUT = 'data/sot_demo'
DEFAULT_SEQUENCES = dict(train=8, test=4)
DEFAULT_FRAMES = 60
FRAME_PERIOD_US = 40_000  # annotated frames at 25 Hz
RENDER_STEPS = 20  # rendered frames per annotated frame (500 Hz)
EVENTS_FILE = 'events.aedat4'
GROUNDTRUTH_FILE = 'groundtruth_rect.txt'
SIMULATOR = dict(contrast_threshold=0.25, threshold_sigma=0.03,
                 refractory_us=500, noise_rate_hz=0.02, eps=1e-3)
TARGET_PHOTOS = ('chelsea', 'coffee', 'astronaut', 'rocket')
SHAPES = ('box', 'ellipse')
TARGET_SIDE = (16, 30)  # px, the larger side at scale 1
TARGET_ASPECT = (0.6, 1.6)  # width / height
SCALE = (0.65, 1.5)  # size factor at the start and the end of a path
SPEED_PX_S = (40, 70)
TURN = 0.35  # largest sideways offset of a path's control point / length
BACKGROUND_SPEED_PX_S = (2, 10)
BACKGROUND_MEAN = (0.25, 0.5)
BACKGROUND_CONTRAST = 0.12
BACKGROUND_BLUR_PX = 1.5
TARGET_CONTRAST = 0.25
TARGET_BLUR_PX = 0.5
TARGET_OFFSET = (0.3, 0.6)  # |log of target over background brightness|
SPRITE_UPSAMPLE = 2  # sprite textures are rendered at 2x their base size
# edge cases, by (split, index)
HIDDEN_TARGET = {('train', 3)}
HIDDEN_SPAN = (0.4, 0.5)  # fraction of the frames the target is hidden


def ellipse_mask(width, height):
    """An ellipse touching every side, ``[height, width]`` bool."""
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    return (((xs - width / 2) / (width / 2))**2 +
            ((ys - height / 2) / (height / 2))**2 <= 1)


MASKS = dict(box=classic.car_mask, ellipse=ellipse_mask)


@dataclass
class Backdrop:
    """A textured plane that drifts at constant velocity (ego-motion).

    Args:
        canvas (np.ndarray): Intensity, ``[HEIGHT + 2 m, WIDTH + 2 m]``.
        velocity (np.ndarray): Drift in px / s, ``[2]`` (x, y).
        margin (int): ``m``, more than the drift of the sequence.
    """
    canvas: np.ndarray
    velocity: np.ndarray
    margin: int

    def render(self, t_s):
        """The sensor's view at ``t_s`` seconds, ``[HEIGHT, WIDTH]``."""
        x, y = self.margin + self.velocity * t_s
        return classic.sample_window(self.canvas, x, y, WIDTH, HEIGHT)


@dataclass
class ScalingSprite:
    """A textured sprite whose top-left corner follows a Bezier path and
    whose size changes along it.

    Args:
        ink (np.ndarray): Intensity times coverage at ``SPRITE_UPSAMPLE``
            times the base size, ``[hb, wb]``.
        alpha (np.ndarray): Coverage in [0, 1], ``[hb, wb]``.
        size (np.ndarray): Base (w, h) in px, ``[2]``.
        path (np.ndarray): Control points of the top-left corner, ``[3,
            2]`` (x, y), over the sequence.
        scales (tuple[float, float]): Size factor at the path's start and
            end (smoothstep in between).
    """
    ink: np.ndarray
    alpha: np.ndarray
    size: np.ndarray
    path: np.ndarray
    scales: tuple

    def box(self, s):
        """``(x, y, w, h)`` at the fraction ``s`` in [0, 1] of the path."""
        start, control, end = self.path
        corner = ((1 - s)**2 * start + 2 * s * (1 - s) * control +
                  s**2 * end)
        ease = s * s * (3 - 2 * s)
        scale = self.scales[0] + (self.scales[1] - self.scales[0]) * ease
        return np.concatenate([corner, self.size * scale])

    def draw(self, frame, s):
        """Composite the sprite over ``frame`` (``[H, W]``, in place):
        frame pixel ``(i, j)`` samples the sprite at its centre, bilinear,
        with zero coverage beyond the sprite (so the edge pixels the box
        cuts are partly covered)."""
        x, y, width, height = self.box(s)
        left, top = max(int(np.floor(x)), 0), max(int(np.floor(y)), 0)
        right = min(int(np.ceil(x + width)), frame.shape[1])
        bottom = min(int(np.ceil(y + height)), frame.shape[0])
        if left >= right or top >= bottom:
            return
        rows = ((np.arange(top, bottom) + 0.5 - y) * self.alpha.shape[0] /
                height - 0.5)
        cols = ((np.arange(left, right) + 0.5 - x) * self.alpha.shape[1] /
                width - 0.5)
        grid = np.meshgrid(rows, cols, indexing='ij')
        alpha, ink = (ndimage.map_coordinates(image, grid, order=1,
                                              mode='grid-constant', cval=0.)
                      for image in (self.alpha, self.ink))
        region = frame[top:bottom, left:right]
        region *= 1 - alpha
        region += ink


def sprite_size(rng):
    """Random base (w, h) in px."""
    side = rng.uniform(*TARGET_SIDE)
    aspect = rng.uniform(*TARGET_ASPECT)
    if aspect >= 1:
        return np.array([side, side / aspect])
    return np.array([side * aspect, side])


def sprite_path(rng, size, scales, duration_s, through=None):
    """Control points of a top-left corner's path that keeps the sprite in
    the frame at its largest size.

    Args:
        rng (np.random.Generator): Random generator.
        size (np.ndarray): Base (w, h).
        scales (tuple[float, float]): Size factors along the path.
        duration_s (float): Length of the sequence.
        through (np.ndarray, optional): A point (x, y) the path's middle
            passes near (a distractor crossing the target's path).

    Returns:
        np.ndarray: ``[3, 2]`` float64 (x, y) start, control and end.
    """
    high = np.array([WIDTH, HEIGHT]) - size * max(scales)
    angle = rng.uniform(0, 2 * np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)])
    length = rng.uniform(*SPEED_PX_S) * duration_s
    if through is None:
        middle = rng.uniform(0.3 * high, 0.7 * high)
    else:
        middle = np.clip(through, 0, high)
    start = np.clip(middle - direction * length / 2, 0, high)
    end = np.clip(middle + direction * length / 2, 0, high)
    chord = end - start
    normal = np.array([-chord[1], chord[0]])
    control = (start + end) / 2 + rng.uniform(-TURN, TURN) * normal
    return np.stack([start, np.clip(control, 0, high), end])


def make_sprite(rng, photo, shape, size, mean, duration_s, through=None):
    """A textured sprite on a random scaling path.

    Args:
        rng (np.random.Generator): Random generator.
        photo (np.ndarray): RGB uint8 photo its texture is cut from.
        shape (str): One of :data:`SHAPES`.
        size (np.ndarray): Base (w, h).
        mean (float): Mean intensity of the background.
        duration_s (float): Length of the sequence.
        through (np.ndarray, optional): See :func:`sprite_path`.

    Returns:
        ScalingSprite: The sprite.
    """
    width, height = np.maximum(
        np.round(size * SPRITE_UPSAMPLE).astype(int), 2)
    alpha = MASKS[shape](width, height).astype(np.float64)
    offset = rng.uniform(*TARGET_OFFSET) * rng.choice([-1., 1.])
    intensity = classic.texture(rng, photo, width, height,
                                mean * np.exp(offset), TARGET_CONTRAST,
                                TARGET_BLUR_PX * SPRITE_UPSAMPLE)
    scales = tuple(rng.uniform(*SCALE, size=2))
    path = sprite_path(rng, size, scales, duration_s, through)
    return ScalingSprite(alpha * intensity, alpha, size, path, scales)


def make_scene(rng, key, duration_s, photos):
    """Background, target and (odd indices) distractor of one sequence.

    Returns:
        tuple[Backdrop, ScalingSprite, ScalingSprite or None]: The scene.
    """
    names = list(scenes.TEXTURED_BACKGROUNDS)
    mean = rng.uniform(*BACKGROUND_MEAN)
    speed = rng.uniform(*BACKGROUND_SPEED_PX_S)
    margin = int(np.ceil(speed * duration_s)) + 1
    canvas = classic.texture(
        rng, photos[names[int(rng.integers(len(names)))]],
        WIDTH + 2 * margin, HEIGHT + 2 * margin, mean, BACKGROUND_CONTRAST,
        BACKGROUND_BLUR_PX)
    angle = rng.uniform(0, 2 * np.pi)
    velocity = speed * np.array([np.cos(angle), np.sin(angle)])
    photo = photos[TARGET_PHOTOS[int(rng.integers(len(TARGET_PHOTOS)))]]
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    size = sprite_size(rng)
    target = make_sprite(rng, photo, shape, size, mean, duration_s)
    distractor = None
    if key[1] % 2 == 1:
        crossing = target.box(0.5)[:2]
        distractor = make_sprite(rng, photo, shape,
                                 size * rng.uniform(0.85, 1.15), mean,
                                 duration_s, through=crossing)
    return Backdrop(canvas, velocity, margin), target, distractor


def hidden_frames(key, num_frames):
    """``[N]`` bool: annotated frames whose target is hidden."""
    hidden = np.zeros(num_frames, dtype=bool)
    if key in HIDDEN_TARGET:
        first, last = (int(round(f * num_frames)) for f in HIDDEN_SPAN)
        hidden[first:max(last, first + 1)] = True
    return hidden


def frame_of(t_us):
    """The annotated frame whose interval ``(t_{k-1}, t_k]`` holds
    ``t_us`` (frame ``k`` at ``(k + 1) * FRAME_PERIOD_US``; time 0 counts
    to frame 0)."""
    return max(-(-t_us // FRAME_PERIOD_US) - 1, 0)


def simulate(scene, num_frames, hidden, seed):
    """Events of a scene and the target's box at every annotated frame.

    Args:
        scene (tuple): :func:`make_scene`'s backdrop, target, distractor.
        num_frames (int): Annotated frames.
        hidden (np.ndarray): ``[N]`` bool, frames (and the render steps
            up to them) without the target.
        seed (int): Seed of the simulator's jitter and noise.

    Returns:
        tuple[Events, np.ndarray, np.ndarray]: Events sorted by time in
        ``(0, N * period]``, ``[N]`` int64 frame times and ``[N, 4]``
        float64 boxes (zeros where hidden).
    """
    backdrop, target, distractor = scene
    simulator = EventSimulator(seed=seed, **SIMULATOR)
    duration_us = num_frames * FRAME_PERIOD_US
    step_us = FRAME_PERIOD_US // RENDER_STEPS
    parts = []
    for t_us in range(0, duration_us + 1, step_us):
        s = t_us / duration_us
        frame = backdrop.render(t_us * 1e-6)
        if distractor is not None:
            distractor.draw(frame, s)
        # the render steps of a hidden frame's interval lack the target
        if not hidden[frame_of(t_us)]:
            target.draw(frame, s)
        parts.append(simulator.step(np.clip(frame, 0., 1.), t_us))
    times = (np.arange(num_frames, dtype=np.int64) + 1) * FRAME_PERIOD_US
    boxes = np.stack([target.box(t / duration_us) for t in times])
    boxes[hidden] = 0
    return Events.concatenate(parts), times, boxes


def sequence_keys(sequences):
    """(split, index) of every sequence, in generation order."""
    return [(split, index) for split, count in sequences.items()
            for index in range(count)]


def sequence_folder(out_dir, key):
    """The folder of the sequence ``key``."""
    split, index = key
    return osp.join(out_dir, split, f'demo_{split}_{index:02d}')


def write_groundtruth(path, boxes, overwrite=False):
    """``x,y,w,h`` lines with two decimals (FE108's ``groundtruth_rect``).
    """
    if osp.exists(path) and not overwrite:
        raise FileExistsError(f'{path} exists: pass overwrite=True')
    with open(path, 'w') as f:
        f.writelines(','.join(f'{v:.2f}' for v in box) + '\n'
                     for box in boxes)


def generate(out_dir, seed, sequences=None, num_frames=DEFAULT_FRAMES,
             overwrite=False):
    """Write every sequence.

    Args:
        out_dir (str): Dataset root.
        seed (int): Random seed.
        sequences (dict[str, int], optional): Sequences per split.
            Defaults to :data:`DEFAULT_SEQUENCES`.
        num_frames (int): Annotated frames per sequence.
        overwrite (bool): Whether to replace existing files.

    Returns:
        dict[str, list[int]]: (sequences, events, frames) per split.
    """
    sequences = sequences or DEFAULT_SEQUENCES
    rng = np.random.default_rng(seed)
    photos = {name: scenes.load_rgb(name) for name in
              (*scenes.TEXTURED_BACKGROUNDS, *TARGET_PHOTOS)}
    duration_s = num_frames * FRAME_PERIOD_US * 1e-6
    counts = {split: [0, 0, 0] for split in sequences}
    for key in sequence_keys(sequences):
        start = time.perf_counter()
        scene = make_scene(rng, key, duration_s, photos)
        hidden = hidden_frames(key, num_frames)
        events, times, boxes = simulate(scene, num_frames, hidden,
                                        int(rng.integers(2**31)))
        folder = sequence_folder(out_dir, key)
        os.makedirs(folder, exist_ok=True)
        write_aedat4(osp.join(folder, EVENTS_FILE), events, WIDTH, HEIGHT,
                     frame_times_us=times, overwrite=overwrite)
        write_groundtruth(osp.join(folder, GROUNDTRUTH_FILE), boxes,
                          overwrite=overwrite)
        counts[key[0]] = [a + b for a, b in zip(
            counts[key[0]], (1, len(events), num_frames))]
        notes = ['a distractor' if scene[2] else 'no distractor']
        if hidden.any():
            notes.append(f'target hidden in {hidden.sum()} frames')
        print(f'{osp.relpath(folder, out_dir)}: {len(events)} events, '
              f'{num_frames} frames, {", ".join(notes)} '
              f'({time.perf_counter() - start:.1f} s)', flush=True)
    return counts


def describe(counts):
    """Summary of :func:`generate`'s counts for the closing message."""
    return ', '.join(
        f'{split}: {num} sequences / {events} events / {frames} frames'
        for split, (num, events, frames) in counts.items() if num)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Make the bundled FE108-layout event-camera single-'
        'object tracking demo (simulated events and boxes)')
    parser.add_argument('--out', default=DEFAULT_OUT,
                        help=f'output root (default: {DEFAULT_OUT})')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    for split, count in DEFAULT_SEQUENCES.items():
        parser.add_argument(
            f'--num-{split}', type=int, default=count, metavar='N',
            help=f'sequences in {split}/ (default: {count})')
    parser.add_argument(
        '--num-frames', type=int, default=DEFAULT_FRAMES,
        help=f'annotated frames per sequence (default: {DEFAULT_FRAMES})')
    parser.add_argument(
        '--check', action='store_true',
        help='regenerate into a temporary directory and compare the hashes '
        'with the files under --out instead of writing')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace existing sequences under --out')
    args = parser.parse_args(argv)
    args.sequences = {split: getattr(args, f'num_{split}')
                      for split in DEFAULT_SEQUENCES}
    if min(args.sequences.values()) < 0 or args.num_frames < 2:
        parser.error('sequence counts must be >= 0 and --num-frames at '
                     'least 2')
    return args


def main(argv=None):
    args = parse_args(argv)
    write = functools.partial(generate, sequences=args.sequences,
                              num_frames=args.num_frames)
    existing = [osp.join(sequence_folder(args.out, key), name)
                for key in sequence_keys(args.sequences)
                for name in (EVENTS_FILE, GROUNDTRUTH_FILE)
                if osp.exists(osp.join(sequence_folder(args.out, key),
                                       name))]
    scenes.run_event_generator(args, write, existing, describe)


if __name__ == '__main__':
    main()
