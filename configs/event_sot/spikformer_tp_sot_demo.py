# The demo tracker with Spikformer blocks instead of SDT-V3's (spiking
# self-attention q k^T v, no SepConv mixer), through the same pruning
# protocol: IRToP early stopping of 78 % of the search tokens, template
# tokens never stopped.
_base_ = ['./sdtv3_tp_sot_demo.py']

model = dict(encoder=dict(block_type='spikformer'))
