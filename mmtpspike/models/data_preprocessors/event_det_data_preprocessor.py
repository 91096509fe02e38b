"""Batches of event representations for mmdet detectors."""
from typing import Optional

from mmdet.models.data_preprocessors import DetDataPreprocessor

from mmtpspike.registry import register_model


@register_model
class EventDetDataPreprocessor(DetDataPreprocessor):
    """mmdet's ``DetDataPreprocessor`` for event representations: it stacks
    and pads ``[T * C, H, W]`` inputs as images, then unfolds the time bins
    to ``[B, T, C, H, W]``, the multi-timestep input of the spiking
    backbones.

    The event transforms (``EventHistogram``, ``EventSpikeFrames``) give
    ``img`` as ``[H, W, T * C]`` with channel ``t * C + c`` (mm's image
    layout, so flips and padding work unchanged); padding adds zeros, which
    read as "no events".

    Args:
        event_channels (int): ``C``, channels per time bin (2: OFF, ON).
            Default: 2.
        pad_size_divisor (int): As mmdet's. Default: 32.
        **kwargs: Other arguments of ``DetDataPreprocessor``. Per-channel
            ``mean`` / ``std`` and colour conversion are refused: event
            counts are not colours.

    Example:
        >>> import torch
        >>> self = EventDetDataPreprocessor(pad_size_divisor=8)
        >>> data = dict(inputs=[torch.ones(6, 10, 12)])
        >>> self(data)['inputs'].shape
        torch.Size([1, 3, 2, 16, 16])
    """

    def __init__(self,
                 event_channels: int = 2,
                 pad_size_divisor: int = 32,
                 mean: Optional[list] = None,
                 std: Optional[list] = None,
                 bgr_to_rgb: bool = False,
                 rgb_to_bgr: bool = False,
                 **kwargs) -> None:
        if mean is not None or std is not None or bgr_to_rgb or rgb_to_bgr:
            raise ValueError(
                'EventDetDataPreprocessor takes event counts as they are: '
                'remove mean / std / bgr_to_rgb / rgb_to_bgr from its config')
        if event_channels < 1:
            raise ValueError(
                f'event_channels must be >= 1, got {event_channels}')
        super().__init__(pad_size_divisor=pad_size_divisor, **kwargs)
        self.event_channels = event_channels

    def forward(self, data: dict, training: bool = False) -> dict:
        """Stack and pad as mmdet does, then unfold the time bins.

        Returns:
            dict: ``inputs`` ``[B, T, C, H, W]`` and ``data_samples``.
        """
        data = super().forward(data, training)
        inputs = data['inputs']
        channels = inputs.shape[1]
        if channels % self.event_channels:
            raise ValueError(
                f'EventDetDataPreprocessor got inputs with {channels} '
                f'channels, not a multiple of event_channels='
                f'{self.event_channels}: the pipeline must end with an '
                'event representation (EventHistogram / EventSpikeFrames) '
                'before PackDetInputs')
        data['inputs'] = inputs.view(inputs.shape[0], -1, self.event_channels,
                                     *inputs.shape[2:])
        return data
