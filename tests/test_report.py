"""report.html: its pictures (engine.preview) on small arrays, and the page of a real run read back: self-contained,
one row per frame with its previews and share, a wasted frame flagged, the plots there."""
from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import cv2
import numpy as np
import pytest

from browser import screenshot
from conftest import focusdrop
from focusdrop.bridge.samples import write_bracket
from focusdrop.engine.preview import frame_shares, mask_previews, preview, sharpest_window
from focusdrop.engine.synthetic import BracketSpec


def test_preview_keeps_the_aspect_and_brings_16_bits_to_8():
    image = np.full((300, 600, 3), 65535 // 2, np.uint16)
    small = preview(image, 100)
    assert small.shape == (50, 100, 3) and small.dtype == np.uint8
    assert abs(int(small[10, 10, 0]) - 128) <= 1
    assert preview(np.zeros((40, 20, 1), np.float32), 100).shape == (40, 20, 1)  # never enlarged


def test_preview_refuses_a_flat_array():
    with pytest.raises(ValueError, match="expected an \\(H, W, C\\) image"):
        preview(np.zeros((10, 10), np.float32), 5)


def test_sharpest_window_finds_the_textured_patch():
    image = np.full((400, 600, 3), 0.5, np.float32)
    rng = np.random.default_rng(0)
    image[240:340, 380:480] = rng.random((100, 100, 1), np.float32)
    x, y = sharpest_window(image, 100)
    assert abs(x - 380) <= 8 and abs(y - 240) <= 8
    assert sharpest_window(image, 1000) == (0, 0)  # larger than the image: the whole of it


def test_frame_shares_and_masks_follow_the_depth_map():
    depth = np.zeros((100, 200), np.uint8)
    depth[:, 150:] = 2  # frame 1 supplies nothing
    assert frame_shares(depth, 3).tolist() == [0.75, 0.0, 0.25]
    masks = mask_previews(depth, 3, 50)
    assert masks.shape == (3, 25, 50)
    assert masks[0, :, :35].min() == 255 and masks[0, :, 40:].max() == 0
    assert masks[1].max() == 0
    assert masks[2, :, 40:].min() == 255


class _Page(HTMLParser):
    """The page's elements as (tag, attributes) and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def page_of_a_bracket_with_a_wasted_frame(tmp_path_factory):
    """A 6-frame bracket plus a seventh frame: a copy of the first, blurred past use (a wasted exposure),
    stacked by the command with --report-html."""
    root = tmp_path_factory.mktemp("report")
    _, paths = write_bracket(BracketSpec(width=640, height=440, frames=6, bit_depth=16, seed=5), root / "bracket")
    frame = cv2.imread(str(paths[0]), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(root / "bracket" / "frame_07.tif"), cv2.GaussianBlur(frame, (0, 0), 12))
    page = root / "report.html"
    done = focusdrop("stack", root / "bracket", "-o", root / "out.psd", "--report-html", page)
    assert done.returncode == 0, done.stderr
    parsed = _Page()
    parsed.feed(page.read_text(encoding="utf-8"))
    return page, parsed


def test_the_page_is_self_contained_and_small(page_of_a_bracket_with_a_wasted_frame):
    page, parsed = page_of_a_bracket_with_a_wasted_frame
    assert page.stat().st_size < 800_000
    sources = [attrs.get("src") for tag, attrs in parsed.elements if "src" in attrs]
    assert sources and all(s.startswith("data:image/") for s in sources), "a picture from outside the page"
    assert not [attrs for tag, attrs in parsed.elements if tag in ("link", "script") and
                ("href" in attrs or "src" in attrs)], "a style or script from outside the page"
    for source in sources:  # each picture decodes
        data = np.frombuffer(base64.b64decode(source.split(",", 1)[1]), np.uint8)
        assert cv2.imdecode(data, cv2.IMREAD_UNCHANGED) is not None


def test_the_page_shows_every_frame_with_its_mask_and_share(page_of_a_bracket_with_a_wasted_frame):
    page, parsed = page_of_a_bracket_with_a_wasted_frame
    html = page.read_text(encoding="utf-8")
    rows = re.findall(r'<tr class="frame.*?</tr>', html, re.S)
    assert len(rows) == 7
    for row in rows:
        assert row.count("<img") == 2  # the aligned frame and its mask
    shares = [float(s) for s in re.findall(r'class="num share">([\d.]+) %', html)]
    assert len(shares) == 7 and abs(sum(shares) - 100) < 0.5
    wasted = [row for row in rows if "frame_07.tif" in row]
    assert len(wasted) == 1 and "flagged" in wasted[0] and "supplies nothing" in wasted[0]
    warnings = re.search(r'<ul id="warnings">(.*?)</ul>', html, re.S).group(1)
    assert "frame_07.tif: supplies nothing" in warnings
    assert sum("supplies nothing" in row for row in rows) == 1  # the six real frames each supply part
    legend = re.search(r'<div class="legend">(.*?)</div>', html, re.S).group(1)
    assert legend.count("<span") == 7


def test_the_page_has_the_crop_the_plots_and_the_times(page_of_a_bracket_with_a_wasted_frame):
    page, parsed = page_of_a_bracket_with_a_wasted_frame
    ids = {attrs.get("id") for _, attrs in parsed.elements}
    assert {"warnings", "result", "crop", "depth", "frames", "alignment", "gains", "steps"} <= ids
    html = page.read_text(encoding="utf-8")
    crop = next(attrs for tag, attrs in parsed.elements if tag == "img" and attrs.get("alt", "").startswith("100 %"))
    assert (crop["width"], crop["height"]) == ("400", "400")  # at 100 %: the crop's own pixels
    assert html.count("<svg") == 2
    assert re.search(r"peak memory</td><td class=\"num\">\d+ MB", html)


def test_the_page_opens_offline_in_a_browser_with_every_picture_shown(page_of_a_bracket_with_a_wasted_frame, browser):
    page_file, _ = page_of_a_bracket_with_a_wasted_frame
    context = browser.new_context(offline=True, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.goto(page_file.as_uri())
    broken = page.eval_on_selector_all("img", "images => images.filter(i => !i.complete || i.naturalWidth === 0)"
                                              ".map(i => i.alt)")
    assert broken == []
    assert page.locator("img").count() == 1 + 1 + 1 + 2 * 7  # result, crop, depth map, each frame and mask
    for plot in ("#alignment svg", "#gains svg"):
        box = page.locator(plot).bounding_box()
        assert box["width"] > 400 and box["height"] > 100
    crop = page.locator("#crop img")
    before = crop.bounding_box()["width"]
    page.locator("#crop").click()
    assert crop.bounding_box()["width"] == pytest.approx(2 * before, abs=2)  # zoomed to 200 %
    assert page.locator("#warnings").inner_text().count("supplies nothing") == 1
    screenshot(page, "report")
    context.close()


def test_frame_rows_name_what_is_remarkable_and_take_frames_without_a_loop():
    from types import SimpleNamespace

    from focusdrop.bridge.report.page import UNUSED_NOTE, frame_rows
    result = SimpleNamespace(alignment=SimpleNamespace(reference=1))
    data = {"frames": [{"file": f"f{k}.tif", "matches": 40, "loop_px": loop} for k, loop in enumerate((None, 0.2, 2.4))]}
    pictures = SimpleNamespace(shares=[0.5, 0.5, 0.0], frames=[], masks=[], colours=[])
    rows = frame_rows(result, data, pictures)
    assert [row["flagged"] for row in rows] == [False, False, True]
    assert rows[1]["note"].startswith("reference") and rows[0]["note"] == ""
    assert rows[2]["warnings"] == ["alignment uncertain: registered two ways, it lands 2.4 px apart", UNUSED_NOTE]
