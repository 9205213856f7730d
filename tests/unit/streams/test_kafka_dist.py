"""Resolving the Apache Kafka broker into its cache: the pin, the marker, and every failure."""

from __future__ import annotations

import io
import os
import re
import stat
import zipfile
from pathlib import Path

import pytest

from streams import kafka_dist
from streams.kafka_dist import (
    DEFAULT_POM,
    LOG4J2_CONFIG,
    MARKER_NAME,
    KafkaDist,
    KafkaDistError,
    cache_dir,
    default_cache_root,
    ensure_kafka,
    find_java,
    find_maven,
    is_filled,
    java_major_version,
    maven_error_tail,
    pom_digest,
    pom_kafka_version,
)

MAVEN_FAILURE = """\
\x1b[0m[ERROR] Failed to execute goal on project kafka-broker-runtime: Could not resolve \
dependencies for project dispatchflow:kafka-broker-runtime:pom:1: \
org.apache.kafka:kafka_2.13:jar:4.9.99 was not found in the central repository -> [Help 1]
[ERROR]
[ERROR] To see the full stack trace of the errors, re-run Maven with the -e switch.
[ERROR] Re-run Maven using the -X switch to enable full debug logging.
[ERROR]
[ERROR] For more information about the errors and possible solutions, please read the following:
[ERROR] [Help 1] http://cwiki.apache.org/confluence/display/MAVEN/DependencyResolutionException
"""


@pytest.fixture
def pom(tmp_path: Path) -> Path:
    """A copy of the checked-in pom (so tests can change it)."""
    copy = tmp_path / "pom.xml"
    copy.write_bytes(DEFAULT_POM.read_bytes())
    return copy


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty cache root, apart from the pom copy."""
    folder = tmp_path / "cache"
    folder.mkdir()
    return folder


@pytest.fixture
def no_jvm_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend Java 17+ and Maven are installed (the tests fake what Maven does)."""
    monkeypatch.setattr(kafka_dist, "find_java", lambda: "java")
    monkeypatch.setattr(kafka_dist, "find_maven", lambda: "mvn")


def _fake_maven(copies: list[Path], *, with_broker_jar: bool = True) -> object:
    def run(mvn: str, pom: Path, output_dir: Path, timeout_s: float) -> None:
        copies.append(output_dir)
        (output_dir / "kafka-clients-x.jar").write_bytes(b"jar")
        if with_broker_jar:
            version = pom_kafka_version(pom)
            (output_dir / f"kafka_2.13-{version}.jar").write_bytes(b"jar")

    return run


def _fill(folder: Path, pom: Path) -> None:
    folder.mkdir(parents=True)
    (folder / f"kafka_2.13-{pom_kafka_version(pom)}.jar").write_bytes(b"jar")
    (folder / MARKER_NAME).write_text(pom_digest(pom) + "\n")


def test_the_checked_in_pom_pins_a_kafka_4_release() -> None:
    """tools/kafka/pom.xml pins one Apache Kafka 4.x.y release, and its Log4j config exists."""
    assert re.fullmatch(r"4\.\d+\.\d+", pom_kafka_version())
    assert LOG4J2_CONFIG.is_file()


def test_a_pom_without_the_version_property_is_refused(tmp_path: Path) -> None:
    """A pom lacking <kafka.version> raises a one-line error naming the file."""
    bad = tmp_path / "pom.xml"
    bad.write_text('<project xmlns="http://maven.apache.org/POM/4.0.0"><properties/></project>')
    with pytest.raises(KafkaDistError, match=r"has no <kafka\.version>"):
        pom_kafka_version(bad)


def test_cache_folder_is_named_after_the_version_under_the_root(tmp_path: Path) -> None:
    """The jars of Kafka X live in `<root>/kafka-X`."""
    assert cache_dir("4.3.2", tmp_path) == tmp_path / "kafka-4.3.2"


def test_the_cache_root_comes_from_the_environment_when_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DISPATCHFLOW_KAFKA_CACHE replaces ~/.cache/dispatchflow as the parent folder."""
    monkeypatch.setenv("DISPATCHFLOW_KAFKA_CACHE", str(tmp_path))
    assert default_cache_root() == tmp_path


def test_the_default_cache_root_is_in_the_home_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the variable the caches live under ~/.cache/dispatchflow."""
    monkeypatch.delenv("DISPATCHFLOW_KAFKA_CACHE", raising=False)
    assert default_cache_root() == Path.home() / ".cache" / "dispatchflow"


def test_a_folder_without_the_marker_is_not_filled(tmp_path: Path, pom: Path) -> None:
    """Jars alone (a copy cut short) do not count as a filled cache."""
    (tmp_path / f"kafka_2.13-{pom_kafka_version(pom)}.jar").write_bytes(b"jar")
    assert not is_filled(tmp_path, pom_digest(pom))


def test_a_marker_from_another_pom_is_not_filled(tmp_path: Path, pom: Path) -> None:
    """A cache filled from a different pom (e.g. another binding) must be filled again."""
    (tmp_path / MARKER_NAME).write_text("0" * 64 + "\n")
    assert not is_filled(tmp_path, pom_digest(pom))


def test_a_marker_from_this_pom_is_filled(tmp_path: Path, pom: Path) -> None:
    """The marker written after a complete copy of this pom's jars makes the cache filled."""
    (tmp_path / MARKER_NAME).write_text(pom_digest(pom) + "\n")
    assert is_filled(tmp_path, pom_digest(pom))


@pytest.mark.usefixtures("no_jvm_checks")
def test_a_filled_cache_is_used_without_maven(
    root: Path, pom: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the marker in place no Maven runs and nothing is printed (offline reuse)."""
    _fill(cache_dir(pom_kafka_version(pom), root), pom)
    copies: list[Path] = []
    monkeypatch.setattr(kafka_dist, "run_maven", _fake_maven(copies))
    out = io.StringIO()
    dist = ensure_kafka(pom, root, out=out)
    assert copies == [] and out.getvalue() == ""
    assert dist.broker_jar.is_file()


@pytest.mark.usefixtures("no_jvm_checks")
def test_an_empty_cache_is_filled_once_with_one_line_of_progress(
    root: Path, pom: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first call runs Maven and prints one line; the second finds the cache filled."""
    copies: list[Path] = []
    monkeypatch.setattr(kafka_dist, "run_maven", _fake_maven(copies))
    out = io.StringIO()
    first = ensure_kafka(pom, root, out=out)
    second = ensure_kafka(pom, root, out=out)
    assert len(copies) == 1
    assert out.getvalue().count("\n") == 1 and "resolving Apache Kafka" in out.getvalue()
    assert first == second and is_filled(first.lib_dir, pom_digest(pom))


@pytest.mark.usefixtures("no_jvm_checks")
def test_a_half_filled_cache_is_replaced_by_a_complete_copy(
    root: Path, pom: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache folder left without its marker is filled again and its leftovers are gone."""
    target = cache_dir(pom_kafka_version(pom), root)
    target.mkdir(parents=True)
    (target / "leftover.jar.part").write_bytes(b"half")
    monkeypatch.setattr(kafka_dist, "run_maven", _fake_maven([]))
    dist = ensure_kafka(pom, root, out=io.StringIO())
    assert is_filled(dist.lib_dir, pom_digest(pom))
    assert not (target / "leftover.jar.part").exists()
    assert sorted(p.name for p in root.iterdir()) == [target.name]


@pytest.mark.usefixtures("no_jvm_checks")
def test_a_maven_failure_leaves_no_cache_behind(
    root: Path, pom: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When Maven fails the error propagates and neither the cache nor its staging remain."""

    def failing(mvn: str, pom: Path, output_dir: Path, timeout_s: float) -> None:
        (output_dir / "some.jar").write_bytes(b"jar")
        raise KafkaDistError("Maven failed resolving the Kafka broker (exit 1): offline")

    monkeypatch.setattr(kafka_dist, "run_maven", failing)
    with pytest.raises(KafkaDistError, match="offline"):
        ensure_kafka(pom, root, out=io.StringIO())
    assert list(root.iterdir()) == []


@pytest.mark.usefixtures("no_jvm_checks")
def test_a_copy_without_the_broker_jar_is_not_marked_filled(
    root: Path, pom: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Maven "succeeding" without kafka_2.13-<version>.jar is an error, not a filled cache."""
    monkeypatch.setattr(kafka_dist, "run_maven", _fake_maven([], with_broker_jar=False))
    with pytest.raises(KafkaDistError, match=r"kafka_2\.13-.*\.jar is missing"):
        ensure_kafka(pom, root, out=io.StringIO())
    assert list(root.iterdir()) == []


def test_maven_errors_shrink_to_one_line_with_the_cause() -> None:
    """Colour codes, the `-> [Help 1]` suffix and Maven's standard advice are left out."""
    tail = maven_error_tail(MAVEN_FAILURE)
    assert "\n" not in tail and "\x1b" not in tail
    assert tail.endswith("kafka_2.13:jar:4.9.99 was not found in the central repository")
    assert "Help" not in tail and "-X switch" not in tail


def test_a_failing_maven_run_is_reported_with_its_exit_code(tmp_path: Path) -> None:
    """A real `mvn` stand-in exiting 1 gives an error with the exit code and its last line."""
    mvn = _script(tmp_path / "mvn", "echo '[ERROR] Could not transfer artifact: offline'; exit 1")
    with pytest.raises(KafkaDistError) as caught:
        kafka_dist.run_maven(str(mvn), DEFAULT_POM, tmp_path / "out", timeout_s=30)
    assert str(caught.value) == (
        "Maven failed resolving the Kafka broker (exit 1): "
        "[ERROR] Could not transfer artifact: offline"
    )


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_missing_java_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No `java` on PATH: a one-line error that says Java 17+ is needed."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KafkaDistError, match=r"`java` not found on PATH.*Java 17 or newer"):
        find_java()


def test_missing_maven_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No `mvn` on PATH: a one-line error naming Maven."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KafkaDistError, match=r"`mvn` \(Apache Maven\) not found"):
        find_maven()


def test_java_older_than_17_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Java 11 on PATH is reported with its version, not started."""
    _script(tmp_path / "java", "echo 'openjdk version \"11.0.22\" 2024-01-16' >&2")
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ.get("PATH", ""))
    with pytest.raises(KafkaDistError, match="is Java 11: Apache Kafka 4 needs Java 17"):
        find_java()


@pytest.mark.parametrize(
    ("banner", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_292"', 8),
        ('openjdk version "21" 2023-09-19', 21),
    ],
)
def test_java_versions_are_read_from_the_banner(tmp_path: Path, banner: str, major: int) -> None:
    """`java -version` banners of old and new Java give their major version."""
    java = _script(tmp_path / "java", f"echo '{banner}' >&2")
    assert java_major_version(str(java)) == major


def _jar(path: Path, *entries: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as jar:
        for entry in entries:
            jar.writestr(entry, b"")


def test_the_storage_tool_is_found_in_the_broker_jar(tmp_path: Path) -> None:
    """Kafka 4.x keeps `kafka.tools.StorageTool` in kafka_2.13-<version>.jar."""
    dist = KafkaDist("4.3.2", tmp_path)
    _jar(dist.broker_jar, "kafka/Kafka.class", "kafka/tools/StorageTool.class")
    assert dist.storage_tool_class() == "kafka.tools.StorageTool"


def test_the_storage_tool_is_found_where_a_later_release_may_move_it(tmp_path: Path) -> None:
    """A tools jar holding `org.apache.kafka.tools.StorageTool` is found as well."""
    dist = KafkaDist("9.0.0", tmp_path)
    _jar(dist.broker_jar, "kafka/Kafka.class")
    _jar(tmp_path / "kafka-tools-9.0.0.jar", "org/apache/kafka/tools/StorageTool.class")
    assert dist.storage_tool_class() == "org.apache.kafka.tools.StorageTool"


def test_no_storage_tool_is_a_one_line_error(tmp_path: Path) -> None:
    """Jars without either storage tool class give an error naming both."""
    dist = KafkaDist("4.3.2", tmp_path)
    _jar(dist.broker_jar, "kafka/Kafka.class")
    with pytest.raises(
        KafkaDistError, match=r"no Kafka storage tool \(kafka\.tools\.StorageTool or"
    ):
        dist.storage_tool_class()
