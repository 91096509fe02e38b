from .event_det_data_preprocessor import EventDetDataPreprocessor

__all__ = ['EventDetDataPreprocessor']
