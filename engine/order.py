"""Registration order: which frame to register to which, and the frames' focus order, found from how
well every pair of frames matches, so that neither depends on the order the files came in.

As panorama stitchers do (Brown & Lowe 2007), pairs are matched on their strongest keypoints; a pair's
strength is its number of consistent matches. Frames near in focus match best, so sorting by the Fiedler
vector of that graph's Laplacian (Atkins, Boman & Hendrickson 1998), mended by 2-opt, lays them out in
focus order. Frames a few apart in file order are matched first; only if they do not bear the file order
out is every pair matched, so the usual bracket costs time linear in its frames. Transforms are chained
along that order from the reference out; frames two apart are registered too, to close loops and name
the frames whose registration is uncertain.
"""
from __future__ import annotations

import numpy as np

from focusdrop.engine import geometry

BAND = 3  # frames at most this far apart in file order are matched first
CLEARLY_BETTER = 1.25  # the estimated order replaces the given one only if its neighbours match this much better

Matched = tuple[np.ndarray, int] | None
"""A pair's keypoint match, frame i -> frame j: (3, 3) similarity and number of matches, None if none."""


def band_pairs(count: int, width: int = BAND) -> list[tuple[int, int]]:
    """The pairs (i, j), j < i, at most ``width`` apart in file order."""
    return [(i, j) for i in range(count) for j in range(max(0, i - width), i)]


def all_pairs(count: int) -> list[tuple[int, int]]:
    """Every pair (i, j), j < i."""
    return band_pairs(count, count)


def strength_matrix(count: int, matched: dict[tuple[int, int], Matched]) -> np.ndarray:
    """(N, N) int32, symmetric: each matched pair's number of consistent matches, 0 elsewhere."""
    strength = np.zeros((count, count), np.int32)
    for (i, j), match in matched.items():
        if match is not None:
            strength[i, j] = strength[j, i] = match[1]
    return strength


def file_order_holds(strength: np.ndarray) -> bool:
    """Whether the frames matched so far (at least each one's neighbours in file order) link them all and
    no order of them is clearly better than the file order (CLEARLY_BETTER, as the focus order's choice),
    so that no other pair need be matched. In a dense bracket neighbours match about as well one, two or
    three frames apart: an estimate that swaps two of them is no reason to match every pair."""
    linked = components(strength)[0]
    return len(linked) == len(strength) and not clearly_better(strength, focus_order(strength, linked), linked)


def clearly_better(strength: np.ndarray, estimate: list[int], given: list[int]) -> bool:
    """Whether neighbours in the ``estimate`` order match at least CLEARLY_BETTER times better than in the
    ``given`` one (the same frames): only then does an estimated focus order replace the file order."""
    return path_strength(strength, estimate) >= CLEARLY_BETTER * path_strength(strength, given)


def components(strength: np.ndarray) -> list[list[int]]:
    """The groups of frames linked by matching pairs, largest first (ties: the one with the first frame)."""
    n, seen, groups = len(strength), set(), []
    for start in range(n):
        if start in seen:
            continue
        group, todo = [], [start]
        seen.add(start)
        while todo:
            i = todo.pop()
            group.append(i)
            for j in np.flatnonzero(strength[i]):
                if int(j) not in seen:
                    seen.add(int(j))
                    todo.append(int(j))
        groups.append(sorted(group))
    return sorted(groups, key=lambda g: (-len(g), g[0]))


def registration_tree(strength: np.ndarray, order: list[int], root: int) -> list[tuple[int, int]]:
    """Which frame each frame is registered to: its neighbour in focus ``order`` toward ``root`` (frames
    near in focus differ least in blur, so their registration is the most precise), or, where those two
    do not match, the frame it matches best among those already placed (a maximum spanning tree's edge).

    ``order`` must be linked by matching pairs (one of ``components``). Returns (child, parent) pairs, each
    parent placed before its children, so transforms can be chained from the root outwards in this order.
    """
    at = order.index(root)
    pending = sorted((k for k in order if k != root), key=lambda k: abs(order.index(k) - at))
    edges, placed = [], {root}
    while pending:
        for child in pending:
            position = order.index(child)
            inward = order[position - 1] if position > at else order[position + 1]
            parent = inward if inward in placed and strength[child, inward] > 0 else \
                max(placed, key=lambda p: strength[child, p])
            if strength[child, parent] > 0:
                break
        else:
            raise ValueError("the frames given are not linked by matching pairs")
        edges.append((child, parent))
        placed.add(child)
        pending.remove(child)
    return edges


def focus_order(strength: np.ndarray, members: list[int]) -> list[int]:
    """``members`` in focus order, from the spectral seriation of their matching strengths, then improved
    by reversing stretches where that makes neighbours match better; of the two directions, the one closer
    to the members' given order."""
    if len(members) < 3:
        return list(members)
    weights = strength[np.ix_(members, members)].astype(np.float64)
    laplacian = np.diag(weights.sum(axis=1)) - weights
    _, vectors = np.linalg.eigh(laplacian)
    ranked = _untangle(strength, [members[k] for k in np.argsort(vectors[:, 1], kind="stable")])
    forward = np.corrcoef(np.arange(len(ranked)), ranked)[0, 1]
    return ranked if forward >= 0 else ranked[::-1]


def _untangle(strength: np.ndarray, order: list[int]) -> list[int]:
    """Reverse stretches of ``order`` while that raises ``path_strength`` (2-opt): the spectral order can
    swap neighbours among heavily blurred frames, whose matches are few (two swaps in ten frames blurred
    by 30 px, mended by this)."""
    best = path_strength(strength, order)
    improved = True
    while improved:
        improved = False
        for i in range(len(order) - 1):
            for j in range(i + 2, len(order) + 1):
                candidate = order[:i] + order[i:j][::-1] + order[j:]
                score = path_strength(strength, candidate)
                if score > best:
                    order, best, improved = candidate, score, True
    return order


def path_strength(strength: np.ndarray, order: list[int]) -> int:
    """How well neighbours in ``order`` match: the sum of their strengths."""
    return int(sum(strength[a, b] for a, b in zip(order, order[1:])))


def loop_residuals(to_ref: dict[int, np.ndarray], direct: dict[tuple[int, int], np.ndarray],
                   size: tuple[int, int]) -> dict[int, float]:
    """For each frame, how far (px, largest over the corners of the image's middle half, where matches pin
    a transform down; median over the loops through the frame) the direct registration of a pair outside
    the chain lands from where the chained transforms put it. direct: {(i, j): (3, 3) frame i -> frame j}.
    A frame on a wrong link shows it on every loop through it. Frames on no loop are left out."""
    width, height = size
    corners = geometry.corners(width // 2, height // 2) + np.array([width / 4, height / 4])
    found: dict[int, list[float]] = {}
    for (i, j), matrix in direct.items():
        chained = np.linalg.inv(to_ref[j]) @ to_ref[i]  # frame i -> reference -> frame j
        residual = float(np.abs(geometry.apply(matrix, corners) - geometry.apply(chained, corners)).max())
        for k in (i, j):
            found.setdefault(k, []).append(residual)
    return {k: float(np.median(v)) for k, v in found.items()}
