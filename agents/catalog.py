"""Which model a record names: the configured models, the models templates make on first use,
and the challengers that see what a model sees.

A **template** is a model table whose name holds `*` (`[models."tenant-*"]`). A record that
names `tenant-42` gets a model of its own, built from the template's settings the first time
that name comes, then learned, checkpointed and restored like any configured model. Why: one
model per customer, device or site without listing them in the config; each name hashes to
its own records partition, so the models spread over the workers.

A **challenger** (`challenger_of = "default"`) gets a copy of every record its champion gets
(same ids, same labels, its own shards) and publishes nothing: its predictions and refusals
are counted in its status, where the sidecar sets it beside its champion's.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Spec:
...     name: str
...     template: str = ""
...     challenger_of: str = ""
>>> cat = ModelCatalog({"default": Spec("default"), "tenant-*": Spec("tenant-*"),
...                     "candidate": Spec("candidate", challenger_of="default")})
>>> cat["tenant-7"]
Spec(name='tenant-7', template='tenant-*', challenger_of='')
>>> "tenant 7" in cat, "other" in cat, sorted(cat)
(False, False, ['candidate', 'default', 'tenant-*'])
>>> [c.name for c in cat.challengers("default")]
['candidate']
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

#: what a model name may hold: it appears in Kafka keys, status keys and URLs
MODEL_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
#: a template's name: the same, with at least one `*` (matching any run of name characters)
TEMPLATE_NAME = re.compile(r"[A-Za-z0-9._*-]{1,100}")
#: names made from templates kept resolved (the least recently used is resolved again later)
MADE_KEPT = 100_000


def is_template(name: str) -> bool:
    return "*" in name


class ModelCatalog:
    """The configured model specs (`streamsvc.config.ModelSpec`), looked up by name: a
    configured name gives its spec; a name a template matches (first template in config
    order) gives the template's spec under that name, with `template` set to the template's
    name. A template's own name gives nothing: it names no model. Iterating gives the
    configured tables' names, templates included; `models` holds the configured models alone."""

    def __init__(self, specs: Mapping[str, Any]) -> None:
        self._configured = dict(specs)
        #: the configured models, templates left out: a plain dict for the hot path's lookups
        self.models = {n: s for n, s in self._configured.items() if not is_template(n)}
        self._templates = [s for n, s in self._configured.items() if is_template(n)]
        self._made: OrderedDict[str, Any] = OrderedDict()  # least recently used first
        self._challengers: dict[str, list[Any]] = {}
        for spec in self._configured.values():
            champion = getattr(spec, "challenger_of", "")
            if champion:
                self._challengers.setdefault(champion, []).append(spec)
        #: whether any model has a challenger (most configs: no copies to make)
        self.challenged = bool(self._challengers)

    def __getitem__(self, name: str) -> Any:
        spec = self.get(name)
        if spec is None:
            raise KeyError(name)
        return spec

    def __iter__(self) -> Iterator[str]:
        return iter(self._configured)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def get(self, name: str, default: Any = None) -> Any:
        spec = self.models.get(name)
        if spec is not None:
            return spec
        spec = self._made.get(name)
        if spec is not None:
            self._made.move_to_end(name)
            return spec
        template = self.template_for(name)
        if template is None or not MODEL_NAME.fullmatch(name):
            return default
        if len(self._made) >= MADE_KEPT:
            self._made.popitem(last=False)
        spec = self._made[name] = dataclasses.replace(template, name=name,
                                                      template=template.name)
        return spec

    def template_for(self, name: str) -> Any:
        """The first template whose pattern matches `name`, or None."""
        for spec in self._templates:
            if fnmatch.fnmatchcase(name, spec.name):
                return spec
        return None

    def challengers(self, name: str) -> list[Any]:
        """The challengers of model `name` (empty for most models)."""
        return self._challengers.get(name, [])


def catalog(specs: Mapping[str, Any]) -> ModelCatalog:
    """`specs` as a `ModelCatalog` (as is, if it is one)."""
    return specs if isinstance(specs, ModelCatalog) else ModelCatalog(specs)
