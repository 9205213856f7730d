"""Which record each agent was handling, kept where a killed process leaves it: crash-loop breaker.

Before an agent handles a record it writes the record's place (topic, partition, offset) into its
slot of a small memory-mapped file in the data directory, and marks the slot done afterwards.
Writes to a shared mapping reach the page cache at once, so they survive the process however it
dies (an exception that stops the worker, SIGKILL, a crash of native code), without a system
call per record. A clean stop clears every slot.

When a worker starts, a slot still marked in flight names the record that was being handled when
the previous process died. That record is *suspect*: the next time it arrives it is handled with
`last_chance=True` (`dispatch.live.worker.WorkerCore.handle`), so any error it raises makes it an
`internal_error` dead letter instead of stopping the worker again. A record that was in flight
at two deaths in a row (a native crash the guard cannot catch) is dead-lettered without being
handled a third time. A worker killed for another reason merely handles its last record with the
guard at its strictest; a valid record is then handled as usual.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from pathlib import Path

_SLOT_BYTES = 512
_FREE, _IN_FLIGHT, _DONE = 0, 1, 2
#: Deaths while handling the same record after which it is no longer handled at all.
MAX_ATTEMPTS = 2


@dataclass(frozen=True)
class Suspect:
    """A record that was being handled when a previous process died, and how many times."""

    topic: str
    partition: int
    offset: int
    attempts: int


class InFlightLog:
    """One slot per agent in `<datadir>/inflight.bin`; see the module docstring."""

    def __init__(self, path: Path, agents: tuple[str, ...]) -> None:
        self.path = path
        self.agents = agents
        self._slot = {name: i for i, name in enumerate(agents)}
        path.parent.mkdir(parents=True, exist_ok=True)
        size = _SLOT_BYTES * len(agents)
        self.suspects: dict[tuple[str, int, int], Suspect] = {}
        if path.exists() and path.stat().st_size == size:
            self._load_suspects(path.read_bytes())
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, size)
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self._map[:] = bytes(size)

    def _load_suspects(self, raw: bytes) -> None:
        for start in range(0, len(raw), _SLOT_BYTES):
            slot = raw[start : start + _SLOT_BYTES]
            if slot[0] != _IN_FLIGHT:
                continue
            fields = slot[2:].split(b"\x00", 3)
            try:
                topic, partition, offset = fields[0].decode(), int(fields[1]), int(fields[2])
            except (IndexError, ValueError, UnicodeDecodeError):
                continue
            self.suspects[(topic, partition, offset)] = Suspect(topic, partition, offset, slot[1])

    def suspect(self, topic: str, partition: int, offset: int) -> Suspect | None:
        """The earlier deaths while handling this record, if it was in flight at any."""
        return self.suspects.get((topic, partition, offset))

    def begin(self, agent: str, topic: str, partition: int, offset: int, attempts: int) -> None:
        """Mark that `agent` handles this record now (its `attempts`-th try after deaths)."""
        start = self._slot[agent] * _SLOT_BYTES
        body = f"{topic}\x00{partition}\x00{offset}\x00".encode()[: _SLOT_BYTES - 2]
        self._map[start + 1 : start + 2 + len(body)] = bytes((min(attempts, 255),)) + body
        self._map[start] = _IN_FLIGHT

    def done(self, agent: str) -> None:
        """Mark that `agent` finished its record."""
        self._map[self._slot[agent] * _SLOT_BYTES] = _DONE

    def forget(self, topic: str, partition: int, offset: int) -> None:
        """The suspect record was dealt with: stop treating it as suspect."""
        self.suspects.pop((topic, partition, offset), None)

    def close(self, *, clear: bool = True) -> None:
        """Release the mapping; on a clean stop (`clear`) empty every slot first."""
        if self._map.closed:
            return
        if clear:
            self._map[:] = bytes(len(self._map))
        self._map.flush()
        self._map.close()
