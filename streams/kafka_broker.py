"""Apache Kafka (KRaft) clusters of one or three combined nodes for tests, CI and the CLI.

`KafkaCluster` formats each node's storage in a run folder, starts `kafka.Kafka` per node on free
loopback ports with a small heap, waits until every node answers metadata that lists all nodes,
and stops only the processes it started. With `sasl_ssl=True` every node also offers a SASL_SSL
listener (SCRAM-SHA-512 user created at format time, TLS from a CA made for the run). Fault tests
use `kill_node(i)` (SIGKILL) and `restart_node(i)` (same ports, same folders, waits until the
node is back in the cluster).

Run folder layout: `node-<i>/` holds `server.properties`, `data/` (log.dirs) and `logs/`
(`server.log` from Log4j, `stdout.log` from the JVM, `format.log` from the storage tool); `tls/`
holds the PEM files.

`start`, `restart_node` and `wait_fully_replicated` block and run their own event loop; async
code uses `restart_node_async` and `wait_fully_replicated_async` (or runs `start` in a thread,
`await asyncio.to_thread(cluster.start)`). `kill_node`, `stop_node` and `stop` never need one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from streams.broker import LOOPBACK, BrokerProcess, BrokerStartError, free_loopback_ports
from streams.child_process import StartsAndStops, tail_lines
from streams.kafka_dist import LOG4J2_CONFIG, KafkaDist, ensure_kafka, find_java
from streams.kafka_properties import (
    SCRAM_MECHANISM,
    NodePorts,
    SaslSslListener,
    render_properties,
    server_properties,
)
from streams.kafka_tls import make_tls_files

#: JVM options of every node besides the heap. The serial collector and the C1 compiler alone
#: (no C2) cost the least CPU on a small machine: measured on two cores, a node came up in about
#: two thirds of the CPU time, and served 300k produced plus consumed records with half the CPU
#: time, compared with the default G1 and tiered compilation.
DEFAULT_JVM_OPTIONS: tuple[str, ...] = (
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)
#: JVM options of the one-shot storage tool (format): start fast, compile little.
TOOL_JVM_OPTIONS: tuple[str, ...] = (
    "-Xmx256m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
)
BROKER_MAIN_CLASS = "kafka.Kafka"
_ERROR_LINE = re.compile(r"^\[[^\]]+\] (?:ERROR|FATAL) (.*?)(?: \([\w.$]+\))?$")
_EXCEPTION_LINE = re.compile(r"^[\w.$]+(?:Exception|Error)\b")


def kafka_uuid() -> str:
    """A random Kafka `Uuid` in its text form (22 URL-safe base64 characters, not "-" first)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):
            return text


@dataclass(frozen=True)
class SaslSslAccess:
    """How a client reaches the SASL_SSL listener.

    Attributes:
        bootstrap: `host:port[,host:port]` of the SASL_SSL listeners.
        username: the SCRAM user created at format time.
        password: its password.
        ca_file: PEM CA certificate that signed every node's certificate.
        mechanism: the SASL mechanism ("SCRAM-SHA-512").
    """

    bootstrap: str
    username: str
    password: str = field(repr=False)
    ca_file: Path
    mechanism: str = SCRAM_MECHANISM

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts only the run's CA (hostname checked)."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
        return {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": "SASL_SSL",
            "ssl_context": self.ssl_context(),
            "sasl_mechanism": self.mechanism,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password,
        }


class KafkaNode:
    """One combined broker + controller of a `KafkaCluster`: its ports, folders and process."""

    def __init__(self, node_id: int, ports: NodePorts, folder: Path, argv: Sequence[str]) -> None:
        self.node_id = node_id
        self.ports = ports
        self.folder = folder
        #: Id of the metadata log folder, given to the storage tool as this voter's directory.
        self.directory_id = kafka_uuid()
        self.process = BrokerProcess(
            argv, self.logs_dir / "stdout.log", extra_logs=[self.logs_dir / "server.log"]
        )
        self._log_start = 0

    @property
    def data_dir(self) -> Path:
        """The node's `log.dirs` (topic partitions and the metadata log)."""
        return self.folder / "data"

    @property
    def logs_dir(self) -> Path:
        """The node's log folder (`server.log`, `stdout.log`)."""
        return self.folder / "logs"

    @property
    def properties_file(self) -> Path:
        """The node's `server.properties`."""
        return self.folder / "server.properties"

    @property
    def bootstrap(self) -> str:
        """`host:port` of the node's PLAINTEXT listener."""
        return f"{LOOPBACK}:{self.ports.client}"

    @property
    def pid(self) -> int | None:
        """Process id while running, else None."""
        return self.process.pid

    def running(self) -> bool:
        """True while the node's process is alive."""
        return self.process.running()

    def start(self) -> None:
        """Start the node's process (after formatting, or again after a stop or kill)."""
        try:
            self._log_start = (self.logs_dir / "server.log").stat().st_size
        except OSError:
            self._log_start = 0
        self.process.start()

    def first_error(self) -> str | None:
        """The first ERROR in `server.log` since the last `start()`, with its exception line.

        One line, e.g. "Unable to start acceptor for PLAINTEXT: org.apache.kafka.common.
        KafkaException: Socket server failed to bind to 127.0.0.1:9092: Address already in use."
        """
        try:
            with (self.logs_dir / "server.log").open("rb") as log:
                log.seek(self._log_start)
                lines = log.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return None
        for index, line in enumerate(lines):
            match = _ERROR_LINE.match(line)
            if match is None:
                continue
            message = match.group(1)
            following = lines[index + 1] if index + 1 < len(lines) else ""
            if _EXCEPTION_LINE.match(following):
                message += ": " + following.strip()
            return message
        return None

    async def wait_ready(self, timeout_s: float, min_brokers: int) -> None:
        """Wait until this node answers metadata listing `min_brokers` brokers.

        Raises:
            BrokerStartError: it exited or timed out; the reason names its first logged error.
        """
        try:
            await self.process.wait_ready(self.bootstrap, timeout_s, min_brokers)
        except BrokerStartError as exc:
            cause = self.first_error()
            if cause is None:
                raise
            reason = f"node {self.node_id}: {exc.reason}; first error: {cause}"
            raise BrokerStartError(reason, exc.log_tail) from exc


class KafkaCluster(StartsAndStops):
    """One or three Apache Kafka nodes (KRaft, combined roles) on loopback ports.

    Use as a context manager or call `start()` / `stop()`. With three nodes the default
    replication factor is 3 and `min.insync.replicas` is 2.

    Args:
        nodes: 1 or 3.
        run_dir: folder for storage, configs and logs; created if missing and kept after `stop()`
            (`start()` replaces the `node-*/` and `tls/` folders in it). Default: a new
            temporary folder, removed by `stop()` unless `keep_run_dir`.
        keep_run_dir: keep a temporary run folder after `stop()`.
        client_port: PLAINTEXT port of node 0 (default: a free one); other ports are free ones.
        sasl_ssl: also offer a SASL_SSL listener with a SCRAM-SHA-512 user on every node.
        heap_mb: `-Xmx` (and `-Xms`) of each node, in MiB.
        jvm_options: JVM options besides the heap.
        overrides: `server.properties` settings applied last on every node.
        start_timeout_s: how long `start()` and `restart_node()` wait for the nodes to answer.
        dist: the broker's classpath (default: `ensure_kafka()`, which may run Maven once).
    """

    def __init__(
        self,
        nodes: int = 1,
        *,
        run_dir: Path | None = None,
        keep_run_dir: bool = False,
        client_port: int | None = None,
        sasl_ssl: bool = False,
        heap_mb: int = 512,
        jvm_options: Sequence[str] = DEFAULT_JVM_OPTIONS,
        overrides: Mapping[str, str] | None = None,
        start_timeout_s: float = 120.0,
        dist: KafkaDist | None = None,
    ) -> None:
        if nodes not in (1, 3):
            msg = f"a cluster has 1 or 3 nodes, not {nodes}"
            raise ValueError(msg)
        if heap_mb < 128:
            msg = "heap_mb must be at least 128"
            raise ValueError(msg)
        if start_timeout_s <= 0:
            msg = "start_timeout_s must be positive"
            raise ValueError(msg)
        self.node_count = nodes
        self._requested_run_dir = run_dir
        self.keep_run_dir = keep_run_dir or run_dir is not None
        self._client_port = client_port
        self.sasl_enabled = sasl_ssl
        self.heap_mb = heap_mb
        self.jvm_options = tuple(jvm_options)
        self.overrides = dict(overrides or {})
        self.start_timeout_s = start_timeout_s
        self._dist = dist
        self.run_dir: Path | None = None
        self.nodes: list[KafkaNode] = []
        self.sasl_ssl: SaslSslAccess | None = None
        self.cluster_id = ""
        #: Seconds from `start()` until every node answered (formatting included), once started.
        self.start_to_ready_s: float | None = None

    # --- what clients need --------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """`host:port,...` of every node's PLAINTEXT listener."""
        if not self.nodes:
            msg = "cluster is not started"
            raise RuntimeError(msg)
        return ",".join(node.bootstrap for node in self.nodes)

    @property
    def version(self) -> str:
        """The Apache Kafka version these nodes run (from the pinned, resolved jar)."""
        return self._resolved_dist().version

    @property
    def log_dirs(self) -> list[Path]:
        """Each node's log folder, in node order."""
        return [node.logs_dir for node in self.nodes]

    def _resolved_dist(self) -> KafkaDist:
        if self._dist is None:
            self._dist = ensure_kafka()
        return self._dist

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> KafkaCluster:
        """Format and start every node; block until each answers metadata listing all nodes.

        Raises:
            KafkaDistError: Java or Maven missing, or the broker could not be resolved.
            BrokerStartError: a node did not come up; carries the last lines of its logs.
        """
        if self.nodes:
            msg = "cluster is already started"
            raise RuntimeError(msg)
        dist = self._resolved_dist()
        java = find_java()
        started = time.monotonic()
        attempts = 1 if self._client_port is not None else 3
        for attempt in range(1, attempts + 1):
            try:
                self.prepare(dist, java)
                self._format_all(dist, java)
                for node in self.nodes:
                    node.start()
                asyncio.run(self._wait_all_ready())
            except BrokerStartError as exc:
                self._abandon_start()
                # A free port taken by someone else before the broker bound it: pick new ports.
                if "Address already in use" in exc.log_tail and attempt < attempts:
                    continue
                raise
            except BaseException:
                self._abandon_start()
                raise
            break
        self.start_to_ready_s = time.monotonic() - started
        return self

    def _abandon_start(self) -> None:
        """Stop whatever a failed start launched; drop a temporary run folder unless kept."""
        self._stop_processes()
        self._discard_run_dir()

    def prepare(self, dist: KafkaDist, java: str) -> None:
        """Pick ports and write the run folder: TLS files and each node's config; start nothing.

        `start()` calls it (again on a retry); `nodes` and `sasl_ssl` are set afterwards.
        """
        if self._requested_run_dir is not None:
            self.run_dir = self._requested_run_dir
            self.run_dir.mkdir(parents=True, exist_ok=True)
            for old in [*self.run_dir.glob("node-*"), self.run_dir / "tls"]:
                shutil.rmtree(old, ignore_errors=True)
        else:
            self.run_dir = Path(tempfile.mkdtemp(prefix="dispatchflow-kafka-"))
        per_node = 3 if self.sasl_enabled else 2
        ports = free_loopback_ports(per_node * self.node_count + 1)
        if self._client_port is not None:
            ports = [p for p in ports if p != self._client_port]
        else:
            ports = ports[1:]
        node_ports: list[NodePorts] = []
        for i in range(self.node_count):
            mine = ports[i * per_node : (i + 1) * per_node]
            client = self._client_port if (i == 0 and self._client_port is not None) else mine[0]
            node_ports.append(
                NodePorts(
                    client=client,
                    controller=mine[1],
                    sasl_ssl=mine[2] if self.sasl_enabled else None,
                )
            )
        listener: SaslSslListener | None = None
        if self.sasl_enabled:
            tls = make_tls_files(self.run_dir / "tls")
            listener = SaslSslListener(keystore_file=tls.keystore_file)
            self.sasl_ssl = SaslSslAccess(
                bootstrap=",".join(f"{LOOPBACK}:{p.sasl_ssl}" for p in node_ports),
                username="dispatchflow",
                password=secrets.token_hex(16),
                ca_file=tls.ca_file,
            )
        self.cluster_id = kafka_uuid()
        self.nodes = []
        for i, ports_i in enumerate(node_ports):
            folder = self.run_dir / f"node-{i}"
            props = server_properties(
                i, node_ports, folder / "data", sasl_ssl=listener, overrides=self.overrides
            )
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "server.properties").write_text(render_properties(props), encoding="ascii")
            argv = [
                java,
                f"-Xms{self.heap_mb}m",
                f"-Xmx{self.heap_mb}m",
                *self.jvm_options,
                f"-Dkafka.logs.dir={folder / 'logs'}",
                f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
                "-cp",
                dist.classpath,
                BROKER_MAIN_CLASS,
                str(folder / "server.properties"),
            ]
            self.nodes.append(KafkaNode(i, ports_i, folder, argv))

    def format_argv(self, node: KafkaNode, dist: KafkaDist, java: str) -> list[str]:
        """The storage tool command that formats `node` (same cluster id for every node)."""
        argv = [
            java,
            *TOOL_JVM_OPTIONS,
            f"-Dkafka.logs.dir={node.logs_dir}",
            f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
            "-cp",
            dist.classpath,
            dist.storage_tool_class(),
            "format",
            "--cluster-id",
            self.cluster_id,
            "--config",
            str(node.properties_file),
        ]
        if self.node_count == 1:
            argv.append("--standalone")
        else:
            argv += ["--initial-controllers", self._initial_controllers]
        if self.sasl_ssl is not None:
            user = self.sasl_ssl
            argv += [
                "--add-scram",
                f"{user.mechanism}=[name={user.username},password={user.password}]",
            ]
        return argv

    @property
    def _initial_controllers(self) -> str:
        """`id@host:port:directory-id,...` of every voter, for `--initial-controllers`."""
        return ",".join(
            f"{n.node_id}@{LOOPBACK}:{n.ports.controller}:{n.directory_id}" for n in self.nodes
        )

    def _format_all(self, dist: KafkaDist, java: str) -> None:
        """Run the storage tool for every node at once; raise `BrokerStartError` on failure."""
        runs: list[tuple[KafkaNode, subprocess.Popen[bytes], Path]] = []
        for node in self.nodes:
            node.logs_dir.mkdir(parents=True, exist_ok=True)
            out = node.logs_dir / "format.log"
            with out.open("wb") as sink:
                process = subprocess.Popen(
                    self.format_argv(node, dist, java),
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            runs.append((node, process, out))
        failures: list[tuple[KafkaNode, int, Path]] = []
        for node, process, out in runs:
            try:
                code = process.wait(timeout=self.start_timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            if code != 0:
                failures.append((node, code, out))
        if failures:
            node, code, out = failures[0]
            msg = f"formatting the storage of node {node.node_id} failed (exit {code})"
            raise BrokerStartError(msg, tail_lines([out]))

    async def _wait_all_ready(self) -> None:
        await asyncio.gather(
            *(node.wait_ready(self.start_timeout_s, self.node_count) for node in self.nodes)
        )

    # --- fault injection ----------------------------------------------------------------------

    def node(self, index: int) -> KafkaNode:
        """The node with id `index`; raise `IndexError` if there is none."""
        if not 0 <= index < len(self.nodes):
            msg = f"no node {index} in a cluster of {len(self.nodes)}"
            raise IndexError(msg)
        return self.nodes[index]

    def kill_node(self, index: int) -> int | None:
        """SIGKILL node `index` (a crash: no controlled shutdown); return its exit code."""
        return self.node(index).process.kill()

    def stop_node(self, index: int, timeout_s: float = 30.0) -> int | None:
        """Stop node `index` gracefully (SIGTERM, SIGKILL after `timeout_s`); return its code.

        A node whose peers are already down cannot finish its controlled shutdown (no quorum)
        and is killed after `timeout_s`; use `stop()` to end the whole cluster.
        """
        return self.node(index).process.stop(timeout_s)

    def restart_node(self, index: int, timeout_s: float | None = None) -> None:
        """Start a stopped or killed node again (same ports and folders) and wait until it is back.

        Back means: it answers metadata that lists every node of the cluster, i.e. the
        controller has unfenced it. Partitions may still be catching up; see
        `wait_fully_replicated()`. `restart_node_async` is the same for async callers.

        Raises:
            RuntimeError: the node is still running.
            BrokerStartError: it did not come back within `timeout_s` (default `start_timeout_s`).
        """
        asyncio.run(self.restart_node_async(index, timeout_s))

    async def restart_node_async(self, index: int, timeout_s: float | None = None) -> None:
        """`restart_node` for code that already runs an event loop."""
        node = self.node(index)
        if node.running():
            msg = f"node {index} is still running"
            raise RuntimeError(msg)
        node.start()
        wait_s = timeout_s if timeout_s is not None else self.start_timeout_s
        await node.wait_ready(wait_s, self.node_count)

    async def under_replicated(self) -> list[str]:
        """`topic/partition` of every partition whose ISR lacks one of its replicas."""
        running = [n.bootstrap for n in self.nodes if n.running()]
        admin = AIOKafkaAdminClient(bootstrap_servers=running, request_timeout_ms=5000)
        await admin.start()
        try:
            topics = await admin.describe_topics()
        finally:
            await admin.close()
        lagging: list[str] = []
        for topic in topics:
            for partition in topic.get("partitions", []):
                if set(partition["isr"]) != set(partition["replicas"]):
                    lagging.append(f"{topic['topic']}/{partition['partition']}")
        return sorted(lagging)

    def wait_fully_replicated(self, timeout_s: float = 60.0) -> None:
        """Block until every partition's ISR holds all its replicas; raise `TimeoutError`."""
        asyncio.run(self.wait_fully_replicated_async(timeout_s))

    async def wait_fully_replicated_async(self, timeout_s: float = 60.0) -> None:
        """`wait_fully_replicated` for code that already runs an event loop."""
        deadline = time.monotonic() + timeout_s
        lagging: list[str] = ["(not asked yet)"]
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                lagging = await self.under_replicated()
                if not lagging:
                    return
            await asyncio.sleep(0.2)
        msg = f"partitions still under-replicated after {timeout_s:.0f} s: {lagging[:10]}"
        raise TimeoutError(msg)

    # --- teardown -----------------------------------------------------------------------------

    def _stop_processes(self, timeout_s: float = 20.0) -> None:
        """SIGTERM every running node at once, then wait (SIGKILL after `timeout_s`).

        All at once on purpose: stopped one by one, the last node cannot finish its controlled
        shutdown without a controller quorum and waits until it is killed. Together, three
        nodes take about 5.5 s (the Raft leader's 5 s resignation wait), one node well under 1 s.
        """
        for node in self.nodes:
            node.process.terminate()
        for node in self.nodes:
            node.process.stop(timeout_s)

    def _discard_run_dir(self) -> None:
        if self.run_dir is not None and not self.keep_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        self.nodes = []
        self.sasl_ssl = None

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop every node this cluster started; remove a temporary run folder (unless kept).

        Safe to call twice or after a failed start.
        """
        self._stop_processes(timeout_s)
        self._discard_run_dir()
