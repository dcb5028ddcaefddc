"""A real headless browser for UI tests: Debian's chromium driven by Playwright (no browser download).

``.ci/run`` installs chromium with apt-get when it is missing; ``open_page`` fails with that hint otherwise.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_path() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@contextlib.contextmanager
def open_page(width: int = 1600, height: int = 1000) -> Iterator[object]:
    """A Playwright page in headless chromium (sync API: use it from a sync test)."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    if path is None:
        raise RuntimeError("no chromium on this machine: `apt-get install chromium` (.ci/run does it)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()
