"""A tiny mmengine model / dataset for runner-level tests."""
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
        default_scope='mmengine')
