"""Versioned model directory: publish, load, pin, promote, hot-reload, and shadow scoring.

Layout under the registry root::

    v0001/metadata.json, p50.ubj, p90.ubj    a version of one model (see `save_model`)
    v0002/models.json, travel/, prep/, total/    a version holding a set of models, one
                                             `save_model` directory per kind
    PINNED                                   optional: the version to serve instead of the newest
    CANDIDATE                                optional: a version to run in shadow beside it

Versions are published atomically (written to a temporary directory, then renamed). The
registry serves the pinned version, or else the newest one; `refresh()` re-reads the
directory so a new version, a pin change (`promote`) or a new candidate takes effect without
a restart. A version that fails to load never replaces a good one; with no good version,
`current()` says why (`missing_model` or `corrupt_model`) and the service falls back to the
base ETA. `current()` is the travel model of the served set (or a one-model version's model),
what `models.service.EtaService` serves; `current_set()` is every model of it.
"""

from __future__ import annotations

import json
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
from models.model_files import ModelLoadError, ModelMissingError, load_model, save_model
from models.residual import ResidualQuantileModel
from models.service import EtaBatchResult, LoadedModel, ModelUnavailable

_VERSION_RE = re.compile(r"^v(\d{4,})$")
PIN_FILE = "PINNED"
CANDIDATE_FILE = "CANDIDATE"
SET_FILE = "models.json"
#: Model kinds a set may hold.
SET_KINDS = ("travel", "prep", "total")


@dataclass(frozen=True)
class ModelSet:
    """The models of one registry version, by kind (`SET_KINDS`).

    A version holding one model (written by `ModelRegistry.publish`) is a set of that model,
    under its kind.
    """

    version: str
    models: dict[str, ResidualQuantileModel]

    def get(self, kind: str) -> ResidualQuantileModel | None:
        """The model of `kind`, or None."""
        return self.models.get(kind)


def save_model_set(models: dict[str, ResidualQuantileModel], directory: Path) -> None:
    """Write each model into `directory/<kind>/` and list the kinds in `models.json`."""
    unknown = sorted(set(models) - set(SET_KINDS))
    if unknown or not models:
        raise RegistryError(f"a model set holds one to three of {SET_KINDS}, got {sorted(models)}")
    directory.mkdir(parents=True, exist_ok=True)
    for kind, model in models.items():
        save_model(model, directory / kind)
    (directory / SET_FILE).write_text(json.dumps({"kinds": sorted(models)}, indent=2))


def load_model_set(directory: Path, version: str) -> ModelSet:
    """Load a version directory: a set (`models.json`) or a single model.

    Raises:
        ModelMissingError: nothing loadable is there.
        ModelLoadError: a model is corrupt or the set's listing is invalid.
    """
    listing = directory / SET_FILE
    if not listing.is_file():
        model = load_model(directory)
        return ModelSet(version, {model.kind: model})
    try:
        kinds = [str(k) for k in json.loads(listing.read_text())["kinds"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"invalid model set listing {listing}: {exc}") from exc
    if not kinds or set(kinds) - set(SET_KINDS):
        raise ModelLoadError(f"model set {listing} lists unknown kinds {kinds}")
    return ModelSet(version, {kind: load_model(directory / kind) for kind in kinds})


class RegistryError(ValueError):
    """An invalid version name or registry operation."""


class ModelRegistry:
    """A directory of model versions; thread-safe `current()` for the serving path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._loaded: LoadedModel | None = None
        self._set: ModelSet | None = None
        self._candidate: ModelSet | None = None
        self._unavailable = ModelUnavailable(FallbackReason.MISSING_MODEL, "not loaded yet")
        self.load_errors: dict[str, str] = {}

    # -- writing ---------------------------------------------------------------------------

    def versions(self) -> list[str]:
        """Published versions, oldest first."""
        if not self.root.is_dir():
            return []
        names = [p.name for p in self.root.iterdir() if p.is_dir() and _VERSION_RE.match(p.name)]
        return sorted(names, key=lambda n: int(n[1:]))

    def _next_version(self) -> str:
        existing = self.versions()
        number = int(existing[-1][1:]) + 1 if existing else 1
        return f"v{number:04d}"

    def publish(self, model: ResidualQuantileModel) -> str:
        """Write `model` as the next version and return its name (e.g. `v0003`)."""
        self.root.mkdir(parents=True, exist_ok=True)
        version = self._next_version()
        tmp = self.root / f".tmp-{version}-{os.getpid()}"
        model.metadata["version"] = version
        save_model(model, tmp)
        tmp.rename(self.root / version)
        return version

    def publish_set(self, models: dict[str, ResidualQuantileModel]) -> str:
        """Write a set of models (by kind, `SET_KINDS`) as the next version; return its name."""
        self.root.mkdir(parents=True, exist_ok=True)
        version = self._next_version()
        tmp = self.root / f".tmp-{version}-{os.getpid()}"
        for model in models.values():
            model.metadata["version"] = version
        save_model_set(models, tmp)
        tmp.rename(self.root / version)
        return version

    def _write(self, name: str, version: str) -> None:
        if version not in self.versions():
            raise RegistryError(f"unknown version {version!r}; have {self.versions()}")
        tmp = self.root / f".{name}.tmp"
        tmp.write_text(version)
        tmp.replace(self.root / name)

    def _read(self, name: str) -> str | None:
        p = self.root / name
        return p.read_text().strip() if p.is_file() else None

    def pin(self, version: str) -> None:
        """Serve `version` until `unpin()` (takes effect at the next `refresh()`)."""
        self._write(PIN_FILE, version)

    def unpin(self) -> None:
        """Serve the newest version again (at the next `refresh()`)."""
        (self.root / PIN_FILE).unlink(missing_ok=True)

    def pinned(self) -> str | None:
        """The pinned version, if any."""
        return self._read(PIN_FILE)

    def set_candidate(self, version: str) -> None:
        """Run `version` in shadow beside the served one (from the next `refresh()`)."""
        self._write(CANDIDATE_FILE, version)

    def clear_candidate(self) -> None:
        """Stop the shadow run (at the next `refresh()`)."""
        (self.root / CANDIDATE_FILE).unlink(missing_ok=True)

    def candidate_version(self) -> str | None:
        """The version named to run in shadow, if any."""
        return self._read(CANDIDATE_FILE)

    def promote(self, version: str) -> None:
        """Serve `version` from now on (pin it); it stops being the shadow candidate."""
        self.pin(version)
        if self.candidate_version() == version:
            self.clear_candidate()

    # -- reading ---------------------------------------------------------------------------

    def load(self, version: str) -> ResidualQuantileModel:
        """Load one version's model (raises `ModelLoadError` / `ModelMissingError`)."""
        if not _VERSION_RE.match(version):
            raise RegistryError(f"invalid version name {version!r}")
        return load_model(self.root / version)

    def load_set(self, version: str) -> ModelSet:
        """Load one version as a set (raises `ModelLoadError` / `ModelMissingError`)."""
        if not _VERSION_RE.match(version):
            raise RegistryError(f"invalid version name {version!r}")
        return load_model_set(self.root / version, version)

    def target_version(self) -> str | None:
        """The version that should be served: the pin, else the newest."""
        pinned = self.pinned()
        if pinned is not None:
            return pinned
        versions = self.versions()
        return versions[-1] if versions else None

    def refresh(self) -> LoadedModel | ModelUnavailable:
        """Re-read the directory and (re)load the target version and candidate if they changed.

        A target that fails to load is recorded in `load_errors`; the previously loaded model
        (if any) keeps serving. A candidate that fails to load is recorded and not run.
        """
        self._refresh_candidate()
        target = self.target_version()
        with self._lock:
            current = self._set
        if target is None:
            with self._lock:
                if self._set is None:
                    self._unavailable = ModelUnavailable(
                        FallbackReason.MISSING_MODEL, f"no model versions under {self.root}"
                    )
            return self.current()
        if current is not None and current.version == target:
            return self.current()
        try:
            loaded = self.load_set(target)
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
        served = _served_model(loaded)
        with self._lock:
            self._set = loaded
            self._loaded = None if served is None else LoadedModel(model=served, version=target)
            if served is None:
                self._unavailable = ModelUnavailable(
                    FallbackReason.MISSING_MODEL, f"version {target} holds no travel model"
                )
        return self.current()

    def _refresh_candidate(self) -> None:
        wanted = self.candidate_version()
        with self._lock:
            loaded = self._candidate
        if wanted is None or (loaded is not None and loaded.version == wanted):
            if wanted is None:
                with self._lock:
                    self._candidate = None
            return
        try:
            candidate = self.load_set(wanted)
        except (ModelLoadError, RegistryError) as exc:
            self.load_errors[wanted] = str(exc)
            candidate = None
        with self._lock:
            self._candidate = candidate

    def current(self) -> LoadedModel | ModelUnavailable:
        """The loaded travel model, or why none is loaded (never touches the disk)."""
        with self._lock:
            return self._loaded if self._loaded is not None else self._unavailable

    def current_set(self) -> ModelSet | None:
        """Every model of the served version (None before a version loaded)."""
        with self._lock:
            return self._set

    def candidate_set(self) -> ModelSet | None:
        """The models of the shadow candidate, if one is named and loaded."""
        with self._lock:
            return self._candidate


def _served_model(models: ModelSet) -> ResidualQuantileModel | None:
    """The model `EtaService` serves from a set: its travel model, or a one-model version's."""
    if "travel" in models.models:
        return models.models["travel"]
    if len(models.models) == 1:
        return next(iter(models.models.values()))
    return None


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
