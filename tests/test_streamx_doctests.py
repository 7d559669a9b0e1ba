"""Run the docstring examples of every module under ``models/`` (river style).

Collected here rather than with ``--doctest-modules`` so that only the pure-learner package is
searched (no imports of the service or of benchmark scripts), and each module is its own test.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import models


def _modules() -> list[str]:
    names = [models.__name__]
    for info in pkgutil.walk_packages(models.__path__, prefix=models.__name__ + "."):
        names.append(info.name)
    return sorted(names)


MODULES = _modules()


def test_the_stream_x_learners_carry_examples() -> None:
    finder = doctest.DocTestFinder()
    for name in ("models.streamx.td", "models.streamx.q"):
        tests = [t for t in finder.find(importlib.import_module(name)) if t.examples]
        assert tests, f"{name} has no docstring example"


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
