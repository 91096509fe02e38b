from .event_det_data_preprocessor import EventDetDataPreprocessor
from .sot_data_preprocessor import SOTDataPreprocessor

__all__ = ['EventDetDataPreprocessor', 'SOTDataPreprocessor']
