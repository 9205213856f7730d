"""The one settings object: every tunable of a worker, read from `DISPATCHFLOW_*` env vars.

Nothing else in the code base reads the environment. Secrets are `SecretStr` and are masked by
`Settings.as_log_dict()`. Commands build their settings with `load_settings`, which refuses a
`DISPATCHFLOW_*` variable that is no setting (a misspelt one would otherwise be ignored) and
turns any invalid value into a one-line `SettingsError` naming the variable.
"""

from __future__ import annotations

import difflib
import enum
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dispatchflow.errors import UserError

ENV_PREFIX = "DISPATCHFLOW_"
#: Variables with these prefixes are not settings: they configure the test suite.
NON_SETTING_PREFIXES = (f"{ENV_PREFIX}TEST_", f"{ENV_PREFIX}FUZZ_")
#: Log levels a worker accepts (`log_level`, `--log-level`).
LOG_LEVELS = ("debug", "info", "warning", "error")
#: Longest part of a refused value repeated in an error message.
_MAX_ECHO_CHARS = 60


class SettingsError(UserError, ValueError):
    """Settings that cannot be used; the message is one line naming the variable at fault."""


class BrokerKind(enum.StrEnum):
    """Which broker the worker talks to; embedded-only workarounds switch on this, never on URL."""

    EMBEDDED = "embedded"
    KAFKA = "kafka"


class SecurityProtocol(enum.StrEnum):
    """Kafka `security.protocol` values."""

    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class SaslMechanism(enum.StrEnum):
    """Kafka SASL mechanisms supported by the client."""

    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


class Settings(BaseSettings):
    """Worker configuration. Every field can be set as `DISPATCHFLOW_<FIELD_NAME>` (upper case)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    # --- broker -------------------------------------------------------------------------------
    broker_url: str = Field(
        "127.0.0.1:9092", description="bootstrap servers, comma separated host:port"
    )
    broker_kind: BrokerKind = Field(
        BrokerKind.KAFKA, description="`embedded` switches on workarounds for the embedded broker"
    )
    security_protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_keyfile_password: SecretStr | None = None
    session_timeout_s: float = Field(10.0, ge=2.0, description="consumer group session timeout")
    heartbeat_interval_s: float = Field(1.0, gt=0.0)
    request_timeout_s: float = Field(30.0, gt=0.0)
    crash_exit_timeout_s: float = Field(
        20.0,
        gt=0.0,
        description="after an agent crash, exit hard if the graceful stop takes longer than this",
    )

    replication_factor: int | None = Field(
        None, ge=1, description="override topics.yaml replication (1 on a one-broker cluster)"
    )

    # --- application --------------------------------------------------------------------------
    app_id: str = Field("dispatchflow", pattern=r"^[a-z][a-z0-9_.-]*$")
    datadir: Path = Field(Path("dispatchflow-data"), description="local RocksDB state directory")
    partitions: int = Field(8, ge=1, le=1024, description="partitions of every shard-keyed topic")
    table_standby_replicas: int = Field(1, ge=0)
    consumer_group_instance_id: str | None = Field(
        None, description="static group membership id (pod name in a StatefulSet)"
    )
    shard_precision: int = Field(4, ge=1, le=8, description="geohash length of a shard")
    zone_precision: int = Field(6, ge=1, le=9, description="geohash length of a feature zone")
    max_event_age_s: float = Field(
        86_400.0,
        gt=0,
        le=7 * 86_400.0,
        description="events older than this vs. their record time are dead letters",
    )
    max_event_lead_s: float = Field(
        300.0,
        gt=0,
        le=86_400.0,
        description="events newer than this vs. their record time are dead letters",
    )
    position_replay_window_s: float = Field(
        300.0, gt=0, description="positions older than this are not restored after a restart"
    )
    orphan_ttl_s: float = Field(
        300.0, gt=0, description="how long events may wait for their order to be created"
    )
    max_ping_batch: int = Field(10_000, ge=1, le=100_000, description="largest ping batch accepted")
    max_event_bytes: int = Field(
        16_384,
        ge=1_024,
        le=262_144,
        description="largest record accepted on the event topics (all inputs but pings)",
    )
    max_ping_record_bytes: int = Field(
        1_048_576,
        ge=1_024,
        le=8_388_608,
        description="largest record accepted on courier_pings and the internal topics",
    )
    dlq_max_value_bytes: int = Field(
        262_144,
        ge=0,
        le=524_288,
        description="a dead letter's value is cut to this size (with its size and hash in headers)",
    )
    event_id_index_size: int = Field(
        200_000,
        ge=1,
        description="recent event ids remembered per partition to refuse reuse (~200 bytes each)",
    )
    event_id_window_s: float = Field(
        3600.0, ge=0, description="how long (event time) an event id is remembered"
    )
    ping_features_flush_s: float = Field(
        30.0,
        ge=0,
        description="seconds between applications of buffered pings to the online zone features",
    )

    # --- dispatch -----------------------------------------------------------------------------
    ticker_enabled: bool = Field(
        True, description="emit ticks from the wall clock (off when a simulator drives them)"
    )
    tick_interval_s: float = Field(2.0, gt=0, description="seconds between ticks of a shard")
    tick_budget_s: float = Field(
        0.5, gt=0, description="a tick predicted to take longer runs the greedy policy"
    )
    lease_s: float = Field(30.0, gt=0, description="how long an offer reserves order and courier")
    cooldown_s: float = Field(300.0, ge=0, description="no re-offer to a courier who declined")
    max_order_age_s: float = Field(
        3600.0, gt=0, description="open orders older than this expire with a reason"
    )
    policy: str = Field("default", description="dispatch policy: default or greedy")
    dispatch_variant: str = Field(
        "learned",
        pattern=r"^(fixed|merchant|learned)$",
        description="how ticks learn from the loop: fixed (15-minute prep unless ready), "
        "merchant (the merchant's estimates), learned (prep model, live travel legs, priced "
        "declines; the merchant's estimates where no model serves)",
    )
    model_refresh_s: float = Field(
        10.0, gt=0, description="seconds between re-reads of the model registry (promotions)"
    )
    eta_timeout_s: float | None = Field(
        0.05, gt=0, description="budget of one ETA model call within a tick (None: no limit)"
    )
    model_dir: Path | None = Field(
        None,
        description="model registry (ETA, prep and placement models); without one, "
        "straight-line ETAs and the merchant's estimates are used",
    )

    # --- request-time ranking (POST /rank) ----------------------------------------------------
    rank_candidates: int = Field(
        400,
        ge=1,
        le=10_000,
        description="couriers priced per POST /rank request (the nearest that may take the job)",
    )
    rank_workers: int = Field(
        2,
        ge=0,
        le=64,
        description="processes that rank POST /rank requests under the rank server; 0 ranks in "
        "a thread of the rank server, which then shares the interpreter lock with its HTTP server",
    )
    rank_max_in_flight: int = Field(
        16,
        ge=1,
        le=10_000,
        description="POST /rank requests admitted at once under lasting load (a burst may hold 4x "
        "for half of rank_deadline_s); any beyond get 503 with Retry-After",
    )
    rank_deadline_s: float = Field(
        0.1,
        gt=0,
        le=60.0,
        description="a POST /rank request not answered this long after it arrived gets 503 "
        "with Retry-After (and is not ranked if its ranking had not started)",
    )
    rank_view_max_age_s: float = Field(
        5.0,
        gt=0,
        le=60.0,
        description="a shard's ranking view is rebuilt after each of its ticks while POST /rank "
        "requests ask about it, or once it is this old when ticks are rarer",
    )
    rank_retry_after_s: int = Field(
        1, ge=1, le=3600, description="Retry-After (seconds) of a POST /rank answered 503"
    )

    # --- web ----------------------------------------------------------------------------------
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=0, le=65535)
    rank_port: int = Field(
        6067,
        ge=0,
        le=65535,
        description="port (on web_host) of the rank server, which serves POST /rank in a process "
        "of its own; 0 picks a free one",
    )
    log_level: str = Field("info", pattern=rf"^({'|'.join(LOG_LEVELS)})$")

    @model_validator(mode="after")
    def _check_ports(self) -> Settings:
        if self.rank_port == self.web_port != 0:
            msg = "rank_port must differ from web_port"
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _check_security(self) -> Settings:
        sasl = self.security_protocol in (
            SecurityProtocol.SASL_PLAINTEXT,
            SecurityProtocol.SASL_SSL,
        )
        if sasl and not (self.sasl_mechanism and self.sasl_username and self.sasl_password):
            msg = (
                f"security_protocol={self.security_protocol.value} needs sasl_mechanism, "
                "sasl_username and sasl_password"
            )
            raise ValueError(msg)
        if self.heartbeat_interval_s * 2 > self.session_timeout_s:
            msg = "heartbeat_interval_s must be at most half of session_timeout_s"
            raise ValueError(msg)
        return self

    @property
    def bootstrap_servers(self) -> list[str]:
        """The broker URL split into host:port entries (any `kafka://` scheme removed)."""
        return [s.strip().removeprefix("kafka://") for s in self.broker_url.split(",") if s.strip()]

    def as_log_dict(self) -> dict[str, Any]:
        """All settings as plain values with secrets masked, safe to log."""
        out: dict[str, Any] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                out[name] = "**********" if value.get_secret_value() else ""
            elif isinstance(value, enum.Enum):
                out[name] = value.value
            elif isinstance(value, Path):
                out[name] = str(value)
            else:
                out[name] = value
        return out


class ToolSettings(BaseSettings):
    """Settings of the developer tooling (test brokers), not of a worker.

    `DISPATCHFLOW_KAFKA_CACHE`: the folder under which the Apache Kafka broker's jars are cached
    as `kafka-<version>/` (default `~/.cache/dispatchflow`).
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    kafka_cache: Path | None = Field(
        None, description="parent folder of the Apache Kafka jar caches (kafka-<version>/)"
    )


def env_name(field: str) -> str:
    """The environment variable of the setting `field` (`web_port` → `DISPATCHFLOW_WEB_PORT`)."""
    return f"{ENV_PREFIX}{field.upper()}"


def setting_default(field: str) -> Any:
    """The default value of the setting `field`, as a plain value (an enum's value)."""
    default = Settings.model_fields[field].default
    return default.value if isinstance(default, enum.Enum) else default


def setting_help(field: str, text: str = "") -> str:
    """Help of a flag that sets `field`: `text`, the env var and the setting's own default.

    >>> setting_help("web_port", "port of the web views")
    'port of the web views [env: DISPATCHFLOW_WEB_PORT; default: 6066]'
    """
    default = setting_default(field)
    shown = "none" if default is None else str(default)
    note = f"[env: {env_name(field)}; default: {shown}]"
    return f"{text} {note}" if text else note


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """`DISPATCHFLOW_*` names in `environ` that are no setting (test-suite variables excepted)."""
    known = {env_name(field) for field in (*Settings.model_fields, *ToolSettings.model_fields)}
    return sorted(
        name
        for name in environ
        if name.upper().startswith(ENV_PREFIX)
        and name.upper() not in known
        and not name.upper().startswith(NON_SETTING_PREFIXES)
    )


def closest_setting(name: str) -> str | None:
    """The setting variable most like `name`, or None when none is close."""
    known = [env_name(field) for field in Settings.model_fields]
    matches = difflib.get_close_matches(name.upper(), known, n=1, cutoff=0.6)
    return matches[0] if matches else None


def load_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """Settings from the environment, with `overrides` (command-line flags) taking precedence.

    Raises:
        SettingsError: a `DISPATCHFLOW_*` variable names no setting (the message suggests the
            closest one), or a value is invalid (the message names its variable and, unless it
            is a secret, the value).
    """
    overrides = dict(overrides or {})
    unknown = unknown_variables(os.environ)
    if unknown:
        name = unknown[0]
        closest = closest_setting(name)
        hint = f"; did you mean {closest}?" if closest else " (see `dispatchflow worker --help`)"
        msg = f"unknown setting {name}{hint}"
        raise SettingsError(msg)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_describe(exc, overrides)) from None


def _describe(exc: ValidationError, overrides: Mapping[str, Any]) -> str:
    """One line about the first error of `exc`, naming where the value came from."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    reason = str(first["msg"]).removeprefix("Value error, ").replace("\n", " ")
    loc = first.get("loc") or ()
    field = str(loc[0]) if loc else ""
    if field not in Settings.model_fields:
        return f"invalid settings: {reason}{more}"
    annotation = str(Settings.model_fields[field].annotation)
    value = "" if "SecretStr" in annotation else f"={_echo(first.get('input'))}"
    where = f"{field} (command line)" if field in overrides else env_name(field)
    return f"invalid setting {where}{value}: {reason}{more}"


def _echo(value: Any) -> str:
    """`value` as it may appear in a message: its repr, cut to a readable length."""
    text = repr(value).replace("\n", " ")
    return text if len(text) <= _MAX_ECHO_CHARS else text[: _MAX_ECHO_CHARS - 3] + "..."
