"""Disk-trouble episodes: the user hears once when one starts and once when it ends, never per event.

An episode is one kind of trouble (full, quota, read-only, I/O error) on one file system; the
journal and the database may share it (the usual case: both in ~/.config/opencode), then the
sentence names the database's folder, as the user knows it. The episode ends when every resource
in it wrote again. Past the memory bound for events the journal could not take, new events are
dropped and counted: said once when it starts, and the count is said again when the episode ends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import attrs

from ..filesystem import Trouble, device_of

Notify = Callable[[str, dict[str, object]], None]

# Memory for events that are in no file (the journal refused them): past either bound, new events
# are dropped. 100,000 typical events take ~30 MiB as journal lines plus their share of the buffer.
MAX_HELD_EVENTS = 100_000
MAX_HELD_BYTES = 64 * 1024 * 1024

JOURNAL, DATABASE = "journal", "database"


@attrs.define
class Episode:
    trouble: Trouble
    failing: set[str]
    held: int        # events not in the database when it began
    accepted: int    # Troubles.accepted when it began


class Troubles:
    def __init__(self, notify: Notify, database_folder: Path | None):
        self._notify = notify
        self._database_folder = database_folder
        self._database_device = device_of(database_folder) if database_folder else -2
        self._episodes: dict[tuple[int, str], Episode] = {}
        self._of: dict[str, tuple[int, str]] = {}  # resource -> its episode
        # How many events the bridge accepted so far (the live tracking service counts them).
        self.accepted: Callable[[], int] = lambda: 0
        self.dropped = 0          # events dropped past the memory bound, this episode
        self.dropped_total = 0    # ... over the bridge's life (the exit line counts them)
        self._told_dropping = False

    def failing(self, resource: str) -> bool:
        return resource in self._of

    @property
    def active(self) -> bool:
        return bool(self._episodes)

    def _where(self, trouble: Trouble) -> str | None:
        if self._database_folder is not None and trouble.device == self._database_device:
            return str(self._database_folder)
        return None

    def failed(self, resource: str, trouble: Trouble, held: int) -> None:
        """``resource`` could not write; ``held`` events wait in memory because of it."""
        episode_key = (trouble.device, trouble.kind)
        previous = self._of.get(resource)
        if previous == episode_key:
            return
        if previous is not None:  # another kind of trouble now: that one did not end, it changed
            self._leave(resource, previous)
        self._of[resource] = episode_key
        episode = self._episodes.get(episode_key)
        if episode is not None:
            episode.failing.add(resource)
            return
        self._episodes[episode_key] = Episode(trouble, {resource}, held, self.accepted())
        self._tell("error", trouble.held(held, self._where(trouble)))

    def succeeded(self, resource: str) -> None:
        """``resource`` wrote again. When none in the episode fails any more, every event held in
        memory meanwhile (held when it began, and accepted since) is in a file: say so, once."""
        episode_key = self._of.pop(resource, None)
        if episode_key is None:
            return
        episode = self._episodes[episode_key]
        episode.failing.discard(resource)
        if episode.failing:
            return
        del self._episodes[episode_key]
        written = episode.held + self.accepted() - episode.accepted
        message = episode.trouble.recovered(written, self._where(episode.trouble))
        if self.dropped:
            message = (message[:-1] + f"; {self.dropped:,} events that arrived while memory was full "
                                      f"were dropped.")
            self.dropped, self._told_dropping = 0, False
        self._tell("info", message)

    def _leave(self, resource: str, episode_key: tuple[int, str]) -> None:
        episode = self._episodes.get(episode_key)
        if episode is not None:
            episode.failing.discard(resource)
            if not episode.failing:
                del self._episodes[episode_key]

    def drop(self, held_events: int, held_bytes: int) -> None:
        """One event dropped past the memory bound; the first one of an episode is told."""
        self.dropped += 1
        self.dropped_total += 1
        if not self._told_dropping:
            self._told_dropping = True
            size = f" ({held_bytes / (1024 * 1024):.1f} MiB)" if held_bytes else ""
            self._tell("error", (
                f"{held_events:,} events{size} that no file could take are held in memory, the limit "
                f"({MAX_HELD_EVENTS:,} events or {MAX_HELD_BYTES // (1024 * 1024)} MiB): new events are "
                f"dropped and counted until space returns."))

    def _tell(self, level: str, message: str) -> None:
        self._notify("log", {"level": level, "message": message})
        self._notify("toast", {"message": message, "variant": "error" if level == "error" else "success"})

