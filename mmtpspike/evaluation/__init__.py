"""Evaluation of mmtpspike's tasks."""
from .metrics import PropheseeMetric

__all__ = ['PropheseeMetric']
