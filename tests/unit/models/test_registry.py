from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from models.fallback import FallbackReason
from models.registry import ModelRegistry, RegistryError, ShadowScorer
from models.residual import ResidualQuantileModel
from models.service import EtaService, LoadedModel, ModelUnavailable

from .conftest import legs


def test_empty_registry_reports_missing_model(tmp_path: Path) -> None:
    """With no versions the registry says missing_model."""
    entry = ModelRegistry(tmp_path).refresh()
    assert isinstance(entry, ModelUnavailable)
    assert entry.reason is FallbackReason.MISSING_MODEL


def test_publish_numbers_versions_and_refresh_hot_reloads(
    travel_model: ResidualQuantileModel, tmp_path: Path
) -> None:
    """Each publish is the next version; refresh() switches to the newest without restart."""
    reg = ModelRegistry(tmp_path)
    assert reg.publish(travel_model) == "v0001"
    first = reg.refresh()
    assert isinstance(first, LoadedModel) and first.version == "v0001"
    assert reg.publish(travel_model) == "v0002"
    assert reg.current() is first  # nothing changes until refresh
    second = reg.refresh()
    assert isinstance(second, LoadedModel) and second.version == "v0002"


def test_pin_overrides_newest(travel_model: ResidualQuantileModel, tmp_path: Path) -> None:
    """A pinned version is served until unpinned."""
    reg = ModelRegistry(tmp_path)
    reg.publish(travel_model)
    reg.publish(travel_model)
    reg.pin("v0001")
    assert reg.refresh().version == "v0001"  # type: ignore[union-attr]
    reg.unpin()
    assert reg.refresh().version == "v0002"  # type: ignore[union-attr]


def test_corrupt_new_version_keeps_serving_the_good_one(
    travel_model: ResidualQuantileModel, tmp_path: Path
) -> None:
    """A corrupt newest version is recorded and never replaces the loaded model."""
    reg = ModelRegistry(tmp_path)
    reg.publish(travel_model)
    reg.refresh()
    reg.publish(travel_model)
    (tmp_path / "v0002" / "p50.ubj").write_bytes(b"garbage")
    entry = reg.refresh()
    assert isinstance(entry, LoadedModel) and entry.version == "v0001"
    assert "v0002" in reg.load_errors


def test_only_version_corrupt_serves_base_with_reason(
    travel_model: ResidualQuantileModel, tmp_path: Path
) -> None:
    """With no good version the service answers base ETA + corrupt_model, never crashing."""
    reg = ModelRegistry(tmp_path)
    reg.publish(travel_model)
    (tmp_path / "v0001" / "metadata.json").write_text("[1, 2")
    reg.refresh()
    out = EtaService(reg, model_timeout_s=None).predict_legs(legs(2))
    assert out.fallback.all()
    assert out.reason_at(0) == "corrupt_model"
    np.testing.assert_array_equal(out.p50_s, out.base_eta_s)


def test_shadow_candidate_is_scored_but_never_served(
    travel_model: ResidualQuantileModel, context_model: ResidualQuantileModel, tmp_path: Path
) -> None:
    """The candidate's predictions are logged and evaluated; served values are the primary's."""
    reg = ModelRegistry(tmp_path)
    reg.publish(travel_model)
    reg.refresh()
    candidate = replace(travel_model, p90_bins=(0, (), (0.5,)))
    shadow = ShadowScorer(candidate, "v0002")
    plain = EtaService(reg, model_timeout_s=None).predict_legs(legs(5))
    served = EtaService(reg, model_timeout_s=None, shadow=shadow).predict_legs(legs(5))
    np.testing.assert_array_equal(served.p90_s, plain.p90_s)
    assert shadow.scored == 5
    for i in range(5):
        shadow.observe(i, float(served.p50_s[i]))
    report = shadow.report()
    assert report["n"] == 5 and report["served_mae_s"] == 0.0
    assert report["candidate_p90_coverage"] == 1.0


def test_a_set_version_serves_its_travel_model_and_keeps_the_others(
    travel_model: ResidualQuantileModel, tmp_path: Path
) -> None:
    """A published set is one version: its travel model is served, every kind is loaded."""
    reg = ModelRegistry(tmp_path)
    version = reg.publish_set({"travel": travel_model, "total": travel_model})
    entry = reg.refresh()
    assert isinstance(entry, LoadedModel) and entry.version == version
    models = reg.current_set()
    assert models is not None and sorted(models.models) == ["total", "travel"]


def _served_and_candidate(root: Path, model: ResidualQuantileModel) -> ModelRegistry:
    """A refreshed registry serving v0001 (pinned) with v0002 in shadow."""
    reg = ModelRegistry(root)
    reg.publish_set({"travel": model})
    reg.publish_set({"travel": model})
    reg.pin("v0001")
    reg.set_candidate("v0002")
    reg.refresh()
    return reg


def test_a_candidate_loads_beside_the_served_version(
    travel_model: ResidualQuantileModel, tmp_path: Path
) -> None:
    """Naming a candidate loads it at the next refresh without changing what is served."""
    reg = _served_and_candidate(tmp_path, travel_model)
    served, candidate = reg.current_set(), reg.candidate_set()
    assert served is not None and served.version == "v0001"
    assert candidate is not None and candidate.version == "v0002"


def test_promoting_the_candidate_serves_it_and_ends_the_shadow_run(
    travel_model: ResidualQuantileModel, tmp_path: Path
) -> None:
    """After promote(v) and a refresh, v is served and no candidate runs."""
    reg = _served_and_candidate(tmp_path, travel_model)
    reg.promote("v0002")
    reg.refresh()
    served = reg.current_set()
    assert served is not None and served.version == "v0002"
    assert reg.candidate_set() is None and reg.candidate_version() is None


def test_promoting_an_unknown_version_is_refused(
    travel_model: ResidualQuantileModel, tmp_path: Path
) -> None:
    """promote() of a version that was never published raises RegistryError."""
    reg = ModelRegistry(tmp_path)
    reg.publish_set({"travel": travel_model})
    with pytest.raises(RegistryError, match="unknown version"):
        reg.promote("v0009")
