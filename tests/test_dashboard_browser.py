"""The dashboard in a real browser (headless Chromium from the distribution's packages) against a
real worker fed through Kafka: its numbers and charts come from live data.

Chromium is the system's (`/usr/bin/chromium`, `apt-get install chromium`; `.ci/run` installs
it): Playwright drives it, its own browser builds are never downloaded. Without Chromium the
test is skipped on a developer's machine and FAILS in CI (CI or STREAMSVC_REQUIRE_BROWSER set).
Set STREAMSVC_DASHBOARD_PNG=docs/dashboard.png to keep the screenshot for the README.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer

from streamsvc.devbroker import free_port
from tests.conftest import ServiceProcs, stop_group, wait_for

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
N_EVENTS, DRIFT_AT = 3000, 1500
MALFORMED = [b"not json at all"] * 3 + [b'{"id": "m1"}'] * 2 + [b"[1, 2, 3]"]


def _chromium() -> str:
    path = os.environ.get("STREAMSVC_CHROMIUM") or shutil.which("chromium") or \
        shutil.which("chromium-browser")
    if path:
        return path
    msg = "Chromium is not installed (apt-get install -y chromium)"
    if os.environ.get("STREAMSVC_REQUIRE_BROWSER", "") not in ("", "0", "false") or \
            os.environ.get("CI", "") not in ("", "0", "false"):
        pytest.fail(msg + " and this run requires the browser test (CI)")
    pytest.skip(msg)


@pytest.fixture
def browser_page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    exe = _chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.errors = []  # type: ignore[attr-defined]
            page.on("pageerror", lambda e: page.errors.append(str(e)))
            yield page
        finally:
            browser.close()


def _events() -> list[dict[str, Any]]:
    """y = (x1 > 0.5) until DRIFT_AT, then the opposite: a concept drift no learner shrugs off
    (a switch to y = (x2 > 0.5) was learned by DriftMoE within ~25 errors in some runs, too few
    for any alert: the test is about the page, not about the detector)."""
    rng = random.Random(5)
    out = []
    for i in range(N_EVENTS):
        x1, x2 = rng.random(), rng.random()
        out.append({"id": f"b{i}", "x": {"x1": x1, "x2": x2},
                    "y": int((x1 > 0.5) != (i >= DRIFT_AT))})
    return out


def _get(url: str) -> Any:
    return httpx.get(url, timeout=5).json()


def _badge(page: Any) -> tuple[str | None, str]:
    return page.get_attribute("#ready", "data-state"), page.inner_text("#ready")


@pytest.mark.kafka
def test_dashboard_draws_live_data_from_a_kafka_worker(service: ServiceProcs,
                                                       browser_page: Any) -> None:
    page = browser_page
    env = {"STREAMSVC_WORKER__STATUS_INTERVAL": "1.0"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api = service.start("api", "--port", str(port), env=env, name="api")

    def api_up() -> bool:
        if api.poll() is not None:
            pytest.fail(service.log_of(api))
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(api_up, 60, "sidecar up")
    page.goto(url + "/")
    # no worker yet: the badge is red, never green
    wait_for(lambda: _badge(page)[0] == "bad", 20, "badge red without a worker")

    service.start_worker(env=env)
    # a worker, but nothing learned: amber ("waiting"), still not green
    wait_for(lambda: _badge(page)[0] == "warn", 60, "badge amber while nothing is learned")
    assert "no examples learned yet" in _badge(page)[1]

    prod = KafkaProducer(bootstrap_servers=service.bootstrap, linger_ms=10)
    events = _events()
    for i, e in enumerate(events):
        prod.send(service.topics["events"], json.dumps(e).encode())
        if i == 100:
            for raw in MALFORMED:
                prod.send(service.topics["events"], raw)
        if i % 250 == 249:  # a stream, not one burst: the charts get points along the way
            prod.flush()
            time.sleep(0.5)
    prod.flush()
    prod.close()

    def caught_up() -> dict | None:
        m = _get(f"{url}/models/default")
        w = _get(f"{url}/workers")
        dead = sum(x["counters"].get("dead_letters", 0) for x in w)
        return m if m["examples_learned"] == N_EVENTS and dead == len(MALFORMED) else None

    model = wait_for(caught_up, 180, "worker learned every event, dead-lettered the rest")
    workers = _get(f"{url}/workers")
    reasons: dict[str, int] = {}
    for w in workers:
        for r, n in w["dead_letters_by_reason"].items():
            reasons[r] = reasons.get(r, 0) + n
    assert sum(reasons.values()) == len(MALFORMED) and len(reasons) >= 2

    # the page shows what the API reports (it refreshes every 2 s)
    card = '.model[data-model="default"]'
    wait_for(lambda: page.inner_text(f"{card} [data-field=examples_learned]")
             == str(model["examples_learned"]), 30, "learned count on the model card")
    assert page.inner_text(f"{card} [data-field=examples_seen]") == str(N_EVENTS)
    assert _badge(page) == ("ok", "ready")
    assert page.inner_text("#tp-kv [data-field=dead]") == str(len(MALFORMED))
    rows = page.eval_on_selector_all("#tp-reasons tr", "rs => rs.slice(1).map(r => "
                                     "[...r.cells].map(c => c.textContent))")
    assert {r: int(n) for r, n in rows} == reasons
    wrows = page.eval_on_selector_all("#tp-workers tr", "rs => rs.slice(1).map(r => "
                                      "[...r.cells].map(c => c.textContent))")
    assert [(r[0], r[1]) for r in wrows] == [
        (w["worker"], " ".join(map(str, w["partitions"])) or "–") for w in workers]

    # charts drawn from the data: the accuracy line has a point per history entry, inside the
    # plot, and the records/s chart has a line per worker direction
    hist = _get(f"{url}/models/default/history")
    pts = page.eval_on_selector(f"{card} svg polyline", "p => p.getAttribute('points')")
    xy = [tuple(map(float, p.split(","))) for p in pts.split()]
    drawn = [h for h in hist if h.get("rolling_accuracy") is not None]
    assert len(xy) == len(drawn) >= 2
    assert all(0 <= x <= 500 and 0 <= y <= 190 for x, y in xy)
    assert xy[-1][0] > xy[0][0]  # along examples learned
    ticks = page.eval_on_selector_all(f"{card} svg text[text-anchor=middle]",
                                      "ts => ts.map(t => t.textContent)")
    assert "examples learned" in ticks and "0" in ticks and len(ticks) >= 4
    assert page.eval_on_selector_all("#tp-rates polyline", "ps => ps.length") == \
        2 * len(workers)
    # the drift alerts the API holds (the label rule flips mid-stream) are marked on the
    # chart and listed in the timeline
    def marked() -> tuple[int, int, int] | None:
        n = len(_get(f"{url}/alerts?limit=500"))
        on_chart = page.eval_on_selector_all(
            f"{card} svg line title", "ts => ts.filter(t => / drift \\(/.test(t.textContent))"
            ".length")
        rows = page.eval_on_selector_all("#alert-table tr", "rs => rs.length - 1")
        seen.append((n, on_chart, rows))
        return (n, on_chart, rows) if n and on_chart == n and rows == min(50, n) else None

    seen: list[tuple[int, int, int]] = []
    try:
        wait_for(marked, 30, "alerts marked on the chart and listed")
    except AssertionError as e:
        raise AssertionError(f"{e}; (alerts, on chart, listed) seen: {seen[-3:]}; "
                             f"model: {_get(f'{url}/models/default')}") from None
    assert not page.errors, page.errors

    out = os.environ.get("STREAMSVC_DASHBOARD_PNG")
    time.sleep(2.5)  # one more refresh, so the screenshot shows settled charts
    page.screenshot(path=str(service.tmp / "dashboard.png"), full_page=True)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(service.tmp / "dashboard.png", out)


def test_demo_dashboard_shows_rejected_rows_and_no_green_badge(tmp_path: Path,
                                                                browser_page: Any) -> None:
    """Every row of the user's file rejected: the page says so (amber badge, dead letters by
    reason), instead of 'waiting for data' under a green badge."""
    rows = ["a,b,label"] + [f"0.{i},x{i}" for i in range(1, 31)] + \
        [f"0.{i},0.3,1,9" for i in range(1, 11)]
    (tmp_path / "bad.csv").write_text("\n".join(rows) + "\n")
    port = free_port()
    log = open(tmp_path / "demo.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamsvc.cli", "demo", "--file", "bad.csv", "--target",
         "label", "--serve", "--port", str(port)], cwd=tmp_path, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True)
    page = browser_page
    try:
        wait_for(lambda: "Dashboard:" in (tmp_path / "demo.log").read_text()
                 if proc.poll() is None else pytest.fail((tmp_path / "demo.log").read_text()),
                 60, "demo done, dashboard up")
        url = f"http://127.0.0.1:{port}"
        reasons = _get(f"{url}/workers")[0]["dead_letters_by_reason"]
        assert reasons == {"too few values": 30, "too many values": 10}
        page.goto(url + "/")
        wait_for(lambda: page.get_attribute("#ready", "data-state") == "warn", 20,
                 "amber badge")
        assert page.inner_text("#ready") == \
            "waiting: no examples learned yet (40 dead letters, see below)"
        assert page.inner_text("#tp-kv [data-field=dead]") == "40"
        rows_shown = page.eval_on_selector_all("#tp-reasons tr", "rs => rs.slice(1).map(r => "
                                               "[...r.cells].map(c => c.textContent))")
        assert {r: int(n) for r, n in rows_shown} == reasons
        card = '.model[data-model="default"]'
        assert page.inner_text(f"{card} [data-field=examples_learned]") == "0"
        assert "no examples learned yet" in page.text_content(f"{card} svg")
        assert not page.errors, page.errors

        # the API docs render from the sidecar alone: no request leaves it (offline works)
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        page.goto(url + "/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=20_000)
        paths = page.eval_on_selector_all(".opblock-summary-path",
                                          "ps => ps.map(p => p.textContent.trim())")
        assert {"/health", "/ready", "/models/{name}", "/schemas/{topic}"} <= set(paths)
        assert requested and all(u.startswith(url + "/") or u.startswith("data:")
                                 for u in requested), requested
        assert not page.errors, page.errors
    finally:
        stop_group(proc, signal.SIGINT, 20)
        log.close()
