"""Image shapes reach the backbone on every Runner path: train, val, test and
test-time augmentation (mmengine's ``BaseTTAModel`` calls
``module.test_step``, so a hook on the outer model's forward never fired).

Each path runs twice: with ``PaddingAwarePruningHook`` the first transformer
block counts exactly the tokens inside each image; without it every token of
the padded map counts (the control that shows the check can fail)."""
import math

import pytest
import torch
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.model import BaseTTAModel
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement
from torch.utils.data import Dataset

import mmtpspike  # noqa: F401
from toy_runner import (ToyImageDataset, ToySpikeClassifier,
                        toy_pruning_runner_cfg)

HOOK = dict(type='PaddingAwarePruningHook')
FIRST_BLOCK = 'stages.2.blocks.0'  # stride 16


class CountMetric(BaseMetric):
    """Counts predictions; the loops need an evaluator."""

    def process(self, data_batch, data_samples) -> None:
        self.results.append(len(data_samples))

    def compute_metrics(self, results) -> dict:
        return dict(count=sum(results))


class ToyTTAModel(BaseTTAModel):
    """Averages the logits of the augmentations."""

    def merge_preds(self, data_samples_list):
        return [torch.stack(preds).mean(0) for preds in data_samples_list]


class ToyTTAClassifier(ToySpikeClassifier):
    """Takes the tuple of images ``pseudo_collate`` gives each
    augmentation (mmdet's and mmseg's preprocessors stack it)."""

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return super().forward(list(inputs), data_samples, mode)


class ToyTTADataset(Dataset):
    """:class:`ToyImageDataset` in two augmentations: as is, and padded
    further to 80 x 80 (same image shapes)."""

    metainfo = dict()

    def __init__(self) -> None:
        self.plain = ToyImageDataset()

    def __len__(self) -> int:
        return len(self.plain)

    def __getitem__(self, index):
        item = self.plain[index]
        padded = torch.zeros(3, 80, 80)
        padded[:, :64, :64] = item['inputs']
        sample = BaseDataElement(metainfo=item['data_samples'].metainfo)
        return dict(inputs=[item['inputs'], padded],
                    data_samples=[item['data_samples'], sample])


def loader(dataset) -> dict:
    return dict(dataset=dataset,
                sampler=dict(type='DefaultSampler', shuffle=False),
                batch_size=2, collate_fn=dict(type='pseudo_collate'),
                num_workers=0)


def runner_cfg(work_dir, hooks, path='test') -> dict:
    """A pruned toy classifier with the loop of ``path``: 'train' (two
    iterations), 'val', 'test' or 'tta' (test through a TTA model)."""
    cfg = toy_pruning_runner_cfg(work_dir, hooks, max_iters=2,
                                 keep_ratios=0.5)
    if path == 'val':
        cfg.update(val_dataloader=loader(ToyImageDataset()), val_cfg=dict(),
                   val_evaluator=Evaluator([CountMetric()]))
    if path in ('test', 'tta'):
        cfg.update(test_dataloader=loader(ToyImageDataset()), test_cfg=dict(),
                   test_evaluator=Evaluator([CountMetric()]))
    if path == 'tta':
        cfg.update(model=ToyTTAModel(module=ToyTTAClassifier(0.5)),
                   test_dataloader=loader(ToyTTADataset()))
    return cfg


def valid_counts(records):
    """Valid tokens per image, per forward, in the first pruned block."""
    return [[int(v.sum()) for v in r.valid] for r in records
            if r.block_name == FIRST_BLOCK]


def image_counts(indices, stride=16):
    """Tokens inside images ``indices`` of :class:`ToyImageDataset`."""
    data = ToyImageDataset()
    shapes = [data[i]['data_samples'].img_shape for i in indices]
    return [math.ceil(h / stride) * math.ceil(w / stride) for h, w in shapes]


def run(tmp_path, hooks, path):
    """Run ``path`` of a fresh runner; valid counts of every forward."""
    runner = Runner(**runner_cfg(str(tmp_path), hooks, path))
    model = runner.model.module if path == 'tta' else runner.model
    records = []
    model.backbone.pruner.register_record_hook(records.append)
    if path == 'train':
        runner.train()
    elif path == 'val':
        runner.val()
    else:
        runner.test()
    return valid_counts(records)


EXPECTED = {
    # two training iterations: images 0-1, 2-3
    'train': [image_counts([0, 1]), image_counts([2, 3])],
    'val': [image_counts([i, i + 1]) for i in (0, 2, 4, 6)],
    'test': [image_counts([i, i + 1]) for i in (0, 2, 4, 6)],
    # two augmentations per batch, same image shapes
    'tta': [image_counts([i, i + 1]) for i in (0, 0, 2, 2, 4, 4, 6, 6)],
}


@pytest.mark.parametrize('path', ['train', 'val', 'test', 'tta'])
def test_shapes_reach_the_backbone(tmp_path, path):
    assert run(tmp_path / 'hook', [HOOK], path) == EXPECTED[path]
    # control: without the hook the padding counts as image
    with pytest.warns(UserWarning, match='no image shapes were given'):
        unaware = run(tmp_path / 'none', [], path)
    assert unaware != EXPECTED[path]
    full = 25 if path == 'tta' else 16
    assert all(count in (16, full) for counts in unaware for count in counts)


def test_hook_leaves_the_model_as_it_found_it(tmp_path):
    cfg = runner_cfg(str(tmp_path), [HOOK])
    runner = Runner(**cfg)
    preprocessor = runner.model.data_preprocessor
    runner.test()
    assert not preprocessor._forward_hooks
    records = []
    runner.model.backbone.pruner.register_record_hook(records.append)
    runner.test()  # attached again for the next run
    assert not preprocessor._forward_hooks
    assert valid_counts(records) == EXPECTED['test']


def test_hook_refuses_a_model_without_padding_aware_backbone(tmp_path):
    from toy_runner import toy_runner_cfg
    cfg = toy_runner_cfg(str(tmp_path), max_iters=1)
    cfg['custom_hooks'] = [HOOK]
    with pytest.raises(ValueError, match='no module with set_img_shapes'):
        Runner(**cfg).train()


def test_batch_shape_comes_from_the_prepared_inputs(tmp_path):
    """A backbone forward on another size (e.g. a sliding-window crop)
    ignores the shapes and says so."""
    model = ToySpikeClassifier(keep_ratios=0.5)
    mmtpspike.attach_img_shapes(model)
    data = dict(inputs=[torch.rand(3, 64, 64)] * 2,
                data_samples=[BaseDataElement(metainfo=dict(
                    img_shape=(40, 40), batch_input_shape=(64, 64)))] * 2)
    prepared = model.data_preprocessor(data, False)
    crop = torch.stack(prepared['inputs'])[..., :48, :48]
    crop[..., 40:, :] = 0
    with pytest.warns(UserWarning, match='were for a 64 x 64 batch'):
        model.backbone(crop)
    assert all(r.valid.all() for r in model.backbone.token_records)
