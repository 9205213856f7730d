"""The Apache Kafka broker's runtime classpath, resolved by Maven into a cache outside git.

`tools/kafka/pom.xml` pins the broker (`kafka.version`) and its Log4j 2 binding. `ensure_kafka()`
runs `mvn dependency:copy-dependencies` once into a fresh folder beside the cache, writes a marker
file last, and only then renames the folder into place, so a half-filled cache never counts as
filled; later calls find the marker and start no Maven (offline). The cache lives in
`~/.cache/dispatchflow/kafka-<version>/` unless `DISPATCHFLOW_KAFKA_CACHE` names another parent
folder (see `dispatchflow.settings.ToolSettings`).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from dispatchflow.settings import ToolSettings

#: The pom that pins the broker, and the Log4j 2 configuration every broker we start uses.
KAFKA_TOOLS_DIR = Path(__file__).resolve().parent.parent / "tools" / "kafka"
DEFAULT_POM = KAFKA_TOOLS_DIR / "pom.xml"
LOG4J2_CONFIG = KAFKA_TOOLS_DIR / "log4j2.xml"

#: Main classes of the KRaft storage tool (`kafka-storage.sh`): in the broker jar up to now,
#: in the tools jar where later releases may move it.
STORAGE_TOOL_CLASSES = ("kafka.tools.StorageTool", "org.apache.kafka.tools.StorageTool")

#: Written into a cache folder after Maven copied every jar; holds the pom's SHA-256.
MARKER_NAME = ".complete"
MIN_JAVA_MAJOR = 17
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class KafkaDistError(RuntimeError):
    """The broker's classpath could not be made ready; the message is one line naming the cause."""


@dataclass(frozen=True)
class KafkaDist:
    """A filled cache: every jar of the broker's runtime classpath in one folder.

    Attributes:
        version: the Apache Kafka version the pom pins (e.g. "4.3.2").
        lib_dir: the folder holding the jars.
    """

    version: str

    lib_dir: Path

    @property
    def classpath(self) -> str:
        """The JVM classpath (`<lib_dir>/*`)."""
        return str(self.lib_dir / "*")

    @property
    def broker_jar(self) -> Path:
        """The `kafka_2.13-<version>.jar`: `kafka.Kafka` and, in 4.x, the storage tool."""
        return self.lib_dir / f"kafka_2.13-{self.version}.jar"

    def storage_tool_class(self) -> str:
        """Main class of the KRaft storage tool in these jars (it has moved between releases).

        Raises:
            KafkaDistError: no jar holds either known class.
        """
        jars = [self.broker_jar, *sorted(self.lib_dir.glob("kafka-*.jar"))]
        for jar in jars:
            try:
                with zipfile.ZipFile(jar) as archive:
                    names = set(archive.namelist())
            except (OSError, zipfile.BadZipFile):
                continue
            for main_class in STORAGE_TOOL_CLASSES:
                if main_class.replace(".", "/") + ".class" in names:
                    return main_class
        msg = f"no Kafka storage tool ({' or '.join(STORAGE_TOOL_CLASSES)}) in {self.lib_dir}"
        raise KafkaDistError(msg)


def pom_kafka_version(pom: Path = DEFAULT_POM) -> str:
    """The `kafka.version` property of `pom`; raise `KafkaDistError` if it has none."""
    try:
        root = ET.parse(pom).getroot()  # noqa: S314 - our own checked-in file
    except (OSError, ET.ParseError) as exc:
        msg = f"cannot read the Kafka pom {pom}: {exc}"
        raise KafkaDistError(msg) from exc
    node = root.find("m:properties/m:kafka.version", _POM_NS)
    if node is None or not (node.text or "").strip():
        msg = f"{pom} has no <kafka.version> property"
        raise KafkaDistError(msg)
    return (node.text or "").strip()


def default_cache_root() -> Path:
    """The parent folder of every `kafka-<version>` cache (`$DISPATCHFLOW_KAFKA_CACHE` wins)."""
    configured = ToolSettings().kafka_cache
    return configured if configured is not None else Path.home() / ".cache" / "dispatchflow"


def cache_dir(version: str, root: Path | None = None) -> Path:
    """Where the jars of Kafka `version` live under `root` (default: `default_cache_root()`)."""
    return (root if root is not None else default_cache_root()) / f"kafka-{version}"


def pom_digest(pom: Path) -> str:
    """SHA-256 (hex) of the pom's bytes: a cache filled from another pom does not count."""
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def is_filled(folder: Path, digest: str) -> bool:
    """True when `folder` holds a complete copy made from the pom with SHA-256 `digest`."""
    marker = folder / MARKER_NAME
    try:
        return marker.read_text(encoding="utf-8").strip() == digest
    except OSError:
        return False


def java_major_version(java: str) -> int:
    """The major version of the `java` executable (17 for "17.0.15"); raise on unreadable output."""
    result = subprocess.run(
        [java, "-version"], capture_output=True, text=True, timeout=60, check=False
    )
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match is None:
        msg = f"cannot tell the Java version from `{java} -version`"
        raise KafkaDistError(msg)
    major = int(match.group(1))
    # Java 8 and older report "1.8.0_x".
    return int(match.group(2) or 0) if major == 1 else major


def find_java() -> str:
    """Path of a `java` (17 or newer) on PATH; raise `KafkaDistError` naming what is missing."""
    java = shutil.which("java")
    if java is None:
        msg = f"`java` not found on PATH: Apache Kafka needs Java {MIN_JAVA_MAJOR} or newer"
        raise KafkaDistError(msg)
    major = java_major_version(java)
    if major < MIN_JAVA_MAJOR:
        msg = f"{java} is Java {major}: Apache Kafka 4 needs Java {MIN_JAVA_MAJOR} or newer"
        raise KafkaDistError(msg)
    return java


def find_maven() -> str:
    """Path of `mvn` on PATH; raise `KafkaDistError` if there is none."""
    mvn = shutil.which("mvn")
    if mvn is None:
        msg = "`mvn` (Apache Maven) not found on PATH: it resolves the Kafka broker's jars"
        raise KafkaDistError(msg)
    return mvn


#: Maven's closing advice, the same on every failure; left out of our one-line error.
_MAVEN_BOILERPLATE = (
    "Re-run Maven",
    "For more information",
    "[Help ",
    "To see the full stack trace",
)
_HELP_SUFFIX = re.compile(r"\s*-> \[Help \d+\]$")


def maven_error_tail(output: str, count: int = 3) -> str:
    """The last `count` informative lines of Maven's output, joined with " | " into one line."""
    lines = []
    for raw in output.splitlines():
        line = _HELP_SUFFIX.sub("", _ANSI.sub("", raw).strip())
        bare = line.removeprefix("[ERROR]").strip()
        if bare and not any(b in line for b in _MAVEN_BOILERPLATE):
            lines.append(line)
    return " | ".join(lines[-count:])


def run_maven(mvn: str, pom: Path, output_dir: Path, timeout_s: float) -> None:
    """Copy the pom's runtime dependencies into `output_dir`; raise `KafkaDistError` on failure.

    The error is one line with Maven's exit code and the last lines it printed.
    """
    argv = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={output_dir}",
        "-DincludeScope=runtime",
    ]
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        msg = f"Maven did not finish resolving the Kafka broker within {timeout_s:.0f} s"
        raise KafkaDistError(msg) from exc
    if result.returncode != 0:
        tail = maven_error_tail(result.stdout + "\n" + result.stderr) or "no output"
        msg = f"Maven failed resolving the Kafka broker (exit {result.returncode}): {tail}"
        raise KafkaDistError(msg)


def ensure_kafka(
    pom: Path = DEFAULT_POM,
    root: Path | None = None,
    *,
    out: TextIO | None = None,
    maven_timeout_s: float = 900.0,
) -> KafkaDist:
    """The broker's classpath, filling the cache with Maven first if it is not filled yet.

    Checks for Java 17+ every time (the broker cannot start without it) and for Maven only when
    the cache must be filled. Prints one line to `out` (default stderr) before running Maven,
    and nothing when the cache is already filled.

    Args:
        pom: the pom that pins the broker.
        root: parent folder of the caches (default: `default_cache_root()`).
        out: where the one progress line goes.
        maven_timeout_s: give up on Maven after this long.

    Returns:
        The filled cache.

    Raises:
        KafkaDistError: Java or Maven is missing or too old, Maven failed, or the copy lacks the
            broker jar; the message is one line.
    """
    version = pom_kafka_version(pom)
    find_java()
    target = cache_dir(version, root)
    digest = pom_digest(pom)
    dist = KafkaDist(version=version, lib_dir=target)
    if is_filled(target, digest):
        return dist
    mvn = find_maven()
    target.parent.mkdir(parents=True, exist_ok=True)
    stream = out if out is not None else sys.stderr
    print(
        f"resolving Apache Kafka {version} with Maven into {target} "
        "(first use only; may take a minute)",
        file=stream,
        flush=True,
    )
    staging = Path(tempfile.mkdtemp(prefix=f".kafka-{version}-", dir=target.parent))
    try:
        run_maven(mvn, pom, staging, maven_timeout_s)
        staged = KafkaDist(version=version, lib_dir=staging)
        if not staged.broker_jar.is_file():
            msg = f"Maven finished but {staged.broker_jar.name} is missing from its copy"
            raise KafkaDistError(msg)
        (staging / MARKER_NAME).write_text(digest + "\n", encoding="utf-8")
        _move_into_place(staging, target, digest)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return dist


def _move_into_place(staging: Path, target: Path, digest: str) -> None:
    """Rename the complete `staging` folder to `target`, replacing a stale or partial one.

    Another process may have filled `target` meanwhile; then its copy is kept and ours dropped.
    """
    if target.exists() and not is_filled(target, digest):
        stale = target.with_name(f"{target.name}.stale-{staging.name.rsplit('-', 1)[-1]}")
        with contextlib.suppress(FileNotFoundError):
            target.rename(stale)
        shutil.rmtree(stale, ignore_errors=True)
    try:
        staging.rename(target)
    except OSError:
        if not is_filled(target, digest):
            raise


def main() -> int:
    """`python -m streams.kafka_dist`: fill the cache if needed and say where it is.

    Returns 0, or 1 after a one-line error on stderr.
    """
    try:
        dist = ensure_kafka()
    except KafkaDistError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    jars = list(dist.lib_dir.glob("*.jar"))
    size_mib = sum(j.stat().st_size for j in jars) / 2**20
    print(f"Apache Kafka {dist.version}: {len(jars)} jars, {size_mib:.0f} MiB in {dist.lib_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
