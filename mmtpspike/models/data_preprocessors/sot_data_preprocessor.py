"""Batches of single-object tracking samples: template and search crops of
training pairs, or whole test frames."""
from typing import Dict, List, Mapping, Sequence, Union

import torch
from mmengine.model import BaseDataPreprocessor

from mmtpspike.registry import register_model

#: the input sets ``PackSOTInputs`` gives: a training pair, a test frame
INPUT_KEYS = (('template', 'search'), ('frame', ))


@register_model
class SOTDataPreprocessor(BaseDataPreprocessor):
    """Stack the ``inputs`` dicts of a batch of ``PackSOTInputs`` samples.

    Training pairs give ``dict(template=[B, T, 2, St, St], search=[B, T, 2,
    Ss, Ss])``, test frames ``dict(frame=[B, T, 2, H, W])``: float32, on
    the model's device. The data samples move there too. Event counts are
    taken as they are (no mean / std).

    Example:
        >>> self = SOTDataPreprocessor()
        >>> frames = [dict(frame=torch.ones(1, 2, 6, 8)) for _ in range(3)]
        >>> self(dict(inputs=frames))['inputs']['frame'].shape
        torch.Size([3, 1, 2, 6, 8])
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        """Stack and move a batch.

        Args:
            data (dict): ``inputs``: one dict per sample (or mmengine's
                ``pseudo_collate`` of them: one list per key), each tensor
                ``[T, 2, h, w]``; ``data_samples`` (optional): their
                ``TrackDataSample``.
            training (bool): Unused (no augmentation here).

        Returns:
            dict: ``inputs`` (dict of ``[B, T, 2, h, w]`` float32 tensors)
            and ``data_samples`` (list, or None).
        """
        inputs = self.stack(data['inputs'])
        return dict(inputs={
            key: value.to(self.device, torch.float32,
                          non_blocking=self._non_blocking)
            for key, value in inputs.items()
        }, data_samples=self.cast_data(data.get('data_samples')))

    @staticmethod
    def stack(inputs: Union[Mapping, Sequence[Mapping]]
              ) -> Dict[str, torch.Tensor]:
        """``[B, T, 2, h, w]`` per input key.

        Raises:
            ValueError: Keys other than a pair's or a frame's, or samples of
                different shapes.
        """
        if isinstance(inputs, Mapping):  # pseudo_collate: key -> list
            batch = {key: list(value) for key, value in inputs.items()}
        else:
            keys = set(inputs[0]) if len(inputs) else set()
            if any(set(sample) != keys for sample in inputs):
                raise ValueError('SOTDataPreprocessor got samples with '
                                 'different input keys in one batch')
            batch = {key: [sample[key] for sample in inputs] for key in keys}
        if tuple(sorted(batch)) not in [tuple(sorted(k))
                                        for k in INPUT_KEYS]:
            raise ValueError(
                f'SOTDataPreprocessor takes inputs {INPUT_KEYS[0]} (training '
                f'pairs) or {INPUT_KEYS[1]} (test frames), got '
                f'{tuple(sorted(batch))}: end the pipeline with PackSOTInputs')
        return {key: _stack(key, tensors) for key, tensors in batch.items()}


def _stack(key: str, tensors: List[torch.Tensor]) -> torch.Tensor:
    """Stack one key's ``[T, 2, h, w]`` tensors, naming mismatches."""
    shapes = {tuple(tensor.shape) for tensor in tensors}
    if len(shapes) > 1:
        raise ValueError(
            f'SOTDataPreprocessor: the {key!r} inputs of one batch differ in '
            f'shape: {sorted(shapes)}; frames of sensors of different sizes '
            'cannot share a batch (use batch_size=1 for test frames)')
    if any(tensor.ndim != 4 for tensor in tensors):
        raise ValueError(f'SOTDataPreprocessor: {key!r} inputs must be '
                         f'[T, 2, h, w], got {sorted(shapes)}')
    return torch.stack([torch.as_tensor(t) for t in tensors])
