"""Client options derived from `Settings`, shared by every aiokafka client and the Faust app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from aiokafka.conn import create_conn
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    RequestTimedOutError,
    SaslAuthenticationFailed,
)

from dispatchflow.errors import UserError
from dispatchflow.settings import SecurityProtocol, Settings, SettingsError, env_name

T = TypeVar("T")


class BrokerUnreachableError(UserError):
    """No broker answered at the configured address; the message names it."""


@contextlib.contextmanager
def _client_logs_quiet() -> Iterator[None]:
    """Silence aiokafka's own log lines (a failed connection is reported once, by the caller)."""
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def run_on_broker(settings: Settings, work: Coroutine[Any, Any, T]) -> T:
    """Run `work` (which talks to the broker of `settings`) to completion and return its result.

    The aiokafka client's own log lines are silenced meanwhile: what goes wrong is raised.

    Raises:
        BrokerUnreachableError: no broker could be reached, or it did not answer in time; the
            message names the address and where it was set.
    """
    try:
        with _client_logs_quiet():
            return asyncio.run(work)
    except (KafkaConnectionError, KafkaTimeoutError, RequestTimedOutError) as exc:
        with _client_logs_quiet():
            cause = asyncio.run(connection_failure(settings))
        what = "cannot reach" if isinstance(exc, KafkaConnectionError) else "no answer from"
        msg = (
            f"{what} the broker at {settings.broker_url} "
            f"(--broker or {env_name('broker_url')}): {cause or type(exc).__name__}"
        )
        raise BrokerUnreachableError(msg) from None


#: How long the diagnosis of a failed connection may take.
DIAGNOSIS_TIMEOUT_S = 10.0


async def connection_failure(settings: Settings) -> str | None:
    """Why a client with `settings` cannot talk to the first bootstrap server, in a few words.

    An aiokafka client that fails to bootstrap says only that; one connection made by hand
    raises the real cause, which this names together with the setting to fix: a refused
    connection, a wrong SASL password, a certificate the CA file does not trust, a plaintext
    client on a TLS port. None when the connection works (the failure was elsewhere).
    """
    host, _, port = settings.bootstrap_servers[0].rpartition(":")
    kwargs = aiokafka_kwargs(settings)
    try:
        conn = await asyncio.wait_for(
            create_conn(
                host,
                int(port),
                request_timeout_ms=int(DIAGNOSIS_TIMEOUT_S * 1000),
                ssl_context=kwargs.get("ssl_context"),
                security_protocol=kwargs["security_protocol"],
                sasl_mechanism=kwargs.get("sasl_mechanism"),
                sasl_plain_username=kwargs.get("sasl_plain_username"),
                sasl_plain_password=kwargs.get("sasl_plain_password"),
            ),
            DIAGNOSIS_TIMEOUT_S,
        )
    except SaslAuthenticationFailed:
        return (
            f"authentication failed for user {settings.sasl_username!r} with "
            f"{kwargs.get('sasl_mechanism')} (check {env_name('sasl_username')} and "
            f"{env_name('sasl_password')})"
        )
    except ssl.SSLCertVerificationError as exc:
        return (
            f"the broker's TLS certificate is not trusted ({exc.verify_message}); set "
            f"{env_name('ssl_cafile')} to the CA that signed it"
        )
    except ssl.SSLError as exc:
        return f"TLS handshake failed ({exc.reason or exc}); is the port a TLS listener?"
    except TimeoutError:
        return f"no answer within {DIAGNOSIS_TIMEOUT_S:.0f} s"
    except (KafkaConnectionError, OSError) as exc:
        detail = str(exc).split(": ", 1)[-1] if str(exc) else type(exc).__name__
        if settings.security_protocol in (
            SecurityProtocol.PLAINTEXT,
            SecurityProtocol.SASL_PLAINTEXT,
        ):
            return (
                f"{detail}; if the port is a TLS listener, set "
                f"{env_name('security_protocol')} to SSL or SASL_SSL"
            )
        return detail
    except Exception as exc:  # any other answer: name it rather than guess
        return f"{type(exc).__name__}: {exc}"
    conn.close()
    return None


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for SSL / SASL_SSL protocols, or None for plaintext."""
    if settings.security_protocol not in (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL):
        return None
    try:
        context = ssl.create_default_context(
            cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None
        )
    except (OSError, ssl.SSLError) as exc:
        msg = f"invalid setting {env_name('ssl_cafile')}={str(settings.ssl_cafile)!r}: {exc}"
        raise SettingsError(msg) from None
    if settings.ssl_certfile:
        password = (
            settings.ssl_keyfile_password.get_secret_value()
            if settings.ssl_keyfile_password
            else None
        )
        try:
            context.load_cert_chain(
                str(settings.ssl_certfile),
                str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
                password,
            )
        except (OSError, ssl.SSLError) as exc:
            msg = (
                f"invalid setting {env_name('ssl_certfile')} / {env_name('ssl_keyfile')}: "
                f"cannot load the client certificate: {exc}"
            )
            raise SettingsError(msg) from None
    return context


def aiokafka_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin) from the settings."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.security_protocol.value,
        "request_timeout_ms": int(settings.request_timeout_s * 1000),
    }
    context = ssl_context(settings)
    if context is not None:
        kwargs["ssl_context"] = context
    if settings.sasl_mechanism is not None:
        kwargs["sasl_mechanism"] = settings.sasl_mechanism.value
        kwargs["sasl_plain_username"] = settings.sasl_username
        kwargs["sasl_plain_password"] = (
            settings.sasl_password.get_secret_value() if settings.sasl_password else None
        )
    return kwargs
