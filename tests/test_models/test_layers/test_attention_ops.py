"""The key-side helpers every token-summing attention uses."""
import torch

from mmtpspike.models.layers.attention_ops import (mask_keys,
                                                   query_and_key_inputs)


def test_keys_come_from_the_tokens_unless_a_context_is_given():
    tokens, context = torch.rand(2, 4, 3), torch.rand(2, 4, 7)
    token_mask = torch.tensor([[True, True, False]] * 2)
    context_mask = torch.ones(2, 7, dtype=torch.bool)
    queries, keys, mask = query_and_key_inputs(tokens, token_mask, None,
                                               context_mask)
    assert queries is tokens and keys is tokens and mask is token_mask
    queries, keys, mask = query_and_key_inputs(tokens, token_mask, context,
                                               context_mask)
    assert queries is tokens and keys is context and mask is context_mask


def test_each_input_is_encoded_once():
    calls = []

    def encode(x):
        calls.append(x.shape[-1])
        return x * 2

    tokens, context = torch.rand(2, 4, 3), torch.rand(2, 4, 7)
    queries, keys, _ = query_and_key_inputs(tokens, None, None, None, encode)
    assert calls == [3] and keys is queries
    assert torch.equal(queries, tokens * 2)
    queries, keys, _ = query_and_key_inputs(tokens, None, context, None,
                                            encode)
    assert calls == [3, 3, 7] and torch.equal(keys, context * 2)


def test_masked_tokens_add_nothing_to_a_sum_over_tokens():
    keys = torch.rand(2, 4, 5) + 1
    mask = torch.tensor([[True, False, True, True, False],
                         [True] * 5])
    masked = mask_keys(keys, mask)
    assert torch.equal(masked[0].sum(-1), keys[0][:, mask[0]].sum(-1))
    assert torch.equal(masked[1], keys[1])
    assert mask_keys(keys, None) is keys
