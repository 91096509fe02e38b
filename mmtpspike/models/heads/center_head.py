"""OSTrack-style centre head for single-object tracking on a search map."""
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import bias_init_with_prob
from mmdet.models.utils import gaussian_radius, gen_gaussian_target
from mmdet.registry import MODELS as MMDET_MODELS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmengine.model import BaseModule

from mmtpspike.registry import register_model

HeadOutputs = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def conv_branch(in_channels: int, feat_channels: int, out_channels: int,
                num_convs: int, norm_cfg: dict) -> nn.Sequential:
    """``num_convs`` 3x3 conv-norm-ReLU layers, then a 1x1 conv."""
    layers = [
        ConvModule(in_channels if i == 0 else feat_channels, feat_channels, 3,
                   padding=1, norm_cfg=norm_cfg) for i in range(num_convs)
    ]
    layers.append(nn.Conv2d(feat_channels if num_convs else in_channels,
                            out_channels, 1))
    return nn.Sequential(*layers)


def map_at(maps: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``[B, K, H, W]`` maps at flat positions ``index: [B]`` -> ``[B, K]``.
    """
    flat = maps.flatten(2)
    return flat.gather(2, index[:, None, None].expand(-1, flat.shape[1],
                                                      1)).squeeze(2)


@register_model
class CenterHead(BaseModule):
    """Centre, size and offset maps on the search tokens (OSTrack's head).

    Three conv branches read the search map ``[B, C, Hs, Ws]``: the centre
    score map ``[B, 1, Hs, Ws]``, the size map ``[B, 2, Hs, Ws]`` (box w, h
    over the crop side) and the offset map ``[B, 2, Hs, Ws]`` (position of
    the centre inside its cell, in cells), all through a sigmoid. A box is
    read at the score map's peak (:meth:`decode`).

    Training: a weighted focal loss on a Gaussian heatmap around the target
    centre cell (CornerNet's radius for ``min_overlap``), GIoU and L1 on the
    box decoded at the *predicted* peak (as OSTrack), in normalised ``x1 y1
    x2 y2``.

    Args:
        in_channels (int): Channels of the search map.
        feat_channels (int): Width of the branches. Default: 64.
        num_convs (int): 3x3 layers per branch. Default: 2.
        norm_cfg (dict): Norm of the branches. Default: BN.
        min_overlap (float): Gaussian radius parameter (mmdet's
            ``gaussian_radius``). Default: 0.7.
        min_radius (int): Smallest Gaussian radius, in cells: targets of a
            few cells get radius 0 from ``gaussian_radius`` (a one-cell
            heatmap that penalises the peak's neighbours fully). Default: 1.
        score_prior (float): Initial score of every cell (the score
            branch's last bias), so the focal loss starts small rather than
            at a score of 0.5 everywhere. Default: 0.1.
        loss_heatmap (dict): mmdet loss config. Default: GaussianFocalLoss
            (weight 1).
        loss_giou (dict): Default: GIoULoss, weight 2.
        loss_l1 (dict): Default: L1Loss, weight 5.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 feat_channels: int = 64,
                 num_convs: int = 2,
                 norm_cfg: dict = dict(type='BN'),
                 min_overlap: float = 0.7,
                 min_radius: int = 1,
                 score_prior: float = 0.1,
                 loss_heatmap: dict = dict(type='GaussianFocalLoss',
                                           loss_weight=1.0),
                 loss_giou: dict = dict(type='GIoULoss', loss_weight=2.0),
                 loss_l1: dict = dict(type='L1Loss', loss_weight=5.0),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.min_overlap = min_overlap
        self.min_radius = min_radius

        def branch(out_channels: int) -> nn.Sequential:
            return conv_branch(in_channels, feat_channels, out_channels,
                               num_convs, norm_cfg)

        self.score_branch = branch(1)
        nn.init.constant_(self.score_branch[-1].bias,
                          bias_init_with_prob(score_prior))
        self.size_branch = branch(2)
        self.offset_branch = branch(2)
        self.loss_heatmap = MMDET_MODELS.build(loss_heatmap)
        self.loss_giou = MMDET_MODELS.build(loss_giou)
        self.loss_l1 = MMDET_MODELS.build(loss_l1)

    def forward(self, search: torch.Tensor) -> HeadOutputs:
        """``[B, C, Hs, Ws]`` -> score ``[B, 1, Hs, Ws]``, size ``[B, 2, Hs,
        Ws]`` and offset ``[B, 2, Hs, Ws]`` maps, each in ``[0, 1]``."""
        return (self.score_branch(search).sigmoid(),
                self.size_branch(search).sigmoid(),
                self.offset_branch(search).sigmoid())

    @staticmethod
    def decode(score_map: torch.Tensor, size_map: torch.Tensor,
               offset_map: torch.Tensor) -> torch.Tensor:
        """The box at each score map's peak.

        Args:
            score_map (Tensor): ``[B, 1, H, W]``.
            size_map (Tensor): ``[B, 2, H, W]`` w, h over the crop side.
            offset_map (Tensor): ``[B, 2, H, W]`` x, y inside the cell.

        Returns:
            Tensor: ``[B, 4]`` normalised ``cx, cy, w, h`` in the crop.
        """
        height, width = score_map.shape[-2:]
        index = score_map.flatten(1).argmax(1)
        cell = torch.stack([index % width, index // width], 1).to(
            size_map.dtype)
        grid = cell.new_tensor([width, height])
        centre = (cell + map_at(offset_map, index)) / grid
        return torch.cat([centre, map_at(size_map, index)], 1)

    def target_heatmap(self, boxes: torch.Tensor,
                       shape: Tuple[int, int]) -> torch.Tensor:
        """Gaussian heatmaps ``[B, 1, H, W]`` peaking (1) at the cell of
        each normalised ``cx, cy, w, h`` box ``[B, 4]``."""
        height, width = shape
        heatmap = boxes.new_zeros(len(boxes), 1, height, width)
        grid = boxes.new_tensor([width, height])
        for target, box in zip(heatmap, boxes):
            centre = (box[:2] * grid).floor().long()
            centre[0].clamp_(0, width - 1)
            centre[1].clamp_(0, height - 1)
            size = box[2:] * grid
            radius = max(self.min_radius, int(gaussian_radius(
                (float(size[1]), float(size[0])), self.min_overlap)))
            gen_gaussian_target(target[0], [int(centre[0]), int(centre[1])],
                                radius)
        return heatmap

    def loss(self, outputs: HeadOutputs,
             gt_boxes: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Losses of ``outputs`` (see :meth:`forward`) against normalised
        ``cx, cy, w, h`` boxes ``[B, 4]``.

        Returns:
            dict: ``loss_heatmap``, ``loss_giou``, ``loss_l1``.
        """
        score_map = outputs[0]
        target = self.target_heatmap(gt_boxes, tuple(score_map.shape[-2:]))
        pred = bbox_cxcywh_to_xyxy(self.decode(*outputs))
        gt = bbox_cxcywh_to_xyxy(gt_boxes)
        return dict(
            loss_heatmap=self.loss_heatmap(score_map, target,
                                           avg_factor=len(gt_boxes)),
            loss_giou=self.loss_giou(pred, gt),
            loss_l1=self.loss_l1(pred, gt))
