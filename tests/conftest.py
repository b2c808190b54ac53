"""Shared test data: synthetic brackets with ground truth, written once per session, and helpers."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from focusdrop.bridge.demo import psnr, to_unit  # noqa: F401  (the tests' scoring helpers)
from focusdrop.bridge.samples import srgb_profile, write_bracket
from focusdrop.engine.synthetic import BracketSpec, Truth

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"

# The bracket: 2 % breathing, 5 px shake, 0.3 degree rotation, +-4 % flicker, 16-bit.
STANDARD = BracketSpec(width=1200, height=800, frames=9, scene="sphere", breathing=0.02, shake=5.0,
                       rotation=0.3, flicker=0.04, bit_depth=16, seed=1)


@dataclass
class Bracket:
    truth: Truth
    paths: list[Path]
    icc: bytes

    @property
    def folder(self) -> Path:
        return self.paths[0].parent


@pytest.fixture(scope="session")
def standard_bracket(tmp_path_factory) -> Bracket:
    icc = srgb_profile()
    truth, paths = write_bracket(STANDARD, tmp_path_factory.mktemp("standard"), icc=icc)
    return Bracket(truth, paths, icc)


def focusdrop(*args: str) -> subprocess.CompletedProcess:
    """Run the installed command as a user would; returns the finished process (text output)."""
    return subprocess.run([sys.executable, "-m", "focusdrop.bridge.cli", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium driven by Playwright (tests/browser.py), one per test module: Playwright's sync API
    holds an event loop running on this thread while it lives, which other tests must not meet."""
    from playwright.sync_api import sync_playwright

    from browser import launch
    with sync_playwright() as playwright:
        launched = launch(playwright)
        yield launched
        launched.close()
