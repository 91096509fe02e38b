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

from ..pruning import PruningLayout, TokenPruner, valid_token_mask
from .img_shapes import SHAPES_FIX, check_stage_stride


class PrunableStage(NamedTuple):
    """A list of prunable blocks that share one token grid.

    Attributes:
        index (int): The backbone's stage index (``TokenRecord.stage_index``).
        name (str): Module path of the block list, e.g. ``'stages.2.blocks'``.
        blocks (nn.ModuleList): The blocks, in order (may be empty).
        stride (int): Token stride w.r.t. the input image.
        entry (nn.Module, optional): The layer that makes the stage's token
            grid from the previous map (patch embedding or down-sampling),
            run on the full map by :meth:`PrunableBackbone.forward`; None =
            the blocks read the previous map directly.
    """
    index: int
    name: str
    blocks: nn.ModuleList
    stride: int
    entry: Optional[nn.Module] = None


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

    Subclasses build their layers, list them with :meth:`forward_stages`,
    and call :meth:`init_pruning` and :meth:`init_freezing` at the end of
    ``__init__``; the forward (timestep folding, each stage's entry layer
    and blocks, token early stopping, the maps of :attr:`out_indices`
    averaged over ``T``) is written here once. Every stage with blocks that
    is not in :meth:`conv_prunable_stages` is prunable unless
    :meth:`prunable_stages` says otherwise.

    Freezing has one meaning in every backbone: ``frozen_stages = -1``
    freezes nothing, ``n >= 0`` the embedding and the first ``n`` stages of
    :meth:`freezable_stages` (the blocks, for single-stage backbones such as
    SDT-V1 and Spikformer); frozen modules stay in eval mode without
    gradients, and ``norm_eval`` keeps every norm layer in eval mode.
    ``init_cfg=dict(type='Pretrained', checkpoint=...)`` loads through
    :meth:`load_pretrained`.

    Example:
        >>> import torch
        >>> import torch.nn as nn
        >>> from mmtpspike.models.backbones.prunable import (
        ...     PrunableBackbone, PrunableStage)
        >>> from mmtpspike.models.layers import TokenBlock
        >>> class Block(TokenBlock):
        ...     def __init__(self, channels):
        ...         super().__init__()
        ...         self.attn = lambda tokens, *masks_and_context: tokens
        ...         self.mlp = nn.Conv1d(channels, channels, 1)
        >>> class Toy(PrunableBackbone):
        ...     out_indices = (0, )
        ...     def __init__(self, pruning=None, frozen_stages=-1):
        ...         super().__init__(1, dict(type='MultiSpike'))
        ...         self.embed = nn.Conv2d(3, 8, 4, stride=4)
        ...         self.blocks = nn.ModuleList([Block(8), Block(8)])
        ...         self.init_pruning(pruning)
        ...         self.init_freezing(frozen_stages, norm_eval=False)
        ...     def forward_stages(self):
        ...         return [PrunableStage(0, 'blocks', self.blocks, 4,
        ...                               self.embed)]
        ...     def freezable_stages(self):
        ...         return self.embed, self.blocks
        >>> model = Toy(pruning=dict(keep_ratios=0.5), frozen_stages=0)
        >>> [tuple(out.shape) for out in model(torch.rand(2, 3, 32, 48))]
        [(2, 8, 8, 12)]
        >>> [int(record.kept.sum()) for record in model.token_records]
        [96, 96]
        >>> model.embed.weight.requires_grad
        False

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
        self.frozen_stages = -1
        self.norm_eval = False

    #: what ``init_cfg`` of type Pretrained expects, named in its errors
    pretrained_weights = 'ImageNet weights'

    #: indices (``PrunableStage.index``) of the stages whose maps
    #: :meth:`forward` returns, in forward order
    out_indices: Tuple[int, ...] = (0, )

    # ---------------------------------------------------------- declaration
    def forward_stages(self) -> List[PrunableStage]:
        """Every stage, in forward order, each with its entry layer."""
        raise NotImplementedError

    def prunable_stages(self) -> List[PrunableStage]:
        """The prunable block lists, in forward order: by default every
        stage of :meth:`forward_stages` with blocks, except the
        convolutional ones of :meth:`conv_prunable_stages`."""
        conv = {stage.name for stage in self.conv_prunable_stages()}
        return [stage for stage in self.forward_stages()
                if len(stage.blocks) and stage.name not in conv]

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
        """A :class:`TokenPruner` for ``pruning`` (checked by
        :class:`~mmtpspike.models.pruning.PruningConfig`), or None for
        None."""
        if pruning is None:
            return None
        stages, conv_stages = self.prunable_stages(), \
            self.conv_prunable_stages()
        layout = PruningLayout(
            block_names=_block_names(stages),
            blocks_per_stage=[len(stage.blocks) for stage in stages],
            conv_block_names=_block_names(conv_stages),
            conv_blocks_per_stage=[len(stage.blocks) for stage in conv_stages],
            num_timesteps=self.num_timesteps,
            stateful_neurons=self.spike_cfg['type'] == 'LIF')
        return TokenPruner(pruning, layout)

    # ------------------------------------------------- freezing and weights
    def freezable_stages(self) -> Tuple[nn.Module, Sequence[nn.Module]]:
        """The embedding (everything before the first stage) and the stages
        (or blocks) that ``frozen_stages`` counts, in forward order."""
        raise NotImplementedError(f'{type(self).__name__} cannot freeze '
                                  'stages')

    def init_freezing(self, frozen_stages: int, norm_eval: bool) -> None:
        """Check and apply the freezing arguments (after building layers).

        Args:
            frozen_stages (int): -1 freezes nothing, ``n`` in ``[0,
                num_stages]`` the embedding and the first ``n`` stages of
                :meth:`freezable_stages`.
            norm_eval (bool): Keep norm layers in eval mode while training.
        """
        if frozen_stages != -1:
            num_stages = len(self.freezable_stages()[1])
            if not 0 <= frozen_stages <= num_stages:
                raise ValueError(f'frozen_stages must be in [-1, '
                                 f'{num_stages}], got {frozen_stages}')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self._freeze()

    def _frozen_modules(self) -> List[nn.Module]:
        """Modules kept frozen (eval mode, no gradients): the embedding and
        the first ``frozen_stages`` stages; none for -1."""
        if self.frozen_stages < 0:
            return []
        embedding, stages = self.freezable_stages()
        return [embedding] + list(stages[:self.frozen_stages])

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

    def set_keep_ratios(self, keep_ratios, **ratios) -> None:
        """Change retention ratios, checked like the ``pruning`` dict; see
        :meth:`TokenPruner.set_keep_ratios`."""
        if self.pruner is None:
            raise RuntimeError(f'this {type(self).__name__} was built with '
                               'pruning=None; build it with a pruning dict '
                               'to set ratios')
        self.pruner.set_keep_ratios(keep_ratios, **ratios)

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

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Extract features.

        Args:
            x (Tensor): ``[B, C, H, W]`` images (repeated ``T`` times) or
                ``[B, T, C, H, W]`` frames.

        Returns:
            tuple[Tensor]: ``[B, C_i, H_i, W_i]`` maps (averaged over ``T``)
            of the stages in :attr:`out_indices`, in forward order.
        """
        state = self.begin_forward(x)
        x = self.to_timesteps(x)
        pruned = {stage.name for stage in
                  self.conv_prunable_stages() + self.prunable_stages()}
        outs = []
        for stage in self.forward_stages():
            if stage.entry is not None:
                x = stage.entry(x)
            if stage.name in pruned:
                x = self.run_stage(stage, x, state)
            else:
                for block in stage.blocks:
                    x = block(x)
            if self.is_output(stage):
                outs.append(self.merge_timesteps(x))
        return tuple(outs)

    def is_output(self, stage: PrunableStage) -> bool:
        """Whether :meth:`forward` returns the map of ``stage``."""
        return stage.index in self.out_indices

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
