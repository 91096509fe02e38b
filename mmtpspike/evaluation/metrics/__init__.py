"""Metrics of mmtpspike, registered into mmengine's root ``METRICS`` (found
from the mmdet and mmseg scopes too)."""
from .ope_metric import OPEMetric
from .prophesee_metric import PropheseeMetric

__all__ = ['OPEMetric', 'PropheseeMetric']
