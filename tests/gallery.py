"""docs/real/NAME.png for every shared real bracket: 100 % crops, side by side, of FocusDrop's result, the
sharpest single frame there, enfuse (its contrast weighting and hard mask, given FocusDrop's aligned
frames) and focusweave (its own alignment, its output registered onto FocusDrop's). Not a test: a picture
to judge by eye, and the numbers of tests/yardsticks.py printed beside it.

    python tests/gallery.py [--focusweave PATH] [NAME ...]

enfuse comes from Debian's enfuse package; focusweave from PyPI, in a virtual environment of its own.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).parent))
from conftest import REAL_DATA  # noqa: E402
from focusdrop.engine.frames import list_frames, probe_frame, read_frame  # noqa: E402
from focusdrop.engine.pipeline import StackOptions, stack  # noqa: E402
from yardsticks import BRACKETS, TILE, band_detail, haze_profile, haze_steps, registered_frames, tile_detail, \
    to_unit  # noqa: E402

CROP = 256
DOCS = Path(__file__).parents[1] / "docs" / "real"


def enfuse(frames: list[np.ndarray], folder: Path) -> np.ndarray | None:
    """enfuse's focus-stacking fusion of already aligned (h, w, 3) float frames, or None without enfuse."""
    if shutil.which("enfuse") is None:
        return None
    paths = []
    for k, frame in enumerate(frames):
        paths.append(folder / f"aligned_{k:03d}.tif")
        tifffile.imwrite(paths[-1], np.round(frame * 65535).astype(np.uint16), photometric="rgb")
    out = folder / "enfuse.tif"
    subprocess.run(["enfuse", "--exposure-weight=0", "--saturation-weight=0", "--contrast-weight=1",
                    "--hard-mask", "--contrast-window-size=5", "-o", str(out), *map(str, paths)],
                   check=True, capture_output=True)
    return to_unit(tifffile.imread(out)[..., :3])


def focusweave(program: str | None, bracket: Path, folder: Path, onto: np.ndarray) -> np.ndarray | None:
    """focusweave's result on ``bracket``, registered onto ``onto`` (ECC, affine), or None without it."""
    if not program:
        return None
    out = folder / "focusweave.tif"
    run = subprocess.run([program, str(bracket), "--output", str(out)], capture_output=True, text=True)
    if run.returncode != 0:
        print(f"{bracket.name}: focusweave failed: {(run.stderr or run.stdout).strip().splitlines()[-1:]}")
        return None
    theirs = read_frame(probe_frame(out))
    theirs = to_unit(theirs)[..., :3]
    small = 1024 / max(onto.shape[:2])
    grey = [cv2.resize(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), None, fx=small, fy=small) for img in (onto, theirs)]
    (dy, dx) = np.subtract(theirs.shape[:2], onto.shape[:2]) * small / 2
    start = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
    _, warp = cv2.findTransformECC(grey[0], grey[1], start, cv2.MOTION_AFFINE,
                                   (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-6), None, 5)
    warp[:, 2] /= small
    return cv2.warpAffine(theirs, warp, onto.shape[1::-1], flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)


def crop_at(result: np.ndarray, haze: tuple | None) -> tuple[int, int]:
    """Top-left of the crop: the haze crop's middle, else the result's most detailed region."""
    if haze is not None:
        r0, r1, c0, c1 = haze[0]
        return (r0 + r1 - CROP) // 2, (c0 + c1 - CROP) // 2
    detail = cv2.GaussianBlur(band_detail(result).astype(np.float32), (0, 0), 2)
    y, x = np.unravel_index(np.argmax(detail), detail.shape)
    return (int(np.clip(y * TILE - CROP // 2, 0, result.shape[0] - CROP)),
            int(np.clip(x * TILE - CROP // 2, 0, result.shape[1] - CROP)))


def panel(images: dict[str, np.ndarray | None], top: int, left: int) -> np.ndarray:
    tiles = []
    for label, image in images.items():
        if image is None:
            continue
        tile = np.ascontiguousarray((np.clip(image[top:top + CROP, left:left + CROP], 0, 1) * 255).astype(np.uint8))
        cv2.putText(tile, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(tile, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(np.pad(tile, ((2, 2), (2, 2), (0, 0)), constant_values=255))
    return np.hstack(tiles)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--focusweave", help="the focusweave program (PyPI, in its own virtual environment)")
    args = parser.parse_args()
    DOCS.mkdir(parents=True, exist_ok=True)
    for bracket in BRACKETS:
        if args.names and bracket.name not in args.names:
            continue
        with tempfile.TemporaryDirectory() as temporary:
            folder = Path(temporary)
            stacked = stack(list_frames(REAL_DATA / bracket.name), StackOptions())
            ours, frames = to_unit(stacked.image), registered_frames(stacked)
            peers = {"enfuse": enfuse(frames, folder),
                     "focusweave": focusweave(args.focusweave, REAL_DATA / bracket.name, folder, ours)}
        top, left = crop_at(ours, bracket.haze)
        window = (slice(top, top + CROP), slice(left, left + CROP))
        sharpest = max(range(len(frames)), key=lambda k: band_detail(frames[k][window]).mean())
        images = {"FocusDrop": ours, f"sharpest: {stacked.alignment.frames[sharpest].path.name}":
                  frames[sharpest], **peers}
        picture = panel(images, top, left)
        cv2.imwrite(str(DOCS / f"{bracket.name}.png"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        for label, image in [("FocusDrop", ours), *peers.items()]:
            if image is None:
                continue
            line = f"{bracket.name} {label}: crop at ({top}, {left}); tiles {tile_detail(image, frames)}"
            if bracket.haze:
                crop, sharp = bracket.haze
                names = [info.path.name for info in stacked.alignment.frames]
                steps = haze_steps(haze_profile(image, frames[names.index(sharp)], crop))
                line += f"; haze steps {steps[0]:+.1f} / {steps[1]:+.1f} levels"
            print(line, flush=True)


if __name__ == "__main__":
    main()
