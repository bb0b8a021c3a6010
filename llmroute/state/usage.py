"""A scope's usage log in memory, kept sorted and totalled as it changes.

Reservations come in time order, so an entry is nearly always appended; the totals answer the
widest window (the log is pruned to it) without a look at the entries, and a narrower window
costs a bisection and the entries inside it: a reservation's cost does not grow with the log.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from llmroute.budget import Finished, UsageEntry, settled


class SortedUsage:
    """A `budget.UsageLog` that is also updated in place."""

    def __init__(self) -> None:
        self.entries: list[UsageEntry] = []  # oldest first
        self._ats: list[float] = []  # their times, for bisection
        self._by_id: dict[str, UsageEntry] = {}
        self.requests = 0
        self.tokens = 0

    def used(self, dimension: str, since: float) -> int:
        if not self._ats or since < self._ats[0]:  # the window holds the whole log
            return self.requests if dimension == "requests" else self.tokens
        tail = self.entries[bisect_right(self._ats, since) :]
        if dimension == "requests":
            return sum(e.requests for e in tail)
        return sum(e.tokens for e in tail)

    def oldest_first(self, since: float) -> list[UsageEntry]:
        return self.entries[bisect_right(self._ats, since) :]

    def add(self, entry: UsageEntry) -> None:
        if not self._ats or entry.at >= self._ats[-1]:
            self.entries.append(entry)
            self._ats.append(entry.at)
        else:
            at = bisect_right(self._ats, entry.at)
            self.entries.insert(at, entry)
            self._ats.insert(at, entry.at)
        self._by_id[entry.id] = entry
        self.requests += entry.requests
        self.tokens += entry.tokens

    def prune(self, keep_after: float) -> None:
        """Forget the entries at or before `keep_after`."""
        cut = bisect_right(self._ats, keep_after)
        if not cut:
            return
        for entry in self.entries[:cut]:
            self._forget(entry)
        del self.entries[:cut], self._ats[:cut]

    def settle(self, done: Finished) -> None:
        entry = self._by_id.get(done.entry_id)
        if entry is None:  # pruned already, or never granted
            return
        self._remove(entry)
        self.add(settled(entry, done))

    def _remove(self, entry: UsageEntry) -> None:
        at = bisect_left(self._ats, entry.at)
        while self.entries[at] is not entry:  # entries reserved at the same time
            at += 1
        del self.entries[at], self._ats[at]
        self._forget(entry)

    def _forget(self, entry: UsageEntry) -> None:
        del self._by_id[entry.id]
        self.requests -= entry.requests
        self.tokens -= entry.tokens

    def __bool__(self) -> bool:
        return bool(self.entries)
