"""Versioned model directory: publish, load, pin, hot-reload, and shadow scoring.

Layout under the registry root::

    v0001/metadata.json, p50.ubj, p90.ubj    one directory per version (see `save_model`)
    PINNED                                   optional: the version to serve instead of the newest

Versions are published atomically (written to a temporary directory, then renamed). The
registry serves the pinned version, or else the newest one; `refresh()` re-reads the
directory so a new version or a pin change takes effect without a restart. A version that
fails to load never replaces a good one; with no good version, `current()` says why
(`missing_model` or `corrupt_model`) and the service falls back to the base ETA.
"""

from __future__ import annotations

import os
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.fallback import FallbackReason
from models.residual import (
    ModelLoadError,
    ModelMissingError,
    ResidualQuantileModel,
    load_model,
    save_model,
)
from models.service import EtaBatchResult, LoadedModel, ModelUnavailable

_VERSION_RE = re.compile(r"^v(\d{4,})$")
PIN_FILE = "PINNED"


class RegistryError(ValueError):
    """An invalid version name or registry operation."""


class ModelRegistry:
    """A directory of model versions; thread-safe `current()` for the serving path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._loaded: LoadedModel | None = None
        self._unavailable = ModelUnavailable(FallbackReason.MISSING_MODEL, "not loaded yet")
        self.load_errors: dict[str, str] = {}

    # -- writing ---------------------------------------------------------------------------

    def versions(self) -> list[str]:
        """Published versions, oldest first."""
        if not self.root.is_dir():
            return []
        names = [p.name for p in self.root.iterdir() if p.is_dir() and _VERSION_RE.match(p.name)]
        return sorted(names, key=lambda n: int(n[1:]))

    def publish(self, model: ResidualQuantileModel) -> str:
        """Write `model` as the next version and return its name (e.g. `v0003`)."""
        self.root.mkdir(parents=True, exist_ok=True)
        existing = self.versions()
        number = int(existing[-1][1:]) + 1 if existing else 1
        version = f"v{number:04d}"
        tmp = self.root / f".tmp-{version}-{os.getpid()}"
        model.metadata["version"] = version
        save_model(model, tmp)
        tmp.rename(self.root / version)
        return version

    def pin(self, version: str) -> None:
        """Serve `version` until `unpin()` (takes effect at the next `refresh()`)."""
        if version not in self.versions():
            raise RegistryError(f"unknown version {version!r}; have {self.versions()}")
        tmp = self.root / f".{PIN_FILE}.tmp"
        tmp.write_text(version)
        tmp.replace(self.root / PIN_FILE)

    def unpin(self) -> None:
        """Serve the newest version again (at the next `refresh()`)."""
        (self.root / PIN_FILE).unlink(missing_ok=True)

    def pinned(self) -> str | None:
        """The pinned version, if any."""
        p = self.root / PIN_FILE
        return p.read_text().strip() if p.is_file() else None

    # -- reading ---------------------------------------------------------------------------

    def load(self, version: str) -> ResidualQuantileModel:
        """Load one version (raises `ModelLoadError` / `ModelMissingError`)."""
        if not _VERSION_RE.match(version):
            raise RegistryError(f"invalid version name {version!r}")
        return load_model(self.root / version)

    def target_version(self) -> str | None:
        """The version that should be served: the pin, else the newest."""
        pinned = self.pinned()
        if pinned is not None:
            return pinned
        versions = self.versions()
        return versions[-1] if versions else None

    def refresh(self) -> LoadedModel | ModelUnavailable:
        """Re-read the directory and (re)load the target version if it changed.

        A target that fails to load is recorded in `load_errors`; the previously loaded model
        (if any) keeps serving.
        """
        target = self.target_version()
        with self._lock:
            current = self._loaded
        if target is None:
            with self._lock:
                if self._loaded is None:
                    self._unavailable = ModelUnavailable(
                        FallbackReason.MISSING_MODEL, f"no model versions under {self.root}"
                    )
            return self.current()
        if current is not None and current.version == target:
            return current
        try:
            model = self.load(target)
        except ModelMissingError as exc:
            self.load_errors[target] = str(exc)
            with self._lock:
                self._unavailable = ModelUnavailable(FallbackReason.MISSING_MODEL, str(exc))
            return self.current()
        except (ModelLoadError, RegistryError) as exc:
            self.load_errors[target] = str(exc)
            with self._lock:
                self._unavailable = ModelUnavailable(FallbackReason.CORRUPT_MODEL, str(exc))
            return self.current()
        loaded = LoadedModel(model=model, version=target)
        with self._lock:
            self._loaded = loaded
        return loaded

    def current(self) -> LoadedModel | ModelUnavailable:
        """The loaded model, or why none is loaded (never touches the disk)."""
        with self._lock:
            return self._loaded if self._loaded is not None else self._unavailable


@dataclass
class _ShadowRow:
    served_p50_s: float
    served_p90_s: float
    cand_p50_s: float
    cand_p90_s: float


@dataclass
class ShadowScorer:
    """Scores a candidate model on served traffic; its predictions are logged, never served.

    Call `score` after serving (the service does it when given `shadow=`), then `observe`
    realized durations by request index; `report()` compares served and candidate.

    Attributes:
        candidate: the model under evaluation.
        version: its version name.
        max_rows: bound on the pending log (oldest entries are dropped).
    """

    candidate: ResidualQuantileModel
    version: str
    max_rows: int = 100_000
    log: deque[_ShadowRow] = field(default_factory=deque)
    _errors: list[tuple[float, float, bool, bool]] = field(default_factory=list)
    scored: int = 0

    def score(
        self,
        features: npt.NDArray[np.float32],
        base_eta_s: npt.NDArray[np.float64],
        served: EtaBatchResult,
    ) -> None:
        """Predict with the candidate on the same inputs and log both predictions."""
        out = self.candidate.predict(features, base_eta_s)
        for i in range(len(base_eta_s)):
            self.log.append(
                _ShadowRow(
                    float(served.p50_s[i]),
                    float(served.p90_s[i]),
                    float(out.p50_s[i]),
                    float(out.p90_s[i]),
                )
            )
            if len(self.log) > self.max_rows:
                self.log.popleft()
        self.scored += len(base_eta_s)

    def observe(self, index: int, actual_s: float) -> None:
        """Join the realized duration of logged row `index` (0 = oldest still logged)."""
        row = self.log[index]
        self._errors.append(
            (
                abs(actual_s - row.served_p50_s),
                abs(actual_s - row.cand_p50_s),
                actual_s <= row.served_p90_s,
                actual_s <= row.cand_p90_s,
            )
        )

    def report(self) -> dict[str, Any]:
        """MAE (s) and p90 coverage of served vs candidate over observed rows."""
        if not self._errors:
            return {"version": self.version, "n": 0, "scored": self.scored}
        e = np.array(self._errors, dtype=np.float64)
        return {
            "version": self.version,
            "n": len(self._errors),
            "scored": self.scored,
            "served_mae_s": float(e[:, 0].mean()),
            "candidate_mae_s": float(e[:, 1].mean()),
            "served_p90_coverage": float(e[:, 2].mean()),
            "candidate_p90_coverage": float(e[:, 3].mean()),
        }
