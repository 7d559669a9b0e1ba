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


# -- text from Kafka is data, never markup; failures are named as they are -----------------------
PWN = "window.__pwned = (window.__pwned || 0) + 1"
# breaks out of an attribute if unescaped, then an image whose error handler runs script
EVIL = f'x" onmouseover="{PWN}"><img src=x onerror="{PWN}">'
EVIL_WORKER = f"<img src=y onerror='{PWN}'>"
TOKEN = "dashboard-token-0123456789abcdef"


def _hostile_records(now: float) -> tuple[list[tuple[str, dict]], list[dict]]:
    """Status records (key, value) and drift alerts as a foreign producer on the shared Kafka
    could write them: every free-text field the dashboard shows carries markup."""
    shard = f"{EVIL}#0"
    experts = {"experts": [{"index": EVIL, "class": EVIL, "share": 0.6, "recent_share": 0.7,
                            "rolling_accuracy": 0.9, "n_leaves": EVIL, "depth": EVIL,
                            "n_learned": EVIL}],
               "router": {"loss_ema": EVIL, "n_updates": EVIL}, "n_expert_resets": EVIL,
               "last_expert": EVIL}
    statuses = [(shard, {"model": EVIL, "shard": shard, "kind": "drift_moe",
                         "family": "classifier", "worker": EVIL_WORKER, "partition": 0,
                         "examples_seen": n, "examples_learned": n, "examples_evaluated": n,
                         "correct": n * 3 // 4, "rolling_accuracy": acc, "accuracy": acc,
                         "updated": now - 2 + i, "inspect": experts})
                for i, (n, acc) in enumerate([(10, 0.6), (20, 0.75)])]
    # models a template made, one named like an object's own property, and a challenger
    for name, extra in (("made-1", {"template": EVIL}), ("made-2", {"template": "__proto__"}),
                        ("rival", {"challenger_of": EVIL, "kind": EVIL})):
        statuses.append((name, {"model": name, "shard": name, "family": "classifier",
                                "examples_learned": 5, "examples_evaluated": 5, "correct": 3,
                                "rolling_accuracy": 0.6, "updated": now, **extra}))
    statuses.append((f"worker:{EVIL_WORKER}", {
        "worker": EVIL_WORKER, "updated": now, "partitions": [0],
        "counters": {"events_in": 20, "outputs": 20, "dead_letters": 2},
        "dead_letters_by_reason": {EVIL: 2}, "lag": {EVIL: {"0": 3}},
        "rates": {"in_per_s": 5.0, "out_per_s": 5.0}}))
    base = {"model": EVIL, "shard": shard, "ts": now, "examples_seen": 15,
            "examples_learned": 15, "position": 15, "severity": "high"}
    alerts = [{**base, "kind": "concept", "direction": "degradation", "detector": EVIL,
               "error_rate_before": 0.1, "error_rate_after": 0.5, "window_before": 10,
               "window_after": 5},
              {**base, "kind": "data", "direction": "shift", "detector": "data_drift",
               "features": [EVIL], "max_psi": 0.4}]
    return statuses, alerts


def _attacks(page: Any) -> dict[str, Any]:
    return page.evaluate("""() => ({
        pwned: window.__pwned ?? null,
        images: document.querySelectorAll("img").length,
        handlers: [...document.querySelectorAll("*")].flatMap(e => [...e.attributes]
            .filter(a => a.name.startsWith("on")).map(a => e.tagName + " " + a.name)),
    })""")


@pytest.mark.kafka
def test_dashboard_shows_hostile_kafka_text_literally_and_names_failures(
        service: ServiceProcs, browser_page: Any) -> None:
    """Model, worker, reason, detector and feature names written into the shared Kafka by
    someone else are shown as text (no markup, no script runs) on a token-protected sidecar;
    a wrong token, a drawing failure and a stopped sidecar each say what they are."""
    from streamsvc.app import topic_specs
    from streamsvc.checkpoints import ensure_topics
    from streamsvc.config import load_settings

    page = browser_page
    ensure_topics(service.bootstrap, topic_specs(load_settings(None, service.env)))
    statuses, alerts = _hostile_records(time.time())
    prod = KafkaProducer(bootstrap_servers=service.bootstrap)
    for key, value in statuses:
        prod.send(service.topics["model_status"], key=key.encode(),
                  value=json.dumps(value).encode())
    for a in alerts:
        prod.send(service.topics["drift_alerts"], json.dumps(a).encode())
    prod.flush()
    prod.close()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api = service.start("api", "--port", str(port), name="api", env={
        "STREAMSVC_API__TOKEN": TOKEN, "STREAMSVC_API__STALE_AFTER": "600"})
    auth = {"Authorization": f"Bearer {TOKEN}"}

    def fed() -> bool:
        if api.poll() is not None:
            pytest.fail(service.log_of(api))
        try:
            return len(httpx.get(f"{url}/alerts", headers=auth, timeout=2).json()) == 2 and \
                len(httpx.get(f"{url}/workers", headers=auth, timeout=2).json()) == 1
        except httpx.HTTPError:
            return False

    wait_for(fed, 60, "sidecar read the hostile records from Kafka")
    page.goto(f"{url}/#token={TOKEN}")
    card = "[...document.querySelectorAll('.model')].find(c => c.dataset.model === name)"
    wait_for(lambda: page.evaluate(f"name => !!{card}", EVIL), 30, "the hostile model's card")
    wait_for(lambda: page.eval_on_selector_all("#alert-table tr", "rs => rs.length") == 3, 10,
             "two alerts listed")
    assert _attacks(page) == {"pwned": None, "images": 0, "handlers": []}
    assert TOKEN not in page.url  # taken from the address once, then kept out of it
    assert page.evaluate(f"name => {card}.querySelector('h2').firstChild.textContent",
                         EVIL) == EVIL + " "
    # both alerts are marked on the hostile model's chart, titles as text
    titles = page.evaluate(f"name => [...{card}.querySelectorAll('svg line title')]"
                           ".map(t => t.textContent)", EVIL)
    assert sorted(titles) == ["concept drift (degradation, high) at 15",
                              "data drift (shift, high) at 15"]
    svg_text = page.evaluate(f"name => {card}.textContent", EVIL)
    assert f"class {EVIL}" in svg_text and f"router loss {EVIL}" in svg_text
    rows = page.eval_on_selector_all("#alert-table tr", "rs => rs.slice(1).map(r => "
                                     "[...r.cells].map(c => c.textContent))")
    assert {r[0] for r in rows} == {EVIL} and EVIL in {r[5] for r in rows}
    assert any(r[6].startswith(f"moved: {EVIL}") for r in rows), rows
    wrows = page.eval_on_selector_all("#tp-workers tr", "rs => rs.slice(1).map(r => "
                                      "[...r.cells].map(c => c.textContent))")
    assert [r[0] for r in wrows] == [EVIL_WORKER] and wrows[0][5] == f"{EVIL}/0: 3"
    reasons = page.eval_on_selector_all("#tp-reasons tr", "rs => rs.slice(1).map(r => "
                                        "r.cells[0].textContent)")
    assert reasons == [EVIL]
    legend = page.inner_text("#tp-legend")
    assert EVIL_WORKER in legend
    templates = page.eval_on_selector_all(".template", "cs => cs.map(c => c.dataset.template)")
    assert templates == [EVIL, "__proto__"]
    rival = page.evaluate(f"name => {card}.querySelector('[data-challenger]').textContent", EVIL)
    assert rival.startswith(f"challenger rival ({EVIL}): rolling 0.600"), rival
    assert f"challenger of {EVIL}" in page.evaluate(f"name => {card}.querySelector('h2')"
                                                    ".textContent", "rival")
    time.sleep(2.5)  # a few refreshes later, still nothing ran
    assert _attacks(page) == {"pwned": None, "images": 0, "handlers": []}
    assert page.get_attribute("#ready", "data-state") != "bad", page.inner_text("#ready")
    assert page.is_hidden("#error")
    assert not page.errors, page.errors

    # a failure while drawing is named as one (the sidecar is fine)
    page.evaluate("() => { window.evidence = () => { throw new Error('drawing failed here'); }; }")
    wait_for(lambda: page.get_attribute("#ready", "data-error") == "render", 10,
             "the drawing failure shown")
    assert page.inner_text("#ready") == "dashboard error: drawing failed here"
    assert page.inner_text("#error") == "dashboard error: drawing failed here"

    # a wrong token: the sidecar's 401 and its words, not "unreachable"
    page.evaluate("() => sessionStorage.setItem('streamsvc-token', 'not-the-token-0123456789')")
    page.reload()
    wait_for(lambda: page.get_attribute("#ready", "data-error") == "api", 20, "the 401 shown")
    badge = page.inner_text("#ready")
    assert badge.startswith("the sidecar answered 401 on /models: wrong API token"), badge
    assert "401 on /workers" in page.inner_text("#tp-kv")
    assert "unreachable" not in badge

    # the right token again: the error goes away
    page.evaluate(f"() => sessionStorage.setItem('streamsvc-token', '{TOKEN}')")
    page.reload()
    wait_for(lambda: page.evaluate(f"name => !!{card}", EVIL), 20, "the card again")
    wait_for(lambda: page.is_hidden("#error"), 10, "no error shown")

    # only a sidecar that does not answer is "unreachable"
    assert service.stop(api) in (0, -15)
    wait_for(lambda: page.get_attribute("#ready", "data-error") == "unreachable", 20,
             "unreachable shown")
    assert page.inner_text("#ready").startswith("sidecar unreachable (")
    assert _attacks(page) == {"pwned": None, "images": 0, "handlers": []}
    assert not page.errors, page.errors


# -- many models: challengers beside their champion, a template's models in one table ----------
MANY_MODELS = """
[models.default]
kind = "hoeffding_tree"

[models.candidate]
kind = "hoeffding_tree"
challenger_of = "default"
params = { grace_period = 20 }

[models."tenant-*"]
kind = "hoeffding_tree"
"""


def test_dashboard_sets_challengers_beside_champions_and_tabulates_made_models(
        tmp_path: Path, browser_page: Any) -> None:
    """Statuses of real hosts (an in-process pipeline) served by the real sidecar app: the
    champion's card names its challenger and how far it is ahead; 60 models made by a template
    are one table, worst first, not 60 cards."""
    import threading

    import uvicorn

    from agents.host import HostLimits
    from agents.pipeline import Pipeline
    from streamsvc.api import configured_models, create_api
    from streamsvc.config import load_settings
    from streamsvc.status import StatusView

    cfg = tmp_path / "streamsvc.toml"
    cfg.write_text(MANY_MODELS)
    settings = load_settings(cfg, {})
    pipe = Pipeline(settings.models, HostLimits())
    rng = random.Random(5)
    off = 0
    for i in range(400):
        x = {"a": rng.random(), "b": rng.random()}
        pipe.process("events", "events", 0, off, json.dumps(
            {"id": f"e{i}", "x": x, "y": x["a"] + 0.2 * rng.random() > 0.6}).encode())
        off += 1
    for t in range(60):
        for i in range(t % 7 + 3):  # tenants learn different amounts: different accuracies
            pipe.process("events", "events", 0, off, json.dumps(
                {"id": f"t{t}-{i}", "model": f"tenant-{t}", "x": {"a": float(i)},
                 "y": (i + t) % 3 == 0}).encode())
            off += 1
    view = StatusView(configured_models(settings))
    view.embedded = True
    for s in pipe.statuses():
        view.on_status(s["shard"], {**s, "updated": time.time()})
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_api(view, configured=settings.catalog),
                                           host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: server.started, 20, "the sidecar up")
        champ = _get(f"{url}/models/default")
        [ch] = champ["challengers"]
        page = browser_page
        page.goto(url + "/")
        table = '.template[data-template="tenant-*"]'
        page.wait_for_selector(table, timeout=20_000)
        rival = '.model[data-model="default"] [data-challenger="candidate"]'
        shown = page.inner_text(f"{rival} [data-field=rolling_accuracy]")
        assert shown == f"{ch['rolling_accuracy']:.3f}"
        lead = ch["vs_champion"]["rolling_accuracy"]
        sign = "+" if lead > 0 else "−" if lead < 0 else "±"
        assert page.inner_text(f"{rival} [data-field=vs_champion]") == f"{sign}{abs(lead):.3f}"
        assert page.inner_text('.model[data-model="candidate"] h2 [data-field=vs_champion]') \
            == f"{sign}{abs(lead):.3f}"
        cards = page.eval_on_selector_all(".model", "cs => cs.map(c => c.dataset.model)")
        assert cards == ["default", "candidate"]  # the challenger right after its champion
        # the template's 60 models: one table of the 50 worst, and a line for the rest
        assert page.inner_text(f"{table} [data-field=count]") == "60"
        rows = page.eval_on_selector_all(f"{table} tr[data-model]",
                                         "rs => rs.map(r => r.cells[3].textContent)")
        made = [m for m in _get(f"{url}/models") if m.get("template") == "tenant-*"]
        worst = sorted(m["rolling_accuracy"] for m in made)[:50]
        assert rows == [f"{v:.3f}" for v in worst]
        assert "and 10 more" in page.inner_text(table)
        assert page.query_selector('.model[data-model="tenant-0"]') is None
        assert not page.errors, page.errors
        if os.environ.get("STREAMSVC_MANY_MODELS_PNG"):
            page.screenshot(path=os.environ["STREAMSVC_MANY_MODELS_PNG"], full_page=True)
    finally:
        server.should_exit = True
