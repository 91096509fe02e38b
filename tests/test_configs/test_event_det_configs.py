"""Event detection configs: build, timesteps from the representation,
strides, metric and representation agree."""
import glob
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmtpspike  # noqa: F401

EVENT_CONFIGS = sorted(glob.glob(os.path.join(
    os.path.dirname(__file__), '..', '..', 'configs', 'event_det', '*.py')))


def representation(pipeline):
    return [t for t in pipeline
            if t['type'] in ('EventHistogram', 'EventSpikeFrames')][0]


def test_configs_found():
    names = {os.path.basename(p) for p in EVENT_CONFIGS}
    assert {'sdtv3_gen1.py', 'sdtv3_tp_gen1.py', 'sdtv3_1mpx.py',
            'sdtv3_tp_1mpx.py', 'sdtv3_gen1_demo.py',
            'sdtv3_tp_gen1_demo.py'} <= names


@pytest.mark.parametrize('path', EVENT_CONFIGS, ids=os.path.basename)
def test_event_config_is_consistent(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmdet'
    assert cfg.randomness.seed == 0
    train_repr = representation(cfg.train_dataloader.dataset.pipeline)
    test_repr = representation(cfg.test_dataloader.dataset.pipeline)
    assert train_repr == test_repr
    assert cfg.model.backbone.num_timesteps == train_repr.num_bins
    assert cfg.model.backbone.in_channels == 2
    assert cfg.model.data_preprocessor.type == 'EventDetDataPreprocessor'
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        assert evaluator.type == 'PropheseeMetric'
        assert evaluator.camera == cfg.camera
        assert evaluator.downsample_factor == train_repr.downsample
    assert cfg.model.bbox_head.num_classes == len(cfg.classes)
    splits = [cfg[f'{s}_dataloader'].dataset.data_prefix.events
              for s in ('train', 'val', 'test')]
    assert splits == ['train/', 'val/', 'test/']
    test_keys = cfg.test_dataloader.dataset.pipeline[-1].meta_keys
    assert {'recording', 'timestamp_us', 'instances'} <= set(test_keys)


@pytest.mark.parametrize('name', ['sdtv3_gen1_demo.py',
                                  'sdtv3_tp_gen1_demo.py'])
def test_demo_detector_runs_on_multi_timestep_events(name):
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    cfg = Config.fromfile(os.path.join(
        os.path.dirname(EVENT_CONFIGS[0]), name))
    detector = MODELS.build(cfg.model).eval()
    num_bins = cfg.model.backbone.num_timesteps
    inputs = torch.rand(1, num_bins, 2, 128, 160)
    features = detector.extract_feat(inputs)
    strides = cfg.model.bbox_head.strides
    assert [f.shape[-1] for f in features] == [160 // s for s in strides]
    pruner = detector.backbone.pruner
    assert (pruner is not None) == ('_tp_' in name)
    with pytest.raises(ValueError, match=f'T={num_bins}'):
        detector.extract_feat(torch.rand(1, num_bins + 1, 2, 128, 160))
