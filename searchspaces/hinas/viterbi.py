"""Width derivation by Viterbi decoding over the routing probabilities (journal
Sec. 3.2, "Deriving the final architecture").

Taking the top beta per layer independently can make adjacent widths jump;
HiNAS instead treats softmax(beta) as transition probabilities and keeps the
single most probable path of width levels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

MOVES = (-1, 0, 1)  # narrower, same, wider: the three columns of a beta row


def viterbi(transitions: Sequence[Sequence[Sequence[float]]], start_level: int = 0) -> list[int]:
    """Most probable level path (max-product, in log space).

    `transitions[l][s][m]` is the probability that the source at level `s` one
    step before layer `l` (the stem for l = 0) moves by `MOVES[m]` into layer `l`;
    `len(transitions[l])` is the number of levels. Zero-probability moves are
    impossible. The path starts at `start_level` and its final level is free.
    Returns the level of each layer. Ties go to the lower level.
    """
    scores = {start_level: 0.0}
    backpointers: list[dict[int, int]] = []
    for layer, rows in enumerate(transitions):
        new_scores: dict[int, float] = {}
        back: dict[int, int] = {}
        for source in sorted(scores):
            for move, prob in zip(MOVES, rows[source]):
                target = source + move
                if prob <= 0 or not 0 <= target < len(rows):
                    continue
                value = scores[source] + math.log(prob)
                if target not in new_scores or value > new_scores[target]:
                    new_scores[target], back[target] = value, source
        if not new_scores:
            raise ValueError(f"transitions: no possible move into layer {layer}")
        scores = new_scores
        backpointers.append(back)
    level = max(sorted(scores), key=scores.__getitem__)
    path = [level]
    for back in reversed(backpointers[1:]):
        level = back[level]
        path.append(level)
    return path[::-1]
