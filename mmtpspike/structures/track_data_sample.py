"""The data sample of single-object tracking: one training pair or one
test frame, with its ground-truth and predicted box."""
import torch
from mmengine.structures import BaseDataElement
from torch import Tensor


def _box(value, name: str) -> Tensor:
    """``value`` as a float32 ``[4]`` tensor ``(x, y, w, h)``, on its device
    if it is a tensor already."""
    box = torch.as_tensor(value, dtype=torch.float32)
    if box.shape != (4, ):
        raise ValueError(f'TrackDataSample.{name} is one (x, y, w, h) box, '
                         f'shape [4]; got shape {tuple(box.shape)}')
    return box


class TrackDataSample(BaseDataElement):
    """One sample of single-object tracking.

    Metainfo (set by ``PackSOTInputs``): ``sequence`` (str), ``num_frames``
    (int), ``ori_shape`` ``(H, W)`` (the sensor), and either
    ``template_frame`` / ``search_frame`` (int, a training pair) or
    ``frame_index`` (int, a test frame).

    Data fields:

    - ``gt_box``: ``[4]`` float32 ``(x, y, w, h)``: in search-crop pixels for
      a training pair, in frame pixels for a test frame (NaN when the target
      is absent);
    - ``pred_box``: ``[4]`` float32 ``(x, y, w, h)`` in frame pixels, set by
      the tracker;
    - ``pred_score``: float, the tracker's confidence.

    Boxes given as lists or arrays are converted to float32 tensors.

    Example:
        >>> sample = TrackDataSample(metainfo=dict(sequence='a'))
        >>> sample.gt_box = [1, 2, 3, 4]
        >>> sample.gt_box.dtype, sample.sequence
        (torch.float32, 'a')
    """

    @property
    def gt_box(self) -> Tensor:
        return self._gt_box

    @gt_box.setter
    def gt_box(self, value) -> None:
        self.set_field(_box(value, 'gt_box'), '_gt_box', dtype=Tensor)

    @gt_box.deleter
    def gt_box(self) -> None:
        del self._gt_box

    @property
    def pred_box(self) -> Tensor:
        return self._pred_box

    @pred_box.setter
    def pred_box(self, value) -> None:
        self.set_field(_box(value, 'pred_box'), '_pred_box', dtype=Tensor)

    @pred_box.deleter
    def pred_box(self) -> None:
        del self._pred_box

    @property
    def pred_score(self) -> float:
        return self._pred_score

    @pred_score.setter
    def pred_score(self, value) -> None:
        self.set_field(float(value), '_pred_score', dtype=float)

    @pred_score.deleter
    def pred_score(self) -> None:
        del self._pred_score
