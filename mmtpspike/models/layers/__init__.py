from .drop_path import ImageDropPath, drop_path_rates
from .sdtv3_blocks import (Downsampling, SepConv, SpikeAttention,
                           SpikeConvBlock, SpikeMLP, SpikeTransformerBlock)
from .spike_neurons import (BinarySpikeSynapse, MultiSpike, MultiStepLIF,
                            SpikeNeuron, build_spike_neuron, spike_driven,
                            unroll_spikes)
from .sync_bn import CPUSyncBN
from .token_attention import TokenAttention
from .token_block import TokenBlock

__all__ = [
    'ImageDropPath', 'drop_path_rates', 'Downsampling', 'SepConv',
    'SpikeAttention', 'SpikeConvBlock', 'SpikeMLP', 'SpikeTransformerBlock',
    'BinarySpikeSynapse', 'MultiSpike', 'MultiStepLIF', 'SpikeNeuron',
    'build_spike_neuron', 'spike_driven', 'unroll_spikes', 'CPUSyncBN',
    'TokenAttention', 'TokenBlock'
]
