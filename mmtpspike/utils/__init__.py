from .checkpoint import (UnsafeCheckpointError, register_safe_local_loader,
                         safe_load_checkpoint)

__all__ = [
    'UnsafeCheckpointError', 'register_safe_local_loader',
    'safe_load_checkpoint'
]
