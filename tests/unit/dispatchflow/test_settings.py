import os

import pytest
from pydantic import ValidationError

from dispatchflow.settings import (
    BrokerKind,
    SecurityProtocol,
    Settings,
    SettingsError,
    load_settings,
    unknown_variables,
)


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


def test_a_misspelt_variable_is_refused_with_the_closest_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DISPATCHFLOW_WEB_PROT is an error that suggests DISPATCHFLOW_WEB_PORT."""
    monkeypatch.setenv("DISPATCHFLOW_WEB_PROT", "7000")
    with pytest.raises(SettingsError, match="did you mean DISPATCHFLOW_WEB_PORT"):
        load_settings()


def test_test_suite_variables_are_not_taken_for_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """DISPATCHFLOW_TEST_* and DISPATCHFLOW_FUZZ_* configure the tests, not a worker."""
    monkeypatch.setenv("DISPATCHFLOW_TEST_BROKER", "127.0.0.1:9092")
    monkeypatch.setenv("DISPATCHFLOW_FUZZ_EXAMPLES", "10")
    assert unknown_variables(os.environ) == []


def test_an_invalid_value_names_its_variable_and_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """The error is one line with the variable and the refused value."""
    monkeypatch.setenv("DISPATCHFLOW_WEB_PORT", "abc")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith("invalid setting DISPATCHFLOW_WEB_PORT='abc': ")
    assert "\n" not in str(caught.value)


def test_an_invalid_flag_value_is_attributed_to_the_command_line() -> None:
    """A value given as an override (a flag) is named as such, not as an env var."""
    with pytest.raises(SettingsError, match=r"invalid setting web_port \(command line\)=70000"):
        load_settings({"web_port": 70000})


def test_a_refused_secret_is_never_repeated() -> None:
    """An invalid secret's value stays out of the message, which still names the setting."""
    with pytest.raises(SettingsError, match="ssl_keyfile_password") as caught:
        load_settings({"ssl_keyfile_password": 31415926})
    assert "31415926" not in str(caught.value)


def test_the_rank_port_must_differ_from_the_web_port() -> None:
    """One port cannot serve both the worker's views and the rank server."""
    with pytest.raises(ValidationError, match="rank_port must differ from web_port"):
        Settings(web_port=7000, rank_port=7000)
