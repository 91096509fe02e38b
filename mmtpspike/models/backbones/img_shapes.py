"""Image shapes for padding-aware backbones, taken where the data is prepared.

mmdet and mmseg pad every batch at the bottom / right. A backbone that keeps
padded tokens out of its blocks (``mask_padding=True``) needs each image's
unpadded size, which only the data samples know. The one place every path
shares is the model's data preprocessor: ``train_step``, ``val_step`` and
``test_step``, mmengine's ``BaseTTAModel`` (it calls ``module.test_step``) and
``mmdet.apis.inference_detector`` / ``mmseg.apis.inference_model`` all run it.
:func:`attach_img_shapes` puts a forward hook on it that hands the shapes of
each prepared batch to the model's backbones (their ``set_img_shapes``).

With ``mmdet.apis`` (``mmseg.apis.init_model`` / ``inference_model`` alike)::

    from mmdet.apis import inference_detector, init_detector
    from mmtpspike import attach_img_shapes

    model = init_detector('configs/det/sdtv3_tp_coco.py', 'model.pth')
    attach_img_shapes(model)  # once; returns a handle with remove()
    result = inference_detector(model, 'demo.jpg')

A Runner does the same through ``PaddingAwarePruningHook``.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

#: how to give a padding-aware backbone its image shapes, named in warnings
SHAPES_FIX = (
    "With a Runner add dict(type='PaddingAwarePruningHook') to custom_hooks; "
    'with mmdet.apis / mmseg.apis or your own loop call '
    'mmtpspike.attach_img_shapes(model) once after building the model; or '
    'call backbone.set_img_shapes(shapes, batch_shape) before each forward.')


def takes_img_shapes(module: nn.Module) -> List[nn.Module]:
    """Submodules of ``module`` (itself included) with ``set_img_shapes``."""
    return [m for m in module.modules()
            if callable(getattr(m, 'set_img_shapes', None))]


def batch_img_shapes(data) -> Tuple[Optional[List[Tuple[int, int]]],
                                    Optional[Tuple[int, int]]]:
    """Unpadded image sizes of a prepared batch.

    Args:
        data (dict): What a data preprocessor returns: ``inputs`` (a
            ``[B, C, H, W]`` tensor, or a list of images) and
            ``data_samples`` whose metainfo has ``img_shape``.

    Returns:
        tuple: ``[(h, w)] * B`` (None when the samples do not carry
        ``img_shape``) and the padded ``(H, W)`` they refer to (None when
        unknown: the inputs are not one tensor and the samples carry no
        ``batch_input_shape``).
    """
    if not isinstance(data, dict) or not data.get('data_samples'):
        return None, None
    metainfo = [sample.metainfo for sample in data['data_samples']]
    if any(meta.get('img_shape') is None for meta in metainfo):
        return None, None
    shapes = [tuple(int(s) for s in meta['img_shape'][:2])
              for meta in metainfo]
    inputs = data.get('inputs')
    if isinstance(inputs, torch.Tensor):
        return shapes, tuple(inputs.shape[-2:])
    batch_shapes = {tuple(meta.get('batch_input_shape') or ())
                    for meta in metainfo}
    if len(batch_shapes) != 1 or () in batch_shapes:
        return shapes, None
    return shapes, batch_shapes.pop()


class _PassImgShapes:
    """Forward hook of ``owner.data_preprocessor``: the shapes of each batch
    it returns go to every backbone of ``owner`` that takes them."""

    def __init__(self, owner: nn.Module) -> None:
        self.owner = owner

    def __call__(self, preprocessor: nn.Module, args, data) -> None:
        shapes, batch_shape = batch_img_shapes(data)
        for backbone in takes_img_shapes(self.owner):
            backbone.set_img_shapes(shapes, batch_shape)


class ImgShapesHandle:
    """The hooks placed by one :func:`attach_img_shapes` call."""

    def __init__(self, handles: Sequence) -> None:
        self._handles = list(handles)

    def remove(self) -> None:
        """Stop passing image shapes through these hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


def _attached(preprocessor: nn.Module, owner: nn.Module) -> bool:
    return any(isinstance(hook, _PassImgShapes) and hook.owner is owner
               for hook in preprocessor._forward_hooks.values())


def attach_img_shapes(model: nn.Module) -> ImgShapesHandle:
    """Pass each batch's image shapes to the backbones of ``model``.

    Every model inside ``model`` that has a ``data_preprocessor`` (the
    detector or segmentor itself, also under a DDP or test-time-augmentation
    wrapper) gets a forward hook on its preprocessor; each prepared batch then
    reaches its backbones' ``set_img_shapes`` with the ``img_shape`` of every
    sample and the padded input size. Attaching twice is harmless.

    Args:
        model (nn.Module): A model, a wrapped model or a TTA model.

    Returns:
        ImgShapesHandle: ``remove()`` takes the hooks placed by this call off.

    Raises:
        ValueError: ``model`` has no backbone with ``set_img_shapes``, or no
            data preprocessor runs before one.
    """
    backbones = takes_img_shapes(model)
    if not backbones:
        raise ValueError(
            f'{type(model).__name__} has no module with set_img_shapes (a '
            'padding-aware backbone such as SDTV3), so image shapes have '
            'nowhere to go; use an mmtpspike backbone or drop '
            'PaddingAwarePruningHook / attach_img_shapes')
    owners = [owner for owner in model.modules()
              if isinstance(getattr(owner, 'data_preprocessor', None),
                            nn.Module) and takes_img_shapes(owner)]
    reached = {id(m) for owner in owners for m in takes_img_shapes(owner)}
    missed = [type(m).__name__ for m in backbones if id(m) not in reached]
    if missed:
        raise ValueError(
            f'{missed} in {type(model).__name__} sit in no model with a '
            'data_preprocessor, so no image shapes can reach them; build '
            'them into an mmengine BaseModel (a detector / segmentor) or '
            'call set_img_shapes(shapes, batch_shape) before each forward')
    handles = [
        owner.data_preprocessor.register_forward_hook(_PassImgShapes(owner))
        for owner in owners if not _attached(owner.data_preprocessor, owner)
    ]
    return ImgShapesHandle(handles)


def check_stage_stride(stage_name: str, stride: int,
                       map_size: Tuple[int, int],
                       input_size: Tuple[int, int]) -> None:
    """Check that a ``stride`` stage got a ``ceil(input / stride)`` map.

    A convolution with ``padding = kernel // 2`` gives ``ceil(H / s)``, one
    without padding ``floor(H / s)``; both are accepted. The error names the
    stride the map is at (the power of two that fits, as in every backbone
    here, else the range of strides that fit).

    Args:
        stage_name (str): Module path of the stage, named in the error.
        stride (int): Declared stride (``PrunableStage.stride``).
        map_size (tuple[int, int]): ``(H', W')`` of the map it received.
        input_size (tuple[int, int]): ``(H, W)`` of the backbone's input.

    Raises:
        ValueError: the map is not at the declared stride; the message gives
            the stride it is at.
    """
    if _fits(stride, map_size, input_size):
        return
    real = [s for s in range(1, max(input_size) + 1)
            if _fits(s, map_size, input_size)]
    powers = [s for s in real if s & (s - 1) == 0]
    found = (f'stride {powers[0]}' if len(powers) == 1 else
             f'stride {real[0]}-{real[-1]}' if real else 'no integer stride')
    raise ValueError(
        f'prunable stage {stage_name!r} declares stride {stride} but gets a '
        f'{map_size[0]} x {map_size[1]} map for a {input_size[0]} x '
        f'{input_size[1]} input, which is {found}; its PrunableStage.stride '
        'must be the real one, or padded tokens are counted at the wrong '
        'positions')


def _fits(stride: int, map_size: Tuple[int, int],
          input_size: Tuple[int, int]) -> bool:
    return all(size // stride <= got <= -(-size // stride)
               for got, size in zip(map_size, input_size))
