"""Is pruning eating the objects? Stopped-token shares inside ground truth.

For every transformer block, :class:`ObjectTokenTally` counts the valid
tokens that stopped early, split by where they lie: inside a ground-truth
object of COCO size *small* (area < 32^2 pixels of the original image),
*medium* (< 96^2) or *large*, or in the *background* (no object). A token
belongs to an object when at least half of its ``s x s`` input patch lies
inside the object's mask. Detection objects are instances (their masks, or
boxes without masks) and the background is every token outside all of them;
segmentation objects are the regions of each class in an image and the
background is the unlabelled area (pixels with the ignore index, ADE20K's
"other"). Event samples are detection samples whose original image is the
sensor: their boxes (sensor pixels) set the size groups and are scaled to the
event representation by its ``scale_factor``.
"""
from collections import defaultdict
from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F

#: COCO area ranges (original-image pixels)
SIZE_GROUPS = (('small', 0, 32**2), ('medium', 32**2, 96**2),
               ('large', 96**2, float('inf')))
GROUPS = tuple(name for name, _, _ in SIZE_GROUPS) + ('background', )


def size_group(area: float) -> str:
    """COCO size name of an object area in original-image pixels."""
    for name, low, high in SIZE_GROUPS:
        if low <= area < high:
            return name
    raise ValueError(f'negative object area {area}')


def token_coverage(masks: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
    """Share of each token's input patch covered by each mask.

    Args:
        masks (Tensor): ``[M, H_in, W_in]`` bool masks in input (padded
            batch) coordinates.
        grid (tuple[int, int]): ``(H, W)`` of the token map; the stride is
            ``ceil(H_in / H)``.

    Returns:
        Tensor: ``[M, H, W]`` float in ``[0, 1]``.
    """
    height, width = grid
    stride = -(-masks.shape[-2] // height)
    padded = F.pad(masks.float(), (0, width * stride - masks.shape[-1], 0,
                                   height * stride - masks.shape[-2]))
    return F.avg_pool2d(padded.unsqueeze(1), stride).squeeze(1)


class ObjectTokenTally:
    """Stopped / total valid tokens per block and object-size group."""

    def __init__(self) -> None:
        self.stopped: Dict[str, Dict[str, int]] = defaultdict(
            lambda: defaultdict(int))
        self.total: Dict[str, Dict[str, int]] = defaultdict(
            lambda: defaultdict(int))
        self.objects: Dict[str, int] = defaultdict(int)

    def add_image(self, records, row: int, masks: torch.Tensor,
                  areas: Sequence[float],
                  background_mask: torch.Tensor = None) -> None:
        """Count one image of a batch.

        Args:
            records (list[TokenRecord]): the backbone's records of the batch.
            row (int): the image's row in the batch (timestep 0).
            masks (Tensor): ``[M, H_in, W_in]`` bool object masks in input
                coordinates.
            areas (list[float]): the objects' areas in original pixels.
            background_mask (Tensor, optional): ``[H_in, W_in]`` bool
                background pixels; by default every token outside all
                objects is background.
        """
        groups = [size_group(area) for area in areas]
        for group in groups:
            self.objects[group] += 1
        for record in records:
            kept, valid = record.kept[row], record.valid[row]
            stopped = valid & ~kept
            grid = tuple(kept.shape)
            inside = token_coverage(masks, grid) >= 0.5 if len(masks) else \
                torch.zeros(0, *grid, dtype=torch.bool)
            if background_mask is None:
                background = ~inside.any(0)
            else:
                background = token_coverage(background_mask[None],
                                            grid)[0] >= 0.5
            masks_by_group = {g: inside[[i for i, name in enumerate(groups)
                                         if name == g]].any(0)
                              for g in set(groups)}
            masks_by_group['background'] = background
            for group, where in masks_by_group.items():
                where = where & valid
                self.stopped[record.block_name][group] += int(
                    (where & stopped).sum())
                self.total[record.block_name][group] += int(where.sum())

    def shares(self) -> Dict[str, Dict[str, float]]:
        """``{block: {group: stopped share}}`` (NaN where no token)."""
        return {block: {group: (self.stopped[block][group] /
                                self.total[block][group]
                                if self.total[block][group] else
                                float('nan'))
                        for group in GROUPS}
                for block in self.total}

    def table(self) -> str:
        """Markdown table: blocks x groups, stopped share in percent."""
        lines = ['| block | ' + ' | '.join(GROUPS) + ' |',
                 '| --- |' + ' --- |' * len(GROUPS)]
        for block, shares in self.shares().items():
            cells = ['-' if share != share else f'{100 * share:.1f} %'
                     for share in (shares[g] for g in GROUPS)]
            lines.append(f'| {block} | ' + ' | '.join(cells) + ' |')
        counts = ', '.join(f'{self.objects[g]} {g}' for g in GROUPS[:-1])
        lines.append('')
        lines.append(f'objects: {counts}')
        return '\n'.join(lines)


def instance_masks(sample, input_shape) -> List:
    """Detection ground truth of a data sample: ``(masks [M, H_in, W_in],
    areas)`` in input coordinates, from instance masks or, without masks,
    from boxes."""
    instances = sample.gt_instances
    height, width = sample.metainfo['img_shape'][:2]
    scale_w, scale_h = sample.metainfo.get('scale_factor', (1., 1.))
    padded = torch.zeros(len(instances), *input_shape, dtype=torch.bool)
    if 'masks' in instances and len(instances):
        original = torch.as_tensor(instances.masks.to_ndarray()).bool()
        areas = original.flatten(1).sum(1).tolist()
        resized = F.interpolate(original[None].float(), (height, width),
                                mode='nearest')[0] > 0.5
        padded[:, :height, :width] = resized
        return padded, areas
    boxes = instances.bboxes
    boxes = boxes.tensor if hasattr(boxes, 'tensor') else boxes
    areas = []
    for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        areas.append((x2 - x1) * (y2 - y1))
        padded[i, int(y1 * scale_h):int(y2 * scale_h) + 1,
               int(x1 * scale_w):int(x2 * scale_w) + 1] = True
    return padded, areas


def class_region_masks(sample, input_shape, ignore_index: int = 255):
    """Segmentation ground truth: one object per class present, ``(masks
    [M, H_in, W_in], areas, unlabelled [H_in, W_in])`` in input
    coordinates."""
    labels = sample.gt_sem_seg.data[0]
    height, width = sample.metainfo['img_shape'][:2]
    resized = F.interpolate(labels[None, None].float(), (height, width),
                            mode='nearest')[0, 0].long()
    classes = [c for c in labels.unique().tolist() if c != ignore_index]
    masks = torch.zeros(len(classes), *input_shape, dtype=torch.bool)
    areas = []
    for i, cls in enumerate(classes):
        masks[i, :height, :width] = resized == cls
        areas.append(float((labels == cls).sum()))
    ignore = torch.zeros(input_shape, dtype=torch.bool)
    ignore[:height, :width] = resized == ignore_index
    return masks, areas, ignore


def tally_dataset(model, cfg, num_images: int) -> ObjectTokenTally:
    """Run ``model.backbone`` on the first ``num_images`` images of the
    config's test set (its own pipeline) and count stopped tokens."""
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(cfg.test_dataloader)
    tally = ObjectTokenTally()
    seen = 0
    ignore_index = cfg.model.get('decode_head', {}).get('ignore_index', 255)
    for batch in loader:
        data = model.data_preprocessor(batch, False)
        inputs, samples = data['inputs'], data['data_samples']
        model.backbone.set_img_shapes(
            [s.metainfo['img_shape'][:2] for s in samples],
            tuple(inputs.shape[-2:]))
        with torch.no_grad():
            model.backbone(inputs)
        records = model.backbone.token_records
        for row, sample in enumerate(samples):
            if cfg.default_scope == 'mmdet':
                masks, areas = instance_masks(sample, inputs.shape[-2:])
                tally.add_image(records, row, masks, areas)
            else:
                masks, areas, ignore = class_region_masks(
                    sample, inputs.shape[-2:], ignore_index)
                tally.add_image(records, row, masks, areas, ignore)
            seen += 1
            if seen >= num_images:
                return tally
    return tally
