"""Dead-letter reasons as a person reads them: the field, what it must be, what it was; no
pydantic union branches ("y.bool: Input should be ..."), no Python wording ("codec can't
decode", "char 1"). One case per message."""

from __future__ import annotations

import pytest

from agents.messages import BadRecord, EdgeIn, EventIn, LabelIn, NodeLabelIn, TransitionIn, decode

CASES = [
    (EventIn, b'{"id": "1", "x": {"a": 1}, "y": 1.0}',
     "invalid 'y' (the label): must be an integer, true/false or non-empty text, not the "
     "number 1.0 (labels are classes: send 1, not 1.0)"),
    (EventIn, b'{"id": "1", "x": {"a": 1}, "y": 1.5}',
     "invalid 'y' (the label): must be an integer, true/false or non-empty text, not the "
     "number 1.5 (labels are classes, not measurements)"),
    (EventIn, b'{"id": "1", "x": {"a": 1}, "y": ""}',
     "invalid 'y' (the label): must be an integer, true/false or non-empty text, not empty "
     "text"),
    (EventIn, b'{"id": "1", "x": {"a": [1]}}',
     "invalid feature 'a': must be a number or text, not a list"),
    (EventIn, b'{"id": "1", "x": {"int": null}}',
     "invalid feature 'int': must be a number or text, not null"),
    (EventIn, b'{"id": "1", "x": "abc"}',
     "invalid 'x' (the features): must be an object of feature names to numbers or text, not "
     "the text 'abc'"),
    (EventIn, b'{"x": {}}', "missing 'id': text or an integer"),
    (EventIn, b'{"id": 1.5, "x": {}}', "invalid 'id': must be text or an integer"),
    (EventIn, b'{"id": "1", "x": {}, "ts": "noon"}',
     "invalid 'ts' (the time): must be a number (epoch seconds), not the text 'noon'"),
    (EventIn, b'{"id": "1", "x": {}, "model": 3}',
     "invalid 'model': must be text (a model name), not the number 3"),
    (EventIn, b'{"id": "1", "x": {"a": 1e400}}', "invalid feature 'a': must be finite"),
    (LabelIn, b'{"id": "1"}', "missing 'y' (the label): an integer, true/false or non-empty text"),
    (TransitionIn, b'{"agent": "a", "episode": "e", "obs": []}',
     "invalid 'obs' (the observation): must be a non-empty list of numbers, not an empty list"),
    (TransitionIn, b'{"agent": "a", "episode": "e", "obs": ["x"], "done": "yes"}',
     "invalid item 0 of 'obs': must be a number, not the text 'x'; invalid 'done': must be "
     "true or false, not the text 'yes'"),
    (EdgeIn, b'{"src": "a", "dst": "b", "ts": 1, "x": {"a": "x"}}',
     "invalid feature 'a': must be a number, not the text 'x'"),
    (NodeLabelIn, b'{"node": "a", "ts": 1}',
     "missing 'y' (the label): an integer, true/false or non-empty text"),
    (EventIn, b"{", "not valid UTF-8 JSON: expecting property name enclosed in double quotes "
     "at line 1, column 2"),
    (EventIn, b"\xff", "not valid UTF-8 JSON: byte 0xff at position 0 is not UTF-8 text"),
    (EventIn, b"[1]", "expected a JSON object ({...}), got a list"),
    (EventIn, b'"x"', "expected a JSON object ({...}), got the text 'x'"),
    (EventIn, b"[" * 100_000, "not valid UTF-8 JSON: nested too deeply"),
]


@pytest.mark.parametrize("shape,raw,reason", CASES, ids=[c[2][:40] for c in CASES])
def test_reason_in_plain_words(shape: type, raw: bytes, reason: str) -> None:
    with pytest.raises(BadRecord) as err:
        decode(raw, shape)
    said = str(err.value)
    assert said.startswith(reason), said
    for internal in ("Input should", ".bool", ".int", "constrained-str", "list[float]",
                     "Value error", "codec", "char ", "Field required"):
        assert internal not in said, said


def test_the_kind_of_fault_comes_before_the_first_colon() -> None:
    """Dead letters are counted by the words before the first colon (`dead_letters_by_reason`):
    they must name the fault, not lump every validation error together."""
    kinds = set()
    for raw in (b'{"id": "1", "x": {}, "y": 1.5}', b'{"id": "1", "x": "s"}', b'{"x": {}}'):
        with pytest.raises(BadRecord) as err:
            decode(raw, EventIn)
        kinds.add(str(err.value).split(":", 1)[0])
    assert kinds == {"invalid 'y' (the label)", "invalid 'x' (the features)", "missing 'id'"}


def test_an_object_is_an_object() -> None:
    with pytest.raises(BadRecord) as err:
        decode(b'{"id": "1", "x": {"a": {"b": 1}}}', EventIn)
    assert str(err.value) == "invalid feature 'a': must be a number or text, not an object"
