"""Where the template and the search tokens lie in a one-stream sequence.

The joint encoder flattens the template map ``[R, C, Ht, Wt]`` and the search
map ``[R, C, Hs, Ws]`` and concatenates them into one ``[R, C, 1, Nt + Ns]``
sequence (template first). :class:`JointLayout` splits it back into maps,
marks the template tokens (never stopped) and the template's centre tokens
(what template-guided candidate elimination compares against).
:class:`JointContext` is the small mutable holder the encoder fills before
each forward and its blocks and scorer read, so nothing goes through globals.
"""
from typing import NamedTuple, Optional, Tuple

import torch


def centre_cells(length: int) -> Tuple[int, ...]:
    """Cells covering the centre of ``length`` cells: the middle one for an
    odd length, the two middle ones for an even length."""
    if length % 2:
        return (length // 2, )
    return (length // 2 - 1, length // 2)


class JointLayout(NamedTuple):
    """Token layout of a one-stream sequence.

    Attributes:
        template_shape (tuple[int, int]): ``(Ht, Wt)`` of the template map.
        search_shape (tuple[int, int]): ``(Hs, Ws)`` of the search map.
    """
    template_shape: Tuple[int, int]
    search_shape: Tuple[int, int]

    @property
    def num_template(self) -> int:
        """``Nt = Ht * Wt``."""
        return self.template_shape[0] * self.template_shape[1]

    @property
    def num_search(self) -> int:
        """``Ns = Hs * Ws``."""
        return self.search_shape[0] * self.search_shape[1]

    @property
    def num_tokens(self) -> int:
        """``Nt + Ns``."""
        return self.num_template + self.num_search

    def join(self, template: torch.Tensor,
             search: torch.Tensor) -> torch.Tensor:
        """``[R, C, Ht, Wt]`` and ``[R, C, Hs, Ws]`` -> ``[R, C, 1, Nt +
        Ns]`` (template first)."""
        self._check(template, self.template_shape, 'template')
        self._check(search, self.search_shape, 'search')
        return torch.cat([template.flatten(2), search.flatten(2)],
                         2).unsqueeze(2)

    def split(self, joint: torch.Tensor
              ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``[R, C, 1, Nt + Ns]`` (or ``[R, C, Nt + Ns]``, or ``[R, Nt +
        Ns]`` maps such as kept masks) -> template ``[R, (C,) Ht, Wt]`` and
        search ``[R, (C,) Hs, Ws]``."""
        flat = joint.flatten(-2) if joint.dim() == 4 else joint
        if flat.shape[-1] != self.num_tokens:
            raise ValueError(f'expected {self.num_tokens} joint tokens, got '
                             f'shape {tuple(joint.shape)}')
        template, search = flat.split([self.num_template, self.num_search],
                                      -1)
        return (template.unflatten(-1, self.template_shape),
                search.unflatten(-1, self.search_shape))

    def template_mask(self, rows: int,
                      device: Optional[torch.device] = None) -> torch.Tensor:
        """``[R, Nt + Ns]`` bool, True at the template tokens."""
        mask = torch.zeros(rows, self.num_tokens, dtype=torch.bool,
                           device=device)
        mask[:, :self.num_template] = True
        return mask

    def template_centre_index(self) -> torch.Tensor:
        """Joint indices of the template tokens covering its centre (1, 2 or
        4 tokens, see :func:`centre_cells`), long ``[M]``."""
        height, width = self.template_shape
        return torch.tensor([row * width + col
                             for row in centre_cells(height)
                             for col in centre_cells(width)])

    @staticmethod
    def _check(x: torch.Tensor, shape: Tuple[int, int], name: str) -> None:
        if tuple(x.shape[-2:]) != tuple(shape):
            raise ValueError(f'{name} map is {tuple(x.shape[-2:])}, the '
                             f'layout says {tuple(shape)}')


class JointContext:
    """The layout of the sequence being encoded, set by the encoder before
    each forward and read by its blocks and its scorer.

    Attributes:
        layout (JointLayout | None): None outside a forward.
    """

    def __init__(self) -> None:
        self.layout: Optional[JointLayout] = None

    def require(self) -> JointLayout:
        """The current layout; a RuntimeError when none is set."""
        if self.layout is None:
            raise RuntimeError(
                'no JointLayout set: joint blocks and template-guided '
                'scorers run inside JointTokenEncoder.forward, which sets '
                'it (context.layout = JointLayout(...))')
        return self.layout
