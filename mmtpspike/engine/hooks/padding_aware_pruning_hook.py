"""Tell pruned backbones where each image's padding starts."""
import functools

import torch
from mmengine.hooks import Hook

from mmtpspike.registry import register_hook
from .model_access import unwrap_model


def _pass_img_shapes(backbones, model, args, kwargs):
    """Forward pre-hook of a detector / segmentor (``backbones`` bound with
    ``functools.partial``)."""
    data_samples = kwargs.get('data_samples')
    if data_samples is None and len(args) > 1:
        data_samples = args[1]
    inputs = kwargs.get('inputs', args[0] if args else None)
    if not data_samples:
        return None
    shapes = [sample.metainfo.get('img_shape') for sample in data_samples]
    if any(shape is None for shape in shapes):
        return None
    batch_shape = tuple(inputs.shape[-2:]) if isinstance(
        inputs, torch.Tensor) else None
    for backbone in backbones:
        backbone.set_img_shapes([shape[:2] for shape in shapes], batch_shape)
    return None


@register_hook
class PaddingAwarePruningHook(Hook):
    """Give pruned backbones the unpadded size of every image.

    mmdet and mmseg pad each batch at the bottom / right. Before every model
    forward this hook reads ``img_shape`` from the data samples and calls
    ``set_img_shapes`` on each backbone that has it (e.g. ``SDTV3``), so
    padded tokens never count as valid and are never kept ahead of real ones.
    Add it to ``custom_hooks`` of any config with a pruned backbone.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._handle = None

    def before_run(self, runner) -> None:
        model = unwrap_model(runner)
        backbones = [m for m in model.modules() if hasattr(m, 'set_img_shapes')]
        if backbones and self._handle is None:
            self._handle = model.register_forward_pre_hook(
                functools.partial(_pass_img_shapes, backbones),
                with_kwargs=True)

    def after_run(self, runner) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
