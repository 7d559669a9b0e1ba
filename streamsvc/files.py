"""A user's CSV or JSONL file read the way the service reads Kafka: row by row, a bad row is
an error for that row (file, line number, reason in plain words, its raw text), never the end
of the file.

`ExampleFile` checks what makes the whole file unusable when it is opened (missing, unreadable,
empty, an unknown column: `FileProblem`, exit code 2), then yields `Example` or `BadRow` per
data row. Rows are made to fit what the learners accept:

* a column's type is decided on the first rows (`SAMPLE_ROWS`): mostly numbers → a numeric
  column, where text is refused (it would break the learner's statistics); otherwise a text
  (categorical) column, where numbers are kept as text. Empty cells and `NA`, `NaN`, `null`,
  `None`, `?` are missing values (the feature is left out);
* labels follow `label_type` (`LABEL_TYPES`): in `auto`, `true`/`false` are booleans and
  integral numbers such as `1.0` (pandas writes integer columns with gaps that way) are
  integers; a model learns one label type, so a row whose label has another type than the
  first label's is refused with the way out (`--label-type`).

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "d.csv"
>>> _ = p.write_text("a,colour,label\\n1,red,1.0\\n2,blue\\n3,red,0\\nx,red,0\\n")
>>> f = ExampleFile(p)
>>> f.note
"using column 'label' as the label (the last column); pass --target to choose"
>>> for row in f: print(row.line, row.reason if isinstance(row, BadRow) else (row.x, row.y))
2 ({'a': 1, 'colour': 'red'}, 1)
3 2 values, but the header has 3 columns
4 ({'a': 3, 'colour': 'red'}, 0)
5 column 'a' holds 'x', but it is a numeric column (numbers in most rows); fix the cell or leave it empty
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.messages import said

LABEL_TYPES = ("auto", "int", "float", "str", "bool")
MISSING = {"", "na", "n/a", "nan", "null", "none", "?"}
LARGEST = 1e100  # as for RL observations: beyond it a learner's squares and sums overflow
SAMPLE_ROWS = 500
JSON_SUFFIXES = {".jsonl", ".ndjson", ".json"}
_TRUE, _FALSE = {"true", "yes"}, {"false", "no"}
_TYPE_WORDS = {bool: "booleans (true/false)", int: "integers", str: "text"}
_ONE_WORD = {bool: "a boolean (true/false)", int: "an integer", str: "text"}


class FileProblem(Exception):
    """The file as a whole cannot be used (missing, unreadable, empty, unknown column)."""


@dataclass(frozen=True)
class Example:
    """One usable row: `x` fits the learners, `y` is None when the row has no label."""

    line: int
    id: str
    x: dict[str, Any]
    y: Any
    raw: str
    #: the row gave no id, so `id` is its line number
    lined: bool = False


@dataclass(frozen=True)
class BadRow:
    """A row that was skipped: `reason` in plain words, `category` to count it by."""

    line: int
    reason: str
    raw: str
    category: str = ""


class _RowError(ValueError):
    def __init__(self, reason: str, category: str) -> None:
        super().__init__(reason)
        self.category = category


def is_json_lines(path: str | Path) -> bool:
    return Path(path).suffix.lower() in JSON_SUFFIXES


def _describe(v: Any) -> str:
    if isinstance(v, dict):
        return "an object" if v else "an empty object"
    return said(v, text="")


def _shown(v: Any) -> str:
    """A label as the user wrote it: 'yes' for text, 1.5 / true / null for JSON values."""
    return repr(v[:40]) if isinstance(v, str) else json.dumps(v)[:40]


def _number(s: str) -> int | float | None:
    """A cell as a number (None when it is not one); integral values without a decimal point
    or exponent stay integers."""
    try:
        f = float(s)
    except ValueError:
        return None
    if f.is_integer() and "." not in s and "e" not in s.lower() and abs(f) <= 2**53:
        return int(f)
    return f


def convert_label(v: Any, label_type: str) -> Any:
    """A raw label (a CSV cell or a JSON value) as `label_type` says; None when missing.
    Raises `_RowError` with the reason when it does not fit."""
    if v is None or (isinstance(v, str) and v.strip().lower() in MISSING):
        return None
    text = v.strip() if isinstance(v, str) else None
    if isinstance(v, list | dict):
        raise _RowError(f"label is {_describe(v)}; a label is a number, true/false or text",
                        "label is not a value")
    if label_type == "str":
        return text if text is not None else json.dumps(v)
    if label_type == "bool":
        if isinstance(v, bool):
            return v
        key = text.lower() if text is not None else json.dumps(v)
        if key in _TRUE or key == "1":
            return True
        if key in _FALSE or key == "0":
            return False
        raise _RowError(f"label {_shown(v)} is not true/false (--label-type bool)",
                        "label is not true/false")
    num = _number(text) if text is not None else (
        v if isinstance(v, int | float) and not isinstance(v, bool) else None)
    if label_type == "float":
        if num is None or not math.isfinite(num):
            raise _RowError(f"label {_shown(v)} is not a number (--label-type float)",
                            "label is not a number")
        return repr(float(num))  # labels are classes: '1.5' and '1.50' name one class
    if label_type == "int":
        if num is None or not math.isfinite(num) or not float(num).is_integer():
            raise _RowError(f"label {_shown(v)} is not an integer (--label-type int)",
                            "label is not an integer")
        return int(num)
    # auto
    if isinstance(v, bool):
        return v
    if text is not None and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if num is not None:
        if math.isfinite(num) and float(num).is_integer():
            return int(num)
        raise _RowError(
            f"label {_shown(v)} is a decimal number, but labels are classes (integers, "
            "true/false or text); pass --label-type str to use such labels as class names",
            "label is a decimal number")
    return text


@dataclass
class _Columns:
    """Per-column type decided on the first rows: True numeric, False text."""

    numeric: dict[str, bool] = field(default_factory=dict)
    word: str = "column"  # what the user calls a feature's place: a CSV column, a JSON key
    decimal_comma: bool = False  # a ';'-separated file: 0,5 is a number
    partly_numbers: set[str] = field(default_factory=set)  # text columns with some numbers

    def learn(self, rows: list[dict[str, Any]]) -> None:
        nums: Counter[str] = Counter()
        seen: Counter[str] = Counter()
        for row in rows:
            for k, v in row.items():
                if _missing(v) or isinstance(v, list | dict):
                    continue
                seen[k] += 1
                nums[k] += self.number(v) is not None
        for k, n in seen.items():
            self.numeric[k] = nums[k] * 2 > n
            if not self.numeric[k] and nums[k] * 5 >= n:
                self.partly_numbers.add(k)

    def number(self, v: Any) -> int | float | None:
        if self.decimal_comma and isinstance(v, str) and _DECIMAL_COMMA.fullmatch(v.strip()):
            v = v.strip().replace(",", ".")
        return _as_number(v)

    def note(self, names: list[str]) -> str | None:
        """'features: 2 numeric (a, b), 1 text (colour)' for the columns in `names`."""
        def listed(cols: list[str]) -> str:
            shown = [c + (": partly numbers" if c in self.partly_numbers else "")
                     for c in cols[:8]]
            return ("; " if self.partly_numbers & set(cols) else ", ").join(shown)

        num = [k for k in names if self.numeric.get(k)]
        text = [k for k in names if self.numeric.get(k) is False]
        parts = [f"{len(cols)} {kind} ({listed(cols)}{', …' if len(cols) > 8 else ''})"
                 for kind, cols in (("numeric", num), ("text", text)) if cols]
        return "features: " + ", ".join(parts) if parts else None

    def feature(self, k: str, v: Any) -> Any:
        """The value the learner gets (None: missing, left out); raises `_RowError`."""
        if _missing(v):
            return None
        if isinstance(v, list | dict):
            raise _RowError(f"feature {k!r} is {_describe(v)}; features are numbers or text",
                            "a feature is a list or an object")
        num = self.number(v)
        numeric = self.numeric.get(k)
        if numeric is None:  # first seen after the sample: its first value decides
            numeric = self.numeric[k] = num is not None
        if numeric:
            if num is None:
                raise _RowError(
                    f"{self.word} {k!r} holds {_describe(v)}, but it is a numeric "
                    f"{self.word} (numbers in most rows); fix the "
                    f"{'cell' if self.word == 'column' else 'value'} or leave it empty",
                    f"text in numeric {self.word} {k!r}")
            if not math.isfinite(num):
                raise _RowError(f"{self.word} {k!r} holds {_describe(v)}, not a finite number",
                                f"infinite number in {self.word} {k!r}")
            if abs(num) > LARGEST:
                raise _RowError(
                    f"{self.word} {k!r} holds {_describe(v)}, beyond ±1e100: too large to "
                    "learn from; rescale the values or leave it empty",
                    f"number too large in {self.word} {k!r}")
            return num
        if isinstance(v, str):
            return v.strip()
        return json.dumps(v)  # a number or true/false in a text column: kept as its text


def _counts_rows(values: list[Any]) -> bool:
    """Integers rising with every row, as an index column holds."""
    nums = [_as_number(v) if isinstance(v, str) else None for v in values]
    return len(nums) > 1 and all(isinstance(n, int) and not isinstance(n, bool) for n in nums) \
        and all(a < b for a, b in zip(nums, nums[1:], strict=False))


_NO_KEY = object()  # a flat row without its --id-column key


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, str) and v.strip().lower() in MISSING)


_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")


def _as_number(v: Any) -> int | float | None:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int | float):
        return v
    if isinstance(v, str):
        return _number(v.strip())
    return None


def _ordinal_note(word: str, target: str, how: str) -> str:
    return f"using {word} {target!r} as the label ({how}); pass --target to choose"


class ExampleFile:
    """Examples of a CSV (header row) or JSONL file; see the module docstring.

    `target=None` picks the label column itself (CSV: the last column; JSONL: `y`, else
    `label`, else the last key) and says so in `note`, unless `guess_target=False` (then rows
    carry no label). JSONL lines shaped as events (`{"id", "x", "y"}`) are read as such.
    `need_label`: a row without a label is a bad row (the demo learns from every row).
    """

    @classmethod
    def from_args(cls, args: Any, **kw: Any) -> ExampleFile:
        """From the CLI's `--file`, `--target`, `--id-column` and `--label-type` (the commands
        that read files share these options)."""
        return cls(args.file, args.target, getattr(args, "id_column", None),
                   getattr(args, "label_type", None) or "auto", **kw)

    def __init__(self, path: str | Path, target: str | None = None,
                 id_column: str | None = None, label_type: str = "auto",
                 need_label: bool = False, guess_target: bool = True) -> None:
        if label_type not in LABEL_TYPES:
            raise FileProblem(f"unknown label type {label_type!r}; choose from "
                              f"{', '.join(LABEL_TYPES)}")
        self.path = Path(path)
        self.name = str(path)
        self.target, self.id_column = target, id_column
        self.label_type, self.need_label = label_type, need_label
        self.note: str | None = None
        self.more_notes: list[str] = []  # an unnamed index column, the features' types
        self.columns: list[str] = []
        self.unnamed: set[str] = set()
        self.types = _Columns()
        self._label_kind: tuple[type, int] | None = None
        self.is_jsonl = is_json_lines(self.path)
        self.types.word = "key" if self.is_jsonl else "column"
        _check_readable(self.path, self.name)
        self.types.decimal_comma = not self.is_jsonl and self._delimiter() == ";"
        self._sample = list(self._lines_limited())
        if not self._sample:
            raise FileProblem(f"{self.name} has no data rows"
                              + ("" if self.is_jsonl else " (only a header)"))
        self._prepare(guess_target)

    # ------------------------------------------------------------------ reading
    def _raw_lines(self) -> Iterator[tuple[int, str]]:
        """(line number, text) of every line; bytes that are not UTF-8 are kept as surrogate
        escapes so that the row they are in can be refused by itself."""
        with self.path.open("rb") as fh:
            for i, b in enumerate(fh, 1):
                text = b.decode("utf-8", errors="surrogateescape")
                if i == 1:
                    text = text.removeprefix("\ufeff")
                yield i, text

    def _rows(self) -> Iterator[tuple[int, str, Any]]:
        """(first line, raw text, parsed: CSV list of cells / JSON value / _RowError)."""
        if self.is_jsonl:
            for i, text in self._raw_lines():
                if not text.strip():
                    continue
                raw = text.rstrip("\r\n")
                if _has_surrogates(raw):
                    yield i, _printable(raw), _RowError(
                        "not UTF-8 text (save the file as UTF-8)", "not UTF-8 text")
                    continue
                try:
                    yield i, raw, json.loads(raw, parse_constant=_no_constant)
                except ValueError as exc:
                    yield i, raw, _RowError(f"not valid JSON ({_json_error(exc)})",
                                            "not valid JSON")
            return
        buf: list[str] = []
        start = 0

        def feed() -> Iterator[str]:
            nonlocal start
            for i, text in self._raw_lines():
                if not buf:
                    start = i
                buf.append(text)
                yield text

        reader = csv.reader(feed(), delimiter=self._delimiter())
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raw = "".join(buf).rstrip("\r\n")
                buf.clear()
                yield start, _printable(raw), _RowError(
                    f"not a valid CSV row ({_csv_words(exc)})", "not a valid CSV row")
                continue
            raw = "".join(buf).rstrip("\r\n")
            buf.clear()
            if not any(c.strip() for c in cells):  # a blank line, or ",,,," from a spreadsheet
                continue
            if _has_surrogates(raw):
                yield start, _printable(raw), _RowError(
                    "not UTF-8 text (save the file as UTF-8)", "not UTF-8 text")
                continue
            yield start, raw, cells

    def _delimiter(self) -> str:
        if self.path.suffix.lower() == ".tsv":
            return "\t"
        for _, first in self._raw_lines():
            if "," not in first:
                for d in ("\t", ";", "|"):
                    if d in first:
                        return d
            break
        return ","

    def _lines_limited(self) -> Iterator[tuple[int, str, Any]]:
        rows = self._rows()
        if not self.is_jsonl:
            header = next(rows, None)
            if header is None:
                return
            line, raw, cells = header
            if isinstance(cells, _RowError) or _has_surrogates(raw):
                raise FileProblem(f"{self.name}: its first line is not a readable CSV header"
                                  " (save the file as UTF-8 text with a header row)")
            self.columns = [c.strip() or f"column {j + 1}" for j, c in enumerate(cells)]
            self.unnamed = {self.columns[j] for j, c in enumerate(cells) if not c.strip()}
            dup = [c for c, n in Counter(self.columns).items() if n > 1]
            if dup:
                raise FileProblem(f"{self.name}:{line}: column {dup[0]!r} appears twice in "
                                  "the header")
        for n, row in enumerate(rows):
            yield row
            if n + 1 >= SAMPLE_ROWS:
                self._rest = rows
                return
        self._rest = iter(())

    # ---------------------------------------------------------------- the header
    def _prepare(self, guess_target: bool) -> None:
        dicts = [d for d in (self._as_dict(p) for _, _, p in self._sample)
                 if isinstance(d, dict)]
        if self.is_jsonl and not dicts:
            first = self._sample[0][1].lstrip()
            raise FileProblem(
                f"{self.name} is one JSON document (an array), not JSON Lines: write one object "
                "per line (pandas: df.to_json(path, orient='records', lines=True))"
                if first.startswith("[") else
                f"{self.name}: none of its first {len(self._sample)} lines is a JSON object; "
                "JSONL files hold one object per line")
        shaped = sum(isinstance(d.get("x"), dict) for d in dicts)
        self.event_shaped = self.is_jsonl and self.target is None and shaped * 2 > len(dicts)
        if self.event_shaped:
            self.types.learn([d["x"] for d in dicts if isinstance(d.get("x"), dict)])
            if self.id_column:
                raise FileProblem("--id-column applies to flat rows; these JSON lines are "
                                  "events with their own 'id'")
            self._note_features(list(self.types.numeric))
            return
        keys = self.columns if not self.is_jsonl else list(
            dict.fromkeys(k for d in dicts for k in d))
        where = (f"columns: {', '.join(keys)}" if not self.is_jsonl
                 else f"keys in its first rows: {', '.join(keys) or 'none'}")
        for what, col in (("--target", self.target), ("--id-column", self.id_column)):
            if col is not None and col not in keys:
                raise FileProblem(f"{what} column {col!r} is not in {self.name} ({where})")
        if self.target is not None and self.target == self.id_column:
            raise FileProblem(f"--target and --id-column both name {self.target!r}: the label "
                              "and the event id must be different columns")
        # a separator at the end of every line (spreadsheet exports) makes an unnamed, empty
        # column; pandas' to_csv writes its index as an unnamed first column counting rows
        empty = {k for k in self.unnamed if all(_missing(d.get(k)) for d in dicts)}
        first = keys[0] if keys and not self.is_jsonl else None
        if (self.id_column is None and first in self.unnamed and first != self.target
                and first not in empty and _counts_rows([d.get(first) for d in dicts])):
            self.id_column = first
            self.more_notes.append(f"{first!r} has no name and counts the rows (a pandas "
                                   "index?): used as the event id, not as a feature")
        if self.target is None and guess_target:
            if self.is_jsonl:
                known = [k for k in ("y", "label") if k in keys]
                if known:
                    self.target, how = known[0], "the usual name of a label"
                else:
                    self.target, how = (keys[-1] if keys else None), "the last key"
            else:
                usable = [k for k in keys if k not in empty and k != self.id_column]
                self.target = usable[-1] if usable else None
                how = "the last column" if self.target == keys[-1] else (
                    "the last column with values")
            if self.target is None:
                raise FileProblem(
                    f"{self.name}: its objects have no keys: nothing to learn from"
                    if self.is_jsonl else f"{self.name}: every column is empty: nothing to "
                    "use as the label")
            self.note = _ordinal_note(self.types.word, self.target, how)
        elif self.target is None:
            w = self.types.word
            self.note = (f"no --target: every {w} is sent as a feature, without a label "
                         f"(predictions only); pass --target {w.upper()} to send labels")
            looks = [k for k in keys if str(k).lower() in ("y", "label", "target", "class")]
            if looks:
                self.note += f" (is {looks[0]!r} the label?)"
        if self.target is not None and len(keys) < 2 and not self.is_jsonl:
            raise FileProblem(f"{self.name} has only the column {self.target!r}: no features")
        skip = {self.target, self.id_column}
        self.types.learn([{k: v for k, v in d.items() if k not in skip} for d in dicts])
        self._note_features([k for k in keys if k not in skip and k not in empty])

    def _note_features(self, names: list[str]) -> None:
        note = self.types.note(names)
        if note:
            self.more_notes.append(note)

    @property
    def notes(self) -> list[str]:
        """What the reader chose for the user: the label column, an index used as the id, the
        features' types (a column read as text that the user meant as numbers shows here)."""
        return ([self.note] if self.note else []) + self.more_notes

    def _as_dict(self, parsed: Any) -> dict[str, Any] | _RowError:
        if isinstance(parsed, _RowError):
            return parsed
        if self.is_jsonl:
            if not isinstance(parsed, dict):
                return _RowError(f"expected a JSON object ({{...}}), got {_describe(parsed)}",
                                 "not a JSON object")
            return parsed
        if len(parsed) != len(self.columns):
            few = len(parsed) < len(self.columns)
            if any("\n" in cell for cell in parsed):  # a quote that is never closed
                return _RowError('a quote (") opened in this row is never closed, so the lines '
                                 "after it were read into this row; close the quote",
                                 "unclosed quote")
            return _RowError(f"{len(parsed)} value{'s' if len(parsed) != 1 else ''}, but the "
                             f"header has {len(self.columns)} columns",
                             "too few values" if few else "too many values")
        return dict(zip(self.columns, parsed, strict=True))

    # ------------------------------------------------------------------ the rows
    def __iter__(self) -> Iterator[Example | BadRow]:
        sample, self._sample = self._sample, []
        for rows in (sample, self._rest):
            for line, raw, parsed in rows:
                try:
                    yield self._example(line, raw, self._as_dict(parsed))
                except _RowError as exc:
                    yield BadRow(line, str(exc), raw, exc.category)

    def _example(self, line: int, raw: str, d: dict[str, Any] | _RowError) -> Example:
        if isinstance(d, _RowError):
            raise d
        if self.event_shaped:
            if not isinstance(d.get("x"), dict):
                raise _RowError("'x' (the features) is missing or not an object; the first "
                                "lines of this file are events {\"id\", \"x\", \"y\"}",
                                "not an event")
            rid, feats, y = d.get("id", line), d["x"], d.get("y")
            lined = "id" not in d
        else:
            # a row without its --id-column key is a bad row, as an empty CSV cell is: its
            # line number would pass for an id and repeat in the next file
            rid = d.get(self.id_column, _NO_KEY) if self.id_column else line
            lined = not self.id_column
            y = d.get(self.target) if self.target is not None else None
            feats = {k: v for k, v in d.items() if k != self.target and k != self.id_column}
        if rid is _NO_KEY:
            raise _RowError(f"no usable id (no {self.id_column!r} key)", "no id")
        if _missing(rid) or isinstance(rid, list | dict | bool | float):
            raise _RowError(f"no usable id ({_describe(rid)} in "
                            f"{self.id_column or 'id'!r})", "no id")
        x = {}
        for k, v in feats.items():
            value = self.types.feature(str(k), v)
            if value is not None:
                x[str(k)] = value
        label = self._label(y) if self.target is not None or self.event_shaped else None
        if label is None and self.need_label:
            col = self.target if not self.event_shaped else "y"
            raise _RowError(f"no label ({self.types.word} {col!r} is empty or missing)",
                            "no label")
        return Example(line, str(rid).strip(), x, label, raw, lined)

    def _label(self, v: Any) -> Any:
        if self.types.decimal_comma and isinstance(v, str) and _DECIMAL_COMMA.fullmatch(
                v.strip()):
            v = v.strip().replace(",", ".")
        y = convert_label(v, self.label_type)
        if y is None or self.label_type != "auto":
            return y
        kind = type(y)
        if self._label_kind is None:
            self._label_kind = (kind, 0)
        elif self._label_kind[0] is not kind:
            first = _TYPE_WORDS[self._label_kind[0]]
            raise _RowError(
                f"label {_shown(v)} is {_ONE_WORD[kind]}, but the labels "
                f"before it are {first}; a model learns one label type: pass --label-type "
                "str to read every label as text",
                "label of another type than the first label")
        return y


def file_only_options(args: Any) -> str | None:
    """Why --target / --id-column / --label-type cannot apply (no --file: a built-in stream
    has its own labels and ids), or None; shared by `demo` and `produce`, which would
    otherwise ignore them without a word."""
    if getattr(args, "file", None):
        return None
    given = [o for o, v in (("--target", getattr(args, "target", None)),
                            ("--id-column", getattr(args, "id_column", None)),
                            ("--label-type", getattr(args, "label_type", "auto") != "auto"))
             if v]
    if not given:
        return None
    return (f"{', '.join(given)} appl{'y' if len(given) > 1 else 'ies'} to --file; a built-in "
            "stream has its own labels and ids")


def _check_readable(path: Path, name: str) -> None:
    """A file that exists, is not a folder, can be read and holds more than blank space; else
    `FileProblem` in one sentence."""
    if not path.exists():
        raise FileProblem(f"no such file: {name}")
    if path.is_dir():
        raise FileProblem(f"{name} is a folder, not a file")
    try:
        with path.open("rb") as fh:
            head = fh.read(1 << 16)
    except OSError as exc:
        raise FileProblem(f"cannot read {name}: {exc.strerror or exc}") from None
    if not head.strip():
        raise FileProblem(f"{name} is empty")
    if wide := _wide_encoding(head):  # said once for the file, not as "not JSON" per line
        raise FileProblem(f"{name} is {wide} text, not UTF-8: save it as UTF-8 (e.g. iconv -f "
                          f"{wide} -t UTF-8 {name} > utf8-{Path(name).name})")


def _wide_encoding(head: bytes) -> str | None:
    """The encoding's name when the file's first bytes show UTF-16 or UTF-32 (a byte-order
    mark, or ASCII text with a NUL in every second byte), else None."""
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "UTF-32"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16"
    sample = head[:1024 - 1024 % 4]
    if len(sample) < 8:
        return None
    # name, code-unit width, where the character byte of ASCII text sits in a unit
    for name, width, char in (("UTF-32LE", 4, 0), ("UTF-32BE", 4, 3), ("UTF-16LE", 2, 0),
                              ("UTF-16BE", 2, 1)):
        units = [sample[i:i + width] for i in range(0, len(sample), width)]
        ascii_units = sum(u.count(0) == width - 1 and u[char] != 0 for u in units)
        if ascii_units * 10 >= 9 * len(units):
            return name
    return None


def read_json_lines(path: str | Path) -> Iterator[tuple[int, str, dict[str, Any] | BadRow]]:
    """(line, raw text, JSON object or BadRow) of a JSONL file, blank lines skipped; for lines
    sent to a topic as they are. Opening problems raise `FileProblem` at once."""
    f = ExampleFile.__new__(ExampleFile)
    f.path, f.name, f.is_jsonl = Path(path), str(path), True
    _check_readable(f.path, f.name)

    def rows() -> Iterator[tuple[int, str, dict[str, Any] | BadRow]]:
        for line, raw, parsed in f._rows():
            obj = f._as_dict(parsed)
            if isinstance(obj, _RowError):
                yield line, raw, BadRow(line, str(obj), raw, obj.category)
            else:
                yield line, raw, obj
    return rows()


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _csv_words(exc: Exception) -> str:
    """The csv module's complaint in words: 'field larger than field limit (131072)'."""
    limit = re.fullmatch(r"field larger than field limit \((\d+)\)", str(exc))
    if limit:
        return f"a value longer than {int(limit.group(1)):,} characters"
    return str(exc)


def _json_error(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg.lower()} at column {exc.colno}"
    return str(exc)


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in text)


def _printable(text: str) -> str:
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


class Rejections:
    """Bad rows counted by reason, for the end summary: count, first lines, one example."""

    def __init__(self) -> None:
        self.count = 0
        self.by: dict[str, list[Any]] = {}  # category -> [count, first lines, first reason]

    def add(self, line: int, reason: str, category: str = "") -> None:
        self.count += 1
        entry = self.by.setdefault(category or reason, [0, [], reason])
        entry[0] += 1
        if len(entry[1]) < 3:
            entry[1].append(line)

    def lines(self, top: int = 5) -> list[str]:
        """'  12 × too few values (lines 4, 9, 17, …): 2 values, but the header has 3 columns'"""
        out = []
        ranked = sorted(self.by.items(), key=lambda kv: -kv[1][0])
        top = len(ranked) if len(ranked) <= top + 1 else top
        for category, (n, first, example) in ranked[:top]:
            where = ", ".join(map(str, first)) + (", …" if n > len(first) else "")
            detail = "" if example.startswith(category) else f": {example}"
            out.append(f"  {n:>6} × {category} (line{'s' if n > 1 else ''} {where}){detail}")
        if len(ranked) > top:
            rest = sum(v[0] for _, v in ranked[top:])
            out.append(f"  {rest:>6} × other reasons ({len(ranked) - top} more)")
        return out


def most_rejected(rejected: int, total: int) -> bool:
    """Exit code 3 when more than half of the rows were refused."""
    return total > 0 and rejected * 2 > total
