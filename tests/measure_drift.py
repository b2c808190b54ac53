"""Alignment drift on generated brackets, told apart from the generator's own content motion (a measurement).

    python tests/measure_drift.py [--blur 40] [--seeds 4 7 11] [--keep DIR]

The generator's defocus (each pixel gathers from a Gaussian of its own width) moves content between frames
focused at different depths, by the change of -grad(sigma^2): a shift no lens makes. So a bracket rendered
with no motion at all still registers about 1 px off at the corners under heavy blur. For each bracket (10 x
1600x1200, 8-bit, the issue's shake, rotation and breathing), in file order and shuffled, this prints the
largest corner error of the transforms found against the truth; of those found on the same bracket held still
against no motion; and of the first against the truth composed with the second: what the aligner adds.
"""
from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from focusdrop.bridge.samples import write_bracket
from focusdrop.engine import geometry
from focusdrop.engine.frames import probe_frame
from focusdrop.engine.pipeline import StackOptions, align_frames
from focusdrop.engine.synthetic import BracketSpec

DRIFT = BracketSpec(width=1600, height=1200, frames=10, max_blur=40.0, shake=20.0, rotation=0.3,
                    breathing=0.01, bit_depth=8, noise=0.01, seed=4)
ORDERS = ("given", "shuffled")


def held_still(spec: BracketSpec) -> BracketSpec:
    """The same bracket with no shake, rotation or breathing: its frames differ only by focus."""
    return dataclasses.replace(spec, shake=0.0, rotation=0.0, breathing=0.0)


def found_transforms(paths: list[Path], order: str) -> tuple[dict[int, np.ndarray], int]:
    """Align ``paths`` (focus order) as given or shuffled (the focus order then found from the frames).

    Returns each frame's 3x3 frame -> reference transform keyed by its focus index, and the reference's index.
    """
    focus = {path: k for k, path in enumerate(paths)}
    if order == "shuffled":
        paths = [paths[i] for i in np.random.default_rng(1).permutation(len(paths))]
    options = StackOptions(order="given" if order == "given" else "auto")
    alignment = align_frames([probe_frame(path) for path in paths], options)
    focus_index = [focus[info.path] for info in alignment.frames]
    return dict(zip(focus_index, alignment.to_ref)), focus_index[alignment.reference]


def corner_error(found: np.ndarray, true: np.ndarray, width: int, height: int) -> float:
    """Largest distance, px, between where two frame -> reference transforms put the reference's corners."""
    corners = geometry.corners(width, height)
    return float(np.abs(geometry.apply(np.linalg.inv(found), corners)
                        - geometry.apply(np.linalg.inv(true), corners)).max())


def drift_figures(moving: list[Path], still: list[Path], true_transforms: np.ndarray, spec: BracketSpec,
                  order: str) -> dict[str, float]:
    """Largest corner errors, px: found against the truth, the still bracket against no motion, and found
    against the truth composed with what the still bracket finds (what the aligner adds)."""
    found, reference = found_transforms(moving, order)
    found_still, reference_still = found_transforms(still, order)
    if reference != reference_still:
        raise ValueError("the moving and the still bracket chose different references")
    to_scene = {k: np.linalg.inv(true_transforms[k]) for k in found}  # frame k pixel -> scene
    back = true_transforms[reference]  # scene -> reference pixel
    size = spec.width, spec.height
    return {
        "against truth": max(corner_error(found[k], back @ to_scene[k], *size) for k in found),
        "still": max(corner_error(found_still[k], np.eye(3), *size) for k in found),
        "added": max(corner_error(found[k], back @ found_still[k] @ to_scene[k], *size) for k in found),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blur", type=float, default=DRIFT.max_blur)
    parser.add_argument("--seeds", type=int, nargs="*", default=[4, 7, 11])
    parser.add_argument("--scene", default=DRIFT.scene)
    parser.add_argument("--keep", help="write the brackets here instead of a temporary folder")
    args = parser.parse_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="focusdrop-drift-"))
    for seed in args.seeds:
        spec = dataclasses.replace(DRIFT, max_blur=args.blur, seed=seed, scene=args.scene)
        truth, moving = write_bracket(spec, folder / f"{args.scene}-{args.blur:g}px-seed{seed}")
        _, still = write_bracket(held_still(spec), folder / f"{args.scene}-{args.blur:g}px-seed{seed}-still")
        for order in ORDERS:
            row = drift_figures(moving, still, truth.transforms, spec, order)
            print(f"{args.scene} {args.blur:g} px seed {seed} {order:8s}  largest corner error, px: "
                  + "  ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)


if __name__ == "__main__":
    main()
