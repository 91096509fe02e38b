"""Spiking one-stream single-object tracker (OSTrack / SDTrack style)."""
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

import torch
from mmengine.model import BaseModel
from mmengine.registry import MODELS

from mmtpspike.datasets.events.sot_crops import (box_from_crop, crop_frames,
                                                 crop_window)
from mmtpspike.registry import register_model
from mmtpspike.structures.track_data_sample import TrackDataSample

TEST_CFG = dict(use_hann=True, window_influence=1.0, min_box_size=1.0)


class TrackState(NamedTuple):
    """What the tracker remembers of the sequence it is tracking.

    Attributes:
        sequence (str): Sequence name.
        frame_index (int): Index of the last frame seen.
        template (Tensor): ``[1, T, C, St, St]`` template crop.
        box (Tensor): ``[4]`` float64 last box ``x, y, w, h``, frame pixels.
    """
    sequence: str
    frame_index: int
    template: torch.Tensor
    box: torch.Tensor


def boxes_to_unit_cxcywh(boxes_xywh: torch.Tensor,
                         crop_size: int) -> torch.Tensor:
    """``[B, 4]`` ``x, y, w, h`` crop pixels -> ``cx, cy, w, h`` over the
    crop side."""
    centre = boxes_xywh[:, :2] + boxes_xywh[:, 2:] / 2
    return torch.cat([centre, boxes_xywh[:, 2:]], 1) / crop_size


def unit_cxcywh_to_xywh(boxes: torch.Tensor, crop_size: int) -> torch.Tensor:
    """Inverse of :func:`boxes_to_unit_cxcywh`."""
    boxes = boxes * crop_size
    return torch.cat([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, 2:]], 1)


def clip_box(box_xywh: torch.Tensor, width: int, height: int,
             min_size: float) -> torch.Tensor:
    """Clip a ``[4]`` ``x, y, w, h`` box to a ``width x height`` frame, at
    least ``min_size`` pixels wide and high (so a lost target still gives a
    search window)."""
    frame = box_xywh.new_tensor([width, height])
    low = box_xywh[:2].clamp_min(0).minimum(frame - min_size)
    high = (box_xywh[:2] + box_xywh[2:]).minimum(frame).maximum(
        low + min_size)
    return torch.cat([low, high - low])


def hann_window(height: int, width: int, device=None) -> torch.Tensor:
    """``[H, W]`` outer product of symmetric Hann windows."""
    rows = torch.hann_window(height + 2, periodic=False, device=device)[1:-1]
    cols = torch.hann_window(width + 2, periodic=False, device=device)[1:-1]
    return rows[:, None] * cols[None]


@register_model
class SpikingOneStreamTracker(BaseModel):
    """One-stream spiking tracker: joint encoder + centre head.

    Training (``mode='loss'``) takes template / search crop pairs with the
    box in search-crop pixels. Testing (``mode='predict'``) takes the frames
    of a sequence in order, one at a time: frame 0 sets the template (a
    ``template_context`` window around its ``gt_box``) and is predicted as
    that box; every later frame is searched in a ``search_context`` window
    around the previous prediction, the score map is multiplied by a Hann
    window (OSTrack), and the box read at its peak is mapped back to frame
    pixels and clipped to the frame.

    Args:
        encoder (dict): e.g. ``JointTokenEncoder``; called as
            ``encoder(template, search) -> (template_map, search_map)``.
        head (dict): e.g. ``CenterHead``.
        template_size (int): Template crop side, pixels. Default: 128.
        search_size (int): Search crop side, pixels. Default: 256.
        template_context (float): Template window over the box's mean side.
            Default: 2.
        search_context (float): Search window over the box's mean side.
            Default: 4.
        test_cfg (dict, optional): ``use_hann`` (True),
            ``window_influence`` (1.0: the score map times the window;
            ``w``: times ``1 - w + w * hann``), ``min_box_size`` (1 px).
        data_preprocessor (dict, optional): e.g. ``SOTDataPreprocessor``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 encoder: dict,
                 head: dict,
                 template_size: int = 128,
                 search_size: int = 256,
                 template_context: float = 2.,
                 search_context: float = 4.,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor, init_cfg)
        self.encoder = MODELS.build(encoder)
        self.head = MODELS.build(head)
        self.template_size = template_size
        self.search_size = search_size
        self.template_context = template_context
        self.search_context = search_context
        unknown = set(test_cfg or {}) - set(TEST_CFG)
        if unknown:
            raise KeyError(f'test_cfg has unknown key(s) {sorted(unknown)}; '
                           f'allowed: {sorted(TEST_CFG)}')
        self.test_cfg = dict(TEST_CFG, **(test_cfg or {}))
        self.state: Optional[TrackState] = None

    # ------------------------------------------------------------- forward
    def forward(self,
                inputs: Dict[str, torch.Tensor],
                data_samples: Optional[List[TrackDataSample]] = None,
                mode: str = 'tensor'
                ) -> Union[dict, list, Tuple[torch.Tensor, ...]]:
        """``mode='loss'`` (pairs -> losses), ``'predict'`` (frames ->
        data samples with ``pred_box`` / ``pred_score``) or ``'tensor'``
        (pairs -> score, size and offset maps)."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.head_outputs(inputs['template'], inputs['search'])
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got "
                         f'{mode!r}')

    def head_outputs(self, template: torch.Tensor,
                     search: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """``[B, T, C, St, St]`` and ``[B, T, C, Ss, Ss]`` crops -> score
        ``[B, 1, Hs, Ws]``, size and offset ``[B, 2, Hs, Ws]`` maps."""
        _, search_map = self.encoder(template, search)
        return self.head(search_map)

    def loss(self, inputs: Dict[str, torch.Tensor],
             data_samples: List[TrackDataSample]) -> Dict[str, torch.Tensor]:
        """Losses of training pairs (``gt_box`` in search-crop pixels)."""
        outputs = self.head_outputs(inputs['template'], inputs['search'])
        gt_boxes = torch.stack([sample.gt_box for sample in data_samples])
        return self.head.loss(
            outputs,
            boxes_to_unit_cxcywh(gt_boxes.to(outputs[0]), self.search_size))

    # ------------------------------------------------------------- predict
    def predict(self, inputs: Dict[str, torch.Tensor],
                data_samples: List[TrackDataSample]
                ) -> List[TrackDataSample]:
        """Track one frame (batch size 1, frames of a sequence in order)."""
        frames = inputs['frame']
        if frames.shape[0] != 1 or len(data_samples) != 1:
            raise ValueError(
                'SpikingOneStreamTracker.predict tracks one frame at a time: '
                f'got a batch of {frames.shape[0]}; use batch_size=1 and a '
                'sequence-ordered sampler in the test dataloader')
        sample = data_samples[0]
        frame = frames[0]
        if self._starts_sequence(sample):
            box = sample.gt_box.to(torch.float64).cpu()
            template = self._crop(frame, box, self.template_context,
                                  self.template_size)
            score = 1.0
        else:
            template = self.state.template
            box, score = self.track(frame, template, self.state.box)
        self.state = TrackState(sample.sequence, int(sample.frame_index),
                                template, box)
        sample.pred_box = box.to(torch.float32)
        sample.pred_score = score
        return data_samples

    def _starts_sequence(self, sample: TrackDataSample) -> bool:
        """Whether ``sample`` is a sequence's first frame; an error for a
        frame out of order."""
        index = int(sample.frame_index)
        if index == 0:
            return True
        state = self.state
        if state is None or state.sequence != sample.sequence:
            raise RuntimeError(
                f'frame {index} of sequence {sample.sequence!r} came before '
                'its frame 0: the tracker needs the frames of a sequence in '
                'order, starting at frame 0')
        if index != state.frame_index + 1:
            raise RuntimeError(
                f'sequence {sample.sequence!r}: frame {index} follows frame '
                f'{state.frame_index}; the tracker needs consecutive frames')
        return False

    def _crop(self, frame: torch.Tensor, box: torch.Tensor, context: float,
              size: int) -> torch.Tensor:
        """``[T, C, H, W]`` frame -> ``[1, T, C, S, S]`` crop of the
        ``context`` window around ``box`` (``[4]`` xywh, frame pixels)."""
        window = crop_window(box, context)
        crops = crop_frames(frame, window.expand(frame.shape[0], 3), size)
        return crops[None]

    @torch.no_grad()
    def track(self, frame: torch.Tensor, template: torch.Tensor,
              previous: torch.Tensor) -> Tuple[torch.Tensor, float]:
        """The box (``[4]`` float64 xywh, frame pixels) and its score in
        ``frame`` (``[T, C, H, W]``), searched around ``previous``."""
        window = crop_window(previous, self.search_context)
        search = crop_frames(frame, window.expand(frame.shape[0], 3),
                             self.search_size)[None]
        score_map, size_map, offset_map = self.head_outputs(template, search)
        weighted = self.window_scores(score_map)
        unit_box = self.head.decode(weighted, size_map, offset_map)
        peak = weighted.flatten(1).argmax(1, keepdim=True)
        score = float(score_map.flatten(1).gather(1, peak))
        box = box_from_crop(unit_cxcywh_to_xywh(unit_box, self.search_size)
                            .double().cpu(), window, self.search_size)[0]
        height, width = frame.shape[-2:]
        return clip_box(box, width, height,
                        self.test_cfg['min_box_size']), score

    def window_scores(self, score_map: torch.Tensor) -> torch.Tensor:
        """The score map ``[B, 1, H, W]`` times the Hann window (blended by
        ``window_influence``), or as it is without ``use_hann``."""
        if not self.test_cfg['use_hann']:
            return score_map
        weight = self.test_cfg['window_influence']
        window = hann_window(*score_map.shape[-2:], device=score_map.device)
        return score_map * (1 - weight + weight * window.to(score_map))

    def reset(self) -> None:
        """Forget the sequence being tracked."""
        self.state = None
