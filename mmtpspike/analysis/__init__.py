from .complexity import MacCounter, block_macs, count_macs

__all__ = ['MacCounter', 'block_macs', 'count_macs']
