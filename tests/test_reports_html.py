"""The HTML report: self-contained, and rendered by headless Chromium into a screenshot with charts."""

import io
import os
import re
import shutil
import struct
import subprocess
import zlib

import pytest

from crmkit.cli import main
from crmkit.cli._company import AS_OF, business_calendar
from crmkit.cli._demo import demo
from crmkit.reports import kpi_report, read_data, render_html
from crmkit.storage import open_store

pytest.importorskip("matplotlib", reason="the HTML report needs the report extra (matplotlib)")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    url = f"sqlite:///{folder}/demo.db"
    store = open_store(url)
    demo(io.StringIO(), size=300, seed=7, store=store, store_name=url, progress=io.StringIO())
    store = open_store(url)
    with store.transaction() as tx:
        data = read_data(tx)
    store.close()
    html = render_html(kpi_report(data, as_of=AS_OF, calendar=business_calendar()))
    path = folder / "report.html"
    path.write_text(html, encoding="utf-8")
    return path


def test_the_page_is_self_contained_with_six_inline_svg_charts(page):
    html = page.read_text(encoding="utf-8")
    assert html.count("<svg") == 6
    assert "<script" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing loaded from a network
    for caption in (
        "Lead funnel",
        "Cohort retention",
        "Revenue and churn over time",
        "Open pipeline by stage",
        "RFM segment sizes",
        "Customer acquisition cost by channel",
    ):
        assert f"<figcaption>{caption}</figcaption>" in html


def test_the_same_report_gives_the_same_page(page, tmp_path):
    url = f"sqlite:///{page.parent}/demo.db"
    target = tmp_path / "again.html"
    assert (
        main(
            [
                "report",
                "--store",
                url,
                "--as-of",
                "2026-09-30",
                "--timezone",
                "Europe/Berlin",
                "--office-hours",
                "08:00-18:00",
                "--html",
                str(target),
            ]
        )
        == 0
    )
    again = target.read_text(encoding="utf-8")
    assert again.count("<svg") == 6
    assert (
        main(
            [
                "report",
                "--store",
                url,
                "--as-of",
                "2026-09-30",
                "--timezone",
                "Europe/Berlin",
                "--office-hours",
                "08:00-18:00",
                "--html",
                str(tmp_path / "third.html"),
            ]
        )
        == 0
    )
    assert (tmp_path / "third.html").read_text(encoding="utf-8") == again


def _chromium():
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(
                "CI must render the HTML report: install Debian's chromium (apt-get install chromium)"
            )
        pytest.skip("chromium is not installed (apt-get install chromium); CI runs this test")
    return found


def _png_pixels(data):
    """Decode an 8-bit RGB(A) PNG (what Chromium writes) into rows of pixel tuples, without Pillow."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks, header = 8, [], None
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        position += 12 + length
    width, height, depth, colour, *_ = header
    assert depth == 8
    channels = {2: 3, 6: 4}[colour]
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                predictor = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + predictor) & 0xFF
        rows.append([tuple(line[x : x + 3]) for x in range(0, stride, channels)])
        previous = line
    return rows


def test_headless_chromium_renders_the_charts(page, tmp_path):
    browser = _chromium()
    shot = tmp_path / "report.png"
    subprocess.run(  # noqa: S603 - the installed chromium, with fixed arguments
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--screenshot={shot}",
            "--window-size=1200,1400",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert shot.exists()
    pixels = _png_pixels(shot.read_bytes())
    assert (len(pixels[0]), len(pixels)) == (1200, 1400)
    colours = {pixel for row in pixels[::4] for pixel in row[::4]}
    assert len(colours) > 50  # not blank: charts, text and the heat map
    teal = sum(1 for row in pixels[::2] for r, g, b in row[::2] if (r, g, b) == (0x00, 0x89, 0x7B))
    assert teal > 2000  # the teal bars of the funnel, revenue and RFM charts were drawn


def test_without_chromium_the_test_skips_outside_ci_and_fails_in_ci(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        _chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must render the HTML report"):
        _chromium()
