"""The generator of the bundled event-camera demo recordings and the
recordings it made (``data/gen1_demo``).

A tiny generation (five recordings of 200 ms) checks what the tool writes;
the committed recordings are read as they are, and regenerated with
``--check`` in the slow tier only (about 20 s of one core).
"""
import glob
import os.path as osp

import numpy as np
import pytest

from mmtpspike.datasets.events.bbox_labels import load_bbox_npy
from mmtpspike.datasets.events.prophesee_dat import DatRecording
from tool_runner import REPO_ROOT, call_main, load_tool

TOOL = 'tools/dataset_converters/make_event_demo.py'
BUNDLED = osp.join(REPO_ROOT, 'data', 'gen1_demo')
TINY_ARGS = ('--num-train', 3, '--num-val', 2, '--num-test', 0,
             '--duration-ms', 200)
WIDTH, HEIGHT = 304, 240


@pytest.fixture(scope='module')
def tiny_set(tmp_path_factory):
    out = tmp_path_factory.mktemp('gen1_demo')
    result = call_main(TOOL, '--out', out, *TINY_ARGS)
    assert result.returncode == 0, result.stderr
    return out, result.stdout


def recording(root, split, index):
    """(events, labels as written, labels as read) of one recording."""
    stem = osp.join(root, split, f'demo_{split}_{index:02d}')
    raw = np.load(stem + '_bbox.npy')
    return (DatRecording(stem + '_td.dat').read_all(), raw,
            load_bbox_npy(stem + '_bbox.npy'))


def test_tiny_set_layout_and_progress(tiny_set):
    out, stdout = tiny_set
    names = sorted(osp.relpath(path, out)
                   for path in glob.glob(osp.join(out, '*', '*')))
    assert names == [
        f'{split}/demo_{split}_{index:02d}_{kind}'
        for split, count in (('train', 3), ('val', 2))
        for index in range(count) for kind in ('bbox.npy', 'td.dat')]
    assert 'train/demo_train_02_td.dat: ' in stdout
    assert 'train: 3 recordings' in stdout and 'test: ' not in stdout


@pytest.mark.parametrize('split, index', [
    ('train', 0), ('train', 1), ('train', 2), ('val', 0), ('val', 1)])
def test_tiny_recordings_decode_and_follow_their_boxes(tiny_set, split,
                                                       index):
    events, _, boxes = recording(tiny_set[0], split, index)
    assert len(events) > 1000
    assert (np.diff(events.t) >= 0).all()
    assert 0 < events.t[0] and events.t[-1] <= 200_000
    assert events.x.max() < WIDTH and events.y.max() < HEIGHT
    assert set(np.unique(events.p).tolist()) == {0, 1}
    assert np.unique(boxes['t']).tolist() == [100_000, 150_000, 200_000]
    assert set(boxes['class_id'].tolist()) <= {0, 1}
    assert (boxes['class_confidence'] == 1).all()
    for track in np.unique(boxes['track_id']):
        track_boxes = boxes[boxes['track_id'] == track]
        assert len(track_boxes) == 3
        # every object moves, and keeps its size
        first, last = track_boxes[0], track_boxes[-1]
        assert np.hypot(last['x'] - first['x'], last['y'] - first['y']) > 1
        assert (track_boxes['w'] == first['w']).all()
    # the 50 ms before the last label time: events are much denser inside
    # the boxes (objects move over a slowly drifting background)
    last = boxes[boxes['t'] == 200_000]
    window = events[events.t > 150_000]
    inside = np.zeros((HEIGHT, WIDTH), dtype=bool)
    for box in last:
        x0, y0 = max(int(box['x']), 0), max(int(box['y']), 0)
        inside[y0:int(box['y'] + box['h']) + 1,
               x0:int(box['x'] + box['w']) + 1] = True
    share = inside[window.y, window.x].mean()
    assert share > 0.4 and share > 5 * inside.mean()


@pytest.mark.parametrize('class_id', [0, 1])
def test_drawn_object_fills_its_box(class_id):
    tool = load_tool(TOOL)
    rng = np.random.default_rng(0)
    photos = {name: tool.scenes.load_rgb(name)
              for name in tool.CLASS_PHOTOS.values()}
    obj = tool.make_object(rng, class_id, 0, (30, 20), 0.5, photos, 1.)
    flat = tool.Backdrop(np.full((HEIGHT + 2, WIDTH + 2), 0.5), np.zeros(2),
                         margin=1)
    # (x, y) top-left corners and the pixels the box [x, x + w] x
    # [y, y + h] touches in the frame: (first, last) column and row
    for x, y, cols, rows in [(100.25, 50.5, (100, 130), (50, 70)),
                             (-10.6, 200.5, (0, 19), (200, 220))]:
        obj.path[:] = (x, y)
        frame = tool.render(flat, [obj], 0.5, 1.)
        ys, xs = np.nonzero(frame != 0.5)
        assert (xs.min(), xs.max(), ys.min(), ys.max()) == cols + rows
        box = tool.label_boxes([obj], 1_000_000)[-1]
        np.testing.assert_allclose(
            [box['x'], box['y'], box['w'], box['h']], [x, y, 30, 20],
            rtol=1e-6)


@pytest.mark.parametrize('shape, sizes, fill', [
    ('car_mask', [(30, 20), (40, 27), (84, 37)], (0.95, 0.99)),
    ('pedestrian_mask', [(8, 18), (12, 36), (34, 76)], (0.65, 0.8))])
def test_object_masks_touch_every_side_of_their_box(shape, sizes, fill):
    mask_of = getattr(load_tool(TOOL), shape)
    for width, height in sizes:
        mask = mask_of(width, height)
        assert mask.shape == (height, width)
        assert mask[0].any() and mask[-1].any()
        assert mask[:, 0].any() and mask[:, -1].any()
        # cars are box-like, pedestrians a head on an ellipse
        assert fill[0] < mask.mean() < fill[1]


def test_tiny_set_edge_cases(tiny_set):
    out = tiny_set[0]
    # a tiny pedestrian in train 01
    boxes = recording(out, 'train', 1)[2]
    tiny = boxes[(boxes['w'] == 8) & (boxes['h'] == 18)]
    assert len(tiny) == 3 and (tiny['class_id'] == 1).all()
    # an object that ends partly outside the frame in train 02, unclipped
    boxes = recording(out, 'train', 2)[2]
    end = boxes[boxes['t'] == 200_000]
    assert ((end['x'] < 0) | (end['x'] + end['w'] > WIDTH)).any()
    assert (boxes['x'] >= -boxes['w'] / 2).all()
    # val 01's labels are in the legacy dtype, read back the same
    raw, boxes = recording(out, 'val', 1)[1:]
    assert 'ts' in raw.dtype.names and 'confidence' in raw.dtype.names
    np.testing.assert_array_equal(raw['ts'], boxes['t'])
    assert 't' in recording(out, 'val', 0)[1].dtype.names


def test_refuses_to_overwrite_unless_asked(tiny_set, tmp_path):
    result = call_main(TOOL, '--out', tiny_set[0], *TINY_ARGS)
    assert result.returncode == 1
    assert '10 output file(s) exist already' in result.stderr
    assert 'pass --overwrite' in result.stderr
    out = tmp_path / 'gen1_demo'
    args = ('--out', out, '--num-train', 1, '--num-val', 0, '--num-test', 0,
            '--duration-ms', 100)
    assert call_main(TOOL, *args).returncode == 0
    dat = out / 'train' / 'demo_train_00_td.dat'
    dat.write_bytes(b'stale')
    assert call_main(TOOL, *args, '--overwrite').returncode == 0
    assert len(DatRecording(str(dat)).read_all()) > 0


def test_check_matches_and_reports_a_changed_file(tmp_path):
    args = ('--out', tmp_path, '--num-train', 1, '--num-val', 1,
            '--num-test', 0, '--duration-ms', 100)
    assert call_main(TOOL, *args).returncode == 0
    result = call_main(TOOL, *args, '--check')
    assert result.returncode == 0, result.stderr
    assert 'matches a fresh generation with seed 0' in result.stdout
    labels = tmp_path / 'val' / 'demo_val_00_bbox.npy'
    labels.write_bytes(labels.read_bytes() + b'\0')
    result = call_main(TOOL, *args, '--check')
    assert result.returncode == 1
    assert 'in 1 file(s): val/demo_val_00_bbox.npy' in result.stderr


def test_bad_options_are_refused():
    result = call_main(TOOL, '--duration-ms', 50)
    assert result.returncode == 2
    assert '--duration-ms at least 100' in result.stderr


def test_bundled_recordings():
    tool = load_tool(TOOL)
    total_bytes, label_times = 0, {}
    for split, count in tool.DEFAULT_RECORDINGS.items():
        label_times[split] = 0
        for index in range(count):
            events, raw, boxes = recording(BUNDLED, split, index)
            total_bytes += events.t.size * 8 + raw.nbytes
            assert events.x.max() < WIDTH and events.y.max() < HEIGHT
            assert 0 < events.t[0] and events.t[-1] <= 2_000_000
            times = np.unique(boxes['t'])
            label_times[split] += len(times)
            # labels every 50 ms from 0.1 s: some fall in the first 0.5 s
            assert times[0] == 100_000 and times[-1] == 2_000_000
            assert (np.diff(times) == 50_000).all()
            assert ('ts' in raw.dtype.names) == ((split, index) == ('val', 1))
    assert label_times == dict(train=234, val=78, test=78)
    assert 4e6 < total_bytes < 6e6


@pytest.mark.slow
def test_check_matches_bundled_recordings():
    result = call_main(TOOL, '--check')
    assert result.returncode == 0, result.stderr
    assert 'data/gen1_demo matches a fresh generation' in result.stdout
