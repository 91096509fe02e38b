"""Event tracking configs: build, timesteps from the representation, crop
sizes shared by the pipeline and the tracker, one frame per test batch over
whole sequences, and a training step of the demo trackers on the bundled
sequences."""
import glob
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DATASETS, MODELS, init_default_scope

import mmtpspike  # noqa: F401

SOT_CONFIGS = sorted(glob.glob(os.path.join(
    os.path.dirname(__file__), '..', '..', 'configs', 'event_sot', '*.py')))
DEMO_CONFIGS = [p for p in SOT_CONFIGS if p.endswith('_demo.py')]


def by_type(pipeline, name):
    return [t for t in pipeline if t['type'] == name][0]


def test_configs_found():
    names = {os.path.basename(p) for p in SOT_CONFIGS}
    assert {'sdtv3_sot_fe108.py', 'sdtv3_tp_sot_fe108.py',
            'sdtv3_sot_demo.py', 'sdtv3_tp_sot_demo.py',
            'spikformer_tp_sot_demo.py'} <= names


@pytest.mark.parametrize('path', SOT_CONFIGS, ids=os.path.basename)
def test_sot_config_is_consistent(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmdet' and cfg.randomness.seed == 0
    train = cfg.train_dataloader.dataset.pipeline
    test = cfg.test_dataloader.dataset.pipeline
    load = by_type(train, 'LoadSOTEventFrames')
    assert load == by_type(test, 'LoadSOTEventFrames')
    assert cfg.model.encoder.num_timesteps == load.representation.num_bins
    crops = by_type(train, 'SOTPairCrops')
    assert crops.template_size == cfg.model.template_size
    assert crops.search_size == cfg.model.search_size
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        assert loader.batch_size == 1
        assert loader.sampler.type == 'SequenceSampler'
        assert loader.dataset.test_mode
    assert cfg.test_evaluator.type == 'OPEMetric'
    pruned = '_tp_' in os.path.basename(path)
    assert (cfg.model.encoder.get('pruning') is not None) == pruned


@pytest.mark.parametrize('path', DEMO_CONFIGS, ids=os.path.basename)
def test_demo_tracker_trains_on_the_bundled_sequences(path, repo_root,
                                                      monkeypatch):
    monkeypatch.chdir(repo_root)
    cfg = Config.fromfile(path)
    init_default_scope('mmdet')
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.samples_per_epoch = 2
    dataset = DATASETS.build(dataset_cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    data = model.data_preprocessor(
        pseudo_collate([dataset[0], dataset[1]]), training=True)
    losses = model(**data, mode='loss')
    total = sum(value for key, value in losses.items() if 'loss' in key)
    assert torch.isfinite(total)
    total.backward()
    stem = next(model.encoder.patch_embed.parameters())
    assert stem.grad is not None and stem.grad.abs().sum() > 0
