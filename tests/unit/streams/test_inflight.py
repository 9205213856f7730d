from pathlib import Path

from streams.inflight import InFlightLog

AGENTS = ("shard", "pings")


def test_a_record_in_flight_when_the_process_died_is_suspect(tmp_path: Path) -> None:
    """A slot left in flight names a suspect for the next process."""
    log = InFlightLog(tmp_path / "inflight.bin", AGENTS)
    log.begin("shard", "order_events", 3, 42, attempts=0)
    log.close(clear=False)  # the process dies here
    suspect = InFlightLog(tmp_path / "inflight.bin", AGENTS).suspect("order_events", 3, 42)
    assert suspect is not None and suspect.attempts == 0


def test_a_finished_record_is_not_suspect(tmp_path: Path) -> None:
    """A record marked done before the death is not suspect."""
    log = InFlightLog(tmp_path / "inflight.bin", AGENTS)
    log.begin("pings", "courier_pings", 0, 7, attempts=0)
    log.done("pings")
    log.close(clear=False)
    assert InFlightLog(tmp_path / "inflight.bin", AGENTS).suspects == {}


def test_a_clean_stop_leaves_no_suspect(tmp_path: Path) -> None:
    """After a clean stop nothing is suspect, even a record that was in flight."""
    log = InFlightLog(tmp_path / "inflight.bin", AGENTS)
    log.begin("shard", "order_events", 0, 1, attempts=0)
    log.close()
    assert InFlightLog(tmp_path / "inflight.bin", AGENTS).suspects == {}


def test_attempts_count_the_deaths_on_one_record(tmp_path: Path) -> None:
    """A suspect in flight again at the next death comes back with one more attempt."""
    path = tmp_path / "inflight.bin"
    first = InFlightLog(path, AGENTS)
    first.begin("shard", "order_events", 0, 5, attempts=0)
    first.close(clear=False)
    second = InFlightLog(path, AGENTS)
    suspect = second.suspect("order_events", 0, 5)
    assert suspect is not None
    second.begin("shard", "order_events", 0, 5, attempts=suspect.attempts + 1)
    second.close(clear=False)
    again = InFlightLog(path, AGENTS).suspect("order_events", 0, 5)
    assert again is not None and again.attempts == 1


def test_slots_are_kept_per_agent(tmp_path: Path) -> None:
    """Each agent's record is remembered apart from the others'."""
    log = InFlightLog(tmp_path / "inflight.bin", AGENTS)
    log.begin("shard", "order_events", 0, 1, attempts=0)
    log.begin("pings", "courier_pings", 2, 9, attempts=0)
    log.close(clear=False)
    assert set(InFlightLog(tmp_path / "inflight.bin", AGENTS).suspects) == {
        ("order_events", 0, 1),
        ("courier_pings", 2, 9),
    }
