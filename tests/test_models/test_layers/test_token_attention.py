"""TokenAttention: the one place where attentions receive the filler mask
and the all-token context."""
import torch

from mmtpspike.models.backbones import SDTV1, SDTV3, QKFormer, Spikformer
from mmtpspike.models.layers import TokenAttention


class Recorder(TokenAttention):
    """Doubles its input in ``encode``; records what ``attend`` gets."""

    def encode(self, tokens):
        return tokens * 2

    def attend(self, queries, keys, key_mask):
        self.got = queries, keys, key_mask
        return queries


def test_attend_gets_encoded_queries_keys_and_the_key_mask():
    attn = Recorder()
    tokens, context = torch.rand(2, 4, 3), torch.rand(2, 4, 9)
    token_mask = torch.tensor([[True, True, False]] * 2)
    context_mask = torch.rand(2, 9) > 0.5
    attn(tokens, token_mask)
    queries, keys, mask = attn.got
    assert torch.equal(queries, tokens * 2) and keys is queries
    assert mask is token_mask
    attn(tokens, token_mask, context, context_mask)
    queries, keys, mask = attn.got
    assert torch.equal(queries, tokens * 2)
    assert torch.equal(keys, context * 2) and mask is context_mask


def test_every_backbone_attention_is_a_token_attention():
    backbones = [
        SDTV3(arch='t'),
        SDTV1(embed_dims=32, depth=1),
        Spikformer(embed_dims=32, depth=1, num_heads=4),
        QKFormer(embed_dims=[16, 32, 64], depths=(1, 1, 1), num_heads=2)]
    for backbone in backbones:
        for stage in backbone.prunable_stages():
            for block in stage.blocks:
                assert isinstance(block.attn, TokenAttention), type(block)
