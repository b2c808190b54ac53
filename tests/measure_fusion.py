"""Fusion quality on held-out-style synthetic brackets, printed as a table (not a test: a measurement).

    python tests/measure_fusion.py [--size 1200x800] [--keep DIR]

For each bracket: PSNR against the true all-in-focus image, the halo ring error beside near strands and
far from them (8-bit levels, low-passed), thin lines beside them (band-passed), the band gap around depth
steps (dB), and the stacking time. For the layered steps ("ledges"), where the near edge's blur covers the far
band beside every step in every frame that has that band sharp, also the band's PSNR (within 12 px of a step)
and that of the best-frame oracle: each pixel taken from the aligned frame closest to the truth, which no
stacker can know, so the band's floor.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).parent))
from focusdrop.bridge.demo import psnr, to_unit  # noqa: E402
from focusdrop.bridge.samples import write_bracket  # noqa: E402
from focusdrop.engine.pipeline import StackOptions, stack  # noqa: E402
from focusdrop.engine.synthetic import BracketSpec  # noqa: E402
from halo import best_frame_oracle, distance_from, parallel_lines, ring_errors, step_band_gap, step_edges  # noqa: E402

BRACKETS = {
    "strands": BracketSpec(scene="strands", frames=9, seed=21),
    "strands+cast": BracketSpec(scene="strands", frames=9, seed=21, cast=0.06),
    "strands+cast15": BracketSpec(scene="strands", frames=9, seed=21, cast=0.15),
    "strands+cast30": BracketSpec(scene="strands", frames=9, seed=21, cast=0.30),
    "sphere16": BracketSpec(scene="sphere", frames=9, seed=1),
    "steps8-hard": BracketSpec(scene="steps", frames=15, bit_depth=8, shake=8.0, rotation=0.5, flicker=0.05,
                               noise=0.006, seed=5),
    "tilted8": BracketSpec(scene="tilted", frames=11, bit_depth=8, seed=3),
    "ledges8-hard": BracketSpec(scene="ledges", frames=15, bit_depth=8, shake=8.0, rotation=0.5, flicker=0.05,
                                noise=0.006, seed=5),
}


def measure(name: str, spec: BracketSpec, folder: Path, options: StackOptions) -> dict:
    truth, paths = write_bracket(spec, folder / name)
    started = time.perf_counter()
    result = stack(paths, options)
    seconds = time.perf_counter() - started
    x0, y0, x1, y1 = result.alignment.box
    image, true_image = to_unit(result.image), truth.image[y0:y1, x0:x1]
    depth = truth.depth[y0:y1, x0:x1]
    row = {"bracket": name, "psnr": psnr(image, true_image), "seconds": seconds}
    if spec.scene == "strands":
        row["ring"], row["far"] = ring_errors(image, true_image, depth < 1.0)
        row["lines"] = parallel_lines(image, true_image, depth < 1.0)
    else:
        row["band gap"] = step_band_gap(image, true_image, depth)
    if spec.scene == "ledges":
        band = distance_from(step_edges(depth)) <= 12.0
        row["band"] = psnr(image[band], true_image[band])
        row["oracle band"] = psnr(best_frame_oracle(result, true_image)[band], true_image[band])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1200x800")
    parser.add_argument("--only", nargs="*", help="bracket names to measure")
    parser.add_argument("--keep", help="write the brackets here instead of a temporary folder")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="focusdrop-measure-"))
    for name, spec in BRACKETS.items():
        if args.only and name not in args.only:
            continue
        spec = BracketSpec(**{**spec.__dict__, "width": width, "height": height})
        row = measure(name, spec, folder, StackOptions())
        print("  ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()),
              flush=True)


if __name__ == "__main__":
    main()
