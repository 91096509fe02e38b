"""Tell padding-aware backbones where each image's padding starts."""
from mmengine.hooks import Hook

from mmtpspike.models.backbones.img_shapes import attach_img_shapes
from mmtpspike.registry import register_hook


@register_hook
class PaddingAwarePruningHook(Hook):
    """Give padding-aware backbones the unpadded size of every image.

    mmdet and mmseg pad each batch at the bottom / right. From ``before_run``
    to ``after_run`` this hook keeps :func:`~mmtpspike.attach_img_shapes` on
    the runner's model: every batch the model's data preprocessor prepares
    (train, val and test steps, also under DDP or a test-time-augmentation
    model) hands ``img_shape`` of its samples to each backbone's
    ``set_img_shapes``, so padded tokens never count as image tokens.
    Add it to ``custom_hooks`` of any config with an mmtpspike backbone::

        custom_hooks = [dict(type='PaddingAwarePruningHook')]

    Without a Runner (``mmdet.apis`` / ``mmseg.apis``) call
    ``mmtpspike.attach_img_shapes(model)`` instead.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._handle = None

    def before_run(self, runner) -> None:
        if self._handle is None:
            self._handle = attach_img_shapes(runner.model)

    def after_run(self, runner) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
