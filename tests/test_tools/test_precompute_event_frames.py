"""precompute_event_frames.py + LoadEventFrames give the frames of the live
pipeline, and refuse stale settings or overwriting."""
import os.path as osp

import numpy as np
import pytest
from mmdet.registry import TRANSFORMS
from mmengine.registry import init_default_scope

from mmtpspike.datasets.events import Gen1Dataset
from mmtpspike.utils.config import SetupError
from tool_runner import REPO_ROOT, call_main

CONFIG = 'configs/event_det/sdtv3_gen1_demo.py'
DATA = osp.join(REPO_ROOT, 'data', 'gen1_demo')
REPRESENTATION = dict(type='EventHistogram', num_bins=4, clip=10,
                      downsample=2, downsample_mode='sum')


@pytest.fixture(scope='module')
def frames_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('frames'))
    result = call_main('tools/dataset_converters/precompute_event_frames.py',
                       CONFIG, '--splits', 'val', '--out-dir', out,
                       '--cfg-options', f'val_dataloader.dataset.data_root='
                       f'{DATA}/')
    assert result.returncode == 0, result.stdout + result.stderr
    assert "'type': 'LoadEventFrames'" in result.stdout
    return out


def val_samples():
    dataset = Gen1Dataset(data_root=DATA, data_prefix=dict(events='val/'),
                          test_mode=True, pipeline=[])
    return [dataset.get_data_info(i) for i in (0, 20, 60)]


def test_stored_frames_equal_the_live_pipeline(frames_dir):
    init_default_scope('mmdet')
    live = [TRANSFORMS.build(dict(type='LoadEventWindow', window_us=50000)),
            TRANSFORMS.build(REPRESENTATION)]
    stored = TRANSFORMS.build(dict(
        type='LoadEventFrames', frames_folder=osp.join(frames_dir, 'val'),
        window_us=50000, representation=REPRESENTATION))
    for info in val_samples():
        expected = dict(info)
        for step in live:
            expected = step(expected)
        loaded = stored(dict(info))
        assert expected['img'].any()
        np.testing.assert_array_equal(loaded['img'], expected['img'])
        for key in ('img_shape', 'scale_factor', 'ori_shape',
                    'event_repr_shape'):
            assert loaded[key] == expected[key]


def test_frames_of_other_settings_are_refused(frames_dir):
    init_default_scope('mmdet')
    other = TRANSFORMS.build(dict(
        type='LoadEventFrames', frames_folder=osp.join(frames_dir, 'val'),
        window_us=50000, representation=dict(REPRESENTATION, clip=5)))
    with pytest.raises(SetupError, match="made with .*'clip': 10"):
        other(dict(val_samples()[0]))


def test_existing_frames_are_not_overwritten(frames_dir):
    result = call_main('tools/dataset_converters/precompute_event_frames.py',
                       CONFIG, '--splits', 'val', '--out-dir', frames_dir,
                       '--cfg-options', f'val_dataloader.dataset.data_root='
                       f'{DATA}/')
    assert result.returncode != 0
    assert 'pass --overwrite' in result.stderr + result.stdout
