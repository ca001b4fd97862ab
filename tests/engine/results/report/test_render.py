"""The report renders in headless Chromium: a non-blank screenshot, the content in the
DOM, and no script error."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed "
                                "(Debian: apt-get install chromium); the HTML itself is tested elsewhere")


_JS_ERRORS = re.compile(r"<html[^>]*\sdata-js-errors=")


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def test_renders_in_headless_chromium(report_run, tmp_path):
    url = report_run.report.resolve().as_uri()
    shot = tmp_path / "shot.png"
    res = _chromium(tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,2000", url)
    assert shot.is_file(), res.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1280, 2000)
        grey = np.asarray(im.convert("L"), dtype=np.float32)
    # a blank or failed page is one flat colour; the report has text, tables and plots
    assert grey.std() > 20
    assert (grey < 128).mean() > 0.01

    res = _chromium(tmp_path / "profile-dom", "--dump-dom", url)
    dom = res.stdout
    assert 'data-rendered="ok"' in dom, res.stderr[-2000:]
    assert not _JS_ERRORS.search(dom)
    assert "1. Summary" in dom and "Figure 3." in dom
    assert report_run.exp.id in dom


def test_script_errors_would_be_caught(report_run, tmp_path):
    """The error hook works: the same page with a broken script is flagged in the DOM."""
    broken = tmp_path / "broken.html"
    html = report_run.report.read_text(encoding="utf-8")
    broken.write_text(html.replace("</main>", "</main><script>undefinedFunction();</script>"), encoding="utf-8")
    dom = _chromium(tmp_path / "profile", "--dump-dom", broken.as_uri()).stdout
    assert _JS_ERRORS.search(dom)
