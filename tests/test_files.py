"""`streamsvc.files` alone: a user's messy CSV/JSONL rows become examples or bad rows with the
line, a reason in plain words and the raw text; whole-file problems are one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamsvc.files import (
    BadRow,
    Example,
    ExampleFile,
    FileProblem,
    Rejections,
    most_rejected,
    read_json_lines,
)


def rows(f: ExampleFile) -> dict[int, Example | BadRow]:
    return {r.line: r for r in f}


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def test_csv_short_long_and_text_rows_are_bad_rows_with_line_and_raw(tmp_path: Path) -> None:
    good = "\n".join(f"{i},{i % 3},{'red' if i % 2 else 'blue'},{i % 2}" for i in range(20))
    p = write(tmp_path, "d.csv", "a,b,colour,label\n" + good + "\n7,1\n1,2,red,0,9\n"
              "oops,1,red,1\n,1,red,1\nNA,2,blue,0\n3,1,red,\n")
    f = ExampleFile(p, need_label=True)
    got = rows(f)
    assert len(got) == 26
    assert isinstance(got[2], Example) and got[2].x == {"a": 0, "b": 0, "colour": "blue"}
    assert got[2].y == 0 and got[2].id == "2"  # id: the line number
    short, long_, text = got[22], got[23], got[24]
    assert isinstance(short, BadRow) and short.reason == "2 values, but the header has 4 columns"
    assert short.raw == "7,1" and short.category == "too few values"
    assert isinstance(long_, BadRow) and long_.category == "too many values"
    assert long_.raw == "1,2,red,0,9"
    assert isinstance(text, BadRow) and text.reason.startswith(
        "column 'a' holds 'oops', but it is a numeric column")
    # empty cells and NA are missing values: the feature is left out, the row is kept
    assert got[25].x == {"b": 1, "colour": "red"} and got[26].x == {"b": 2, "colour": "blue"}
    assert isinstance(got[27], BadRow) and got[27].reason == (
        "no label (column 'label' is empty or missing)")


def test_the_label_column_is_said_when_guessed(tmp_path: Path) -> None:
    p = write(tmp_path, "d.csv", "a,colour\n1,red\n2,blue\n")
    f = ExampleFile(p)
    assert f.target == "colour"
    assert f.note == ("using column 'colour' as the label (the last column); pass --target to "
                      "choose")
    assert ExampleFile(p, target="colour").note is None
    assert ExampleFile(p, guess_target=False).note.startswith("no --target: every column")
    j = write(tmp_path, "d.jsonl", '{"a": 1, "label": "x", "z": 2}\n')
    assert ExampleFile(j).target == "label" and ExampleFile(j).note == (
        "using key 'label' as the label (the usual name of a label); pass --target to choose")


@pytest.mark.parametrize("cell,label", [("1.0", 1), ("0.0", 0), ("1", 1), ("true", True),
                                        ("False", False), ("cat", "cat"), ("1e2", 100)])
def test_auto_labels(tmp_path: Path, cell: str, label: object) -> None:
    p = write(tmp_path, "d.csv", f"a,y\n1,{cell}\n")
    (row,) = list(ExampleFile(p))
    assert row.y == label and type(row.y) is type(label)


def test_pandas_integer_column_with_gaps(tmp_path: Path) -> None:
    """pandas writes an integer column with missing values as floats: 1.0, 0.0, ''."""
    lines = [f"{i},{float(i % 2)}" if i % 5 else f"{i}," for i in range(300)]
    p = write(tmp_path, "d.csv", "a,label\n" + "\n".join(lines) + "\n")
    got = list(ExampleFile(p))
    labels = [r.y for r in got if isinstance(r, Example) and r.y is not None]
    assert len(labels) == 240 and set(labels) == {0, 1}
    assert all(type(y) is int for y in labels)
    assert sum(isinstance(r, BadRow) for r in ExampleFile(p, need_label=True)) == 60


def test_decimal_labels_are_refused_with_the_way_out(tmp_path: Path) -> None:
    p = write(tmp_path, "d.csv", "a,y\n1,1.5\n2,2.5\n")
    (row, _) = list(ExampleFile(p))
    assert isinstance(row, BadRow)
    assert row.reason == ("label '1.5' is a decimal number, but labels are classes (integers, "
                          "true/false or text); pass --label-type str to use such labels as "
                          "class names")
    assert [r.y for r in ExampleFile(p, label_type="str")] == ["1.5", "2.5"]
    assert [r.y for r in ExampleFile(p, label_type="float")] == ["1.5", "2.5"]


def test_one_label_type_per_file(tmp_path: Path) -> None:
    p = write(tmp_path, "d.csv", "a,y\n1,0\n2,1\n3,yes\n4,true\n")
    got = rows(ExampleFile(p))
    assert got[4].reason == ("label 'yes' is text, but the labels before it are integers; a "
                             "model learns one label type: pass --label-type str to read every "
                             "label as text")
    assert got[5].reason.startswith("label 'true' is a boolean (true/false), but")
    assert [r.y for r in ExampleFile(p, label_type="str")] == ["0", "1", "yes", "true"]


@pytest.mark.parametrize("kind,cell,reason", [
    ("int", "x", "label 'x' is not an integer (--label-type int)"),
    ("int", "1.5", "label '1.5' is not an integer (--label-type int)"),
    ("bool", "maybe", "label 'maybe' is not true/false (--label-type bool)"),
    ("float", "abc", "label 'abc' is not a number (--label-type float)"),
])
def test_explicit_label_types_refuse_in_words(tmp_path: Path, kind: str, cell: str,
                                             reason: str) -> None:
    p = write(tmp_path, "d.csv", f"a,y\n1,{cell}\n")
    (row,) = list(ExampleFile(p, label_type=kind))
    assert isinstance(row, BadRow) and row.reason == reason


def test_explicit_label_types_convert(tmp_path: Path) -> None:
    p = write(tmp_path, "d.csv", "a,y\n1,1\n2,0\n3,yes\n")
    assert [r.y for r in ExampleFile(p, label_type="bool")] == [True, False, True]
    p = write(tmp_path, "e.csv", "a,y\n1,2.0\n2,3\n")
    assert [r.y for r in ExampleFile(p, label_type="int")] == [2, 3]


def test_jsonl_bad_lines_do_not_stop_the_file(tmp_path: Path) -> None:
    p = write(tmp_path, "d.jsonl", '{"a": 1, "y": 1}\n{not json\n\n[1, 2]\n'
              '{"a": [1], "y": 0}\n{"a": 2, "y": 1.0}\n{"a": "x", "y": 0}\n')
    got = rows(ExampleFile(p))
    assert set(got) == {1, 2, 4, 5, 6, 7}
    assert got[2].reason.startswith("not valid JSON (expecting property name")
    assert got[2].raw == "{not json"
    assert got[4].reason == "expected a JSON object ({...}), got a list"
    assert got[5].reason == "feature 'a' is a list; features are numbers or text"
    assert got[6].y == 1 and got[6].x == {"a": 2}
    assert got[7].reason == ("key 'a' holds 'x', but it is a numeric key (numbers in most "
                             "rows); fix the value or leave it empty")


def test_jsonl_events_keep_their_ids(tmp_path: Path) -> None:
    lines = [{"id": f"e{i}", "x": {"a": i, "c": "k"}, "y": i % 2} for i in range(5)]
    p = write(tmp_path, "d.jsonl", "\n".join(json.dumps(m) for m in lines) + '\n{"id": "z"}\n')
    got = list(ExampleFile(p))
    assert [r.id for r in got[:5]] == [f"e{i}" for i in range(5)]
    assert got[2].x == {"a": 2, "c": "k"} and got[2].y == 0
    assert isinstance(got[5], BadRow) and "'x' (the features) is missing" in got[5].reason


def test_a_row_says_whether_its_id_is_its_line_number(tmp_path: Path) -> None:
    # produce notes rows sent with their line number as id (another such file repeats them);
    # an id that happens to equal the line is a given id
    p = write(tmp_path, "d.csv", "id,a,y\n2,1,0\n9,2,1\n")
    given = list(ExampleFile(p, "y", "id"))
    assert [(r.id, r.lined) for r in given] == [("2", False), ("9", False)]
    assert [(r.id, r.lined) for r in ExampleFile(p, "y")] == [("2", True), ("3", True)]
    p = write(tmp_path, "e.jsonl", '{"id": "1", "x": {"a": 1}}\n{"x": {"a": 2}}\n')
    assert [(r.id, r.lined) for r in ExampleFile(p)] == [("1", False), ("2", True)]


def test_bytes_that_are_not_utf8_spoil_only_their_row(tmp_path: Path) -> None:
    p = write(tmp_path, "d.csv", b"a,y\n1,0\n\xff\xfe,1\n2,1\n")
    got = rows(ExampleFile(p))
    assert got[3].reason == "not UTF-8 text (save the file as UTF-8)"
    assert got[2].y == 0 and got[4].y == 1


def test_semicolon_files_and_a_byte_order_mark(tmp_path: Path) -> None:
    p = write(tmp_path, "d.csv", "\ufeffa;b;label\n1;2;0\n")
    (row,) = list(ExampleFile(p))
    assert row.x == {"a": 1, "b": 2} and row.y == 0


@pytest.mark.parametrize("name,content,kw,words", [
    ("nosuch.csv", None, {}, "no such file: "),
    ("empty.csv", "", {}, "is empty"),
    ("blank.csv", "\n\n  \n", {}, "is empty"),
    ("header.csv", "a,b,label\n", {}, "has no data rows (only a header)"),
    ("d.csv", "a,b,label\n1,2,0\n", {"target": "lable"},
     "--target column 'lable' is not in {path} (columns: a, b, label)"),
    ("d.csv", "a,b,label\n1,2,0\n", {"id_column": "key"},
     "--id-column column 'key' is not in {path} (columns: a, b, label)"),
    ("d.csv", "a,a,label\n1,2,0\n", {}, "column 'a' appears twice in the header"),
    ("d.jsonl", '{"a": 1}\n', {"target": "y"},
     "--target column 'y' is not in {path} (keys in its first rows: a)"),
    ("d.csv", "a\n1\n", {}, "has only the column 'a': no features"),
])
def test_whole_file_problems(tmp_path: Path, name: str, content: str | None, kw: dict,
                             words: str) -> None:
    p = tmp_path / name
    if content is not None:
        p.write_text(content)
    with pytest.raises(FileProblem) as err:
        ExampleFile(p, **kw)
    assert words.format(path=p) in str(err.value)


def test_a_folder_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(FileProblem, match="is a folder, not a file"):
        ExampleFile(tmp_path)
    with pytest.raises(FileProblem, match="no such file"):
        read_json_lines(tmp_path / "x.jsonl")


def test_read_json_lines_keeps_raw_text(tmp_path: Path) -> None:
    p = write(tmp_path, "l.jsonl", '{"id": "e1", "y": 1}\n\n{"id": 2}x\n"text"\n')
    got = list(read_json_lines(p))
    assert got[0] == (1, '{"id": "e1", "y": 1}', {"id": "e1", "y": 1})
    assert isinstance(got[1][2], BadRow) and got[1][0] == 3
    assert got[2][2].reason == "expected a JSON object ({...}), got 'text'"


def test_rejections_summary_by_reason() -> None:
    r = Rejections()
    for line in (4, 9, 12, 30):
        r.add(line, "2 values, but the header has 3 columns", "too few values")
    r.add(7, "not valid JSON (x)", "not valid JSON")
    assert r.lines() == [
        "       4 × too few values (lines 4, 9, 12, …): 2 values, but the header has 3 "
        "columns",
        "       1 × not valid JSON (line 7)"]
    assert most_rejected(6, 10) and not most_rejected(5, 10) and not most_rejected(0, 0)


def test_a_json_array_or_a_csv_named_jsonl_is_said_plainly(tmp_path: Path) -> None:
    p = write(tmp_path, "d.json", '[{"a": 1, "y": 0},\n {"a": 2, "y": 1}]\n')
    with pytest.raises(FileProblem, match=r"is one JSON document \(an array\), not JSON Lines"):
        ExampleFile(p)
    p = write(tmp_path, "c.jsonl", "a,b\n1,2\n")
    with pytest.raises(FileProblem, match="none of its first 2 lines is a JSON object"):
        ExampleFile(p)


def test_blank_spreadsheet_rows_carry_nothing_and_are_passed_over(tmp_path: Path) -> None:
    p = write(tmp_path, "d.csv", "a,b,label\n1,2,0\n,,\n\n3,4,1\n , ,\n")
    assert [(r.line, r.y) for r in ExampleFile(p, need_label=True)] == [(2, 0), (5, 1)]


def test_huge_numbers_objects_and_jsonl_wording(tmp_path: Path) -> None:
    """A value a learner cannot square without overflow (beyond ±1e100) is refused like an
    infinite one (the learners would print numpy overflow warnings and learn garbage); JSON
    lines are spoken of by key, and an object is 'an object'."""
    p = write(tmp_path, "d.csv", "a,b,label\n1,2,0\n1e99,2,1\n-1e101,2,1\n1e308,2,0\n"
              "1e400,2,0\ninf,1,1\n")
    got = rows(ExampleFile(p))
    assert got[3].x == {"a": 1e99, "b": 2}
    assert got[4].reason == ("column 'a' holds '-1e101', beyond ±1e100: too large to learn "
                             "from; rescale the values or leave it empty")
    assert got[4].category == got[5].category == "number too large in column 'a'"
    assert got[6].reason == "column 'a' holds '1e400', not a finite number"
    assert got[7].category == "infinite number in column 'a'"
    j = write(tmp_path, "d.jsonl", '{"a": 1, "y": 0}\n{"a": {"n": 1}, "y": 1}\n'
              '{"a": 1e300, "y": 1}\n{"a": 2}\n{"a": {}, "y": 0}\n')
    got = rows(ExampleFile(j, need_label=True))
    assert got[2].reason == "feature 'a' is an object; features are numbers or text"
    assert got[3].reason.startswith("key 'a' holds the number 1e+300, beyond ±1e100")
    assert got[4].reason == "no label (key 'y' is empty or missing)"
    assert got[5].reason == "feature 'a' is an empty object; features are numbers or text"


def test_spreadsheet_and_pandas_exports(tmp_path: Path) -> None:
    """pandas' unnamed index column is the id, not a feature; a separator at the end of every
    line (an empty, unnamed last column) is not taken for the label; a ';'-separated file with
    decimal commas has numbers, labels included; what was chosen is said."""
    p = write(tmp_path, "pd.csv", ",temp,colour,label\n0,21.5,red,1.0\n1,19.0,blue,0.0\n"
              "3,22.5,red,1.0\n")
    f = ExampleFile(p)
    assert f.id_column == "column 1" and f.target == "label"
    assert f.notes == [
        "using column 'label' as the label (the last column); pass --target to choose",
        "'column 1' has no name and counts the rows (a pandas index?): used as the event id, "
        "not as a feature",
        "features: 1 numeric (temp), 1 text (colour)"]
    assert [(r.id, r.x, r.y) for r in f] == [("0", {"temp": 21.5, "colour": "red"}, 1),
                                             ("1", {"temp": 19.0, "colour": "blue"}, 0),
                                             ("3", {"temp": 22.5, "colour": "red"}, 1)]
    # an unnamed first column that does not count rows stays a feature
    p = write(tmp_path, "nn.csv", ",b,label\n5,1,0\n2,2,1\n")
    assert ExampleFile(p).id_column is None and next(iter(ExampleFile(p))).x == {
        "column 1": 5, "b": 1}

    p = write(tmp_path, "xl.csv", "a,b,label,\n1,2,0,\n3,4,1,\n")
    f = ExampleFile(p, need_label=True)
    assert f.target == "label" and "(the last column with values)" in f.note
    assert [(r.x, r.y) for r in f] == [({"a": 1, "b": 2}, 0), ({"a": 3, "b": 4}, 1)]

    p = write(tmp_path, "eu.csv", "temp;druck;label\n21,5;1013;1,0\n-3,25;990;0\n")
    f = ExampleFile(p)
    assert [(r.x, r.y) for r in f] == [({"temp": 21.5, "druck": 1013}, 1),
                                       ({"temp": -3.25, "druck": 990}, 0)]
    assert f.notes[1] == "features: 2 numeric (temp, druck)"


def test_a_column_read_as_text_is_shown_with_its_numbers(tmp_path: Path) -> None:
    """A numeric column with '-' for missing values in most rows becomes a text column; the
    features note says so, where the user can see why the model learns little from it."""
    p = write(tmp_path, "d.csv", "a,b,c,label\n" + "".join(
        f"{'-' if i % 3 else i},{i},{'x' if i % 2 else 'y'},{i % 2}\n" for i in range(30)))
    assert ExampleFile(p).notes[1] == "features: 1 numeric (b), 2 text (a: partly numbers; c)"
    j = write(tmp_path, "e.jsonl", '{"id": "e1", "x": {"a": 1, "s": "k"}, "y": 0}\n')
    assert ExampleFile(j).notes == ["features: 1 numeric (a), 1 text (s)"]


@pytest.mark.parametrize("name,content,kw,reason", [
    ("d.csv", "a,b,label\n1,2,0\n3," + "x" * 200_000 + ",1\n", {},
     "not a valid CSV row (a value longer than 131,072 characters)"),
    ("d.csv", "id,a,label\nk1,2,0\n,3,1\n", {"id_column": "id"},
     "no usable id (empty text in 'id')"),
    ("d.jsonl", '{"id": "e0", "x": {"a": 1}, "y": 0}\n{"id": 1.5, "x": {"a": 1}, "y": 0}\n',
     {}, "no usable id (the number 1.5 in 'id')"),
    ("d.jsonl", '{"k": "r0", "a": 1, "y": 0}\n{"a": 2, "y": 1}\n', {"id_column": "k"},
     "no usable id (no 'k' key)"),
    ("d.jsonl", '{"a": 1, "y": 0}\n{"a": 2, "y": [1]}\n', {},
     "label is a list; a label is a number, true/false or text"),
    ("d.jsonl", '{"a": 1, "y": 0}\n{"a": 2, "y": {"c": 1}}\n', {},
     "label is an object; a label is a number, true/false or text"),
    ("d.jsonl", '{"id": "e0", "x": {"a": 1}, "y": 0}\n{"id": "e1", "x": 3, "y": 0}\n'
     '{"id": "e2", "x": {"a": 1}, "y": 0}\n', {},
     "'x' (the features) is missing or not an object; the first lines of this file are events "
     '{"id", "x", "y"}'),
])
def test_row_reasons_in_words(tmp_path: Path, name: str, content: str, kw: dict,
                              reason: str) -> None:
    """One case per row-level message not met elsewhere in this file."""
    got = rows(ExampleFile(write(tmp_path, name, content), **kw))
    assert isinstance(got[3 if name.endswith(".csv") else 2], BadRow), got
    assert got[3 if name.endswith(".csv") else 2].reason == reason


@pytest.mark.parametrize("name,content,kw,words", [
    ("d.csv", b"\x1f\x8b\x08\x00\xff\xfe\x00\x01,\n1,2\n", {},
     "{path}: its first line is not a readable CSV header (save the file as UTF-8 text with "
     "a header row)"),
    ("d.jsonl", '{"id": "e0", "x": {"a": 1}, "y": 0}\n', {"id_column": "id"},
     "--id-column applies to flat rows; these JSON lines are events with their own 'id'"),
    ("d.jsonl", "{}\n{}\n", {}, "{path}: its objects have no keys: nothing to learn from"),
    ("d.csv", "a,label\n1,0\n", {"label_type": "number"},
     "unknown label type 'number'; choose from auto, int, float, str, bool"),
])
def test_more_whole_file_problems(tmp_path: Path, name: str, content: str | bytes, kw: dict,
                                  words: str) -> None:
    p = write(tmp_path, name, content)
    with pytest.raises(FileProblem) as err:
        ExampleFile(p, **kw)
    assert str(err.value) == words.format(path=p)


def test_a_file_that_cannot_be_read(tmp_path: Path) -> None:
    """Opened but not readable: a file without read permission, or (as root, who may read
    any file) one the kernel refuses to read: /proc/self/mem at offset 0."""
    import os

    if os.geteuid() == 0:
        p, why = Path("/proc/self/mem"), "Input/output error"
    else:
        p, why = write(tmp_path, "d.csv", "a,label\n1,0\n"), "Permission denied"
        p.chmod(0)
    with pytest.raises(FileProblem) as err:
        ExampleFile(p)
    assert str(err.value) == f"cannot read {p}: {why}"


def test_without_target_a_label_like_column_is_pointed_out(tmp_path: Path) -> None:
    p = write(tmp_path, "d.csv", "a,b,label\n1,2,0\n")
    assert ExampleFile(p, guess_target=False).note == (
        "no --target: every column is sent as a feature, without a label (predictions only); "
        "pass --target COLUMN to send labels (is 'label' the label?)")
    j = write(tmp_path, "d.jsonl", '{"a": 1, "b": 2}\n')
    assert ExampleFile(j, guess_target=False).note == (
        "no --target: every key is sent as a feature, without a label (predictions only); "
        "pass --target KEY to send labels")


@pytest.mark.parametrize("encoding, said", [
    ("utf-16", "UTF-16"), ("utf-16-le", "UTF-16LE"), ("utf-16-be", "UTF-16BE"),
    ("utf-32", "UTF-32"), ("utf-32-le", "UTF-32LE")])
@pytest.mark.parametrize("name, text", [
    ("d.jsonl", '{"x": {"a": 1}, "y": 1}\n{"x": {"a": 2}, "y": 0}\n'),
    ("d.csv", "a,label\n1,0\n2,1\n")])
def test_a_file_in_a_wide_encoding_is_named_as_such(tmp_path: Path, encoding: str, said: str,
                                                    name: str, text: str) -> None:
    # the demo used to say "none of its first 3 lines is a JSON object" (produce: a dead row
    # per line): one sentence for the file, with the way out
    f = tmp_path / name
    f.write_bytes(text.encode(encoding))
    with pytest.raises(FileProblem) as err:
        ExampleFile(f)
    assert f"is {said} text, not UTF-8: save it as UTF-8 (e.g. iconv -f {said}" in str(err.value)
    f.write_text(text, encoding="utf-8")
    assert ExampleFile(f).columns or ExampleFile(f).event_shaped  # UTF-8 reads as before
