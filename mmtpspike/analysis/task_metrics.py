"""The task metrics the analysis tools report, found by the type of the
config's test evaluator (one lookup for detection, segmentation, event
detection and tracking, whatever the scope)."""
from typing import List, Tuple

from mmengine.config import Config

from mmtpspike.utils.config import SetupError

#: ``(metric key, column title)`` by evaluator type, main metric first
TASK_METRICS = {
    'CocoMetric': [('coco/bbox_mAP', 'bbox mAP'),
                   ('coco/segm_mAP', 'segm mAP')],
    'IoUMetric': [('mIoU', 'mIoU'), ('mAcc', 'mAcc')],
    'PropheseeMetric': [('prophesee/mAP', 'mAP (Prophesee)'),
                        ('prophesee/mAP_50', 'AP50 (Prophesee)')],
    'OPEMetric': [('sot/success_auc', 'Success AUC (OPE)'),
                  ('sot/precision', 'Precision @20px (OPE)'),
                  ('sot/norm_precision', 'Norm. precision (OPE)')],
}


def test_evaluator_type(cfg: Config) -> str:
    """Type of the config's test evaluator (the first one of a list) that
    :data:`TASK_METRICS` knows.

    Raises:
        SetupError: no evaluator of the config is known.
    """
    evaluators = cfg.test_evaluator
    if not isinstance(evaluators, (list, tuple)):
        evaluators = [evaluators]
    types = [evaluator.get('type') for evaluator in evaluators]
    for evaluator_type in types:
        if evaluator_type in TASK_METRICS:
            return evaluator_type
    raise SetupError(f'the analysis tools report the metrics of '
                     f'{sorted(TASK_METRICS)}; the config tests with {types}')


def task_metrics(cfg: Config) -> List[Tuple[str, str]]:
    """``(metric key, column title)`` of the config's test evaluator, main
    metric first (e.g. ``('prophesee/mAP', 'mAP (Prophesee)')``)."""
    return TASK_METRICS[test_evaluator_type(cfg)]
