"""Build a detector / segmentor from a config and feed it real images, or
the event samples of an event config's test set."""
import glob
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import BaseDataElement

from mmtpspike.utils.config import SetupError, load_config
from mmtpspike.utils.spiking_meta import (check_neuron_settings,
                                          saved_spiking_meta)
from mmtpspike.visualization import sample_name

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp')
DEFAULT_PRUNING = dict(keep_ratios=1.0, scorer=dict(type='IRToPScorer'))
# (H, W) used by the analysis tools when no --shape is given: a COCO test
# image (1333 x 800 resize, padded to 32) and an ADE20K crop
DEFAULT_INPUT_SHAPES = {'mmdet': (800, 1216), 'mmseg': (512, 512)}
#: first test-pipeline steps of configs whose inputs are event frames
EVENT_LOADERS = ('LoadEventWindow', 'LoadEventFrames')
#: what the tools say they ran on (:func:`input_kind`)
EVENT_SAMPLES, IMAGES = 'event sample(s)', 'image(s)'


def is_prunable(backbone_cfg: dict) -> bool:
    """Whether a backbone config builds a :class:`PrunableBackbone`."""
    from mmengine.registry import MODELS

    from mmtpspike.models.backbones.prunable import PrunableBackbone
    cls = MODELS.get(backbone_cfg.get('type'))
    return isinstance(cls, type) and issubclass(cls, PrunableBackbone)


def build_model(config: str,
                checkpoint: Optional[str] = None,
                cfg_options: Optional[dict] = None,
                with_pruning: bool = True) -> Tuple[torch.nn.Module, Config]:
    """Build the config's model in eval mode, optionally from a checkpoint.

    Args:
        config (str): mmdet / mmseg config path.
        checkpoint (str, optional): weights (runner checkpoint or state dict).
        cfg_options (dict, optional): ``--cfg-options`` overrides.
        with_pruning (bool): give a dense prunable backbone (SDTV3, QKFormer,
            ...) a pruner at keep 1.0 (bit-identical to dense) so tools can
            change its keep ratios.

    Returns:
        tuple: the model and the loaded config.
    """
    cfg = load_config(config, cfg_options)
    init_default_scope(cfg.default_scope)
    backbone = cfg.model.backbone
    if with_pruning and is_prunable(backbone) and \
            not backbone.get('pruning'):
        backbone.pruning = dict(DEFAULT_PRUNING)
    backbone.init_cfg = None
    from mmengine.registry import MODELS
    model = MODELS.build(cfg.model)
    if checkpoint:
        from mmengine.runner import load_checkpoint
        if not osp.isfile(checkpoint):
            raise SetupError(f'checkpoint not found: {checkpoint}')
        loaded = load_checkpoint(model, checkpoint, map_location='cpu')
        check_neuron_settings(model, saved_spiking_meta(loaded),
                              source=checkpoint)
    return model.eval(), cfg


def build_pruned_model(config: str,
                       checkpoint: str,
                       cfg_options: Optional[dict] = None,
                       keep: Optional[Sequence[float]] = None
                       ) -> Tuple[torch.nn.Module, Config]:
    """:func:`build_model` for the tools that look at pruned tokens.

    Args:
        config (str): mmdet / mmseg config path.
        checkpoint (str): weights, or ``'none'`` for an untrained model.
        cfg_options (dict, optional): ``--cfg-options`` overrides.
        keep (list[float], optional): keep ratio(s) replacing the config's
            (one value, one per stage or one per block).

    Raises:
        SetupError: every keep ratio is 1.0, so nothing would be pruned.
    """
    weights = None if checkpoint.lower() == 'none' else checkpoint
    model, cfg = build_model(config, weights, cfg_options)
    if keep:
        model.backbone.set_keep_ratios(keep[0] if len(keep) == 1 else
                                       list(keep))
    if all(k >= 1 for k in model.backbone.pruner.keep_ratios):
        raise SetupError('all keep ratios are 1.0 (dense): pass --keep')
    return model, cfg


class BackboneNeck(torch.nn.Module):
    """The backbone + neck of a detector / segmentor as one module (what
    the analysis tools measure; heads are stock layers, not pruned).

    Args:
        model (torch.nn.Module): The detector / segmentor.
        unpadded (bool): Its inputs are not padded (images resized to the
            input size, event samples cropped): a padding-aware backbone is
            told that every pixel is valid, so it neither guesses padding
            from empty borders (an event frame often has some) nor warns.
            Default: False.
    """

    def __init__(self, model: torch.nn.Module, unpadded: bool = False) -> None:
        super().__init__()
        self.backbone = model.backbone
        self.neck = getattr(model, 'neck', None)
        self.unpadded = unpadded

    def forward(self, inputs: torch.Tensor):
        """``[B, 3, H, W]`` (or ``[B, T, C, H, W]``) -> the neck's (or
        backbone's) feature maps."""
        if self.unpadded:
            set_full_img_shapes(self.backbone, inputs)
        feats = self.backbone(inputs)
        return feats if self.neck is None else self.neck(feats)


def set_full_img_shapes(backbone: torch.nn.Module,
                        inputs: torch.Tensor) -> None:
    """Tell a padding-aware backbone that no pixel of ``inputs`` is padding
    (for its next forward)."""
    if hasattr(backbone, 'set_img_shapes'):
        shape = tuple(inputs.shape[-2:])
        backbone.set_img_shapes([shape] * inputs.shape[0], shape)


def test_dataset_cfg(cfg: Config) -> dict:
    """The config's test dataset, unwrapped from dataset wrappers."""
    dataset = cfg.test_dataloader.dataset
    while 'dataset' in dataset:
        dataset = dataset.dataset
    return dataset


def test_resize_scale(cfg: Config) -> Optional[Tuple[int, int]]:
    """``scale`` (mm order: long side / width first) of the first ``Resize``
    of the test pipeline, or None."""
    for transform in test_dataset_cfg(cfg).get('pipeline', []):
        if transform.get('type') == 'Resize' and 'scale' in transform:
            return tuple(transform['scale'])
    return None


def default_images(cfg: Config, count: int) -> List[str]:
    """The first ``count`` images of the config's test set."""
    dataset = test_dataset_cfg(cfg)
    prefix = dataset.get('data_prefix', {})
    folder = osp.join(dataset.get('data_root', ''),
                      prefix.get('img', prefix.get('img_path', '')))
    files = sorted(f for f in glob.glob(osp.join(folder, '*'))
                   if f.lower().endswith(IMAGE_SUFFIXES))
    if not files:
        raise SetupError(f'no images found in {folder}; pass --images')
    return files[:count]


def read_image(path: str) -> np.ndarray:
    """BGR uint8 ``[H, W, 3]`` image, with a clear error when unreadable."""
    if not osp.isfile(path):
        raise SetupError(f'image not found: {path}')
    image = mmcv.imread(path, channel_order='bgr')
    if image is None:
        raise SetupError(f'cannot decode image: {path}')
    return image


def to_input(images: Sequence[np.ndarray], shape: Tuple[int, int],
             model: torch.nn.Module) -> torch.Tensor:
    """Resize BGR images to ``shape`` and run them through the model's data
    preprocessor in test mode (channel order, normalisation).

    The preprocessor may pad the batch at the bottom / right to its size
    divisor; that padding is cropped off, so the result is exactly ``shape``.

    Args:
        images (Sequence[np.ndarray]): BGR uint8 ``[H, W, 3]`` images.
        shape (tuple[int, int]): Output ``(H, W)``.
        model (torch.nn.Module): An mmengine model (with a
            ``data_preprocessor``).

    Returns:
        torch.Tensor: ``[B, 3, H, W]`` model inputs.
    """
    height, width = shape
    inputs = [
        torch.from_numpy(mmcv.imresize(img, (width, height))).permute(2, 0, 1)
        for img in images
    ]
    samples = [
        BaseDataElement(metainfo=dict(img_shape=shape, ori_shape=shape))
        for _ in images
    ]
    data = model.data_preprocessor(
        dict(inputs=inputs, data_samples=samples), False)
    return data['inputs'][:, :, :height, :width]


def is_event_config(cfg: Config) -> bool:
    """Whether the config's test samples are event frames (its test
    pipeline starts with an event loader)."""
    pipeline = test_dataset_cfg(cfg).get('pipeline', [])
    return bool(pipeline) and pipeline[0].get('type') in EVENT_LOADERS


def input_kind(cfg: Config) -> str:
    """What the tools feed a config's model, as they report it:
    :data:`EVENT_SAMPLES` or :data:`IMAGES`."""
    return EVENT_SAMPLES if is_event_config(cfg) else IMAGES


def event_samples(cfg: Config, model: torch.nn.Module,
                  count: int) -> Tuple[torch.Tensor, List[str], List]:
    """The first ``count`` samples of an event config's test set, through
    its pipeline and the model's data preprocessor.

    Returns:
        tuple: inputs ``[N, T, 2, H, W]`` (cropped to the samples' size,
        without the preprocessor's padding), their names
        (``<recording>_<t>us``) and their frames ``[T * 2, H, W]`` as the
        pipeline gave them (for drawing).
    """
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DATASETS
    dataset = DATASETS.build(test_dataset_cfg(cfg))
    samples = [dataset[i] for i in range(min(count, len(dataset)))]
    if not samples:
        raise SetupError('the test set of the config has no sample')
    metas = [sample['data_samples'].metainfo for sample in samples]
    data = model.data_preprocessor(pseudo_collate(samples), False)
    height, width = metas[0]['img_shape'][:2]
    names = [sample_name(meta) for meta in metas]
    frames = [sample['inputs'] for sample in samples]
    return data['inputs'][..., :height, :width], names, frames
