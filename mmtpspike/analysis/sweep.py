"""Training-free search over the pruning hyper-parameters of a checkpoint.

The paper hand-set its retention ratios and lists adaptive spatial /
temporal weighting as future work. :func:`scorer_grid` enumerates IRToP
settings ``(w_s, w_t, k)``; :func:`ratio_grid` enumerates per-stage keep
ratios and keeps those whose measured cost (MACs or SOPs of backbone +
neck, as :class:`~mmtpspike.analysis.MacCounter` counts them on real
images) fits a budget given as a share of the dense cost.
"""
import itertools
from typing import Callable, Dict, List, Sequence, Tuple


def scorer_grid(spatial_weights: Sequence[float],
                temporal_weights: Sequence[float],
                window_sizes: Sequence[int],
                num_timesteps: int) -> List[dict]:
    """IRToP scorer configs for every ``(w_s, w_t, k)``.

    With ``T = 1`` the temporal term does not exist, so only the first
    temporal weight is used (the others would repeat the same run).
    Settings with both weights 0 are skipped.
    """
    if num_timesteps == 1:
        temporal_weights = list(temporal_weights)[:1]
    return [dict(type='IRToPScorer', spatial_weight=float(ws),
                 temporal_weight=float(wt), window_size=int(k))
            for ws, wt, k in itertools.product(
                spatial_weights, temporal_weights, window_sizes)
            if ws + wt > 0]


def ratio_grid(choices: Sequence[float], num_stages: int,
               cost_of: Callable[[Tuple[float, ...]], float],
               dense_cost: float, budget: float
               ) -> List[Tuple[Tuple[float, ...], float]]:
    """Per-stage keep ratios whose cost is within ``budget * dense_cost``.

    Args:
        choices (list[float]): candidate keep ratios of every stage.
        num_stages (int): transformer stages.
        cost_of (callable): ratios -> measured cost.
        dense_cost (float): cost at keep 1.0.
        budget (float): allowed share of the dense cost, in ``(0, 1]``.

    Returns:
        list[tuple]: ``(ratios, cost / dense_cost)`` within the budget,
        cheapest last so that, at equal quality, a caller can prefer it.
    """
    if not 0 < budget <= 1:
        raise ValueError(f'budget must be a share in (0, 1], got {budget}')
    fits = []
    for ratios in itertools.product(sorted(set(choices)), repeat=num_stages):
        share = cost_of(ratios) / dense_cost
        if share <= budget + 1e-9:
            fits.append((ratios, share))
    return sorted(fits, key=lambda item: -item[1])


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A markdown table; floats printed with 4 significant digits."""
    def cell(value) -> str:
        return f'{value:.4g}' if isinstance(value, float) else str(value)

    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + ' --- |' * len(header)]
    lines += ['| ' + ' | '.join(cell(v) for v in row) + ' |' for row in rows]
    return '\n'.join(lines)


def best_row(rows: Sequence[Dict], metric: str) -> Dict:
    """The row with the highest ``metric``."""
    return max(rows, key=lambda row: row[metric])
