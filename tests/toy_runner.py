"""A tiny mmengine model / dataset for runner-level tests."""
import uuid

import torch
import torch.nn as nn
from mmengine.model import BaseModel
from torch.utils.data import Dataset


class ToyModel(BaseModel):
    """Linear regression as an mmengine model."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, targets=None, mode='tensor'):
        inputs = torch.stack(inputs) if isinstance(inputs, list) else inputs
        preds = self.linear(inputs)
        if mode == 'loss':
            targets = torch.stack(targets) if isinstance(targets,
                                                         list) else targets
            return dict(loss=((preds - targets)**2).mean())
        return preds


class ToyDataset(Dataset):
    """Eight random (x, y) pairs."""

    metainfo = dict()

    def __init__(self) -> None:
        gen = torch.Generator().manual_seed(0)
        self.x = torch.rand(8, 2, generator=gen)
        self.y = self.x.sum(1, keepdim=True)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index):
        return dict(inputs=self.x[index], targets=self.y[index])


def toy_runner_cfg(work_dir: str, max_iters: int = 4) -> dict:
    """Runner kwargs for a short iteration-based run."""
    return dict(
        model=ToyModel(),
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=2,
            collate_fn=dict(type='default_collate'),
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0),
        # mmengine names the logger after the start second by default, so
        # two runners started in one second would share one log file
        experiment_name=f'toy_{uuid.uuid4().hex}',
        default_scope='mmengine')


class ToySpikeClassifier(BaseModel):
    """A pruned SDT-V3-T + linear head, to run hooks in real iterations.

    ``forward(inputs, data_samples, mode)`` like mmdet / mmseg models, with
    ``data_samples`` carrying ``img_shape`` in their ``metainfo``.
    """

    def __init__(self, keep_ratios=1.0, pruning_options=None,
                 **backbone_kwargs) -> None:
        super().__init__()
        from mmtpspike.models import SDTV3
        self.backbone = SDTV3(
            arch='t', depths=(1, 1, 2, 1),
            pruning=dict(keep_ratios=keep_ratios, **(pruning_options or {})),
            **backbone_kwargs)
        self.head = nn.Linear(128, 2)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        inputs = torch.stack(inputs) if isinstance(inputs, list) else inputs
        logits = self.head(self.backbone(inputs)[-1].mean((2, 3)))
        if mode == 'loss':
            labels = torch.tensor([s.metainfo['label'] for s in data_samples])
            return dict(loss=nn.functional.cross_entropy(logits, labels))
        return logits


class ToyImageDataset(Dataset):
    """Random 64 x 64 images, the right / bottom part padded with zeros."""

    metainfo = dict()

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index):
        from mmengine.structures import BaseDataElement
        gen = torch.Generator().manual_seed(index)
        image = torch.zeros(3, 64, 64)
        height, width = 64 - 8 * (index % 3), 64 - 16 * (index % 2)
        image[:, :height, :width] = torch.rand(3, height, width, generator=gen)
        sample = BaseDataElement(metainfo=dict(img_shape=(height, width),
                                               label=index % 2))
        return dict(inputs=image, data_samples=sample)


def toy_pruning_runner_cfg(work_dir: str, custom_hooks, max_iters=6,
                           keep_ratios=1.0, **backbone_kwargs) -> dict:
    """Runner kwargs training :class:`ToySpikeClassifier`."""
    cfg = toy_runner_cfg(work_dir, max_iters)
    cfg.update(
        model=ToySpikeClassifier(keep_ratios, **backbone_kwargs),
        custom_hooks=custom_hooks,
        train_dataloader=dict(
            dataset=ToyImageDataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            collate_fn=dict(type='pseudo_collate'),
            num_workers=0))
    cfg['default_hooks'] = dict(logger=dict(type='LoggerHook', interval=1))
    return cfg
