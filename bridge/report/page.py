"""report.html: the stack's JSON report, pictures and plots laid out by a Jinja2 template (page.html.j2)
as one self-contained page: every picture inline, no script or style from elsewhere, readable offline."""
from __future__ import annotations

import datetime
import html
from pathlib import Path

import numpy as np

from focusdrop.bridge.report.pictures import Pictures
from focusdrop.bridge.report.plots import alignment_motion, alignment_plot, gains_plot
from focusdrop.engine.pipeline import MAX_LOOP, StackResult

NOTHING = 0.001  # a frame supplying less of the result than this share is flagged as supplying nothing
STEP_NAMES = {"probe": "reading headers", "read": "decoding frames", "features": "finding features",
              "register": "registering", "exposure": "matching exposure", "warp": "resampling",
              "focus": "measuring focus", "fuse": "blending", "layers": "layers and previews",
              "convert": "converting", "write": "writing files"}


REFERENCE_NOTE = "reference: the others are aligned to it"
UNUSED_NOTE = "supplies nothing: a wasted exposure, or focused outside the subject's depth"


def frame_rows(result: StackResult, data: dict, pictures: Pictures) -> list[dict]:
    """One row per frame in focus order: name, previews, share, a note on the reference and the warnings
    about it (``flagged`` when there are any)."""
    a = result.alignment
    rows = []
    for k, entry in enumerate(data["frames"]):
        share = pictures.shares[k] if pictures.shares else None
        loop = entry["loop_px"]
        warnings = []
        if loop is not None and loop > MAX_LOOP:
            warnings.append(f"alignment uncertain: registered two ways, it lands {loop:.1f} px apart")
        if share is not None and share < NOTHING:
            warnings.append(UNUSED_NOTE)
        rows.append({"name": entry["file"], "frame": pictures.frames[k] if pictures.frames else None,
                     "mask": pictures.masks[k] if pictures.masks else None, "share": share,
                     "colour": pictures.colours[k] if pictures.colours else None, "matches": entry["matches"],
                     "loop": loop, "note": REFERENCE_NOTE if k == a.reference else "", "warnings": warnings,
                     "flagged": bool(warnings)})
    return rows


def render(title: str, result: StackResult, data: dict, pictures: Pictures, warnings: list[str]) -> str:
    """The page's HTML. data: bridge.stacking.report's JSON-ready report of ``result``."""
    from jinja2 import Environment, PackageLoader, select_autoescape  # here: only the report needs them
    environment = Environment(loader=PackageLoader("focusdrop.bridge.report", "."),
                              autoescape=select_autoescape(["html", "j2"]))
    a = result.alignment
    height, width, _ = a.frames[0].shape
    names = [info.path.name for info in a.frames]
    rows = frame_rows(result, data, pictures)
    unused = [f"{row['name']}: {UNUSED_NOTE}" for row in rows if UNUSED_NOTE in row["warnings"]]
    return environment.get_template("page.html.j2").render(
        title=title, made=datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), data=data, pictures=pictures,
        rows=rows, warnings=warnings + unused,
        alignment=alignment_plot(names, alignment_motion(a.to_ref, width, height), a.loops, a.reference, MAX_LOOP),
        gains=gains_plot(names, np.asarray(a.gains), a.reference),
        steps=[(STEP_NAMES.get(step, step), seconds) for step, seconds in data["seconds"].items()],
        crop_percent=[100.0 * v / s for v, s in zip(pictures.crop_box, pictures.size * 2)],
        width=width, height=height, max_loop=MAX_LOOP)


def page_title(outputs: list[Path]) -> str:
    """The page's title: the result's name."""
    return outputs[0].stem if outputs else "focus stack"


def short_page(title: str, outputs: list[str], note: str) -> str:
    """A page for a stack whose details were not kept (the service was stopped between its result and its
    report): its name, its results, why there is no more."""
    items = "".join(f"<li><code>{html.escape(o)}</code></li>" for o in outputs)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}: focus '
            f'stack report</title></head>\n<body style="font: 14px/1.45 system-ui, sans-serif; margin: 16px">'
            f'<h1>{html.escape(title)}</h1><p>Written:</p><ul>{items}</ul><p>{html.escape(note)}.</p></body></html>\n')
