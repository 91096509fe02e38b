"""The generator of the bundled event SOT demo sequences and the sequences
it made (``data/sot_demo``).

A tiny generation (five sequences of ten frames) checks what the tool
writes and that it reads back through ``load_sequence`` and
``EventSOTDataset``; the committed set is read as it is, and regenerated
with ``--check`` in the slow tier only (about 20 s of one core).
"""
import glob
import os.path as osp

import numpy as np
import pytest

from mmtpspike.datasets.events.sot_dataset import EventSOTDataset
from mmtpspike.datasets.events.sot_sequences import load_sequence
from tool_runner import REPO_ROOT, call_main, load_tool

TOOL = 'tools/dataset_converters/make_event_sot_demo.py'
BUNDLED = osp.join(REPO_ROOT, 'data', 'sot_demo')
TINY_ARGS = ('--num-train', 4, '--num-test', 1, '--num-frames', 10)
WIDTH, HEIGHT = 160, 120
PERIOD_US = 40_000


@pytest.fixture(scope='module')
def tiny_set(tmp_path_factory):
    out = tmp_path_factory.mktemp('sot_demo')
    result = call_main(TOOL, '--out', out, *TINY_ARGS)
    assert result.returncode == 0, result.stderr
    return str(out), result.stdout


def test_tiny_set_layout_and_progress(tiny_set):
    out, stdout = tiny_set
    names = sorted(osp.relpath(path, out)
                   for path in glob.glob(osp.join(out, '*', '*', '*')))
    assert names == [
        f'{split}/demo_{split}_{index:02d}/{name}'
        for split, count in (('test', 1), ('train', 4))
        for index in range(count)
        for name in ('events.aedat4', 'groundtruth_rect.txt')]
    assert 'train/demo_train_01: ' in stdout and 'a distractor' in stdout
    assert 'target hidden in 1 frames' in stdout
    assert 'train: 4 sequences' in stdout and '/ 10 frames' in stdout


@pytest.mark.parametrize('split, index', [('train', 0), ('train', 1),
                                          ('train', 3), ('test', 0)])
def test_tiny_sequences_read_back_and_follow_their_boxes(tiny_set, split,
                                                         index):
    path = osp.join(tiny_set[0], split, f'demo_{split}_{index:02d}')
    seq = load_sequence(path, 'fe108')
    assert (seq.width, seq.height) == (WIDTH, HEIGHT)
    np.testing.assert_array_equal(seq.frame_times_us,
                                  PERIOD_US * np.arange(1, 11))
    boxes = np.asarray(seq.boxes)
    assert boxes.shape == (10, 4)
    hidden = (boxes[:, 2] <= 0) | ~np.isfinite(boxes).all(1)
    # train 03 hides its target at 40 % of the frames
    assert hidden.tolist() == [(split, index) == ('train', 3) and k == 4
                               for k in range(10)]
    shown = boxes[~hidden]
    assert (shown[:, 2:] >= 16 * 0.6 * 0.65 - 0.01).all()
    assert (shown[:, :2] >= 0).all()
    assert (shown[:, 0] + shown[:, 2] <= WIDTH + 0.01).all()
    assert (shown[:, 1] + shown[:, 3] <= HEIGHT + 0.01).all()
    events = seq.recording.read(0, 10 * PERIOD_US + 1)
    assert len(events) > 500
    assert (np.diff(events.t) >= 0).all() and events.t[0] > 0
    assert events.x.max() < WIDTH and events.y.max() < HEIGHT
    # events of the last frame interval crowd into its box (the target
    # moves over a slowly drifting background)
    x, y, w, h = boxes[-1]
    window = events[events.t > 9 * PERIOD_US]
    inside = ((window.x >= x - 2) & (window.x < x + w + 2) &
              (window.y >= y - 2) & (window.y < y + h + 2))
    share = (w + 4) * (h + 4) / (WIDTH * HEIGHT)
    assert inside.mean() > 0.3 and inside.mean() > 4 * share


def test_tiny_set_loads_as_a_dataset(tiny_set):
    pipeline = [
        dict(type='LoadSOTEventFrames',
             representation=dict(type='EventHistogram', num_bins=2)),
        dict(type='SOTPairCrops', template_size=32, search_size=64),
        dict(type='PackSOTInputs'),
    ]
    train = EventSOTDataset(data_root=tiny_set[0], layout='fe108',
                            split='train', max_gap=4, samples_per_epoch=20,
                            pipeline=pipeline)
    assert train.num_absent_frames == 1 and len(train) == 20
    packed = train[0]
    assert packed['inputs']['search'].shape == (2, 2, 64, 64)
    assert packed['inputs']['search'].sum() > 0
    test = EventSOTDataset(
        data_root=tiny_set[0], layout='fe108', split='test', test_mode=True,
        pipeline=[dict(type='LoadSOTEventFrames'),
                  dict(type='PackSOTInputs')])
    assert len(test) == 10
    packed = test[9]
    assert packed['inputs']['frame'].shape == (1, 2, HEIGHT, WIDTH)
    assert packed['data_samples'].frame_index == 9
    assert test.pipeline.transforms[0].num_empty == 0


def test_refuses_to_overwrite_unless_asked(tmp_path):
    args = ('--out', tmp_path, '--num-train', 1, '--num-test', 0,
            '--num-frames', 3)
    assert call_main(TOOL, *args).returncode == 0
    result = call_main(TOOL, *args)
    assert result.returncode == 1
    assert '2 output file(s) exist already' in result.stderr
    assert 'pass --overwrite' in result.stderr
    gt = tmp_path / 'train' / 'demo_train_00' / 'groundtruth_rect.txt'
    gt.write_text('stale')
    assert call_main(TOOL, *args, '--overwrite').returncode == 0
    assert len(gt.read_text().splitlines()) == 3


def test_check_matches_and_reports_a_changed_file(tmp_path):
    args = ('--out', tmp_path, '--num-train', 1, '--num-test', 1,
            '--num-frames', 3)
    assert call_main(TOOL, *args).returncode == 0
    result = call_main(TOOL, *args, '--check')
    assert result.returncode == 0, result.stderr
    assert 'matches a fresh generation with seed 0' in result.stdout
    gt = tmp_path / 'test' / 'demo_test_00' / 'groundtruth_rect.txt'
    gt.write_text(gt.read_text() + '\n')
    result = call_main(TOOL, *args, '--check')
    assert result.returncode == 1
    assert 'in 1 file(s): test/demo_test_00/groundtruth_rect.txt' in \
        result.stderr


def test_render_steps_belong_to_the_frame_interval_up_to_its_time():
    tool = load_tool(TOOL)
    assert [tool.frame_of(t) for t in (0, 1, PERIOD_US, PERIOD_US + 1,
                                       2 * PERIOD_US, 2 * PERIOD_US + 1)] \
        == [0, 0, 0, 1, 1, 2]


def test_bad_options_are_refused():
    result = call_main(TOOL, '--num-frames', 1)
    assert result.returncode == 2
    assert '--num-frames at least 2' in result.stderr


def test_scaled_sprite_fills_its_box():
    tool = load_tool(TOOL)
    rng = np.random.default_rng(0)
    photo = tool.scenes.load_rgb('coffee')
    for shape in tool.SHAPES:
        sprite = tool.make_sprite(rng, photo, shape, np.array([20., 12.]),
                                  0.5, 1.)
        sprite.path[:] = (30.25, 40.5)
        sprite.scales = (1.5, 1.5)
        frame = np.full((HEIGHT, WIDTH), 0.5)
        sprite.draw(frame, 0.5)
        ys, xs = np.nonzero(frame != 0.5)
        # the box [30.25, 60.25) x [40.5, 58.5) at scale 1.5
        np.testing.assert_allclose(sprite.box(0.5), [30.25, 40.5, 30, 18])
        assert (xs.min(), xs.max(), ys.min(), ys.max()) == (30, 60, 40, 58)


def test_bundled_sequences():
    tool = load_tool(TOOL)
    total_bytes, frames, hidden = 0, {}, 0
    for split, count in tool.DEFAULT_SEQUENCES.items():
        frames[split] = 0
        for index in range(count):
            path = osp.join(BUNDLED, split, f'demo_{split}_{index:02d}')
            total_bytes += sum(osp.getsize(osp.join(path, name)) for name in
                               (tool.EVENTS_FILE, tool.GROUNDTRUTH_FILE))
            seq = load_sequence(path, 'fe108')
            assert (seq.width, seq.height) == (WIDTH, HEIGHT)
            boxes = np.asarray(seq.boxes)
            frames[split] += len(boxes)
            hidden += int((boxes[:, 2] <= 0).sum())
    assert frames == dict(train=480, test=240)
    assert hidden == 6
    # 320 k events of 16 bytes; the APS frames are 1 x 1 placeholders
    assert 4e6 < total_bytes < 6e6


@pytest.mark.slow
def test_check_matches_bundled_sequences():
    result = call_main(TOOL, '--check')
    assert result.returncode == 0, result.stderr
    assert 'data/sot_demo matches a fresh generation' in result.stdout
