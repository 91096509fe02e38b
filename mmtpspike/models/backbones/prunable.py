"""The token-pruning protocol shared by every spiking transformer backbone.

A backbone becomes prunable by subclassing :class:`PrunableBackbone` and
declaring which of its block lists are prunable (:meth:`prunable_stages`).
Each prunable block exposes two parts:

* ``mix(x)``: what always runs on the full ``[R, C, H, W]`` map (SDT-V3's
  SepConv residual; the identity for blocks without a spatial part);
* ``attention_residual(tokens, token_mask, context, context_mask)`` and
  ``mlp_residual(tokens)`` on flat ``[R, C, K]`` tokens (``transform_tokens``
  runs both), and ``forward(x)``, the dense block.

The :class:`~mmtpspike.models.pruning.TokenPruner` drives them; the base class
owns everything around it: the pruner built from the ``pruning`` dict, image
shapes for padding-aware counts, retention changes, timestep folding
(``[B, ...]`` images repeated ``T`` times into a timestep-major ``[T * B,
...]`` batch) and the neuron settings stored in checkpoints.
"""
import logging
import os.path as osp
import warnings
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from ..pruning import TokenPruner, valid_token_mask
from .img_shapes import SHAPES_FIX, check_stage_stride

PRUNING_KEYS = ('keep_ratios', 'scorer', 'mode', 'temporal_selection',
                'restorer', 'score_on', 'attention_context',
                'mlp_keep_ratios', 'dynamic', 'reduction', 'skip_mixer',
                'conv_keep_ratios')


class PrunableStage(NamedTuple):
    """A list of prunable blocks that share one token grid.

    Attributes:
        index (int): The backbone's stage index (``TokenRecord.stage_index``).
        name (str): Module path of the block list, e.g. ``'stages.2.blocks'``.
        blocks (nn.ModuleList): The blocks, in order.
        stride (int): Token stride w.r.t. the input image.
    """
    index: int
    name: str
    blocks: nn.ModuleList
    stride: int


def _block_names(stages: Sequence[PrunableStage]) -> List[str]:
    return [f'{stage.name}.{b}' for stage in stages
            for b in range(len(stage.blocks))]


class ForwardState(NamedTuple):
    """What one forward needs to run its prunable stages."""
    img_shapes: Optional[List[Tuple[int, int]]]
    runner: Optional[TokenPruner]
    #: ``(H, W)`` of the backbone's input, to check each stage's stride
    input_size: Optional[Tuple[int, int]] = None


class PrunableBackbone(BaseModule):
    """Base class of the prunable spiking backbones.

    Subclasses build their layers, call :meth:`init_pruning` at the end of
    ``__init__``, implement :meth:`prunable_stages`, and in ``forward`` call
    :meth:`begin_forward` once and :meth:`run_stage` for each prunable block
    list (plain blocks run as usual). Freezing (:meth:`_frozen_modules`,
    ``norm_eval``) and ``init_cfg=dict(type='Pretrained', checkpoint=...)``
    (:meth:`load_pretrained`) are handled here too.

    Args:
        num_timesteps (int): ``T``.
        spike_cfg (dict): Neuron config of the backbone.
        mask_padding (bool): Keep padded tokens (known from
            :meth:`set_img_shapes`) out of the prunable blocks.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 num_timesteps: int,
                 spike_cfg: dict,
                 mask_padding: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_timesteps < 1:
            raise ValueError(f'num_timesteps must be >= 1, got '
                             f'{num_timesteps}')
        self.num_timesteps = num_timesteps
        self.spike_cfg = dict(spike_cfg)
        self.mask_padding = mask_padding
        self._img_shapes = None
        self._warned_padding = False
        self.pruner = None
        self.padding_runner = None
        self.norm_eval = False

    #: what ``init_cfg`` of type Pretrained expects, named in its errors
    pretrained_weights = 'ImageNet weights'

    # ---------------------------------------------------------- declaration
    def prunable_stages(self) -> List[PrunableStage]:
        """The prunable block lists, in forward order."""
        raise NotImplementedError

    def conv_prunable_stages(self) -> List[PrunableStage]:
        """The convolutional block lists that ``pruning.conv_keep_ratios``
        can stop tokens in (blocks with ``mix`` and ``transform_at``), in
        forward order; none by default."""
        return []

    def init_pruning(self, pruning: Optional[dict]) -> None:
        """Build the pruner (or, for a dense backbone, the keep-1 runner
        that runs padded batches on their valid tokens only)."""
        self.pruner = self._build_pruner(pruning)
        self.padding_runner = self._build_pruner(
            dict(keep_ratios=1.0)) if pruning is None else None

    def _build_pruner(self, pruning: Optional[dict]) -> Optional[TokenPruner]:
        if pruning is None:
            return None
        if not isinstance(pruning, dict):
            raise TypeError(f'pruning must be a dict or None, got {pruning!r}')
        unknown = set(pruning) - set(PRUNING_KEYS)
        if unknown:
            raise KeyError(f'pruning has unknown key(s) {sorted(unknown)}; '
                           f'allowed: {list(PRUNING_KEYS)}')
        if pruning.get('temporal_selection') == 'per_timestep' and \
                self.num_timesteps > 1 and self.spike_cfg['type'] == 'LIF':
            raise ValueError(
                "pruning.temporal_selection='per_timestep' needs stateless "
                "neurons: a LIF neuron must see the same tokens at every "
                "timestep; use 'shared' or spike_cfg type 'MultiSpike'")
        stages, conv_stages = self.prunable_stages(), \
            self.conv_prunable_stages()
        return TokenPruner(
            _block_names(stages), [len(stage.blocks) for stage in stages],
            conv_block_names=_block_names(conv_stages),
            conv_blocks_per_stage=[len(stage.blocks) for stage in conv_stages],
            num_timesteps=self.num_timesteps, **pruning)

    # ------------------------------------------------- freezing and weights
    def _frozen_modules(self) -> List[nn.Module]:
        """Modules kept frozen (eval mode, no gradients); none by default."""
        return []

    def _freeze(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'PrunableBackbone':
        """Set train mode, keeping frozen modules (and norms if
        ``norm_eval``) in eval mode."""
        if mode and getattr(self, 'fused', False):
            raise RuntimeError(f'{type(self).__name__}.fuse() folded the BN '
                               'layers; build a fresh model to train')
        super().train(mode)
        self._freeze()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def load_pretrained(self, checkpoint: str,
                        prefix: Optional[str]) -> None:
        """Load public weights (keys converted, every mismatch reported)."""
        raise NotImplementedError(f'{type(self).__name__} cannot load '
                                  "init_cfg type 'Pretrained'")

    def init_weights(self) -> None:
        """Initialise; a ``Pretrained`` init_cfg loads public weights through
        :meth:`load_pretrained` (a missing file is an error)."""
        cfg = self.init_cfg
        if not (isinstance(cfg, dict) and cfg.get('type') == 'Pretrained'):
            super().init_weights()
            return
        checkpoint = cfg.get('checkpoint')
        if not checkpoint:
            raise ValueError("init_cfg type 'Pretrained' needs a "
                             "'checkpoint' path")
        if '://' not in checkpoint and not osp.isfile(checkpoint):
            raise FileNotFoundError(
                f'{type(self).__name__} pretrained checkpoint not found: '
                f'{checkpoint}. Put the {self.pretrained_weights} there, '
                f'point model.backbone.init_cfg.checkpoint at them, or set '
                f'model.backbone.init_cfg=None to train from scratch.')
        self._is_init = True
        self.load_pretrained(checkpoint, cfg.get('prefix'))

    # ------------------------------------------------------------ settings
    @property
    def neuron_settings(self) -> dict:
        """What the weights were trained for and cannot show: the neuron
        type, ``D`` (max spikes per timestep) and ``T``."""
        default_spikes = 4 if self.spike_cfg['type'] == 'MultiSpike' else 1
        return dict(type=self.spike_cfg['type'],
                    max_spikes=int(self.spike_cfg.get('max_spikes',
                                                      default_spikes)),
                    num_timesteps=self.num_timesteps)

    def set_img_shapes(self,
                       img_shapes: Optional[Sequence[Tuple[int, int]]],
                       batch_shape: Optional[Tuple[int, int]] = None) -> None:
        """Give the ``(h, w)`` of each image before padding for the next
        forward, which consumes them.

        Args:
            img_shapes (list[tuple[int, int]] | None): per-image valid size.
            batch_shape (tuple[int, int], optional): padded batch size the
                shapes refer to; a forward on another size (e.g. a sliding
                window crop) ignores them.
        """
        if img_shapes is None:
            self._img_shapes = None
            return
        shapes = [(int(h), int(w)) for h, w in img_shapes]
        self._img_shapes = (shapes, None if batch_shape is None else
                            tuple(int(s) for s in batch_shape))

    def set_keep_ratios(self, keep_ratios) -> None:
        """Change retention ratios; see ``TokenPruner.set_keep_ratios``."""
        if self.pruner is None:
            raise RuntimeError(f'this {type(self).__name__} was built with '
                               'pruning=None; build it with a pruning dict '
                               'to set ratios')
        self.pruner.set_keep_ratios(keep_ratios)

    @property
    def token_records(self):
        """Per-block :class:`TokenRecord` list of the last forward."""
        return [] if self.pruner is None else self.pruner.records

    # -------------------------------------------------------------- forward
    def to_timesteps(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` or ``[B, T, C, H, W]`` -> ``[T * B, C, H, W]``."""
        if x.dim() == 4:
            return x.repeat(self.num_timesteps, 1, 1, 1)
        if x.dim() == 5 and x.shape[1] == self.num_timesteps:
            return x.transpose(0, 1).flatten(0, 1)
        raise ValueError(
            f'{type(self).__name__} expects [B, C, H, W] or '
            f'[B, T={self.num_timesteps}, C, H, W] input, got shape '
            f'{tuple(x.shape)}')

    def merge_timesteps(self, x: torch.Tensor) -> torch.Tensor:
        """``[T * B, C, H, W]`` -> mean over T ``[B, C, H, W]``."""
        if self.num_timesteps == 1:
            return x
        return x.view(self.num_timesteps, -1, *x.shape[1:]).mean(0)

    def begin_forward(self, x: torch.Tensor) -> ForwardState:
        """Consume the image shapes, pick the token runner, reset records.

        Args:
            x (Tensor): the backbone's input, ``[B, C, H, W]`` or
                ``[B, T, C, H, W]``.
        """
        given = self._img_shapes
        img_shapes = self._consume_img_shapes(x)
        if img_shapes is None:
            self._warn_if_padded(x, given)
        runner = self.pruner
        if runner is None and img_shapes is not None and self.mask_padding:
            runner = self.padding_runner
        if runner is not None:
            runner.reset_records()
        return ForwardState(img_shapes, runner, tuple(x.shape[-2:]))

    def run_stage(self, stage: PrunableStage, x: torch.Tensor,
                  state: ForwardState) -> torch.Tensor:
        """Run a prunable block list on ``[T * B, C, H, W]``, with token
        early stopping when a runner is active."""
        if state.input_size is not None:
            check_stage_stride(stage.name, stage.stride, tuple(x.shape[-2:]),
                               state.input_size)
        conv_stages = self.conv_prunable_stages()
        conv = any(other.name == stage.name for other in conv_stages)
        if state.runner is None or (
                conv and state.runner.conv_keep_ratios is None):
            for block in stage.blocks:
                x = block(x)
            return x
        first_block = 0
        for other in conv_stages if conv else self.prunable_stages():
            if other.name == stage.name:
                break
            first_block += len(other.blocks)
        valid = self._valid_tokens(state.img_shapes, stage.stride, x)
        active = torch.ones_like(valid)
        for offset, block in enumerate(stage.blocks):
            x, active = state.runner(block, x, first_block + offset,
                                     stage.index, valid, active, conv=conv)
        return x

    def _consume_img_shapes(self, x: torch.Tensor):
        """Pop the shapes given by :meth:`set_img_shapes` if they fit ``x``."""
        given, self._img_shapes = self._img_shapes, None
        if given is None:
            return None
        shapes, batch_shape = given
        if batch_shape is not None and tuple(x.shape[-2:]) != batch_shape:
            return None
        if len(shapes) != x.shape[0]:
            raise ValueError(f'set_img_shapes got {len(shapes)} shapes for a '
                             f'batch of {x.shape[0]} images')
        return shapes

    def _valid_tokens(self, img_shapes, stride: int,
                      x: torch.Tensor) -> torch.Tensor:
        """``[T * B, H * W]`` bool: tokens inside each image."""
        rows, _, height, width = x.shape
        if img_shapes is None or not self.mask_padding:
            return x.new_ones(rows, height * width, dtype=torch.bool)
        valid = valid_token_mask(img_shapes, stride, height, width, x.device)
        return valid.repeat(self.num_timesteps, 1)

    def needs_img_shapes(self) -> bool:
        """Whether forwards on padded batches depend on image shapes: a
        pruner or the dense padding runner, with ``mask_padding``."""
        return self.mask_padding and (self.pruner is not None or
                                      self.padding_runner is not None)

    def _warn_if_padded(self, x: torch.Tensor, given) -> None:
        """Warn once when a backbone that needs image shapes gets a batch
        that looks zero-padded at the bottom / right without them.

        Args:
            x (Tensor): ``[B, C, H, W]`` or ``[B, T, C, H, W]`` input.
            given (tuple | None): what :meth:`set_img_shapes` stored before
                this forward (shapes for another batch size, or None).
        """
        if self._warned_padding or not self.needs_img_shapes():
            return
        last_row = x[..., -1, :].flatten(1).eq(0).all(1)
        last_col = x[..., -1].flatten(1).eq(0).all(1)
        if not bool((last_row | last_col).any()):
            return
        self._warned_padding = True
        if given is None:
            reason = 'no image shapes were given'
        else:
            reason = (f'the image shapes given were for a {given[1][0]} x '
                      f'{given[1][1]} batch, not this '
                      f'{x.shape[-2]} x {x.shape[-1]} one (e.g. a '
                      'sliding-window crop), so they were not used')
        message = (
            f'{type(self).__name__}: the input looks zero-padded at the '
            f'bottom / right, but {reason}: padded tokens count as image '
            'tokens, enter the blocks and can be kept instead of real ones, '
            f'so the output depends on the padding. {SHAPES_FIX}')
        warnings.warn(message)
        print_log(message, logger='current', level=logging.WARNING)
