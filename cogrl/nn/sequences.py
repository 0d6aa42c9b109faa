"""Sequences cut at episode starts, so that a core runs over many of them at once.

A rollout is (T, B): B environments, T steps each, with episodes starting anywhere. A core
must restart its state where an episode starts, so stepping it means T sequential calls
and a ``where`` per step. Cut instead every column at its episode starts (and, optionally,
every ``max_length`` steps): each piece, a *segment*, runs from one state without a
restart, so that all of them go through the core together as one padded (L, S) batch, and
a fused ``nn.GRU``/``nn.LSTM`` kernel runs it (sb3-contrib's RecurrentPPO pads its
sequences the same way). A segment starts from the core's initial state when it begins an
episode, else from a given state: the state the rollout had at its first step (or, for
segments cut by ``max_length``, the state stored there).

```python
segments = Segments.split(episode_start)   # (T, B) bool -> S segments
padded = segments.pad(x.flatten(0, 1))     # (T, B, F) -> (L, S, F)
h, last = core.sequence(padded, start_states, segments.lengths)
h = segments.unpad(h).view(T, B, -1)       # (L, S, H) -> (T, B, H)
```

Cutting reads the segment lengths on the host: once per batch of sequences, never per
environment step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Segments", "rows_ending"]


@dataclass(frozen=True)
class Segments:
    """Segments of a (T, B) batch of sequences, and the steps they hold.

    - ``column`` (S,): the environment of each segment; ``begin`` (S,): its first step;
      ``lengths`` (S,): its number of steps (on the CPU, as fused RNN kernels want them);
      ``fresh`` (S,): it begins an episode (it starts from the core's initial state),
      otherwise it goes on from the state of its column at ``begin``.
    - ``rows`` (n,): the steps held, as indices ``t * B + b`` into ``x.flatten(0, 1)``;
      ``segment``, ``position`` (n,): the segment of each and its place in it, so that
      ``padded[position, segment]`` is step ``rows``.

    :meth:`split` holds every step, in (time, column) order; :meth:`select` a subset of
    the segments (a minibatch), segment by segment.
    """

    shape: tuple[int, int]
    column: torch.Tensor
    begin: torch.Tensor
    lengths: torch.Tensor
    fresh: torch.Tensor
    rows: torch.Tensor
    segment: torch.Tensor
    position: torch.Tensor

    @classmethod
    def split(cls, episode_start: torch.Tensor, max_length: int | None = None) -> Segments:
        """Cut the columns of ``episode_start`` (T, B) where an episode starts, and every
        ``max_length`` steps after a cut (``None``: only at episode starts)."""
        if episode_start.ndim != 2:
            raise ValueError(
                f"episode_start must be (T, B), got shape {tuple(episode_start.shape)}"
            )
        T, B = episode_start.shape
        device = episode_start.device
        start = episode_start.to(torch.bool)
        cut = start.clone()
        cut[0] = True
        if max_length is not None:
            if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
                raise ValueError(f"max_length must be a positive int, got {max_length!r}")
            # Steps since the column's last cut: cut again every max_length of them.
            index = torch.arange(T, device=device)[:, None].expand(T, B)
            last = torch.where(cut, index, torch.zeros_like(index)).cummax(0).values
            cut |= (index - last) % max_length == 0
        # Number the segments down each column in turn (column-major order).
        cut_cm = cut.t().reshape(-1)
        segment_cm = cut_cm.long().cumsum(0) - 1
        begins_cm = cut_cm.nonzero().squeeze(1)  # the column-major index of each first step
        ends_cm = torch.cat([begins_cm[1:], begins_cm.new_tensor([T * B])])
        lengths = (ends_cm - begins_cm).cpu()
        position_cm = torch.arange(T * B, device=device) - begins_cm[segment_cm]
        # Every step in (time, column) order.
        return cls(
            shape=(T, B),
            column=begins_cm // T,
            begin=begins_cm % T,
            lengths=lengths,
            fresh=start.t().reshape(-1)[begins_cm],
            rows=torch.arange(T * B, device=device),
            segment=segment_cm.view(B, T).t().reshape(-1),
            position=position_cm.view(B, T).t().reshape(-1),
        )

    def select(self, index: torch.Tensor) -> Segments:
        """The segments ``index`` (a 1-D tensor of segment numbers) and their steps."""
        index_cpu = index.cpu()
        index = index.to(self.column.device)
        lengths = self.lengths[index_cpu]
        total = int(lengths.sum())
        device = self.column.device
        segment = torch.repeat_interleave(
            torch.arange(index.numel(), device=device), lengths.to(device), output_size=total
        )
        offsets = torch.cumsum(lengths, 0) - lengths
        position = torch.arange(total, device=device) - offsets.to(device)[segment]
        column, begin = self.column[index], self.begin[index]
        rows = (begin[segment] + position) * self.shape[1] + column[segment]
        return Segments(
            self.shape, column, begin, lengths, self.fresh[index], rows, segment, position
        )

    @property
    def count(self) -> int:
        """S, the number of segments."""
        return self.lengths.numel()

    @property
    def max_length(self) -> int:
        """L, the longest segment's length."""
        return int(self.lengths.max())

    def pad(self, steps: torch.Tensor) -> torch.Tensor:
        """The held steps (n, ...), in ``rows`` order, as a padded (L, S, ...) batch: each
        segment from position 0, zeros after its end."""
        out = steps.new_zeros((self.max_length, self.count, *steps.shape[1:]))
        out[self.position, self.segment] = steps
        return out

    def unpad(self, padded: torch.Tensor) -> torch.Tensor:
        """(L, S, ...) -> the held steps (n, ...) in ``rows`` order: :meth:`pad`'s inverse."""
        return padded[self.position, self.segment]

    def last(self) -> torch.Tensor:
        """The segment holding each column's last step (B,), for a :meth:`split`."""
        T, B = self.shape
        return self.segment.view(T, B)[-1]

    def end(self) -> torch.Tensor:
        """Each segment's last step (S,)."""
        return self.begin + self.lengths.to(self.begin.device) - 1


def rows_ending(
    lengths: torch.Tensor | None, steps: int, rows: int, device: torch.device | str = "cpu"
) -> dict[int, torch.Tensor]:
    """``{t: the rows whose sequence ends after step t}`` for a padded batch of ``rows``
    sequences of ``lengths`` (on the CPU; ``None``: all ``steps`` long), t = -1 for empty
    ones: where a core that runs all ``steps`` for every row takes each row's final state
    (:meth:`cogrl.nn.Core.sequence`)."""
    if lengths is None:
        return {steps - 1: torch.arange(rows, device=device)}
    return {
        n - 1: (lengths == n).nonzero().squeeze(1).to(device)
        for n in torch.unique(lengths).tolist()
    }
