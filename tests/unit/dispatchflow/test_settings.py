import pytest
from pydantic import ValidationError

from dispatchflow.settings import BrokerKind, SecurityProtocol, Settings


def test_environment_variables_with_the_prefix_set_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    """DISPATCHFLOW_<FIELD> sets the field."""
    monkeypatch.setenv("DISPATCHFLOW_BROKER_URL", "kafka://a:9092,b:9092")
    monkeypatch.setenv("DISPATCHFLOW_BROKER_KIND", "embedded")
    settings = Settings()
    assert settings.bootstrap_servers == ["a:9092", "b:9092"]
    assert settings.broker_kind is BrokerKind.EMBEDDED


def test_secrets_are_masked_when_logged() -> None:
    """The SASL password never appears in the loggable view."""
    settings = Settings(
        security_protocol=SecurityProtocol.SASL_SSL,
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="svc",
        sasl_password="hunter2",
    )
    logged = settings.as_log_dict()
    assert logged["sasl_password"] == "**********"
    assert "hunter2" not in repr(logged)


def test_sasl_without_credentials_is_refused() -> None:
    """Choosing a SASL protocol without mechanism and credentials is a validation error."""
    with pytest.raises(ValidationError, match="sasl_mechanism"):
        Settings(security_protocol=SecurityProtocol.SASL_PLAINTEXT)


def test_heartbeat_must_fit_the_session_timeout() -> None:
    """A heartbeat longer than half the session timeout is refused."""
    with pytest.raises(ValidationError, match="heartbeat"):
        Settings(session_timeout_s=4, heartbeat_interval_s=3)


def test_unknown_settings_are_refused() -> None:
    """A misspelt setting is an error, not silently ignored."""
    with pytest.raises(ValidationError):
        Settings(brokr_url="x")  # type: ignore[call-arg]
