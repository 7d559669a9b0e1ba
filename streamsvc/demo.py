"""`streamsvc demo`: the service's processing path in-process, without Kafka.

Records go through the very code the workers run (validation, routing, the model host with
its delayed-label policy and drift detection); only the topics are replaced by files.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from agents.host import HostLimits
from agents.messages import BadRecord, dead_letter
from agents.processor import Processor, route
from streamsvc.config import Settings


def _limits(settings: Settings) -> HostLimits:
    w = settings.worker
    return HostLimits(pending_max=w["pending_max"], pending_ttl=w["pending_ttl"],
                      orphan_max=w["orphan_max"], orphan_ttl=w["orphan_ttl"],
                      rolling_window=w["rolling_window"])


def demo_command(args: argparse.Namespace, settings: Settings) -> int:
    from streamsvc.client import read_examples, synthetic_examples

    if args.model not in settings.models:
        print(f"streamsvc demo: unknown model {args.model!r}; configured: "
              f"{', '.join(settings.models)}", file=sys.stderr)
        return 2
    spec = settings.models[args.model]
    if spec.family != "classifier":
        print(f"streamsvc demo: model {args.model!r} is a {spec.kind} model; the demo runs "
              "classifiers on event streams", file=sys.stderr)
        return 2
    drifts: list[int] = []
    if args.file:
        examples = read_examples(args.file, args.target or _guess_target(args.file), None)
        title = Path(args.file).name
        total = None
    else:
        from streamsvc.streams import STREAMS, drift_points

        if args.stream not in STREAMS:
            print(f"streamsvc demo: unknown stream {args.stream!r}; choose from "
                  f"{', '.join(STREAMS)}", file=sys.stderr)
            return 2
        if args.count < 1:
            print(f"streamsvc demo: --count must be at least 1 (got {args.count}); nothing "
                  "was run and no output was written", file=sys.stderr)
            return 2
        examples = synthetic_examples(args.stream, args.count, args.seed)
        drifts = list(drift_points(args.stream, args.count))
        title = args.stream
        total = args.count

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    proc = Processor({args.model: spec}, _limits(settings))
    view = server = None
    if args.serve:
        view, server = _start_sidecar(settings, args.port)
    n = bad = 0
    start = time.perf_counter()
    files = {role: open(out / f"{role.replace('_', '-')}.jsonl", "w")
             for role in ("predictions", "drift_alerts", "dead_letters")}
    alerts: list[dict[str, Any]] = []
    try:
        bar = tqdm(total=total, unit="ex", desc=f"{args.model} on {title}")
        for offset, (rid, x, y) in enumerate(examples):
            msg = {"id": rid, "model": args.model, "x": x}
            if y is not None:
                msg["y"] = y
            raw = json.dumps(msg).encode()
            now = time.time()
            try:
                _, value = route("events", raw, proc.specs,
                                 {"topic": "file", "partition": 0, "offset": offset})
                outs = proc.handle(0, offset, value, now)
            except BadRecord as exc:
                bad += 1
                outs = [("dead_letters", None, dead_letter("file", 0, offset, str(exc), raw))]
            for role, _, value in outs:
                files[role].write(json.dumps(value) + "\n")
                if role == "drift_alerts":
                    alerts.append(value)
                    bar.write(f"drift alert at example {value['position']}: error "
                              f"{value['error_rate_before']} → {value['error_rate_after']}")
            n += 1
            bar.update(1)
            if n % 500 == 0 and proc.statuses():
                status = proc.statuses()[0]
                bar.set_postfix(acc=f"{status['accuracy'] or 0:.3f}",
                                rolling=f"{status['rolling_accuracy'] or 0:.3f}")
                if view is not None:
                    _feed(view, proc, alerts)
            if total and n >= total:
                break
        bar.close()
    finally:
        for fh in files.values():
            fh.close()
    elapsed = time.perf_counter() - start
    statuses = proc.statuses()
    if view is not None:
        _feed(view, proc, alerts)
    status = statuses[0] if statuses else {}
    (out / "status.json").write_text(json.dumps(status, indent=2))
    _summary(args.model, spec.kind, title, n, bad, elapsed, status, alerts, drifts, out,
             settings.worker["rolling_window"])
    if server is not None:
        print(f"\nDashboard: http://127.0.0.1:{args.port}/  (Ctrl-C to stop)", flush=True)
        try:
            while server.is_alive():
                server.join(1.0)
        except KeyboardInterrupt:
            pass
    return 0


def _guess_target(path: str) -> str | None:
    if Path(path).suffix.lower() != ".csv":
        return None
    with open(path) as fh:
        header = fh.readline().strip().split(",")
    return header[-1] if header else None


def _summary(model: str, kind: str, title: str, n: int, bad: int, elapsed: float,
             status: dict[str, Any], alerts: list[dict[str, Any]], drifts: list[int],
             out: Path, window: int) -> None:
    acc = status.get("accuracy")
    print(f"\n== streamsvc demo: {model} ({kind}) on {title} ==")
    print(f"examples        {n} in {elapsed:.1f}s ({n / max(elapsed, 1e-9):,.0f}/s)")
    print(f"learned         {status.get('examples_learned', 0)}")
    print(f"accuracy        {acc:.4f} (prequential)" if acc is not None else "accuracy        –")
    if status.get("rolling_accuracy") is not None:
        print(f"rolling acc.    {status['rolling_accuracy']:.4f} (last {window} examples)")
    if drifts:
        print(f"true drifts at  {', '.join(str(d) for d in drifts)}")
    print(f"drift alerts    {len(alerts)}" + (
        f" at {', '.join(str(a['position']) for a in alerts)}" if alerts else ""))
    if bad:
        print(f"dead letters    {bad} (see {out / 'dead-letters.jsonl'})")
    print(f"outputs         {out}/predictions.jsonl, drift-alerts.jsonl, status.json")


def _feed(view: Any, proc: Processor, alerts: list[dict[str, Any]]) -> None:
    now = time.time()
    for s in proc.statuses():
        view.on_status(s["shard"], {**s, "updated": now, "worker": "embedded"})
    known = len([a for a in view.recent_alerts(limit=10_000)])
    for a in alerts[known:]:
        view.on_alert(a)


def _start_sidecar(settings: Settings, port: int) -> tuple[Any, threading.Thread]:
    import uvicorn

    from streamsvc.api import configured_models, create_api
    from streamsvc.status import StatusView

    view = StatusView(configured_models(settings), alerts_kept=settings.api["alerts_kept"])
    view.embedded = True
    server = uvicorn.Server(uvicorn.Config(create_api(view), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, name="sidecar", daemon=True)
    thread.start()
    print(f"dashboard live at http://127.0.0.1:{port}/", flush=True)
    return view, thread
