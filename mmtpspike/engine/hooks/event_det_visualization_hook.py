"""Detections drawn over event frames."""
import os
import os.path as osp
from typing import Sequence

import mmcv
from mmdet.engine.hooks import DetVisualizationHook

from mmtpspike.registry import register_hook
from mmtpspike.visualization import sample_name, sample_picture


@register_hook
class EventDetVisualizationHook(DetVisualizationHook):
    """mmdet's ``DetVisualizationHook`` for event samples: a sample's
    ``img_path`` names its recording, not an image, so predictions (and
    ground truth) are drawn over a picture of its event frames
    (:func:`~mmtpspike.visualization.event_frame_image`), scaled to the
    sensor size the boxes are in. Test pictures are saved as
    ``<test_out_dir>/<recording>_<t>us.png``.

    Args:
        **kwargs: Arguments of mmdet's ``DetVisualizationHook`` (``draw``,
            ``interval``, ``score_thr``, ``test_out_dir``, ...).
    """

    def _picture(self, inputs, sample):
        """RGB picture of one sample at its sensor size."""
        height, width = sample.ori_shape[:2]
        picture = mmcv.imresize(
            sample_picture(inputs, sample.metainfo), (width, height),
            interpolation='nearest')
        return picture[..., ::-1]

    def after_val_iter(self, runner, batch_idx: int, data_batch: dict,
                       outputs: Sequence) -> None:
        """Draw the first sample of every ``interval``-th batch."""
        if self.draw is False or not self.every_n_inner_iters(
                batch_idx, self.interval):
            return
        self._visualizer.add_datasample(
            'val_img',
            self._picture(data_batch['inputs'][0], outputs[0]),
            data_sample=outputs[0],
            show=self.show,
            wait_time=self.wait_time,
            pred_score_thr=self.score_thr,
            step=runner.iter + batch_idx)

    def before_test(self, runner) -> None:
        if self.test_out_dir is not None:
            self.test_out_dir = osp.join(runner.work_dir, runner.timestamp,
                                         self.test_out_dir)
            os.makedirs(self.test_out_dir, exist_ok=True)

    def after_test_iter(self, runner, batch_idx: int, data_batch: dict,
                        outputs: Sequence) -> None:
        """Draw every test sample."""
        if self.draw is False:
            return
        for inputs, sample in zip(data_batch['inputs'], outputs):
            self._test_index += 1
            name = sample_name(sample.metainfo) + '.png'
            out_file = None if self.test_out_dir is None else osp.join(
                self.test_out_dir, name)
            self._visualizer.add_datasample(
                name if self.show else 'test_img',
                self._picture(inputs, sample),
                data_sample=sample,
                show=self.show,
                wait_time=self.wait_time,
                pred_score_thr=self.score_thr,
                out_file=out_file,
                step=self._test_index)
