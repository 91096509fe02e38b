"""Data structures passed between the pipelines, models and metrics."""
from .track_data_sample import TrackDataSample

__all__ = ['TrackDataSample']
