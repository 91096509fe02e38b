"""EventSOTDataset (training pairs, test frames) and the SOT transforms, on
sequences built in memory."""
import numpy as np
import pytest
import torch
from mmengine.dataset import Compose

from mmtpspike.datasets.events import sot_dataset, sot_transforms
from mmtpspike.datasets.events.events import Events
from mmtpspike.datasets.events.sot_dataset import EventSOTDataset
from mmtpspike.datasets.events.sot_representation import decayed_frames
from mmtpspike.datasets.events.sot_sequences import EventSequence
from mmtpspike.datasets.events.sot_transforms import (LoadSOTEventFrames,
                                                      SOTPairCrops)
from mmtpspike.structures import TrackDataSample

WIDTH, HEIGHT = 64, 48
PERIOD_US = 10_000


class MemoryRecording:
    """The part of a recording the SOT pipeline reads: ``read(t0, t1)``."""

    def __init__(self, events):
        self.events = events

    def read(self, t_start_us, t_end_us):
        t = self.events.t
        return self.events[(t >= t_start_us) & (t < t_end_us)]


def moving_boxes(num_frames, start=(10., 8.), step=(1., 0.5), size=(8, 6)):
    """``[N, 4]`` boxes moving by ``step`` per frame."""
    index = np.arange(num_frames)[:, None]
    return np.concatenate([np.asarray(start) + index * np.asarray(step),
                           np.broadcast_to(size, (num_frames, 2))], 1)


def make_sequence(name, boxes, absent=None, empty_frames=()):
    """Frame ``k`` at ``(k + 1) * PERIOD_US``; its window holds one ON event
    at its box centre stamped exactly at the frame time and one OFF event
    at the start of the window, in the frame (none in ``empty_frames``)."""
    times = (np.arange(len(boxes)) + 1) * PERIOD_US
    t, x, y, p = [], [], [], []
    for k, (box, t_k) in enumerate(zip(boxes, times)):
        if k in empty_frames:
            continue
        cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
        cx = int(np.clip(np.nan_to_num(cx), 0, WIDTH - 1))
        cy = int(np.clip(np.nan_to_num(cy), 0, HEIGHT - 1))
        t += [t_k - PERIOD_US + 1, t_k]
        x += [cx, cx]
        y += [cy, cy]
        p += [0, 1]
    events = Events.from_arrays(t=t, x=x, y=y, p=p)
    return EventSequence(name=name, width=WIDTH, height=HEIGHT,
                         frame_times_us=times, boxes=np.asarray(boxes),
                         recording=MemoryRecording(events), absent=absent)


@pytest.fixture
def sequences(monkeypatch):
    """Three sequences in a fake split, served by patched loaders."""
    boxes_b = moving_boxes(12, start=(30., 20.))
    boxes_b[3] = np.nan  # absent: NaN
    boxes_b[4, 2:] = 0  # absent: zero size
    boxes_b[6] = (80., 10., 8., 6.)  # present, outside the frame
    absent_c = np.zeros(8, bool)
    absent_c[5] = True  # absent: flagged
    seqs = {
        'root/a': make_sequence('a', moving_boxes(30), empty_frames=(7, )),
        'root/b': make_sequence('b', boxes_b),
        'root/c': make_sequence('c', moving_boxes(8), absent=absent_c),
    }

    def find(root, layout, split=None):
        assert (root, layout, split) == ('root', 'fe108', 'train')
        return list(seqs)

    def load(path, layout):
        return seqs[path]

    monkeypatch.setattr(sot_dataset, 'find_sequences', find)
    monkeypatch.setattr(sot_dataset, 'load_sequence', load)
    monkeypatch.setattr(sot_transforms, 'load_sequence', load)
    return seqs


def dataset(**kwargs):
    kwargs = dict(data_root='root', layout='fe108', split='train',
                  max_gap=3, samples_per_epoch=400, **kwargs)
    return EventSOTDataset(**kwargs)


def pairs(ds):
    return [(info['sequence'], info['template_frame'], info['search_frame'])
            for info in (ds.get_data_info(i) for i in range(len(ds)))]


def test_pairs_stay_within_max_gap_and_skip_absent_frames(sequences):
    ds = dataset()
    drawn = pairs(ds)
    assert len(drawn) == 400
    assert all(abs(j - i) <= 3 for _, i, j in drawn)
    assert max(abs(j - i) for _, i, j in drawn) == 3
    used = {(name, frame) for name, i, j in drawn for frame in (i, j)}
    # NaN, zero-size and flagged frames are never drawn, nor one outside
    for frame in [('b', 3), ('b', 4), ('c', 5), ('b', 6)]:
        assert frame not in used
    assert {name for name, _, _ in drawn} == {'a', 'b', 'c'}
    assert ds.num_absent_frames == 3 and ds.num_outside_frames == 1
    info = ds.get_data_info(0)
    name, i, j = drawn[0]
    boxes = sequences[f'root/{name}'].boxes
    assert info['template_box'] == boxes[i].tolist()
    assert info['search_box'] == boxes[j].tolist()
    assert info['search_window_us'] == (j * PERIOD_US, (j + 1) * PERIOD_US)


def test_outside_template_skips_its_pair_and_is_counted(
        sequences, monkeypatch):
    messages = logged(monkeypatch, sot_dataset)
    ds = dataset()
    # 47 present frames, one of them outside: about 400 / 47 drawn there
    assert 2 <= ds.num_skipped_pairs <= 25
    assert messages[0].endswith(
        '3 frame(s) without the target, 1 with its box outside the frame; '
        'neither is drawn into training pairs')
    assert messages[1] == (
        f'EventSOTDataset: skipped {ds.num_skipped_pairs} drawn pair(s) whose '
        'template box lies outside the frame (drew others)')
    assert 'b' in {name for name, _, _ in pairs(ds)}


def test_pairs_are_seeded(sequences):
    first, again = pairs(dataset(seed=3)), pairs(dataset(seed=3))
    assert first == again
    assert pairs(dataset(seed=4)) != first


def test_test_mode_gives_every_frame_in_order(sequences):
    ds = dataset(test_mode=True)
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    assert len(infos) == 30 + 12 + 8
    assert [(info['sequence'], info['frame_index']) for info in infos] == [
        (name, k) for name, n in (('a', 30), ('b', 12), ('c', 8))
        for k in range(n)]
    b3, b6 = infos[33], infos[36]
    assert b3['num_frames'] == 12 and b3['ori_shape'] == (HEIGHT, WIDTH)
    assert np.isnan(b3['gt_box']).all() and np.isnan(infos[34]['gt_box']).all()
    assert b6['gt_box'] == [80., 10., 8., 6.]
    assert np.isnan(infos[30 + 12 + 5]['gt_box']).all()
    # the first frame shows the frame interval before it
    assert infos[0]['frame_window_us'] == (0, PERIOD_US)
    assert infos[1]['frame_window_us'] == (PERIOD_US, 2 * PERIOD_US)


def test_no_usable_frame_is_a_setup_error(monkeypatch):
    seq = make_sequence('x', np.full((4, 4), np.nan))
    monkeypatch.setattr(sot_dataset, 'find_sequences', lambda *a: ['x'])
    monkeypatch.setattr(sot_dataset, 'load_sequence', lambda *a: seq)
    with pytest.raises(RuntimeError, match='nothing to train on'):
        dataset()
    monkeypatch.setattr(sot_dataset, 'find_sequences', lambda *a: [])
    with pytest.raises(RuntimeError, match='no fe108 sequence'):
        dataset()


def test_frame_window_is_the_interval_up_to_and_with_the_frame_time(
        sequences):
    load = LoadSOTEventFrames(dict(type='EventHistogram', num_bins=1))
    results = load(dict(sequence_path='root/a', layout='fe108',
                        height=HEIGHT, width=WIDTH, frame_roles=('frame', ),
                        frame_window_us=(2 * PERIOD_US, 3 * PERIOD_US)))
    frame = results['frame']
    assert frame.shape == (1, 2, HEIGHT, WIDTH) and frame.dtype == np.float32
    # frame 2's two events: OFF at t_1 + 1 and ON at t_2 (not frame 1's ON
    # event at t_1, nor frame 3's OFF at t_2 + 1)
    assert frame[0, 0].sum() == 1 and frame[0, 1].sum() == 1
    box = sequences['root/a'].boxes[2]
    assert frame[0, 1, int(box[1] + box[3] / 2), int(box[0] + box[2] / 2)]
    assert results['ori_shape'] == (HEIGHT, WIDTH)
    assert load.num_empty == 0


def logged(monkeypatch, module):
    """The messages ``module`` logs from now on."""
    messages = []
    monkeypatch.setattr(module, 'print_log',
                        lambda message, *args, **kwargs: messages.append(
                            message))
    return messages


def test_empty_window_is_zero_and_counted(sequences, monkeypatch):
    messages = logged(monkeypatch, sot_transforms)
    load = LoadSOTEventFrames(dict(type='EventSpikeFrames', num_bins=2))
    for k in (6, 7, 7):
        frame = load(dict(
            sequence_path='root/a', layout='fe108', height=HEIGHT,
            width=WIDTH, frame_roles=('frame', ),
            frame_window_us=(k * PERIOD_US, (k + 1) * PERIOD_US)))['frame']
    assert frame.shape == (2, 2, HEIGHT, WIDTH) and not frame.any()
    assert load.num_empty == 2 and len(messages) == 1
    assert messages[0].startswith(
        'root/a: no events in (70000, 80000] us for the frame; its frames '
        'are zero (1 empty window(s)')


def test_representation_options_are_checked():
    with pytest.raises(ValueError, match='downsample=1'):
        LoadSOTEventFrames(dict(type='EventHistogram', downsample=2))


def test_decayed_frames_weigh_events_by_age():
    events = Events.from_arrays(t=[0, 40, 60, 99], x=[0, 0, 1, 1],
                                y=[0, 0, 0, 0], p=[1, 1, 0, 1])
    one = decayed_frames(events, 100, 100, 1, 1, 2, tau_us=20)
    np.testing.assert_allclose(
        one[0, :, 0], [[0, np.exp(-2)], [np.exp(-5) + np.exp(-3),
                                         np.exp(-.05)]], rtol=1e-6)
    two = decayed_frames(events, 100, 100, 2, 1, 2, tau_us=20)
    # bins [0, 50) ending at 50 and [50, 100) ending at 100
    np.testing.assert_allclose(
        two[:, 1, 0, 0], [np.exp(-2.5) + np.exp(-.5), 0], rtol=1e-6)
    np.testing.assert_allclose(two[1, :, 0, 1], [np.exp(-2), np.exp(-.05)],
                               rtol=1e-6)
    assert two.dtype == np.float32
    assert decayed_frames(events, 100, 100, 1, 1, 2, tau_us=1e9,
                          clip=1.5).max() == 1.5


def pipeline(**crop_args):
    return [
        dict(type='LoadSOTEventFrames',
             representation=dict(type='EventDecayFrames', num_bins=2,
                                 tau_us=5000)),
        dict(type='SOTPairCrops', template_size=16, search_size=32,
             **crop_args),
        dict(type='PackSOTInputs'),
    ]


def test_packed_training_pair(sequences):
    ds = dataset(pipeline=pipeline())
    torch.manual_seed(0)
    packed = ds[0]
    inputs, sample = packed['inputs'], packed['data_samples']
    assert set(inputs) == {'template', 'search'}
    assert inputs['template'].shape == (2, 2, 16, 16)
    assert inputs['search'].shape == (2, 2, 32, 32)
    assert inputs['search'].dtype == torch.float32
    assert isinstance(sample, TrackDataSample)
    info = ds.get_data_info(0)
    assert sample.sequence == info['sequence']
    assert sample.template_frame == info['template_frame']
    assert sample.search_frame == info['search_frame']
    assert sample.gt_box.shape == (4, ) and sample.gt_box.dtype == torch.float32
    # the box's centre lies in the jittered search crop
    centre = sample.gt_box[:2] + sample.gt_box[2:] / 2
    assert ((centre >= 0) & (centre < 32)).all()


def test_unjittered_crops_put_the_target_in_the_middle(sequences):
    crops = SOTPairCrops(template_size=16, search_size=32, center_jitter=0,
                         scale_jitter=0)
    frames = np.zeros((1, 2, HEIGHT, WIDTH), np.float32)
    frames[0, 1, 11, 14] = 1.  # the box's centre pixel
    results = crops(dict(template=frames, search=frames.copy(),
                         template_box=[10., 8., 8., 6.],
                         search_box=[10., 8., 8., 6.]))
    side = 4 * np.sqrt(48)
    scale = 32 / side
    torch.testing.assert_close(
        results['gt_box'],
        torch.tensor([16 - 4 * scale, 16 - 3 * scale, 8 * scale,
                      6 * scale]).float())
    assert results['search_window'] == pytest.approx(
        (14 - side / 2, 11 - side / 2, side))
    for role, size in (('template', 16), ('search', 32)):
        crop = results[role][0, 1]
        row, col = divmod(int(crop.argmax()), size)
        assert abs(row - size / 2) <= 1 and abs(col - size / 2) <= 1


def test_packed_test_frame(sequences):
    ds = dataset(test_mode=True, pipeline=[
        dict(type='LoadSOTEventFrames'), dict(type='PackSOTInputs')])
    packed = ds[33]
    frame, sample = packed['inputs']['frame'], packed['data_samples']
    assert frame.shape == (1, 2, HEIGHT, WIDTH)
    assert sample.frame_index == 3 and sample.num_frames == 12
    assert sample.sequence == 'b' and sample.ori_shape == (HEIGHT, WIDTH)
    assert torch.isnan(sample.gt_box).all()
    sample = ds[1]['data_samples']
    torch.testing.assert_close(sample.gt_box,
                               torch.tensor([11., 8.5, 8., 6.]))


def test_pack_names_the_missing_transform():
    with pytest.raises(KeyError, match='SOTPairCrops'):
        Compose([dict(type='PackSOTInputs')])(dict(search=np.zeros(1)))
