"""DriftMoE: an online mixture of Hoeffding-tree experts with a co-trained neural router.

Idea (Aspis et al., 2025, "DriftMoE"): a small MLP router learns, from the features alone,
which experts are right on which part of the input space; the experts learn only what the
router sends them, so they specialise on data regimes, and after a drift the router moves its
traffic to whichever expert is right again. Per labelled example, in order:

1. router logits ``z = MLP(x_scaled)``;
2. every expert predicts; correctness mask ``m_e = 1`` if expert *e* is right (if none is, the
   expert giving the true class the highest probability — ties go to the router's choice);
3. the prediction is the answer of the router's top-1 expert (done in ``predict_*``; by
   default here a vote of its top-6, weighted by the router's confidence — ``predict_top``);
4. ``(x_scaled, m)`` is buffered; every ``batch_size`` examples the router takes one Adam step
   on BCE-with-logits;
5. the router's top-k experts learn ``(x, y)``.

Two variants:

* ``variant="data"``: ``n_experts`` multi-class trees (data-regime experts).
* ``variant="task"``: one binary one-vs-rest tree per class, created when a class first
  appears; the router is trained on the one-hot mask of the true class. Unlike the reference
  (whose prediction is the router's argmax, experts unused), the prediction mixes the
  router's class distribution with the experts' normalised one-vs-rest scores, with the
  weights of the two sources set online by an exponentially-forgetting Hedge on their log
  loss; ``last_expert`` is the class expert with the best mixed score.

Beyond the reference: router inputs are standardised online, categorical values are one-hot
encoded through a growing vocabulary, features appearing late get new router input units,
and the expert predictions computed by ``predict_*`` are reused by the following
``learn_one`` on the same ``x`` (test-then-train costs one round of expert predictions).
The data variant's experts also learn as ARF's trees do, with Poisson(6) example weights, and
the pool mixes cautious trees (split confidence 1e-7, a third) with fast-growing ones (0.01): the
reference's unit-weight, 1e-7 trees grew too slowly to follow an RBF stream or a curved
boundary (issue 11; ``python -m bench.drift_tune``), while ARF's settings alone lose on LED.
And, unlike the reference's 3 of 12, the router's top 6 of 8 experts learn each example and
vote on it, their tree leaves splitting on random feature subspaces (ARF's ``max_features``):
with a quarter of the stream each, the experts were starved on small or fast-moving data
(Bananas, ``rbf-fast``), where ARF's trees all learn every example (``top_k``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from river import base, drift, tree

from .hoeffding import FastHoeffdingTreeClassifier
from .mlp import MLP, Adam
from .scaling import FeatureEncoder

__all__ = ["DriftMoEClassifier"]


def _jsonable(v: Any) -> Any:
    """Labels as JSON-friendly scalars (numpy bools/ints come from some datasets)."""
    if isinstance(v, (str, int, float)) or v is None:
        return v
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


class DriftMoEClassifier(base.Classifier):
    """Mixture of Hoeffding-tree experts routed by an online numpy MLP (DriftMoE).

    Parameters
    ----------
    variant
        ``"data"`` (data-regime experts, multi-class trees) or ``"task"`` (one binary
        one-vs-rest tree per class).
    n_experts
        Number of experts of the data variant (the task variant has one per class seen).
    top_k
        Data variant: how many of the router's best experts learn each example. Task variant
        with ``task_train="topk"``: how many experts besides the true class's learn.
        ``None``: 6 for the data variant (of 8 experts), 3 for the task variant. Why 6 of 8
        and not the reference's 3 of 12 (issue 11, ``python -m bench.drift_tune``, tuning
        seeds 1-3): with 3 of 12 each expert learns only a quarter of the stream and the
        prediction is a vote of 3 trees, where ARF's 10 trees all learn every example. On a
        small data set (Bananas: 5,300 examples) or a concept that keeps moving
        (``rbf-fast``) the experts were starved of examples: 2-3 points below ARF(10).
        Letting the 6 best-placed of 8 experts learn (and vote) recovers that; the router
        still decides which experts answer and how much each counts, and the 2 experts least
        suited to an example do not learn it.
    hidden
        Hidden layer widths of the router.
    lr
        Adam learning rate of the router.
    batch_size
        Examples per router update. The reference uses 256; 16 lets the router follow a drift
        within a few hundred examples (``python -m bench.drift``: +2 to +9 points on SEA and
        RBF streams, same on LED).
    grace_period, delta, leaf_prediction
        Passed to every ``river.tree.HoeffdingTreeClassifier`` expert (``delta`` is the split
        confidence). ``grace_period`` and ``delta`` may be tuples, cycled over the experts
        (expert *e* gets item ``e % len``). ``None``: the variant's default. Data variant:
        grace period 100 and a pool of two kinds of trees: every third expert (0, 3, 6, ...)
        has split confidence 1e-7 (the reference's: cautious trees, whose few leaves keep
        enough examples for their naive-Bayes models — best where that model fits, e.g.
        LED), the others 0.01 (ARF's: trees that grow fast — best on curved or moving
        boundaries, e.g. RBF, Bananas); the router learns which kind is right where. Task
        variant: the reference's 50 and 1e-7. With Poisson weights (``train_lambda``) the
        grace period counts weight, so 100 at λ = 6 means a split attempt about every 17
        examples a leaf learns (ARF: 50, every ~8; halving the attempts keeps the
        per-example cost of the data variant within ~15 % of the unit-weight trees').
    task_train
        Task variant only: ``"all"`` (every one-vs-rest tree learns every example, so each
        sees all its negatives) or ``"topk"`` (true class's tree + router's top-k; cheaper
        with many classes).
    drift_reset
        Not in the reference. Each expert keeps an ADWIN detector on its error over the
        examples it learns (those the router sends it); when its error rises significantly
        the expert is replaced by a fresh tree. Hoeffding trees never forget, so without this
        an expert whose regime drifts stays wrong; with it, the router's traffic flows to the
        fresh expert as soon as it is right again. ``False`` gives the reference algorithm.
    drift_delta
        ADWIN confidence of ``drift_reset`` (river's ARF uses 0.001 for its drift detectors).
    rolling_window
        Effective window (1/α of an exponential average) of the per-expert rolling accuracy
        and recent routing share reported by ``inspect()``.
    max_features
        Cap on router input columns (numeric features + categorical values).
    predict_top
        Data variant: how many of the router's best experts answer. ``1`` is the reference
        (the top-1 expert's answer); more gives a vote of those experts' class distributions
        weighted by the router's confidence ``sigmoid(z_e)`` that each is right. ``None``
        (default): ``top_k`` — the experts that vote are the ones that learn such examples
        (more voters than learners lost 1-3 points on ``rbf-fast``).
    split_features
        Random split subspaces of the experts (ARF's ``max_features``): each leaf of an expert
        tree considers only this many features for its split — ``"sqrt"``, a count, a
        fraction, ``"all"``; a tuple is cycled over the experts — drawn at random when the
        leaf first learns (its naive-Bayes model keeps every feature). ``None``: ``"sqrt"``
        for the data variant, every feature for the task variant. With 6 experts learning
        each example, the subspaces keep them from growing the same tree (ARF's diversity)
        and make a split attempt cheaper: every feature at every leaf was 1.3 points lower
        on Bananas, within 0.4 on ``rbf-fast`` and Phishing, and 22 % slower on ``rbf-fast``
        (10 features; ``docs/bench-drift-tune-subspace.md``).
    train_lambda
        ``0`` (reference): the chosen experts learn each example once. ``> 0``: with a weight
        drawn from Poisson(``train_lambda``), as online bagging and ARF do (ARF uses 6): the
        trees grow faster (the Hoeffding bound counts weight) and differ more from each
        other. A tuple is cycled over the experts. ``None``: 6 for the data variant, 0 for
        the task variant. Why (issue 11, ``python -m bench.drift_tune``): with unit weights
        and split confidence 1e-7 the experts grew too slowly, 7–13 points below ARF(10) on
        ``rbf-fast`` and Bananas; ARF's own settings for every expert close that gap but cost
        5 points on LED; the mixed pool keeps both.
    seed
        Seed of the router initialisation and of the training weights; with it, runs are
        reproducible.

    Examples
    --------
    >>> from river import datasets
    >>> from models.drift_moe import DriftMoEClassifier
    >>> model = DriftMoEClassifier(seed=1)
    >>> hits = 0
    >>> for x, y in datasets.Phishing().take(600):
    ...     hits += model.predict_one(x) == y  # test, then train
    ...     model.learn_one(x, y)
    >>> hits / 600 > 0.8
    True
    >>> label, expert = model.predict_one_with_expert(x)  # the router's top expert answered
    >>> label in (True, False), 0 <= expert < 8
    (True, True)
    """

    #: expert-tree settings when left at ``None``, per variant (see the parameters)
    _DEFAULTS = {
        "data": {
            "grace_period": 100,
            "delta": (1e-7, 0.01, 0.01),
            "train_lambda": 6.0,
            "top_k": 6,
            "split_features": "sqrt",
        },
        "task": {
            "grace_period": 50,
            "delta": 1e-7,
            "train_lambda": 0.0,
            "top_k": 3,
            "split_features": None,
        },
    }
    _HEDGE_DECAY = 0.995  # task-variant mixer: forgetting factor of the log-loss sums

    def __init__(
        self,
        variant: str = "data",
        n_experts: int = 8,
        top_k: int | None = None,
        hidden: tuple[int, ...] = (256, 128),
        lr: float = 2e-3,
        batch_size: int = 16,
        grace_period: int | tuple[int, ...] | None = None,
        delta: float | tuple[float, ...] | None = None,
        leaf_prediction: str = "nba",
        task_train: str = "all",
        drift_reset: bool = True,
        drift_delta: float = 0.001,
        rolling_window: int = 500,
        max_features: int = 4096,
        predict_top: int | None = None,
        train_lambda: float | tuple[float, ...] | None = None,
        split_features: int | float | str | tuple | None = None,
        seed: int | None = 42,
    ) -> None:
        if variant not in ("data", "task"):
            raise ValueError(f"variant must be 'data' or 'task', got {variant!r}")
        if task_train not in ("all", "topk"):
            raise ValueError(f"task_train must be 'all' or 'topk', got {task_train!r}")
        dflt = self._DEFAULTS[variant]
        self._k = top_k if top_k is not None else min(dflt["top_k"], max(n_experts, 1))
        self._pt = self._k if predict_top is None else predict_top
        if n_experts < 1 or self._k < 1 or batch_size < 1 or self._pt < 1:
            raise ValueError("n_experts, top_k, batch_size and predict_top must be >= 1")
        grace_period, delta, train_lambda = (
            tuple(v) if isinstance(v, list) else v  # TOML arrays
            for v in (grace_period, delta, train_lambda)
        )
        self._grace = dflt["grace_period"] if grace_period is None else grace_period
        self._delta = dflt["delta"] if delta is None else delta
        self._lam = dflt["train_lambda"] if train_lambda is None else train_lambda
        if isinstance(split_features, list):  # TOML array
            split_features = tuple(split_features)
        self._sub = dflt["split_features"] if split_features is None else split_features

        def _vals(v: Any) -> tuple:
            return v if isinstance(v, tuple) else (v,)

        lams, deltas, graces = _vals(self._lam), _vals(self._delta), _vals(self._grace)
        if not (lams and deltas and graces) or min(lams) < 0 or min(graces) < 1:
            raise ValueError("train_lambda must be >= 0 and grace_period >= 1")
        if not all(0 < d < 1 for d in deltas):
            raise ValueError(f"delta must be in (0, 1), got {delta!r}")
        self.variant = variant
        self.n_experts = n_experts
        self.top_k = top_k
        self.hidden = tuple(hidden)
        self.lr = lr
        self.batch_size = batch_size
        self.grace_period = grace_period
        self.delta = delta
        self.leaf_prediction = leaf_prediction
        self.task_train = task_train
        self.drift_reset = drift_reset
        self.drift_delta = drift_delta
        self.rolling_window = rolling_window
        self.max_features = max_features
        self.predict_top = predict_top
        self.train_lambda = train_lambda
        self.split_features = split_features
        self.seed = seed
        self._rng = np.random.default_rng(seed)

        n_out = n_experts if variant == "data" else 0
        self._enc = FeatureEncoder(max_features=max_features)
        self._router = MLP(0, self.hidden, n_out, seed=seed)
        self._opt = Adam(lr=lr)
        self._experts: list[tree.HoeffdingTreeClassifier] = []
        self._lams: list[float] = []  # Poisson rate of each expert's training weights
        self._classes: list[Any] = []  # task variant: class of each expert
        self._class_idx: dict[Any, int] = {}  # task variant: class -> expert index
        self._seen: dict[Any, None] = {}  # ordered set of labels seen
        self._Xb = np.zeros((batch_size, 8))
        self._Mb = np.zeros((batch_size, max(n_out, 1)))
        self._nb = 0
        self._alpha = 1.0 / max(1, rolling_window)
        self._acc: list[float] = []
        self._share: list[float] = []
        self._routed: list[int] = []
        self._learned: list[int] = []
        self._detectors: list[drift.ADWIN] = []
        self.n_resets = 0
        self._hedge = [0.0, 0.0]  # task variant: forgetting log-loss of (router, experts)
        self.n_learned = 0
        self.n_predicted = 0
        self.n_router_updates = 0
        self.router_loss: float | None = None
        self.router_loss_ema: float | None = None
        self.last_expert: int | None = None
        self._cache: tuple | None = None
        if variant == "data":
            for _ in range(n_experts):
                self._add_expert()

    # ----------------------------------------------------------------- helpers
    @staticmethod
    def _slot(value: Any, e: int) -> Any:
        """Expert ``e``'s value of a per-expert parameter (a tuple is cycled over experts)."""
        return value[e % len(value)] if isinstance(value, tuple) else value

    def _new_tree(self, e: int) -> tree.HoeffdingTreeClassifier:
        sub = self._slot(self._sub, e)
        if sub == "all":
            sub = None
        return FastHoeffdingTreeClassifier(
            grace_period=self._slot(self._grace, e),
            delta=self._slot(self._delta, e),
            leaf_prediction=self.leaf_prediction,
            split_features=sub,
            seed=None if sub is None else int(self._rng.integers(2**31)),
        )

    def _add_expert(self) -> None:
        e = len(self._experts)
        self._experts.append(self._new_tree(e))
        self._lams.append(float(self._slot(self._lam, e)))
        self._detectors.append(drift.ADWIN(delta=self.drift_delta))
        self._acc.append(0.0)
        self._share.append(0.0)
        self._routed.append(0)
        self._learned.append(0)

    def _add_class(self, y: Any) -> None:
        """Task variant: new class → new one-vs-rest expert and a new router output."""
        self._class_idx[y] = len(self._classes)
        self._classes.append(y)
        self._add_expert()
        self._router.add_outputs(1)
        if self._router.n_out > self._Mb.shape[1]:
            self._Mb = np.hstack([self._Mb, np.zeros((self.batch_size, self._Mb.shape[1]))])

    def _watch(self, e: int, error: float) -> None:
        """Feed expert ``e``'s error to its detector; replace the expert if it got worse."""
        det = self._detectors[e]
        before = det.estimation
        det.update(error)
        if det.drift_detected and det.estimation > before:
            self._experts[e] = self._new_tree(e)
            self._detectors[e] = drift.ADWIN(delta=self.drift_delta)
            self.n_resets += 1

    @property
    def _multiclass(self) -> bool:
        return True

    @classmethod
    def _unit_test_params(cls):
        small = {"hidden": (16, 8), "batch_size": 16, "grace_period": 20}
        yield {"n_experts": 4, "top_k": 2, **small}
        yield {"variant": "task", **small}

    # ----------------------------------------------------------------- routing
    def _route(self, x: dict) -> tuple:
        """Encode ``x`` with the current vocabulary and run the router (no state change)."""
        cols, vals, isnum, n_unknown = self._enc.encode(x, grow=False)
        xs = self._enc.scaled(cols, vals, isnum)
        z = self._router.forward_one(xs)
        return cols, vals, isnum, n_unknown == 0, xs, z

    def _cached(self, x: dict) -> tuple | None:
        c = self._cache
        if c is not None and c[0] == x:
            return c
        return None

    def _predict_data(self, x: dict) -> tuple[dict, int | None]:
        c = self._cached(x)
        if c is not None:
            return c[7], c[8]
        cols, vals, isnum, complete, xs, z = self._route(x)
        zl = z.tolist()
        order = sorted(range(len(zl)), key=zl.__getitem__, reverse=True)
        probas: dict[int, dict] = {}
        voters: list[int] = []
        for e in order:  # skip experts that know nothing yet (start of the stream)
            p = self._experts[e].predict_proba_one(x)
            probas[e] = p
            if p:
                voters.append(e)
                if len(voters) == self._pt:
                    break
        if not voters:
            chosen, proba = order[0], {}
        elif len(voters) == 1:
            chosen = voters[0]
            proba = probas[chosen]
        else:
            chosen = voters[0]
            proba = {}
            for e in voters:
                w = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, zl[e]))))
                for label, p in probas[e].items():
                    proba[label] = proba.get(label, 0.0) + w * p
        self._count_route(chosen)
        self._cache = (dict(x), cols, vals, isnum, complete, xs, z, proba, chosen, probas)
        return proba, chosen

    def _predict_task(self, x: dict) -> tuple[dict, int | None]:
        c = self._cached(x)
        if c is not None:
            return c[7], c[8]
        cols, vals, isnum, complete, xs, z = self._route(x)
        K = len(self._classes)
        if K == 0:
            self._cache = (dict(x), cols, vals, isnum, complete, xs, z, {}, None, None)
            return {}, None
        q_r, q_e, scores = self._task_sources(x, z)
        w_r, w_e = self._hedge_weights()
        mix = [w_r * a + w_e * b for a, b in zip(q_r, q_e, strict=True)]
        chosen = max(range(K), key=mix.__getitem__)
        proba = dict(zip(self._classes, mix, strict=True))
        self._count_route(chosen)
        self._cache = (
            dict(x),
            cols,
            vals,
            isnum,
            complete,
            xs,
            z,
            proba,
            chosen,
            (q_r, q_e, scores),
        )
        return proba, chosen

    def _task_sources(self, x: dict, z: np.ndarray) -> tuple[list, list, list]:
        """Router class distribution, expert class distribution, raw expert scores."""
        zl = z.tolist()
        r = [1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, v)))) for v in zl]
        sr = sum(r)
        q_r = [v / sr for v in r]
        scores = []
        for ex in self._experts:
            p = ex.predict_proba_one(x)
            scores.append(p.get(True, 0.0) if p else 0.5)
        se = sum(scores)
        K = len(scores)
        q_e = [s / se for s in scores] if se > 0 else [1.0 / K] * K
        return q_r, q_e, scores

    def _hedge_weights(self) -> tuple[float, float]:
        a, b = self._hedge
        m = min(a, b)
        wa, wb = math.exp(m - a), math.exp(m - b)
        return wa / (wa + wb), wb / (wa + wb)

    def _count_route(self, e: int) -> None:
        self.n_predicted += 1
        self.last_expert = e
        self._routed[e] += 1
        a = self._alpha
        sh = self._share
        for i in range(len(sh)):
            sh[i] *= 1.0 - a
        sh[e] += a

    # -------------------------------------------------------------- public API
    def predict_proba_one(self, x: dict) -> dict[Any, float]:
        proba, _ = self._predict(x)
        if not proba and not self._seen:
            return {}
        out = {c: 0.0 for c in self._seen}
        out.update(proba)
        s = sum(out.values())
        if s <= 0:
            return {c: 1.0 / len(out) for c in out}
        return {c: p / s for c, p in out.items()}

    def predict_one(self, x: dict) -> Any:
        return self.predict_one_with_expert(x)[0]

    def predict_one_with_expert(self, x: dict) -> tuple[Any, int | None]:
        """Predicted label and the index of the expert that answered (``None`` if none)."""
        proba, e = self._predict(x)
        if not proba:
            return None, e
        return max(proba, key=proba.__getitem__), e

    def _predict(self, x: dict) -> tuple[dict, int | None]:
        if self.variant == "data":
            return self._predict_data(x)
        return self._predict_task(x)

    def learn_one(self, x: dict, y: Any) -> None:
        c = self._cached(x)
        self._cache = None
        aux = c[9] if c is not None else None  # expert outputs computed at prediction time
        if self.variant == "task" and y not in self._class_idx:
            self._add_class(y)
            c = aux = None  # router outputs and expert set changed since the prediction
        if c is not None and c[4]:
            cols, vals, isnum, xs, z = c[1], c[2], c[3], c[5], c[6]
        else:
            cols, vals, isnum, n_new = self._enc.encode(x, grow=True)
            if n_new:
                self._router.add_inputs(n_new)
                if self._router.n_in > self._Xb.shape[1]:
                    extra = max(self._router.n_in - self._Xb.shape[1], self._Xb.shape[1])
                    self._Xb = np.hstack([self._Xb, np.zeros((self.batch_size, extra))])
            xs = self._enc.scaled(cols, vals, isnum)
            if c is not None and not n_new:
                z = c[6]
            else:
                z = self._router.forward_one(xs)
                if self.variant == "task":
                    aux = None  # the task mixer's router part depends on z
        self._enc.learn(cols, vals, isnum)
        if self.variant == "data":
            mask, order = self._learn_data(x, y, z, aux)
        else:
            mask, order = self._learn_task(x, y, z, aux)
        # (4) buffer for the router's mini-batch update
        i = self._nb
        self._Xb[i, : xs.shape[0]] = xs
        self._Xb[i, xs.shape[0] :] = 0.0
        self._Mb[i, : len(mask)] = mask
        self._nb = i + 1
        if self._nb == self.batch_size:
            self._update_router()
        # (5) the selected experts learn
        for e in order:
            self._learned[e] += 1
        self._seen.setdefault(y, None)
        self.n_learned += 1

    def _learn_data(self, x: dict, y: Any, z: np.ndarray, probas: dict | None) -> tuple:
        zl = z.tolist()
        E = len(zl)
        order = sorted(range(E), key=zl.__getitem__, reverse=True)
        probas = {} if probas is None else probas
        mask = [0.0] * E
        any_right = False
        # An expert that knows nothing counts as uniform over the labels: when the trained
        # experts are confidently wrong (e.g. just after a drift), the fallback picks an idle
        # or freshly reset expert and the router learns to send traffic there.
        n_labels = len(self._seen) + (y not in self._seen)
        uniform = 1.0 / n_labels
        best_e, best_p = order[0], -1.0
        a = self._alpha
        acc = self._acc
        for e in order:  # router order so that probability ties go to the router's choice
            p = probas.get(e)
            if p is None:
                p = self._experts[e].predict_proba_one(x)
            right = 0.0
            if p:
                if max(p, key=p.__getitem__) == y:
                    right = 1.0
                    any_right = True
                py = p.get(y, 0.0)
            else:
                py = uniform
            if py > best_p:
                best_e, best_p = e, py
            mask[e] = right
            acc[e] += a * (right - acc[e])
        if not any_right:
            mask[best_e] = 1.0
        chosen = order[: self._k]
        for e in chosen:
            if self.drift_reset:
                self._watch(e, 1.0 - mask[e] if any_right else 1.0)
            self._train(e, x, y)
        return mask, chosen

    def _train(self, e: int, x: dict, y: Any) -> None:
        """Expert ``e`` learns ``(x, y)``, with a Poisson(λ_e) weight when its λ_e > 0."""
        lam = self._lams[e]
        if lam <= 0:
            self._experts[e].learn_one(x, y)
            return
        k = int(self._rng.poisson(lam))
        if k:
            self._experts[e].learn_one(x, y, w=k)

    def _learn_task(self, x: dict, y: Any, z: np.ndarray, sources: tuple | None) -> tuple:
        yi = self._class_idx[y]
        K = len(self._classes)
        if sources is None:
            sources = self._task_sources(x, z)
        q_r, q_e, scores = sources
        # Hedge on the log loss of each source's probability for the true class
        d = self._HEDGE_DECAY
        self._hedge[0] = d * self._hedge[0] - math.log(max(q_r[yi], 1e-12))
        self._hedge[1] = d * self._hedge[1] - math.log(max(q_e[yi], 1e-12))
        a = self._alpha
        acc = self._acc
        for e in range(K):
            right = 1.0 if (scores[e] > 0.5) == (e == yi) else 0.0
            acc[e] += a * (right - acc[e])
        mask = [0.0] * K
        mask[yi] = 1.0
        if self.task_train == "all":
            chosen = list(range(K))
        else:
            zl = z.tolist()
            others = sorted((e for e in range(K) if e != yi), key=zl.__getitem__, reverse=True)
            chosen = [yi, *others[: self._k]]
        cls = self._classes
        for e in chosen:
            if self.drift_reset:
                self._watch(e, 1.0 - float((scores[e] > 0.5) == (e == yi)))
            self._train(e, x, cls[e] == y)
        return mask, chosen

    def _update_router(self) -> None:
        r = self._router
        loss = r.fit_batch(self._Xb[:, : r.n_in], self._Mb[:, : r.n_out], self._opt)
        self._nb = 0
        self.n_router_updates += 1
        self.router_loss = loss
        self.router_loss_ema = (
            loss if self.router_loss_ema is None else 0.9 * self.router_loss_ema + 0.1 * loss
        )

    # -------------------------------------------------------------- inspection
    def expert_tree_sizes(self) -> list[dict[str, int]]:
        out = []
        for ex in self._experts:
            out.append(
                {
                    "n_nodes": int(ex.n_nodes or 0),
                    "n_leaves": int(ex.n_leaves or 0),
                    "depth": int(ex.height),
                }
            )
        return out

    def inspect(self) -> dict:
        """Small JSON-serialisable state summary (expert usage, accuracy, tree sizes, router)."""
        n_routed = sum(self._routed)
        experts = []
        for e, size in enumerate(self.expert_tree_sizes()):
            d: dict[str, Any] = {
                "index": e,
                "share": self._routed[e] / n_routed if n_routed else 0.0,
                "recent_share": float(self._share[e]),
                "rolling_accuracy": float(self._acc[e]),
                "n_learned": int(self._learned[e]),
                **size,
            }
            if self.variant == "task":
                d["class"] = _jsonable(self._classes[e])
            experts.append(d)
        out: dict[str, Any] = {
            "kind": "drift_moe",
            "variant": self.variant,
            "n_experts": len(self._experts),
            "top_k": self._k,
            "n_learned": int(self.n_learned),
            "n_predicted": int(self.n_predicted),
            "n_expert_resets": int(self.n_resets),
            "last_expert": self.last_expert,
            "classes": [_jsonable(c) for c in self._seen],
            "router": {
                "loss": None if self.router_loss is None else float(self.router_loss),
                "loss_ema": None if self.router_loss_ema is None else float(self.router_loss_ema),
                "n_updates": int(self.n_router_updates),
                "n_inputs": int(self._router.n_in),
                "buffered": int(self._nb),
                **self._enc.summary(),
            },
            "experts": experts,
        }
        if self.variant == "task":
            w_r, w_e = self._hedge_weights()
            out["mixer"] = {"router_weight": w_r, "experts_weight": w_e}
        return out
