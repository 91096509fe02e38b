"""COCO AP of event-camera detections by RVT's Prophesee protocol."""
import contextlib
import io
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmengine.registry import METRICS

from mmtpspike.datasets.events.protocol import (EvaluationFilter,
                                                check_downsample_factor,
                                                clip_boxes, get_camera,
                                                nonempty_mask)

#: returned keys, in the order of ``COCOeval.stats``
METRIC_KEYS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')
#: meta keys each data sample needs beside ``pred_instances``
SAMPLE_META_KEYS = ('recording', 'timestamp_us', 'ori_shape', 'instances')


@METRICS.register_module()
class PropheseeMetric(BaseMetric):
    """COCO box AP on the Prophesee Gen1 / 1Mpx sets, by RVT's protocol.

    Each data sample is one labelled timestamp of a recording. Its ground
    truth (``instances``) and predictions (``pred_instances``), both in
    sensor pixels, are mapped into the evaluation frame (the sensor frame
    divided by ``downsample_factor``; ground truth is clipped to it as RVT
    does, predictions are not). Then, unless ``apply_filters=False``, the
    :class:`~mmtpspike.datasets.events.protocol.EvaluationFilter` drops from
    ground truth and predictions alike the boxes at ``t <= skip_first_us``
    and those under the camera's minimum diagonal / side (Gen1 30 / 10 px,
    1Mpx 60 / 20 px, divided by ``downsample_factor``). As in RVT, one COCO
    image is made per sample that keeps ground truth; predictions of the
    other samples are not scored. pycocotools' ``COCOeval`` then scores the
    boxes with its defaults (IoU 0.50:0.95, ``maxDets=100``, COCO's area
    ranges; box area ``w * h``; category id ``label + 1``). Ground truth
    with ``ignore_flag`` becomes a COCO crowd box (matches to it are
    ignored). The filters and how many boxes each dropped are logged.

    RVT's evaluator is the reference, not the Prophesee toolbox's
    ``psee_evaluator.py``, which skips 0.1 s and swaps the minimum sides.

    Edge cases: without ground truth left after the filters every AP is -1
    (COCO's value for "no ground truth"); without predictions on the scored
    samples every AP is 0 (as RVT); both are logged as warnings.

    Args:
        camera (str): ``'gen1'`` or ``'1mpx'``. Default: ``'gen1'``.
        downsample_factor (int): The evaluation frame is the sensor frame
            divided by this (RVT evaluates 1Mpx at 640 x 360: 2).
            Default: 1.
        skip_first_us (int): Boxes at ``t <= skip_first_us`` microseconds
            are dropped. Default: 500000.
        min_box_diag (float, optional): Minimum diagonal in sensor pixels;
            None takes the camera's. Default: None.
        min_box_side (float, optional): Minimum side in sensor pixels; None
            takes the camera's. Default: None.
        apply_filters (bool): False scores every box, at every time (not the
            protocol; for comparison). Default: True.
        collect_device (str): ``'cpu'`` or ``'gpu'``, where results of
            distributed ranks are gathered. Default: ``'cpu'``.
        prefix (str, optional): Prefix of the metric names; None gives
            ``'prophesee'``. Default: None.

    Data samples (dicts, as mmdet's ``CocoMetric`` receives them) carry
    ``pred_instances`` (``bboxes`` ``[N, 4]`` xyxy float tensor in sensor
    pixels, ``scores`` ``[N]``, ``labels`` ``[N]``), ``instances`` (list of
    dicts with ``bbox`` ``[x1, y1, x2, y2]`` in sensor pixels,
    ``bbox_label``, ``ignore_flag``), ``recording`` (str),
    ``timestamp_us`` (int, the label time) and ``ori_shape`` ``(H, W)``.
    """
    default_prefix: Optional[str] = 'prophesee'

    def __init__(self,
                 camera: str = 'gen1',
                 downsample_factor: int = 1,
                 skip_first_us: int = 500_000,
                 min_box_diag: Optional[float] = None,
                 min_box_side: Optional[float] = None,
                 apply_filters: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        check_downsample_factor(downsample_factor)
        self.camera = get_camera(camera)
        self.downsample_factor = downsample_factor
        self.frame_width = self.camera.width / downsample_factor
        self.frame_height = self.camera.height / downsample_factor
        self.box_filter = EvaluationFilter.for_camera(
            self.camera, downsample_factor, skip_first_us, min_box_diag,
            min_box_side) if apply_filters else None

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Keep each sample's boxes, in evaluation-frame pixels, as numpy.

        Args:
            data_batch (dict): The batch from the dataloader (unused).
            data_samples (Sequence[dict]): Predicted and annotated samples,
                see the class docstring.

        Raises:
            ValueError: A sample without the meta keys of
                :data:`SAMPLE_META_KEYS`, of another sensor size than the
                camera's, or with a label outside the camera's classes.
        """
        for sample in data_samples:
            self._check_sample(sample)
            instances = sample['instances']
            pred = sample['pred_instances']
            result = dict(
                recording=sample['recording'],
                timestamp_us=int(sample['timestamp_us']),
                gt=dict(
                    bboxes=self._to_frame(
                        np.array([inst['bbox'] for inst in instances],
                                 dtype=np.float32)),
                    labels=np.array(
                        [inst['bbox_label'] for inst in instances],
                        dtype=np.int64),
                    ignore=np.array(
                        [inst.get('ignore_flag', 0) for inst in instances],
                        dtype=bool)),
                pred=dict(
                    bboxes=self._to_frame(pred['bboxes'].cpu().numpy()),
                    scores=pred['scores'].cpu().numpy(),
                    labels=pred['labels'].cpu().numpy()))
            for kind in ('gt', 'pred'):
                self._check_labels(result, kind)
            self.results.append(result)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Filter the boxes, score them with COCOeval and log the protocol.

        Args:
            results (list[dict]): What :meth:`process` kept, from all ranks.

        Returns:
            dict[str, float]: ``mAP``, ``mAP_50``, ``mAP_75``, ``mAP_s``,
            ``mAP_m``, ``mAP_l`` in [0, 1] (unrounded), or all -1 / 0 in
            the edge cases of the class docstring.

        Raises:
            ValueError: A (recording, timestamp) sample given twice.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        _check_unique_samples(results)
        frames, dropped = self._scored_frames(results)
        logger.info(self._protocol_report(len(results), frames, dropped))
        if not frames:
            logger.warning('PropheseeMetric: no ground-truth box is left '
                           'after the filters; every AP is -1')
            return dict.fromkeys(METRIC_KEYS, -1.0)
        if not any(len(frame['pred']['scores']) for frame in frames):
            logger.warning('PropheseeMetric: no prediction on the scored '
                           'timestamps; every AP is 0')
            return dict.fromkeys(METRIC_KEYS, 0.0)
        stats, summary = coco_bbox_stats(frames, self.camera.classes,
                                         self.frame_width, self.frame_height)
        logger.info('\n' + summary)
        return {key: float(value) for key, value in zip(METRIC_KEYS, stats)}

    def _to_frame(self, bboxes: np.ndarray) -> np.ndarray:
        """``[N, 4]`` float32 sensor-pixel boxes in evaluation-frame
        pixels."""
        return bboxes.reshape(-1, 4).astype(np.float32) / (
            self.downsample_factor)

    def _check_sample(self, sample: dict) -> None:
        missing = [key for key in SAMPLE_META_KEYS if key not in sample]
        if missing:
            raise ValueError(
                f'PropheseeMetric: data samples lack {missing}: add them to '
                "PackDetInputs' meta_keys in the test pipeline")
        expected = (self.camera.height, self.camera.width)
        if tuple(sample['ori_shape'][:2]) != expected:
            raise ValueError(
                f'PropheseeMetric: sample {sample["recording"]} at '
                f'{sample["timestamp_us"]} us has ori_shape '
                f'{tuple(sample["ori_shape"])}, camera {self.camera.name!r} '
                f'is {expected}: set camera= to the dataset\'s camera')

    def _check_labels(self, result: dict, kind: str) -> None:
        labels = result[kind]['labels']
        bad = labels[(labels < 0) | (labels >= len(self.camera.classes))]
        if bad.size:
            raise ValueError(
                f'PropheseeMetric: {kind} labels {sorted(set(bad.tolist()))} '
                f'of {result["recording"]} at {result["timestamp_us"]} us are '
                f'outside camera {self.camera.name!r}\'s classes '
                f'{self.camera.classes}: keep only the scored classes '
                '(protocol.sanitize_labels) and give the head '
                f'{len(self.camera.classes)} classes')

    def _scored_frames(
            self, results: List[dict]) -> Tuple[List[dict], Dict[str, Counter]]:
        """The samples that keep ground truth after the filters, with their
        filtered boxes, and how many boxes each step dropped."""
        dropped = dict(gt=Counter(), pred=Counter())
        frames = []
        for result in results:
            gt = dict(result['gt'], bboxes=clip_boxes(
                result['gt']['bboxes'], self.frame_width, self.frame_height))
            gt = _keep(gt, {'empty after clipping to the evaluation frame':
                            nonempty_mask(gt['bboxes'])}, dropped['gt'])
            pred = result['pred']
            if self.box_filter is not None:
                time = result['timestamp_us']
                gt = self._filtered(gt, time, dropped['gt'])
                pred = self._filtered(pred, time, dropped['pred'])
            if len(gt['labels']):
                frames.append(dict(gt=gt, pred=pred))
            else:
                dropped['pred']['at a timestamp without ground truth'] += len(
                    pred['labels'])
        return frames, dropped

    def _filtered(self, boxes: dict, timestamp_us: int,
                  dropped: Counter) -> dict:
        """``boxes`` that pass :attr:`box_filter` at ``timestamp_us``."""
        times = np.full(len(boxes['labels']), timestamp_us, dtype=np.int64)
        return _keep(boxes, self.box_filter.masks(boxes['bboxes'], times),
                     dropped)

    def _protocol_report(self, num_samples: int, frames: List[dict],
                         dropped: Dict[str, Counter]) -> str:
        """Which filters ran, what they dropped and what was scored."""
        if self.box_filter is None:
            filters = 'none (apply_filters=False, not the protocol)'
        else:
            filters = ', '.join(self.box_filter.criteria)
        lines = [
            f'Prophesee protocol (RVT), camera {self.camera.name}, '
            f'evaluation frame {self.frame_width:g} x {self.frame_height:g} '
            f'(sensor / {self.downsample_factor}); filters on ground truth '
            f'and predictions: {filters}'
        ]
        for kind, name in (('gt', 'ground-truth'), ('pred', 'prediction')):
            counts = '; '.join(f'{reason}: {count}'
                               for reason, count in dropped[kind].items())
            lines.append(f'dropped {name} boxes: {counts or "none"}')
        num_gt = sum(len(frame['gt']['labels']) for frame in frames)
        num_pred = sum(len(frame['pred']['labels']) for frame in frames)
        lines.append(f'scored {len(frames)} of {num_samples} labelled '
                     f'timestamps: {num_gt} ground-truth boxes, {num_pred} '
                     'predictions')
        return '\n'.join(lines)


def _keep(boxes: Dict[str, np.ndarray], masks: Dict[str, np.ndarray],
          dropped: Counter) -> Dict[str, np.ndarray]:
    """Index every array of ``boxes`` by the masks, applied in order;
    ``dropped[reason]`` counts what each mask removed of what was left."""
    keep = np.ones(len(boxes['labels']), dtype=bool)
    for reason, mask in masks.items():
        dropped[reason] += int(np.count_nonzero(keep & ~mask))
        keep &= mask
    return {name: array[keep] for name, array in boxes.items()}


def _check_unique_samples(results: List[dict]) -> None:
    samples = Counter(
        (result['recording'], result['timestamp_us']) for result in results)
    repeated = [sample for sample, count in samples.items() if count > 1]
    if repeated:
        raise ValueError(
            f'PropheseeMetric: samples {repeated[:3]} (recording, '
            'timestamp_us) were evaluated more than once: the dataset must '
            'give one sample per labelled timestamp')


def coco_bbox_stats(frames: List[dict], classes: Sequence[str],
                    width: float, height: float) -> Tuple[np.ndarray, str]:
    """Score frames with pycocotools' ``COCOeval`` (bbox), quietly.

    Args:
        frames (list[dict]): One COCO image each: ``gt`` (``bboxes``
            ``[M, 4]`` xyxy, ``labels`` ``[M]``, ``ignore`` ``[M]`` bool)
            and ``pred`` (``bboxes`` ``[N, 4]`` xyxy, ``scores`` ``[N]``,
            ``labels`` ``[N]``).
        classes (Sequence[str]): Class names; label ``i`` is COCO category
            ``i + 1``.
        width (float): Image width (recorded in the COCO images only).
        height (float): Image height (recorded in the COCO images only).

    Returns:
        tuple[np.ndarray, str]: The first six ``COCOeval.stats`` (AP, AP50,
        AP75, AP small, medium, large) and the printed summary.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    coco_gt = COCO()
    coco_gt.dataset = _coco_ground_truth(frames, classes, width, height)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(_coco_detections(frames))
        coco_eval = COCOeval(coco_gt, coco_dt, 'bbox')
        coco_eval.evaluate()
        coco_eval.accumulate()
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        coco_eval.summarize()
    return coco_eval.stats[:len(METRIC_KEYS)], summary.getvalue()


def _xywh(bboxes_xyxy: np.ndarray) -> np.ndarray:
    """``[N, 4]`` corners as COCO's ``[N, 4]`` (x, y, w, h)."""
    return np.concatenate(
        [bboxes_xyxy[:, :2], bboxes_xyxy[:, 2:] - bboxes_xyxy[:, :2]], axis=1)


def _coco_ground_truth(frames: List[dict], classes: Sequence[str],
                       width: float, height: float) -> dict:
    """COCO dataset dict: image ``i + 1`` is ``frames[i]``."""
    images, annotations = [], []
    for image_id, frame in enumerate(frames, start=1):
        images.append(dict(id=image_id, width=width, height=height))
        gt = frame['gt']
        for box, label, ignore in zip(
                _xywh(gt['bboxes']).tolist(), gt['labels'].tolist(),
                gt['ignore'].tolist()):
            annotations.append(
                dict(id=len(annotations) + 1, image_id=image_id,
                     category_id=label + 1, bbox=box,
                     area=box[2] * box[3], iscrowd=int(ignore)))
    categories = [
        dict(id=index, name=name) for index, name in enumerate(classes, 1)
    ]
    return dict(images=images, annotations=annotations,
                categories=categories)


def _coco_detections(frames: List[dict]) -> List[dict]:
    """COCO result dicts of the frames' predictions."""
    return [
        dict(image_id=image_id, category_id=label + 1, bbox=box, score=score)
        for image_id, frame in enumerate(frames, start=1)
        for box, score, label in zip(
            _xywh(frame['pred']['bboxes']).tolist(),
            frame['pred']['scores'].tolist(),
            frame['pred']['labels'].tolist())
    ]
