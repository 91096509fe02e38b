"""Token merging baseline (ToMe-style bipartite matching) for dense maps.

A comparison point for early stopping at the same token counts: instead of
letting ``N_valid - K`` tokens skip the block, they are *merged* into their
most similar tokens, the ``K`` merged tokens run attention and MLP, and
every token is then *unmerged*: it adds the update of the group it was
merged into to its own value (dense heads need every position back).

Matching follows ToMe (Bolya et al., ICLR 2023), adapted to maps with
padding: the valid tokens of each row are split alternately (in raster
order) into sets A and B, every A token points to its most similar B token
(cosine of the features), and the ``r = N_valid - K`` A tokens with the
most similar partners are merged (``r`` is at most ``|A|``, so at most
half the tokens merge in one block). A merged token is the mean of its
group. With ``T > 1`` timesteps of an image, one plan (matched on the
time-averaged tokens, :func:`repeat_plan`) serves all of them, as one token
selection does for early stopping: a slot of a stateful (LIF) neuron then
holds the same group at every timestep.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .restore import Selection
from .selection import keep_counts, select_tokens


@dataclass
class MergePlan:
    """Which tokens of ``[R, N]`` merge into which.

    Attributes:
        selection (Selection): the ``K`` representatives that run the block
            (unmerged A tokens and all B tokens).
        destination (Tensor): ``[R, N]`` long, the representative each token
            belongs to (itself for representatives and invalid tokens).
        group_size (Tensor): ``[R, N]`` tokens per group at each
            representative (1 elsewhere).
    """

    selection: Selection
    destination: torch.Tensor
    group_size: torch.Tensor


def plan_merges(tokens: torch.Tensor, keep: float, valid: torch.Tensor,
                spatial_shape) -> MergePlan:
    """Bipartite soft matching on ``tokens: [R, C, N]``.

    Args:
        tokens (Tensor): ``[R, C, N]`` features to match on.
        keep (float): Share of the valid tokens left after merging.
        valid (Tensor): ``[R, N]`` bool, tokens inside the image.
        spatial_shape (tuple[int, int]): ``(H, W)``.

    Returns:
        MergePlan: the plan.
    """
    rows, _, num_tokens = tokens.shape
    rank = valid.long().cumsum(1) - 1
    set_a = valid & (rank % 2 == 0)
    set_b = valid & (rank % 2 == 1)
    unit = F.normalize(tokens, dim=1)
    similarity = unit.transpose(1, 2) @ unit  # [R, N, N]
    similarity = similarity.masked_fill(~set_b.unsqueeze(1), float('-inf'))
    best, partner = similarity.max(2)
    best = best.masked_fill(~set_a | ~set_b.any(1, keepdim=True),
                            float('-inf'))
    num_valid = valid.sum(1)
    merges = torch.minimum(num_valid - keep_counts(keep, num_valid),
                           (best > float('-inf')).sum(1))
    merge_index, merge_slots = select_tokens(best, merges.clamp_min(0),
                                             set_a & (best > float('-inf')))
    merged = Selection(merge_index, merge_slots, valid,
                       spatial_shape).kept_map()
    positions = torch.arange(num_tokens, device=tokens.device).expand(rows,
                                                                      -1)
    destination = torch.where(merged, partner, positions)
    group_size = torch.ones_like(tokens[:, 0]).scatter_add(
        1, destination, merged.to(tokens.dtype))
    representatives = valid & ~merged
    index, slot_mask = select_tokens(
        representatives.to(tokens.dtype), representatives.sum(1),
        representatives)
    return MergePlan(Selection(index, slot_mask, valid, spatial_shape),
                     destination, group_size)


def repeat_plan(plan: MergePlan, times: int) -> MergePlan:
    """The plan of ``B`` rows for ``times * B`` timestep-major rows (row
    ``t * B + b`` follows row ``b``), so every timestep of an image merges
    the same tokens into the same representatives."""
    selection = plan.selection
    return MergePlan(
        Selection(selection.index.repeat(times, 1),
                  selection.slot_mask.repeat(times, 1),
                  selection.valid.repeat(times, 1), selection.spatial_shape),
        plan.destination.repeat(times, 1), plan.group_size.repeat(times, 1))


def merge_tokens(tokens: torch.Tensor, plan: MergePlan) -> torch.Tensor:
    """Group means at the representatives: ``[R, C, N]`` -> ``[R, C, N]``
    (other positions keep their values)."""
    destination = plan.destination.unsqueeze(1).expand_as(tokens)
    positions = torch.arange(tokens.shape[2], device=tokens.device)
    moved = plan.destination != positions
    sums = tokens.scatter_add(
        2, destination, tokens * moved.unsqueeze(1).to(tokens.dtype))
    return sums / plan.group_size.unsqueeze(1)


def unmerge_updates(tokens: torch.Tensor, merged: torch.Tensor,
                    processed: torch.Tensor, plan: MergePlan) -> torch.Tensor:
    """Every token adds its group's update to its own value.

    Args:
        tokens (Tensor): ``[R, C, N]`` before merging.
        merged (Tensor): ``[R, C, N]`` group means (:func:`merge_tokens`).
        processed (Tensor): ``[R, C, K]`` representatives after the block.
        plan (MergePlan): the plan.

    Returns:
        Tensor: ``[R, C, N]``; tokens outside the image are unchanged.
    """
    selection = plan.selection
    index = selection.index.clamp(max=tokens.shape[2] - 1)
    before = merged.gather(2, index.unsqueeze(1).expand_as(processed))
    update = (processed - before) * selection.slot_mask.unsqueeze(1).to(
        processed.dtype)
    update_map = torch.zeros_like(F.pad(tokens, (0, 1))).scatter(
        2, selection.index.unsqueeze(1).expand_as(update),
        update)[..., :tokens.shape[2]]
    group_update = update_map.gather(
        2, plan.destination.unsqueeze(1).expand_as(tokens))
    return tokens + group_update * selection.valid.unsqueeze(1).to(
        tokens.dtype)
