"""Model directories: a residual model's boosters and `metadata.json` on disk.

`save_model` writes the p50 (and p90) booster and a metadata file holding the model's
description and each file's SHA-256; `load_model` reads it back and refuses a directory whose
files are missing (`ModelMissingError`), corrupt or inconsistent with the metadata
(`ModelLoadError`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import xgboost as xgb

from models.residual import MODEL_FORMAT_VERSION, ClampConfig, ResidualQuantileModel, Target

_P50_FILE = "p50.ubj"
_P90_FILE = "p90.ubj"
METADATA_FILE = "metadata.json"


class ModelLoadError(RuntimeError):
    """A model directory is unreadable, corrupt or inconsistent with its metadata."""


class ModelMissingError(ModelLoadError):
    """No model exists where one was expected."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_model(model: ResidualQuantileModel, directory: Path) -> None:
    """Write the boosters and `metadata.json` (with file checksums) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    model.booster_p50.save_model(str(directory / _P50_FILE))
    files = [_P50_FILE]
    if model.booster_p90 is not None:
        model.booster_p90.save_model(str(directory / _P90_FILE))
        files.append(_P90_FILE)
    meta = model.describe()
    meta["files"] = {name: _sha256(directory / name) for name in files}
    (directory / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))


def load_model(directory: Path) -> ResidualQuantileModel:
    """Load a model written by `save_model`.

    Raises:
        ModelMissingError: the directory or one of its files does not exist.
        ModelLoadError: a file is corrupt (checksum or parse failure) or the metadata is invalid.
    """
    meta_path = directory / METADATA_FILE
    if not meta_path.is_file():
        raise ModelMissingError(f"no model metadata at {meta_path}")
    try:
        meta = json.loads(meta_path.read_text())
        files: Mapping[str, str] = meta["files"]
        if _P50_FILE not in files:
            raise ModelLoadError("metadata lists no p50 model file")
        for name in files:
            path = directory / name
            if not path.is_file():
                raise ModelMissingError(f"model file missing: {path}")
            if _sha256(path) != files[name]:
                raise ModelLoadError(f"checksum mismatch for {path}: file is corrupt")
        boosters: dict[str, xgb.Booster] = {}
        for name in files:
            b = xgb.Booster()
            b.load_model(str(directory / name))
            boosters[name] = b
        if int(meta["format_version"]) != MODEL_FORMAT_VERSION:
            raise ModelLoadError(f"unsupported model format {meta['format_version']}")
        known = {
            "format_version",
            "kind",
            "feature_names",
            "target",
            "p90_margin",
            "p90_bins",
            "clamp",
            "ratio_floor_s",
            "files",
        }
        names = tuple(str(n) for n in meta["feature_names"])
        bins_meta = meta.get("p90_bins")
        bins = None
        if bins_meta is not None:
            bins = (
                names.index(bins_meta["feature"]),
                tuple(float(e) for e in bins_meta["edges"]),
                tuple(float(m) for m in bins_meta["margins"]),
            )
            if len(bins[2]) != len(bins[1]) + 1:
                raise ModelLoadError("p90_bins: need one more margin than edges")
        model = ResidualQuantileModel(
            kind=str(meta["kind"]),
            feature_names=names,
            target=Target(meta["target"]),
            booster_p50=boosters[_P50_FILE],
            booster_p90=boosters.get(_P90_FILE),
            p90_margin=float(meta["p90_margin"]),
            clamp=ClampConfig(**meta["clamp"]),
            ratio_floor_s=float(meta["ratio_floor_s"]),
            metadata={k: v for k, v in meta.items() if k not in known},
            p90_bins=bins,
        )
    except ModelLoadError:
        raise
    except (OSError, ValueError, KeyError, TypeError, xgb.core.XGBoostError) as exc:
        raise ModelLoadError(f"cannot load model from {directory}: {exc}") from exc
    for b in boosters.values():
        if b.num_features() != len(model.feature_names):
            raise ModelLoadError("booster feature count does not match metadata feature_names")
    return model
