"""river's estimator test suite, runnable without scikit-learn."""

from __future__ import annotations

import sys
import types


def check_estimator(model) -> None:
    # river.checks imports scikit-learn only to build multi-output *regression* datasets,
    # which do not apply to a classifier; a stub lets the suite run without that dependency.
    if "sklearn" not in sys.modules:
        try:
            import sklearn  # noqa: F401
        except ImportError:
            stub = types.ModuleType("sklearn")
            stub.datasets = types.ModuleType("sklearn.datasets")  # type: ignore[attr-defined]
            sys.modules["sklearn"] = stub
            sys.modules["sklearn.datasets"] = stub.datasets  # type: ignore[attr-defined]
    from river.checks import check_estimator as river_check

    river_check(model)
