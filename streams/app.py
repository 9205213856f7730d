"""The Faust application factory: one settings object in, a configured app with every agent out."""

from __future__ import annotations

import logging
from pathlib import Path

import faust
from faust.web.base import BlueprintManager

from contracts.topics import DEFAULT_TOPICS_FILE, load_topics
from dispatchflow.settings import BrokerKind, SecurityProtocol, Settings
from streams import agents, web
from streams.consumer import install_seek_safe_consumer
from streams.embedded_compat import install_embedded_fixes
from streams.eta_model import models_from_settings
from streams.kafka_config import aiokafka_kwargs, ssl_context
from streams.offset_fetch import install_offset_fetch_check
from streams.runtime import Runtime

logger = logging.getLogger(__name__)


def broker_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """Faust credentials for the configured security protocol."""
    context = ssl_context(settings)
    if settings.security_protocol in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL):
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.get_secret_value() if settings.sasl_password else None,
            mechanism=settings.sasl_mechanism.value if settings.sasl_mechanism else None,
            ssl_context=context,
        )
    if settings.security_protocol is SecurityProtocol.SSL:
        return faust.SSLCredentials(context)
    return None


def serve_own_views_only(app: faust.App) -> None:
    """Mount none of Faust's built-in blueprints on `app`'s web server (its `/` index included).

    Only the views registered with `app.page` (`streams.web`) are served; any other path is a
    404. Call before the web server starts.
    """
    app.web.blueprints = BlueprintManager()


def create_app(settings: Settings, topics_file: Path = DEFAULT_TOPICS_FILE) -> Runtime:
    """Build the worker: the Faust app with all agents, tables and views, and its runtime."""
    topics = load_topics(topics_file, app_id=settings.app_id)
    settings.datadir.mkdir(parents=True, exist_ok=True)
    partitions = topics["order_events"].partitions
    if settings.broker_kind is BrokerKind.EMBEDDED:
        install_embedded_fixes(aiokafka_kwargs(settings))
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.bootstrap_servers],
        broker_credentials=broker_credentials(settings),
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_request_timeout=settings.request_timeout_s,
        consumer_auto_offset_reset="earliest",
        consumer_group_instance_id=settings.consumer_group_instance_id,
        store="rocksdb://",
        datadir=str(settings.datadir),
        topic_partitions=partitions,
        topic_allow_declare=False,
        table_standby_replicas=settings.table_standby_replicas,
        web_enabled=True,
        web_host=settings.web_host,
        web_port=settings.web_port,
        # Faust's built-in views (/router, /table/<name>/<key>, /graph, statistics,
        # /performance) would expose table contents and internals on the web port: off.
        web_router_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_metrics_enabled=False,
        autodiscover=False,
        producer_acks=-1,
    )
    install_seek_safe_consumer(app)
    install_offset_fetch_check()
    serve_own_views_only(app)
    runtime = Runtime.build(app, settings, topics)
    runtime.metrics.add_process_collectors()
    predictor, models = models_from_settings(settings)
    agents.register(runtime, predictor, models=models)
    web.register(runtime)
    return runtime
