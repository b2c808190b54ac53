"""A real browser for the tests: Debian's chromium driven by Playwright (its own browser download is not
reachable here, so it is given chromium's path), headless, with a new empty profile. Screenshots are kept
in test-artefacts/ at the project's top."""
from __future__ import annotations

from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARTEFACTS = Path(__file__).resolve().parents[1] / "test-artefacts"
# as the machine's notes say: without the background-networking flags chromium keeps knocking on a closed network
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def launch(playwright):
    """Debian's chromium, headless, as the tests run it (the ``browser`` fixture in conftest.py)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)


def screenshot(page, name: str) -> Path:
    """Keep a full-page screenshot as test-artefacts/NAME.png."""
    ARTEFACTS.mkdir(exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
