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
            row = [float(v) for v in x[r]]
            has_nan = any(math.isnan(v) for v in row)
            total = self.base
            for tree in self.trees:
                node = tree[0]
                if has_nan:
                    while node[0] >= 0:
                        v = row[node[0]]
                        if math.isnan(v):
                            node = tree[node[4]]
                        elif v < node[1]:
                            node = tree[node[2]]
                        else:
                            node = tree[node[3]]
                else:
                    while node[0] >= 0:
                        node = tree[node[2]] if row[node[0]] < node[1] else tree[node[3]]
                total += node[5]
            out[r] = total
        return out
