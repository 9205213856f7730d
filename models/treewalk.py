"""A pure-Python walker over an XGBoost booster's trees, for single requests.

XGBoost's `inplace_predict` costs a fixed few hundred microseconds per call, which dominates
a one-leg `POST /eta`. For a handful of rows, walking the (few, compact) trees in Python is
several times faster. Splits follow XGBoost exactly (`x < threshold` goes left, NaN follows
the node's default branch); `TreeWalker.from_booster` checks itself against the booster on
probe rows and refuses to build if they disagree.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import xgboost as xgb


class TreeWalkError(ValueError):
    """The booster has a node kind the walker does not support, or failed the self-check."""


@dataclass(frozen=True)
class TreeWalker:
    """Trees as flat lists: per node (feature, threshold, yes, no, missing, leaf value).

    Attributes:
        trees: one tuple of node tuples per tree; a leaf has feature −1.
        base: the booster's intercept.
    """

    trees: tuple[tuple[tuple[int, float, int, int, int, float], ...], ...]
    base: float

    @classmethod
    def from_booster(cls, booster: xgb.Booster, probe: npt.NDArray[np.float32]) -> TreeWalker:
        """Flatten `booster`; verify on `probe` rows that predictions match within 1e-4."""
        names = booster.feature_names
        index = {n: i for i, n in enumerate(names)} if names else None
        trees = []
        for dump in booster.get_dump(dump_format="json"):
            root = json.loads(dump)
            nodes: dict[int, tuple[int, float, int, int, int, float]] = {}
            stack: list[dict[str, Any]] = [root]
            while stack:
                node = stack.pop()
                nid = int(node["nodeid"])
                if "leaf" in node:
                    nodes[nid] = (-1, 0.0, 0, 0, 0, float(np.float32(node["leaf"])))
                    continue
                if "split_condition" not in node:
                    raise TreeWalkError("only numeric splits are supported")
                split = node["split"]
                f = index[split] if index is not None else int(str(split).lstrip("f"))
                nodes[nid] = (
                    f,
                    float(np.float32(node["split_condition"])),
                    int(node["yes"]),
                    int(node["no"]),
                    int(node["missing"]),
                    0.0,
                )
                stack.extend(node["children"])
            size = max(nodes) + 1
            trees.append(tuple(nodes.get(i, (-1, 0.0, 0, 0, 0, 0.0)) for i in range(size)))
        config = json.loads(booster.save_config())
        raw = config["learner"]["learner_model_param"]["base_score"]
        walker = cls(tuple(trees), float(str(raw).strip("[]").split(",")[0]))
        expected = np.asarray(booster.inplace_predict(probe), dtype=np.float64)
        got = walker.predict(probe)
        if not np.allclose(got, expected, rtol=1e-5, atol=1e-4):
            raise TreeWalkError("walker disagrees with the booster on probe rows")
        return walker

    def predict(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """Margin predictions for the rows of `x` (intended for a few rows)."""
        out = np.empty(x.shape[0], dtype=np.float64)
        for r in range(x.shape[0]):
            out[r] = self.predict_row([float(v) for v in x[r]])
        return out

    def compile_row(self) -> Callable[[list[float]], float]:
        """`predict_row` as straight-line Python (nested comparisons, constants inlined).

        Gives exactly `predict_row`'s result (same comparisons, same summation order) several
        times faster. The generated source holds only numbers from this walker's trees.
        """
        lines = ["def predict_row(r):", f"    t = {self.base!r}"]
        for tree in self.trees:
            _emit(tree, 0, 1, lines)
        lines.append("    return t")
        namespace: dict[str, Any] = {}
        code = compile("\n".join(lines), "<treewalk>", "exec")
        exec(code, namespace)  # noqa: S102 - source built from this walker's numbers only
        fn: Callable[[list[float]], float] = namespace["predict_row"]
        return fn

    def predict_row(self, row: list[float]) -> float:
        """Margin prediction for one row of float32 feature values given as Python floats."""
        total = self.base
        if any(v != v for v in row):  # NaN: follow each node's default branch
            for tree in self.trees:
                node = tree[0]
                while node[0] >= 0:
                    v = row[node[0]]
                    if math.isnan(v):
                        node = tree[node[4]]
                    elif v < node[1]:
                        node = tree[node[2]]
                    else:
                        node = tree[node[3]]
                total += node[5]
            return total
        for tree in self.trees:
            node = tree[0]
            while node[0] >= 0:
                node = tree[node[2]] if row[node[0]] < node[1] else tree[node[3]]
            total += node[5]
        return total


def _emit(
    tree: tuple[tuple[int, float, int, int, int, float], ...],
    nid: int,
    depth: int,
    lines: list[str],
) -> None:
    """Append the nested `if` statements of the subtree at `nid` (NaN takes `missing`)."""
    pad = "    " * depth
    f, thr, yes, no, missing, leaf = tree[nid]
    if f < 0:
        lines.append(f"{pad}t += {leaf!r}")
        return
    # A NaN fails every comparison, so it takes the `else` branch: put `missing` there.
    if missing == no:
        lines.append(f"{pad}if r[{f}] < {thr!r}:")
        first, second = yes, no
    else:
        lines.append(f"{pad}if r[{f}] >= {thr!r}:")
        first, second = no, yes
    _emit(tree, first, depth + 1, lines)
    lines.append(f"{pad}else:")
    _emit(tree, second, depth + 1, lines)
