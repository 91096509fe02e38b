"""Evaluation of mmtpspike's tasks."""
from . import functional
from .metrics import OPEMetric, PropheseeMetric

__all__ = ['OPEMetric', 'PropheseeMetric', 'functional']
