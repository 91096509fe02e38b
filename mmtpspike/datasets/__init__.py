from .mini_ade20k import MiniADE20KDataset

__all__ = ['MiniADE20KDataset']
