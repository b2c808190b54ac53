"""Opening documents with GIMP 2.10 in batch mode (Debian's ``gimp`` package): a reader nobody here wrote."""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

SCRIPT = Path(__file__).with_name("gimp_dump.scm")


@dataclass
class GimpView:
    """What GIMP saw: layers top first as (name, visible, has_mask), masks top first (None where absent),
    the flattened image, GIMP's precision code (150: 8-bit, 250: 16-bit, gamma) and the ICC profile size."""

    layers: list[tuple[str, bool, bool]]
    masks: list[np.ndarray | None]
    flat: np.ndarray
    precision: int
    icc_bytes: int


def open_in_gimp(document: Path, workdir: Path) -> GimpView:
    console = shutil.which("gimp-console-2.10") or shutil.which("gimp-console")
    if console is None:
        pytest.fail("GIMP is not installed: apt-get install gimp (the README's test command does)")
    workdir.mkdir(parents=True, exist_ok=True)
    batch = f'(begin (load "{SCRIPT}") (dump "{document}" "{workdir}"))'
    run = subprocess.run([console, "-i", "-d", "-f", "-b", batch, "-b", "(gimp-quit 0)"],
                         capture_output=True, text=True, timeout=300)
    info = workdir / "info.txt"
    assert info.exists(), f"GIMP could not open {document.name}:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
    lines = info.read_text(encoding="utf-8").splitlines()
    layers = []
    for line in lines[3:]:
        name, visible, has_mask = line.rsplit("\t", 2)
        layers.append((name, visible == "1", has_mask == "1"))
    masks = [cv2.imread(str(workdir / f"mask{i}.png"), cv2.IMREAD_UNCHANGED) if has_mask else None
             for i, (_, _, has_mask) in enumerate(layers)]
    return GimpView(layers, masks, tifffile.imread(workdir / "flat.tif"), int(lines[1]), int(lines[2]))
