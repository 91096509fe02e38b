"""LoadEventWindow, EventHistogram, EventSpikeFrames in mm pipelines."""
import numpy as np
import pytest
import torch
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.registry import init_default_scope

from mmtpspike.datasets.events import Events, transforms, write_dat


@pytest.fixture
def recording(tmp_path):
    path = str(tmp_path / 'r_td.dat')
    events = Events.from_arrays(t=[10, 40, 60, 60, 95, 120],
                                x=[1, 2, 3, 3, 5, 0], y=[0, 1, 2, 2, 3, 0],
                                p=[1, 0, 1, 1, 0, 1])
    write_dat(path, events, width=6, height=4)
    return path


def build(cfg):
    init_default_scope('mmdet')
    return TRANSFORMS.build(cfg)


def sample(recording, timestamp_us=100):
    return dict(recording_path=recording, timestamp_us=timestamp_us,
                height=4, width=6)


def test_load_event_window_reads_the_window_before_the_label(recording):
    results = build(dict(type='LoadEventWindow', window_us=60))(
        sample(recording))
    assert results['events'].t.tolist() == [40, 60, 60, 95]
    assert results['window_end_us'] == 100 and results['window_us'] == 60
    assert results['ori_shape'] == (4, 6)


def test_histogram_gives_time_major_channels_in_image_layout(recording):
    load = build(dict(type='LoadEventWindow', window_us=100))
    histogram = build(dict(type='EventHistogram', num_bins=2, clip=10,
                           time_span='window'))
    results = histogram(load(sample(recording)))
    img = results['img']
    assert img.shape == (4, 6, 4) and img.dtype == np.float32
    assert 'events' not in results
    assert results['img_shape'] == (4, 6)
    assert results['event_repr_shape'] == (2, 2)
    assert results['scale_factor'] == (1.0, 1.0)
    # channel t * 2 + p: bin 0 = [0, 50): ON (1, 0), OFF (2, 1);
    # bin 1 = [50, 100): ON (3, 2) twice, OFF (5, 3)
    expected = np.zeros((4, 6, 4), np.float32)
    expected[0, 1, 1] = 1
    expected[1, 2, 0] = 1
    expected[2, 3, 3] = 2
    expected[3, 5, 2] = 1
    np.testing.assert_array_equal(img, expected)


def test_downsampling_rescales_boxes_and_scale_factor(recording):
    load = build(dict(type='LoadEventWindow', window_us=100))
    frames = build(dict(type='EventSpikeFrames', num_bins=1, downsample=2))
    results = load(sample(recording))
    results['gt_bboxes'] = HorizontalBoxes(torch.tensor([[1., 0., 5., 4.]]))
    results = frames(results)
    assert results['img'].shape == (2, 3, 2)
    assert results['scale_factor'] == (0.5, 0.5)
    assert results['gt_bboxes'].tensor.tolist() == [[0.5, 0., 2.5, 2.]]
    assert set(np.unique(results['img'])) <= {0., 1.}


def test_empty_window_is_zero_and_counted(recording):
    load = build(dict(type='LoadEventWindow', window_us=5))
    histogram = build(dict(type='EventHistogram', num_bins=3))
    results = histogram(load(sample(recording, timestamp_us=30)))
    assert not results['img'].any() and results['img'].shape == (4, 6, 6)
    assert load.num_empty == 1


def test_reprs_name_the_options():
    assert repr(build(dict(type='EventHistogram', num_bins=5))) == (
        "EventHistogram(num_bins=5, clip=10, downsample=1, "
        "time_span='events', downsample_mode='nearest')")
    with pytest.raises(ValueError, match='time_span'):
        build(dict(type='EventSpikeFrames', time_span='span'))


def test_empty_windows_warn_first_and_every_tenth(recording, monkeypatch):
    messages = []
    monkeypatch.setattr(transforms, 'print_log',
                        lambda message, *args, **kwargs: messages.append(
                            message))
    load = build(dict(type='LoadEventWindow', window_us=5))
    for _ in range(11):
        load(sample(recording, timestamp_us=30))
    assert load.num_empty == 11 and len(messages) == 2
    assert messages[0].startswith(f'{recording}: no events in the 5 us '
                                  'before t = 30 us')
    assert '(11 empty window(s)' in messages[1]


def test_per_process_files_open_once_per_path_and_process(monkeypatch):
    opened = []
    files = transforms.PerProcessFiles(
        lambda path: opened.append(path) or f'handle of {path}')
    assert files('a') == files('a') == 'handle of a'
    files('b')
    assert opened == ['a', 'b']
    monkeypatch.setattr(transforms.os, 'getpid', lambda: -1)  # a worker
    assert files('a') == 'handle of a' and opened == ['a', 'b', 'a']
