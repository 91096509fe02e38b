from .checkpoint import (UnsafeCheckpointError, register_safe_loaders,
                         safe_load_checkpoint)

__all__ = [
    'UnsafeCheckpointError', 'register_safe_loaders',
    'safe_load_checkpoint'
]
