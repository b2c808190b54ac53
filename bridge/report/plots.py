"""The report's plots, drawn by matplotlib (its object interface, no pyplot: safe in the service's threads)
as SVG. Alignment per frame in focus order: where the frame's centre lands on the reference
(shift), its magnification against the reference (breathing), its rotation, and its loop residual (how far
registering it another way lands); the exposure gains per channel (flicker). Drawn as SVG with its text
as text: sharp at any zoom, and a few tens of KB where a PNG took 80-120."""
from __future__ import annotations

import io

import numpy as np

from focusdrop.engine import geometry

WIDTH_IN = 9.0  # inches: 864 px wide at the SVG default of 96 px an inch
LEFT_IN, BOTTOM_IN = 0.8, 1.1  # fixed margins for the axis labels and the slanted frame names (constrained
# layout found them itself, at half of each plot's time)
CHANNEL_COLOURS = {1: ["#444444"], 3: ["#d62728", "#2ca02c", "#1f77b4"]}
MARK = "#d62728"  # uncertain frames


def _svg(figure) -> str:
    """The figure as an <svg> element to put in the page as it is."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    FigureCanvasSVG(figure)
    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "focusdrop"}):
        figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _figure(height_in: float):
    """A figure WIDTH_IN wide, with fixed margins."""
    from matplotlib.figure import Figure
    figure = Figure(figsize=(WIDTH_IN, height_in))
    figure.subplots_adjust(left=LEFT_IN / WIDTH_IN, right=0.98, top=1 - 0.1 / height_in, bottom=BOTTOM_IN / height_in)
    return figure


def _frame_axis(axis, names: list[str]) -> None:
    axis.set_xticks(range(len(names)))
    step = max(1, len(names) // 16)
    axis.set_xticklabels([name if k % step == 0 else "" for k, name in enumerate(names)], rotation=60,
                         ha="right", fontsize=7)
    axis.set_xlim(-0.5, len(names) - 0.5)


def alignment_motion(to_ref: np.ndarray, width: int, height: int) -> dict[str, np.ndarray]:
    """Per frame: shift_x, shift_y (px, where the frame's centre lands on the reference minus the centre),
    scale_pct (magnification against the reference, %), rotation_deg. to_ref: (N, 3, 3) frame -> reference."""
    centre = np.array([[(width - 1) / 2, (height - 1) / 2]])
    shifts = np.array([(geometry.apply(m, centre) - centre)[0] for m in to_ref])
    scales, angles = zip(*(geometry.scale_and_angle(m) for m in to_ref))
    return {"shift_x": shifts[:, 0], "shift_y": shifts[:, 1], "scale_pct": (np.array(scales) - 1.0) * 100.0,
            "rotation_deg": np.array(angles)}


def alignment_plot(names: list[str], motion: dict[str, np.ndarray], loops: list[float | None],
                   reference: int, max_loop: float) -> str:
    """Four panels sharing the frame axis (focus order): shift, scale, rotation, loop residual; the
    reference dashed, frames whose loop exceeds ``max_loop`` px marked."""
    figure = _figure(6.4)
    axes = figure.subplots(4, 1, sharex=True, gridspec_kw={"hspace": 0.12})
    x = np.arange(len(names))
    axes[0].plot(x, motion["shift_x"], "o-", ms=3, label="x")
    axes[0].plot(x, motion["shift_y"], "s-", ms=3, label="y")
    axes[0].set_ylabel("shift, px")
    axes[0].legend(fontsize=7, loc="best")
    axes[1].plot(x, motion["scale_pct"], "o-", ms=3, color="#9467bd")
    axes[1].set_ylabel("scale, %")
    axes[2].plot(x, motion["rotation_deg"], "o-", ms=3, color="#8c564b")
    axes[2].set_ylabel("rotation, °")
    residual = np.array([np.nan if v is None else v for v in loops], float)
    axes[3].bar(x, np.nan_to_num(residual), color=[MARK if v > max_loop else "#7f7f7f" for v in
                                                    np.nan_to_num(residual)])
    axes[3].axhline(max_loop, color=MARK, lw=0.8, ls=":")
    axes[3].set_ylabel("loop, px")
    for axis in axes:
        axis.axvline(reference, color="#555555", lw=0.8, ls="--")
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
        for k in np.flatnonzero(np.nan_to_num(residual) > max_loop):
            axis.axvspan(k - 0.4, k + 0.4, color=MARK, alpha=0.12)
    _frame_axis(axes[3], names)
    return _svg(figure)


def gains_plot(names: list[str], gains: np.ndarray, reference: int) -> str:
    """Each frame's exposure gain per channel against the reference (1 = the same), in focus order."""
    figure = _figure(2.8)
    axis = figure.subplots()
    channels = gains.shape[1]
    labels = ["grey"] if channels == 1 else ["red", "green", "blue"]
    for c in range(channels):
        axis.plot(np.arange(len(names)), gains[:, c], "o-", ms=3, color=CHANNEL_COLOURS[channels][c],
                  label=labels[c])
    axis.axvline(reference, color="#555555", lw=0.8, ls="--")
    axis.set_ylabel("gain")
    axis.legend(fontsize=7, loc="best")
    axis.grid(alpha=0.3)
    axis.tick_params(labelsize=7)
    _frame_axis(axis, names)
    return _svg(figure)
