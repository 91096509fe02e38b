"""The Prophesee automotive detection sets, Gen1 and 1Mpx, for mmdet."""
import logging
import os
import os.path as osp
from typing import Dict, List, Optional

import numpy as np
from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS
from mmengine.logging import print_log

from mmtpspike.utils.config import SetupError
from .bbox_labels import (LABEL_SUFFIX, RECORDING_SUFFIXES, load_bbox_npy,
                          require_label_path)
from .protocol import CAMERAS, sanitize_labels
from .recordings import open_recording


class PropheseeDataset(BaseDetDataset):
    """Event recordings with ``*_bbox.npy`` labels, one sample per labelled
    timestamp (the folder layout of the Gen1 and 1Mpx downloads).

    ``data_root / data_prefix['events']`` holds ``<name>_td.dat`` (or an
    ``<name>_td.h5`` converted by RVT's scripts) with ``<name>_bbox.npy``
    beside each; a recording without its label file is an error. Each
    distinct label time ``t`` of a recording is one sample; its data info
    carries ``recording_path``, ``recording`` (the name), ``timestamp_us``,
    the sensor ``height`` / ``width`` and ``instances`` (``bbox`` as
    ``[x1, y1, x2, y2]`` in sensor pixels, ``bbox_label``, ``ignore_flag``),
    which the event pipeline (``LoadEventWindow``, ``LoadAnnotations``,
    ``EventHistogram``) and ``PropheseeMetric`` read. No events are read
    here: a sample opens its recording in the worker that loads it.

    Labels follow RVT's protocol (:mod:`.protocol`): boxes are clipped to
    the frame and zero-size boxes dropped, only the camera's scored classes
    are kept, and in training (``test_mode=False``) boxes wider than
    ``max_box_width_ratio`` of the frame are dropped. Every drop is counted
    and logged per recording.

    Args:
        camera (str): ``'gen1'`` or ``'1mpx'``; set by the subclasses.
        max_box_width_ratio (float, optional): Training drops boxes wider
            than this share of the frame width (RVT: 0.9); None keeps them.
            Ignored in test mode. Default: 0.9.
        data_prefix (dict): ``dict(events='train/')``: the split's folder.
        **kwargs: Other arguments of mmdet's ``BaseDetDataset``
            (``data_root``, ``pipeline``, ``test_mode``, ``filter_cfg``,
            ...); ``ann_file`` is not used.
    """
    CAMERA: str = ''

    def __init__(self,
                 *args,
                 max_box_width_ratio: Optional[float] = 0.9,
                 data_prefix: dict = dict(events=''),
                 **kwargs) -> None:
        if self.CAMERA not in CAMERAS:
            raise TypeError('use Gen1Dataset or OneMpxDataset')
        self.camera = CAMERAS[self.CAMERA]
        self.max_box_width_ratio = max_box_width_ratio
        super().__init__(*args, data_prefix=data_prefix, **kwargs)

    @property
    def events_folder(self) -> str:
        """The split's folder of recordings."""
        return self.data_prefix.get('events', '')

    def recording_paths(self) -> List[str]:
        """The split's recordings, sorted by name.

        Raises:
            SetupError: The folder is missing or holds no recording.
        """
        folder = self.events_folder
        if not osp.isdir(folder):
            raise SetupError(
                f'{type(self).__name__}: no folder {folder!r}; set data_root '
                "and data_prefix=dict(events='<split>/') to the folder of "
                f'the *_td.dat files (docs/event_detection.md)')
        paths = sorted(
            osp.join(folder, name) for name in os.listdir(folder)
            if name.endswith(RECORDING_SUFFIXES))
        if not paths:
            raise SetupError(
                f'{type(self).__name__}: {folder!r} holds no recording '
                f'(files ending in {", ".join(RECORDING_SUFFIXES)})')
        return paths

    def load_data_list(self) -> List[dict]:
        """One data info per labelled timestamp of every recording."""
        data_list = []
        for path in self.recording_paths():
            self._check_sensor_size(path)
            data_list.extend(self._recording_samples(path, len(data_list)))
        return data_list

    def _check_sensor_size(self, path: str) -> None:
        """A recording whose header names another size than the camera's is
        an error (a 1Mpx file in a Gen1 set, a downsampled export, ...)."""
        recording = open_recording(path)
        size = (recording.height, recording.width)
        expected = (self.camera.height, self.camera.width)
        if None not in size and size != expected:
            raise SetupError(
                f'{path}: its header says {size[1]} x {size[0]} pixels, '
                f'{type(self).__name__} expects {self.camera.name}\'s '
                f'{expected[1]} x {expected[0]}: use the dataset class of '
                'its camera')

    def _recording_samples(self, path: str, first_id: int) -> List[dict]:
        """The samples of one recording, with ``img_id`` from ``first_id``.
        """
        label_path = require_label_path(path)
        labels = load_bbox_npy(label_path)
        width_ratio = None if self.test_mode else self.max_box_width_ratio
        labels, dropped = sanitize_labels(
            labels, self.camera, max_box_width_ratio=width_ratio)
        self._log_dropped(path, dropped)
        name = osp.basename(label_path)[:-len(LABEL_SUFFIX)]
        times, starts = np.unique(labels['t'], return_index=True)
        ends = list(starts[1:]) + [len(labels)]
        return [
            dict(img_id=first_id + i,
                 img_path=path,
                 recording_path=path,
                 recording=name,
                 timestamp_us=int(t),
                 height=self.camera.height,
                 width=self.camera.width,
                 instances=_instances(labels[start:end]))
            for i, (t, start, end) in enumerate(zip(times, starts, ends))
        ]

    @staticmethod
    def _log_dropped(path: str, dropped: Dict[str, int]) -> None:
        """One warning per recording that lost boxes, with the counts."""
        counts = {reason: n for reason, n in dropped.items() if n}
        if counts:
            text = ', '.join(f'{n} {reason}' for reason, n in counts.items())
            print_log(f'{path}: dropped boxes: {text}', 'current',
                      level=logging.WARNING)

    def filter_data(self) -> List[dict]:
        """Drop samples without boxes in training when ``filter_cfg`` has
        ``filter_empty_gt=True`` (a label time whose boxes all fell to the
        protocol's filters); test mode keeps every labelled timestamp."""
        if self.test_mode or not (self.filter_cfg or {}).get(
                'filter_empty_gt', False):
            return self.data_list
        return [info for info in self.data_list if info['instances']]


def _instances(boxes: np.ndarray) -> List[dict]:
    """mmdet instances from ``*_bbox.npy`` rows (top-left, size)."""
    return [
        dict(bbox=[float(box['x']), float(box['y']),
                   float(box['x'] + box['w']), float(box['y'] + box['h'])],
             bbox_label=int(box['class_id']),
             ignore_flag=0) for box in boxes
    ]


@DATASETS.register_module()
class Gen1Dataset(PropheseeDataset):
    """Prophesee Gen1 automotive detection (304 x 240; car, pedestrian).
    See :class:`PropheseeDataset`."""
    CAMERA = 'gen1'
    METAINFO = dict(
        classes=('car', 'pedestrian'),
        palette=[(0, 130, 255), (220, 20, 60)])


@DATASETS.register_module()
class OneMpxDataset(PropheseeDataset):
    """Prophesee 1 Megapixel automotive detection (1280 x 720), scored on
    pedestrian, two-wheeler and car (ids 0-2; the other four are dropped).
    See :class:`PropheseeDataset`."""
    CAMERA = '1mpx'
    METAINFO = dict(
        classes=('pedestrian', 'two-wheeler', 'car'),
        palette=[(220, 20, 60), (250, 170, 30), (0, 130, 255)])
