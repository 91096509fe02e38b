"""Gen1Dataset / OneMpxDataset over the official folder layout."""
import logging

import numpy as np
import pytest
from mmengine.logging import MMLogger

from mmtpspike.datasets.events import (BBOX_DTYPE, Events, Gen1Dataset,
                                       OneMpxDataset, write_bbox_npy,
                                       write_dat)
from mmtpspike.utils.config import SetupError


def boxes(rows):
    """``*_bbox.npy`` rows from ``(t, x, y, w, h, class_id)`` tuples."""
    out = np.zeros(len(rows), BBOX_DTYPE)
    for i, (t, x, y, w, h, class_id) in enumerate(rows):
        out[i] = (t, x, y, w, h, class_id, i, 1.0)
    return out


def write_recording(folder, name, rows, width=304, height=240):
    events = Events.from_arrays(t=[0, 10], x=[1, 2], y=[3, 4], p=[0, 1])
    write_dat(str(folder / f'{name}_td.dat'), events, width, height)
    write_bbox_npy(str(folder / f'{name}_bbox.npy'), boxes(rows))


@pytest.fixture
def gen1_root(tmp_path):
    split = tmp_path / 'train'
    split.mkdir()
    write_recording(split, 'b', [(700, 10, 20, 30, 40, 1)])
    write_recording(split, 'a', [
        (100, 10, 20, 30, 40, 0),
        (100, 290, 200, 20, 60, 1),   # clipped to 13 x 39
        (100, 100, 100, 9, 40, 1),    # side under Gen1's label size
        (100, 400, 10, 20, 20, 0),    # outside: dropped
        (250, 0, 0, 290, 40, 0),      # wider than 0.9 W: train drops
    ])
    return tmp_path


def build(dataset_cls, root, test_mode=False, **kwargs):
    return dataset_cls(data_root=str(root), data_prefix=dict(events='train/'),
                       test_mode=test_mode, pipeline=[], **kwargs)


def test_one_sample_per_labelled_timestamp(gen1_root):
    dataset = build(Gen1Dataset, gen1_root, test_mode=True)
    samples = [dataset[i] for i in range(len(dataset))]
    assert [(s['recording'], s['timestamp_us']) for s in samples] == [
        ('a', 100), ('a', 250), ('b', 700)]
    assert [s['img_id'] for s in samples] == [0, 1, 2]
    first = samples[0]
    assert first['recording_path'].endswith('train/a_td.dat')
    assert (first['height'], first['width']) == (240, 304)
    assert [i['bbox'] for i in first['instances']] == [
        [10, 20, 40, 60], [290, 200, 303, 239]]
    assert [i['bbox_label'] for i in first['instances']] == [0, 1]
    # test mode keeps the wide box
    assert samples[1]['instances'][0]['bbox'] == [0, 0, 290, 40]


def test_training_drops_wide_boxes_and_empty_samples(gen1_root):
    dataset = build(Gen1Dataset, gen1_root,
                    filter_cfg=dict(filter_empty_gt=True))
    assert [dataset[i]['timestamp_us'] for i in range(len(dataset))] == [
        100, 700]
    kept_all = build(Gen1Dataset, gen1_root, max_box_width_ratio=None)
    assert kept_all[1]['instances'][0]['bbox'] == [0, 0, 290, 40]


class Records(logging.Handler):
    """Collects the messages of a logger."""

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append((record.levelno, record.getMessage()))


def test_dropped_boxes_are_counted_per_recording(gen1_root):
    logger = MMLogger.get_current_instance()
    records = Records()
    logger.addHandler(records)
    try:
        build(Gen1Dataset, gen1_root)
    finally:
        logger.removeHandler(records)
    warnings = [(level, text) for level, text in records.messages
                if 'dropped boxes' in text]
    assert len(warnings) == 1
    level, text = warnings[0]
    assert level == logging.WARNING and 'a_td.dat' in text
    assert '1 empty after clipping to the frame' in text
    assert '1 wider than 0.9 W' in text
    assert '1 under the label size' in text


def test_1mpx_keeps_its_three_scored_classes(tmp_path):
    split = tmp_path / 'train'
    split.mkdir()
    write_recording(split, 'r', [(5, 10, 10, 40, 40, c) for c in range(7)],
                    width=1280, height=720)
    dataset = build(OneMpxDataset, tmp_path, test_mode=True)
    labels = [i['bbox_label'] for i in dataset[0]['instances']]
    assert labels == [0, 1, 2]
    assert dataset.metainfo['classes'] == ('pedestrian', 'two-wheeler', 'car')


def test_recording_without_labels_is_an_error(gen1_root):
    (gen1_root / 'train' / 'b_bbox.npy').unlink()
    with pytest.raises(SetupError, match='b_td.dat has no label file'):
        build(Gen1Dataset, gen1_root)


def test_recording_of_another_camera_is_an_error(tmp_path):
    split = tmp_path / 'train'
    split.mkdir()
    write_recording(split, 'big', [(5, 10, 10, 40, 40, 0)], 1280, 720)
    with pytest.raises(SetupError, match='big_td.dat.*1280 x 720.*304 x 240'):
        build(Gen1Dataset, tmp_path)


def test_missing_or_empty_split_folder_is_an_error(tmp_path):
    with pytest.raises(SetupError, match='no folder'):
        build(Gen1Dataset, tmp_path)
    (tmp_path / 'train').mkdir()
    with pytest.raises(SetupError, match='holds no recording'):
        build(Gen1Dataset, tmp_path)


def test_samples_load_alike_in_dataloader_workers(repo_root):
    import os.path as osp

    import torch
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    pipeline = [
        dict(type='LoadEventWindow', window_us=50000),
        dict(type='EventHistogram', num_bins=2, downsample=2),
        dict(type='PackDetInputs',
             meta_keys=('img_id', 'recording', 'timestamp_us')),
    ]
    dataset = Gen1Dataset(
        data_root=osp.join(repo_root, 'data', 'gen1_demo'),
        data_prefix=dict(events='val/'), test_mode=True, pipeline=pipeline)
    dataset[0]  # the parent process opens a recording before forking
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=8, num_workers=2, collate_fn=pseudo_collate)
    seen = 0
    for batch in loader:
        for inputs, sample in zip(batch['inputs'], batch['data_samples']):
            expected = dataset[sample.img_id]
            assert torch.equal(inputs, expected['inputs'])
            assert sample.timestamp_us == \
                expected['data_samples'].timestamp_us
            seen += 1
    assert seen == len(dataset) == 78
