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

from agents.alerts import build_reference_detector, describe, match_drifts, moved
from agents.catalog import is_template
from agents.host import HostLimits
from agents.messages import BadRecord, dead_letter
from agents.pipeline import reason_class
from agents.processor import Processor, template_refusal
from streamsvc.config import Settings
from streamsvc.heap import tune_collector
from streamsvc.ports import port_problem


def _limits(settings: Settings) -> HostLimits:
    w = settings.worker
    return HostLimits(pending_max=w["pending_max"], pending_ttl=w["pending_ttl"],
                      orphan_max=w["orphan_max"], orphan_ttl=w["orphan_ttl"],
                      rolling_window=w["rolling_window"])


def demo_command(args: argparse.Namespace, settings: Settings) -> int:
    from streamsvc.client import synthetic_examples
    from streamsvc.files import BadRow, Example, ExampleFile, FileProblem, Rejections

    if is_template(args.model):
        print(f"streamsvc demo: {template_refusal(args.model)}", file=sys.stderr)
        return 2
    if args.model not in settings.catalog:
        print(f"streamsvc demo: unknown model {args.model!r}; configured: "
              f"{', '.join(settings.models)}", file=sys.stderr)
        return 2
    spec = settings.catalog[args.model]
    if spec.family != "classifier":
        print(f"streamsvc demo: model {args.model!r} is a {spec.kind} model; the demo runs "
              "classifiers on event streams", file=sys.stderr)
        return 2
    if problem := _options_that_do_not_apply(args):
        print(f"streamsvc demo: {problem}", file=sys.stderr)
        return 2
    drifts: list[tuple[int, int]] = []  # true drift windows (start, end) of a built-in stream
    if args.file:
        try:  # a file the demo cannot use at all is refused before anything is written
            examples: Any = ExampleFile.from_args(args, need_label=True)
        except FileProblem as exc:
            print(f"streamsvc demo: {exc}", file=sys.stderr)
            return 2
        for note in examples.notes:
            print(note, flush=True)
        title = Path(args.file).name
        total = None
    else:
        from streamsvc.streams import STREAMS, drift_points, drift_width

        args.stream = args.stream or DEFAULT_STREAM
        if args.stream not in STREAMS:
            from streamsvc.client import GRAPH_STREAMS

            edge = (f"{args.stream!r} is an edge stream, for `streamsvc produce` into a worker's "
                    "node-property model; the demo runs event streams" if args.stream in
                    GRAPH_STREAMS else f"unknown stream {args.stream!r}")
            print(f"streamsvc demo: {edge}; choose from {', '.join(STREAMS)}", file=sys.stderr)
            return 2
        if args.count < 1:
            print(f"streamsvc demo: --count must be at least 1 (got {args.count}); nothing "
                  "was run and no output was written", file=sys.stderr)
            return 2
        examples = synthetic_examples(args.stream, args.count, args.seed)
        drifts = _drift_windows(drift_points(args.stream, args.count),
                                drift_width(args.stream, args.count))
        title = args.stream
        total = args.count

    if args.serve and (busy := port_problem(args.port)):
        print(f"streamsvc demo: {busy}", file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        what = "is a file, not a folder" if out.is_file() else f"cannot be created ({exc.strerror})"
        print(f"streamsvc demo: --out {out} {what}; pass --out with a folder for the outputs",
              file=sys.stderr)
        return 2
    proc = Processor({args.model: spec}, _limits(settings))
    view = server = None
    if args.serve:
        try:
            view, server = _start_sidecar(settings, args.port)
            view.true_drifts = [list(w) for w in drifts]  # the dashboard marks them
        except OSError as exc:
            print(f"streamsvc demo: {exc}", file=sys.stderr)
            return 2
    rejected = Rejections()
    shown = 0
    n = bad = 0
    # what a worker would report (dead letters by reason, outputs): the dashboard and /metrics
    # show the same panels in demo and Kafka mode
    dead_by_reason: dict[str, int] = {}
    n_out = 0
    start = time.perf_counter()
    files = {role: open(out / f"{role.replace('_', '-')}.jsonl", "w")
             for role in ("predictions", "drift_alerts", "dead_letters")}
    alerts: list[dict[str, Any]] = []
    tune_collector()  # as a worker does: the learner's passes leave young objects behind
    try:
        bar = tqdm(total=total, unit="ex", desc=f"{args.model} on {title}")
        batch: list[tuple[int, bytes, int | None, str | None]] = []

        def run(batch: list[tuple[int, bytes, int | None, str | None]]) -> None:
            """The learner on a batch of records (its runs of labelled events take the host's
            passes, as in the worker); outputs to the files, refusals shown and counted."""
            nonlocal n, bad, n_out, shown
            now = time.time()
            got = proc.process_many(0, [(off, "events", raw, now,
                                         {"topic": "file", "partition": 0, "offset": off})
                                        for off, raw, _, _ in batch])
            for (off, raw, line, raw_line), res in zip(batch, got, strict=True):
                outs = res if not isinstance(res, Exception) else []
                if isinstance(res, Exception):
                    reason = str(res) if isinstance(res, BadRecord) \
                        else f"processing error: {res!r}"
                    bad += 1
                    _count_reason(dead_by_reason, reason)
                    if line is not None:
                        shown = _reject(bar, rejected, files, title, line, reason,
                                        raw_line or "", "", shown)
                    else:
                        outs = [("dead_letters", None, dead_letter("file", 0, off, reason, raw))]
                for role, _, value in outs:
                    n_out += 1
                    files[role].write(json.dumps(value) + "\n")
                    if role == "drift_alerts":
                        alerts.append(value)
                        bar.write(describe(value))
            n += len(batch)
            bar.update(len(batch))
            if proc.statuses():
                status = proc.statuses()[0]
                bar.set_postfix(acc=f"{status['accuracy'] or 0:.3f}",
                                rolling=f"{status['rolling_accuracy'] or 0:.3f}")
                if view is not None:
                    _feed(view, proc, alerts, _worker_status(n, bad, n_out, dead_by_reason))

        for offset, item in enumerate(examples):
            if total and n + len(batch) >= total:
                break
            line = raw_line = None
            if isinstance(item, BadRow | Example):
                line, raw_line = item.line, item.raw
                if isinstance(item, BadRow):  # skipped and counted, as the service would
                    bad += 1
                    _count_reason(dead_by_reason, item.category or item.reason)
                    shown = _reject(bar, rejected, files, title, item.line, item.reason,
                                    item.raw, item.category, shown)
                    n += 1
                    bar.update(1)
                    continue
                rid, x, y = item.id, item.x, item.y
            else:
                rid, x, y = item
            msg = {"id": rid, "model": args.model, "x": x}
            if y is not None:
                msg["y"] = y
            batch.append((offset, json.dumps(msg).encode(), line, raw_line))
            if len(batch) >= BATCH:
                run(batch)
                batch = []
        if batch:
            run(batch)
        bar.close()
    finally:
        for fh in files.values():
            fh.close()
    elapsed = time.perf_counter() - start
    statuses = proc.statuses()
    if view is not None:
        _feed(view, proc, alerts, _worker_status(n, bad, n_out, dead_by_reason))
    status = statuses[0] if statuses else {}
    (out / "status.json").write_text(json.dumps(status, indent=2))
    _summary(args.model, spec, title, n, bad, elapsed, status, alerts, drifts, out,
             settings.worker["rolling_window"])
    code = _rejected_summary(rejected, n, args.file)
    if server is not None:
        print(f"\nDashboard: http://127.0.0.1:{args.port}/  (Ctrl-C to stop)", flush=True)
        try:
            while server.is_alive():
                server.join(5.0)  # the demo's heartbeat: its worker record must not go stale
                _feed(view, proc, alerts, _worker_status(n, bad, n_out, dead_by_reason))
        except KeyboardInterrupt:
            pass
    return code


def _reject(bar: Any, rejected: Any, files: dict[str, Any], title: str, line: int,
            reason: str, raw: str, category: str, shown: int) -> int:
    """A file row the demo skips: counted by reason, written to dead-letters.jsonl with its
    file, line and raw text, and the first few printed; returns how many were printed."""
    rejected.add(line, reason, category)
    letter = dead_letter(title, 0, line, reason, raw.encode("utf-8", errors="replace"))
    files["dead_letters"].write(json.dumps({"file": title, "line": line, **letter}) + "\n")
    if shown < MAX_SHOWN:
        bar.write(f"{title}:{line}: skipped: {reason}", file=sys.stderr)
    elif shown == MAX_SHOWN:
        bar.write("(more skipped rows are listed in the summary and dead-letters.jsonl)",
                  file=sys.stderr)
    return shown + 1


MAX_SHOWN = 5
#: records the demo hands the learner at a time (as a worker hands it a pack of records)
BATCH = 256


def _rejected_summary(rejected: Any, n: int, file: str | None) -> int:
    """Rejected rows by reason; exit code 3 when most rows of the file were rejected."""
    from streamsvc.files import most_rejected

    if not rejected.count:
        return 0
    print(f"rejected rows   {rejected.count} of {n}, by reason:")
    print("\n".join(rejected.lines()))
    if most_rejected(rejected.count, n):
        print(f"\nstreamsvc demo: most rows of {file} were rejected ({rejected.count} of {n}); "
              "see the reasons above", file=sys.stderr)
        return 3
    return 0


def _summary(model: str, spec: Any, title: str, n: int, bad: int, elapsed: float,
             status: dict[str, Any], alerts: list[dict[str, Any]],
             drifts: list[tuple[int, int]], out: Path, window: int) -> None:
    acc = status.get("accuracy")
    print(f"\n== streamsvc demo: {model} ({spec.kind}) on {title} ==")
    print(f"examples        {n} in {elapsed:.1f}s ({n / max(elapsed, 1e-9):,.0f}/s)")
    print(f"learned         {status.get('examples_learned', 0)}")
    print(f"accuracy        {acc:.4f} (prequential)" if acc is not None else "accuracy        –")
    if status.get("rolling_accuracy") is not None:
        last = min(window, status.get("examples_evaluated") or window)
        print(f"rolling acc.    {status['rolling_accuracy']:.4f} (last {last} examples)")
    _drift_summary(alerts, drifts, status, n, _reference_blind_spot(spec))
    if bad:
        print(f"dead letters    {bad} (see {out / 'dead-letters.jsonl'})")
    print(f"outputs         {out}/predictions.jsonl, drift-alerts.jsonl, status.json")


def _reference_blind_spot(spec: Any) -> int:
    """How many first labelled examples this model's frozen-reference detector cannot alert
    in, as configured (0: the model has none)."""
    det = build_reference_detector(spec)
    return 0 if det is None else det.window + det.calibrate


def _drift_windows(points: list[int], width: int) -> list[tuple[int, int]]:
    """(start, end) of each true drift: the point itself when abrupt, else its logistic's
    central part (probability of the new concept from 12% to 88%)."""
    half = 0 if width <= 1 else width // 2
    return [(max(0, p - half), p + half) for p in points]


def _drift_summary(alerts: list[dict[str, Any]], drifts: list[tuple[int, int]],
                   status: dict[str, Any], n: int, blind: int, within: int = 2000) -> None:
    """Which true drifts the published alerts found, with what delay, and the false alarms."""
    concept = [a["position"] for a in alerts if a.get("kind", "concept") == "concept"]
    data = [a for a in alerts if a.get("kind") == "data"]
    if drifts:
        delays, false = match_drifts(concept, drifts, within)
        found = sum(d is not None for d in delays)
        print(f"true drifts at  {', '.join(str((a + b) // 2) for a, b in drifts)}")
        print(f"detected        {found} of {len(drifts)} within {within:,} examples of the "
              "change (concept alerts)")
        early = False
        for (start, end), d in zip(drifts, delays, strict=True):
            where = str(start) if start == end else f"{start}–{end}"
            why = ""
            if start < blind:
                why, early = f" (within the first {blind:,} examples)", True
            elif n - end < within:
                why = f" (the stream ended {n - end:,} examples after it)"
            print(f"  drift at {where:<12} " + (f"detected, delay {d}" if d is not None
                                                else "missed" + why))
        if early and found < len(drifts):
            print(f"  (the drift detector learns and calibrates on the first {blind:,} labelled "
                  "examples; a longer --count moves the drifts later)")
        print(f"false alarms    {len(false)}" + (f" (at {', '.join(map(str, false))})"
                                                  if false else ""))
    else:
        print(f"concept alerts  {len(concept)}" + (f" at {', '.join(map(str, concept))}"
                                                   if concept else ""))
    if data:
        print(f"data alerts     {len(data)} (inputs or predictions moved, no label needed): "
              + "; ".join(f"at {a['position']} {moved(a)}" for a in data[:5])
              + (" ..." if len(data) > 5 else ""))
    both = (status.get("drift") or {}).get("alert_on") == "both"
    if status.get("improvements"):
        print(f"improvements    {status['improvements']} (error rate fell) " + (
            "published too (alert_on = \"both\")" if both else
            "counted in the status, not published (alert_on = \"degradation\")"))


DEFAULT_STREAM = "sea-abrupt"


def _options_that_do_not_apply(args: argparse.Namespace) -> str | None:
    """Options that would be silently ignored: said instead (a user who gives both --file and
    --stream, or --target without a file, meant something the run would not do)."""
    if args.file and args.stream is not None:
        return "--stream and --file are two sources: give one (--file reads your file)"
    from streamsvc.files import file_only_options

    return file_only_options(args)


def _count_reason(by: dict[str, int], reason: str) -> None:
    """Dead letters counted under the words before the first ':', as the workers count them."""
    key = reason_class(reason)
    by[key] = by.get(key, 0) + 1


def _worker_status(n: int, bad: int, n_out: int, dead_by_reason: dict[str, int]
                   ) -> dict[str, Any]:
    """The demo as one worker's status record (`model-status` key `worker:embedded`)."""
    return {"worker": "embedded", "partitions": [0],
            "counters": {"events_in": n, "dead_letters": bad, "outputs": n_out},
            "dead_letters_by_reason": dict(dead_by_reason)}


def _feed(view: Any, proc: Processor, alerts: list[dict[str, Any]],
          worker: dict[str, Any] | None = None) -> None:
    now = time.time()
    if worker is not None:
        view.on_status("worker:embedded", {**worker, "updated": now})
    truth = getattr(view, "true_drifts", None)
    for s in proc.statuses():
        view.on_status(s["shard"], {**s, "updated": now, "worker": "embedded",
                                    **({"true_drifts": truth} if truth else {})})
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
    deadline = time.monotonic() + 10.0
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        raise OSError(f"the dashboard could not listen on port {port} (in use?); pass --port "
                      "with a free port")
    print(f"dashboard live at http://127.0.0.1:{port}/", flush=True)
    return view, thread
