"""RVT's label and evaluation protocol for the Prophesee Gen1 and 1Mpx sets.

The protocol follows RVT (``scripts/genx/preprocess_dataset.py`` and
``utils/evaluation/prophesee/``), by which spiking and non-spiking event
detectors are compared. The Prophesee toolbox's own ``psee_evaluator.py``
differs: it skips only the first 0.1 s and its minimum sides look swapped
(20 px for Gen1, 10 px for 1Mpx); RVT corrects both, and so does this module.

Labels (all splits): only the scored classes are kept (1Mpx: ids 0-2 of its
seven), boxes are clipped to the frame and boxes left without area dropped;
training also drops boxes wider than 0.9 of the frame (:func:`sanitize_labels`
on the ``*_bbox.npy`` rows). Evaluation drops, from ground truth and
predictions alike, boxes in the first 0.5 s of a recording and boxes under a
minimum diagonal or side (:class:`EvaluationFilter` on ``[N, 4]`` xyxy boxes).

Box layouts: ``*_bbox.npy`` rows are structured arrays with fields ``t``
(int64, microseconds), ``x``, ``y`` (top-left corner), ``w``, ``h`` (float32,
pixels) and ``class_id``; every other function takes ``[N, 4]`` float arrays
of ``(x1, y1, x2, y2)`` corners.
"""
import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple, Union

import numpy as np

from mmtpspike.utils.config import SetupError


@dataclass(frozen=True)
class CameraSpec:
    """A Prophesee automotive camera and its evaluation thresholds.

    Args:
        name (str): Key in :data:`CAMERAS`.
        width (int): Sensor width in pixels.
        height (int): Sensor height in pixels.
        classes (tuple[str]): Scored classes; a box's ``class_id`` indexes
            them, larger ids are not scored.
        min_box_diag (float): Evaluation drops boxes whose diagonal is
            shorter, in sensor pixels.
        min_box_side (float): Evaluation drops boxes with a side shorter
            than this, in sensor pixels.
        label_min_box_diag (float): The labels of every split drop boxes
            whose diagonal is shorter (RVT's preprocessing), sensor pixels.
        label_min_box_side (float): The labels of every split drop boxes
            with a side shorter than this (RVT's preprocessing: the
            evaluation's sizes on Gen1, a "conservative" 5 px on 1Mpx).
    """
    name: str
    width: int
    height: int
    classes: Tuple[str, ...]
    min_box_diag: float
    min_box_side: float
    label_min_box_diag: float
    label_min_box_side: float


#: The two cameras; RVT calls the 1Mpx camera ``gen4``. The raw 1Mpx labels
#: have seven classes (pedestrian, two-wheeler, car, truck, bus, traffic
#: sign, traffic light), of which the first three are scored.
CAMERAS = {
    'gen1':
    CameraSpec('gen1', width=304, height=240, classes=('car', 'pedestrian'),
               min_box_diag=30, min_box_side=10, label_min_box_diag=30,
               label_min_box_side=10),
    '1mpx':
    CameraSpec('1mpx', width=1280, height=720,
               classes=('pedestrian', 'two-wheeler', 'car'),
               min_box_diag=60, min_box_side=20, label_min_box_diag=0,
               label_min_box_side=5),
}


def get_camera(camera: Union[str, CameraSpec]) -> CameraSpec:
    """The :class:`CameraSpec` named ``camera`` (a spec is returned as is).

    Raises:
        SetupError: An unknown name.
    """
    if isinstance(camera, CameraSpec):
        return camera
    if camera not in CAMERAS:
        raise SetupError(
            f'unknown event camera {camera!r}: use one of {sorted(CAMERAS)} '
            "(RVT's 'gen4' is '1mpx')")
    return CAMERAS[camera]


def check_downsample_factor(downsample_factor: int) -> None:
    """Raise ValueError unless ``downsample_factor`` is a positive int."""
    if isinstance(downsample_factor, bool) or not isinstance(
            downsample_factor, int) or downsample_factor < 1:
        raise ValueError(
            f'downsample_factor={downsample_factor!r}: give the integer by '
            'which the evaluation frame is smaller than the sensor (1, or 2 '
            'for 1Mpx at 640 x 360 as RVT)')


def clip_boxes(boxes_xyxy: np.ndarray, width: float,
               height: float) -> np.ndarray:
    """Clip boxes to a frame as RVT does: corners into ``[0, width - 1]``
    and ``[0, height - 1]``.

    Args:
        boxes_xyxy (np.ndarray): ``[N, 4]`` corners ``(x1, y1, x2, y2)``.
        width (float): Frame width in pixels.
        height (float): Frame height in pixels.

    Returns:
        np.ndarray: ``[N, 4]`` clipped corners, a new array of the input's
        dtype.
    """
    upper = np.array([width, height, width, height]) - 1
    return np.clip(boxes_xyxy, 0, upper).astype(boxes_xyxy.dtype)


def nonempty_mask(boxes_xyxy: np.ndarray) -> np.ndarray:
    """Boxes with positive width and height.

    Args:
        boxes_xyxy (np.ndarray): ``[N, 4]`` corners ``(x1, y1, x2, y2)``.

    Returns:
        np.ndarray: ``[N]`` bool.
    """
    return ((boxes_xyxy[:, 2] > boxes_xyxy[:, 0])
            & (boxes_xyxy[:, 3] > boxes_xyxy[:, 1]))


def scored_class_mask(class_ids: np.ndarray,
                      camera: Union[str, CameraSpec]) -> np.ndarray:
    """Boxes of a scored class (1Mpx: ids 0-2; every Gen1 id).

    Args:
        class_ids (np.ndarray): ``[N]`` integer class ids.
        camera (str | CameraSpec): The camera.

    Returns:
        np.ndarray: ``[N]`` bool.
    """
    return np.asarray(class_ids) < len(get_camera(camera).classes)


def max_training_box_width(camera: Union[str, CameraSpec],
                           max_box_width_ratio: float) -> int:
    """Widest box training keeps, ``floor(ratio * width)`` pixels.

    RVT drops training boxes wider than ``(9 * width) // 10`` (labels that
    span the frame without covering an object); ratio 0.9 gives the same
    273 px for Gen1 and 1152 px for 1Mpx.

    Example:
        >>> max_training_box_width('gen1', 0.9)
        273
    """
    return math.floor(max_box_width_ratio * get_camera(camera).width)


def size_mask(boxes_xyxy: np.ndarray, min_box_diag: float,
              min_box_side: float) -> np.ndarray:
    """Boxes whose diagonal is at least ``min_box_diag`` and both sides at
    least ``min_box_side`` (RVT's bounds, both inclusive).

    Args:
        boxes_xyxy (np.ndarray): ``[N, 4]`` corners ``(x1, y1, x2, y2)``.
        min_box_diag (float): Minimum diagonal in pixels.
        min_box_side (float): Minimum width and height in pixels.

    Returns:
        np.ndarray: ``[N]`` bool.
    """
    widths = boxes_xyxy[:, 2] - boxes_xyxy[:, 0]
    heights = boxes_xyxy[:, 3] - boxes_xyxy[:, 1]
    return ((widths**2 + heights**2 >= min_box_diag**2)
            & (widths >= min_box_side) & (heights >= min_box_side))


def label_boxes_xyxy(labels: np.ndarray) -> np.ndarray:
    """Corners of ``*_bbox.npy`` rows.

    Args:
        labels (np.ndarray): ``[N]`` structured rows with ``x``, ``y``,
            ``w``, ``h``.

    Returns:
        np.ndarray: ``[N, 4]`` float32 corners ``(x1, y1, x2, y2)``.
    """
    x, y = labels['x'], labels['y']
    return np.stack([x, y, x + labels['w'], y + labels['h']],
                    axis=1).astype(np.float32).reshape(-1, 4)


def sanitize_labels(
    labels: np.ndarray,
    camera: Union[str, CameraSpec],
    max_box_width_ratio: Optional[float] = None
) -> Tuple[np.ndarray, Dict[str, int]]:
    """Apply RVT's label filters to the rows of one ``*_bbox.npy`` file.

    In RVT's order: keep the scored classes, clip the boxes to the frame
    (:func:`clip_boxes`), drop boxes left without area and those under the
    camera's label sizes (``label_min_box_diag`` / ``label_min_box_side``)
    and, when ``max_box_width_ratio`` is given (training), boxes wider than
    :func:`max_training_box_width`.

    Args:
        labels (np.ndarray): ``[N]`` structured rows with fields ``x``,
            ``y``, ``w``, ``h`` (top-left corner and size, pixels) and
            ``class_id``; other fields are carried along.
        camera (str | CameraSpec): The camera that recorded them.
        max_box_width_ratio (float, optional): Drop boxes wider than this
            share of the frame width (RVT trains with 0.9); None keeps them.
            Default: None.

    Returns:
        tuple[np.ndarray, dict[str, int]]: The kept rows (a copy, with
        clipped ``x, y, w, h``) and how many rows each filter dropped:
        ``'unscored class'``, ``'empty after clipping to the frame'``,
        ``'under the label size'`` and, with ``max_box_width_ratio``,
        ``'wider than <ratio> W'``.

    Example:
        >>> import numpy as np
        >>> rows = np.zeros(3, dtype=[('x', '<f4'), ('y', '<f4'),
        ...                           ('w', '<f4'), ('h', '<f4'),
        ...                           ('class_id', '<u4')])
        >>> rows['x'] = [-5, 400, 10]
        >>> rows['w'] = rows['h'] = 20
        >>> rows['class_id'] = [0, 0, 5]
        >>> kept, dropped = sanitize_labels(rows, '1mpx')
        >>> kept[['x', 'w']].tolist(), dropped['unscored class']
        ([(0.0, 15.0), (400.0, 20.0)], 1)
    """
    camera = get_camera(camera)
    dropped = {}
    scored = scored_class_mask(labels['class_id'], camera)
    dropped['unscored class'] = int(np.count_nonzero(~scored))
    labels = labels[scored].copy()

    boxes = clip_boxes(label_boxes_xyxy(labels), camera.width, camera.height)
    labels['x'], labels['y'] = boxes[:, 0], boxes[:, 1]
    labels['w'] = boxes[:, 2] - boxes[:, 0]
    labels['h'] = boxes[:, 3] - boxes[:, 1]
    nonempty = nonempty_mask(boxes)
    dropped['empty after clipping to the frame'] = int(
        np.count_nonzero(~nonempty))
    labels = labels[nonempty]

    large = size_mask(label_boxes_xyxy(labels), camera.label_min_box_diag,
                      camera.label_min_box_side)
    dropped['under the label size'] = int(np.count_nonzero(~large))
    labels = labels[large]

    if max_box_width_ratio is not None:
        narrow = labels['w'] <= max_training_box_width(
            camera, max_box_width_ratio)
        dropped[f'wider than {max_box_width_ratio} W'] = int(
            np.count_nonzero(~narrow))
        labels = labels[narrow]
    return labels, dropped


@dataclass(frozen=True)
class EvaluationFilter:
    """RVT's evaluation filter, applied to ground truth and predictions
    alike: a box is scored when its time is after ``skip_first_us`` (a
    detector has too little history before) and its diagonal and both sides
    reach the minimums (bounds inclusive, as RVT).

    Build it with :meth:`for_camera`, which takes the thresholds of the
    camera and divides them by the downsampling of the evaluation frame.

    Args:
        skip_first_us (int): Boxes at ``t <= skip_first_us`` (microseconds
            since the recording began) are dropped.
        min_box_diag (float): Minimum diagonal, evaluation-frame pixels.
        min_box_side (float): Minimum width and height, evaluation-frame
            pixels.
    """
    skip_first_us: int
    min_box_diag: float
    min_box_side: float

    @classmethod
    def for_camera(cls,
                   camera: Union[str, CameraSpec],
                   downsample_factor: int = 1,
                   skip_first_us: int = 500_000,
                   min_box_diag: Optional[float] = None,
                   min_box_side: Optional[float] = None) -> 'EvaluationFilter':
        """The filter of ``camera`` in a frame downsampled by
        ``downsample_factor`` (RVT: 1Mpx at 640 x 360, thresholds halved to
        30 / 10 px).

        Args:
            camera (str | CameraSpec): The camera.
            downsample_factor (int): The evaluation frame is the sensor frame
                divided by this. Default: 1.
            skip_first_us (int): See the class. Default: 500000 (RVT; the
                toolbox's 100000 is not the protocol).
            min_box_diag (float, optional): Sensor-pixel diagonal that
                replaces the camera's before the division. Default: None.
            min_box_side (float, optional): Sensor-pixel side that replaces
                the camera's before the division. Default: None.
        """
        check_downsample_factor(downsample_factor)
        camera = get_camera(camera)
        if min_box_diag is None:
            min_box_diag = camera.min_box_diag
        if min_box_side is None:
            min_box_side = camera.min_box_side
        return cls(skip_first_us=skip_first_us,
                   min_box_diag=min_box_diag / downsample_factor,
                   min_box_side=min_box_side / downsample_factor)

    @property
    def criteria(self) -> Tuple[str, str]:
        """Descriptions of the time and the size criterion."""
        return (f't > {self.skip_first_us} us',
                f'diagonal >= {self.min_box_diag:g} px and sides >= '
                f'{self.min_box_side:g} px')

    def masks(self, boxes_xyxy: np.ndarray,
              timestamps_us: np.ndarray) -> Dict[str, np.ndarray]:
        """The keep mask of each criterion, keyed by its description.

        Args:
            boxes_xyxy (np.ndarray): ``[N, 4]`` corners ``(x1, y1, x2, y2)``
                in evaluation-frame pixels.
            timestamps_us (np.ndarray): ``[N]`` box times in microseconds
                since the recording began.

        Returns:
            dict[str, np.ndarray]: ``[N]`` bool masks keyed by
            :attr:`criteria`, time first, then size.
        """
        time_criterion, size_criterion = self.criteria
        return {
            time_criterion:
            np.asarray(timestamps_us) > self.skip_first_us,
            size_criterion:
            size_mask(boxes_xyxy, self.min_box_diag, self.min_box_side),
        }

    def keep_mask(self, boxes_xyxy: np.ndarray,
                  timestamps_us: np.ndarray) -> np.ndarray:
        """Boxes that pass every criterion of :meth:`masks` (same args).

        Returns:
            np.ndarray: ``[N]`` bool.
        """
        masks = self.masks(boxes_xyxy, timestamps_us).values()
        return np.logical_and.reduce(list(masks))
