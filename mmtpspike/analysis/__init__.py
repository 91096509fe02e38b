from .complexity import MacCounter, block_macs, count_macs
from .energy import EnergyCosts, EnergyMeter

__all__ = ['MacCounter', 'block_macs', 'count_macs', 'EnergyCosts',
           'EnergyMeter']
