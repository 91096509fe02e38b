"""Evaluation of mmtpspike's tasks."""
from . import functional
from .metrics import PropheseeMetric

__all__ = ['PropheseeMetric', 'functional']
