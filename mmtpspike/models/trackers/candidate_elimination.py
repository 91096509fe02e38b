"""Template-guided candidate elimination for spiking one-stream trackers.

OSTrack drops the search tokens that the template's centre attends to
least. Its softmax attention map is gone in spiking linear attention
(``q (k^T v)`` never forms ``q k^T``), and each block's ``q`` / ``k`` come
from spike neurons behind BN'd 1x1 convs of the block input, so this scorer
ranks search tokens by what those convs read: the cosine similarity of each
token of the block input (the residual stream) to the mean of the template
centre tokens,

    ``score_i = cos(x_i, mean_{c in centre} x_c)``,

per timestep row (the pruner's shared temporal selection then averages it
over T). It needs no weights, so it runs unchanged in front of SDT-V3 and
Spikformer blocks, costs ``C (Ns + Nt)`` multiply-adds per row, and it is a
proxy for ``<q_c, k_i>`` (same-direction inputs give overlapping spike
patterns), not that product itself.
"""
from typing import Optional

import torch
import torch.nn.functional as F

from mmtpspike.registry import TOKEN_SCORERS
from ..pruning.scorers import TokenScorer
from .joint_layout import JointContext


@TOKEN_SCORERS.register_module()
class CandidateEliminationScorer(TokenScorer):
    """Search tokens ranked by their similarity to the template centre.

    Template tokens get the highest score of their row (a tracker protects
    them anyway). The scorer reads the token layout from a
    :class:`~.joint_layout.JointContext`, bound by the joint encoder with
    :meth:`bind`.

    Args:
        normalize (str): See
            :func:`~mmtpspike.models.pruning.scorers.normalize_scores`.
            Default: 'minmax' (cosines are in ``[-1, 1]``, a softmax of them
            is nearly flat, which matters to ``dynamic`` retention).
        eps (float): Norm floor of the cosine. Default: 1e-6.
    """

    def __init__(self, normalize: str = 'minmax', eps: float = 1e-6) -> None:
        super().__init__(normalize)
        self.eps = eps
        self.context: Optional[JointContext] = None

    def bind(self, context: JointContext) -> None:
        """Read the token layout from ``context`` at every forward."""
        self.context = context

    def raw_scores(self,
                   x: torch.Tensor,
                   num_timesteps: int,
                   valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``[R, C, 1, Nt + Ns]`` joint block input -> ``[R, Nt + Ns]``."""
        if self.context is None:
            raise RuntimeError('CandidateEliminationScorer is not bound to a '
                               'JointContext: use it in a JointTokenEncoder')
        layout = self.context.require()
        tokens = x.flatten(2)
        centre_index = layout.template_centre_index().to(x.device)
        centre = tokens.index_select(2, centre_index).mean(2, keepdim=True)
        scores = F.cosine_similarity(tokens, centre, dim=1, eps=self.eps)
        best = scores[:, layout.num_template:].amax(1, keepdim=True)
        template = best.expand(-1, layout.num_template)
        return torch.cat([template, scores[:, layout.num_template:]], 1)
