"""Step-function resource profile used by the schedule generation scheme.

A profile stores breakpoints instead of one slot per time unit, so its cost does not
grow with the time resolution (minutes for service plans, periods for PSPLIB).
"""

from __future__ import annotations

from bisect import bisect_right


class Profile:
    """Usage over time of one resource with a fixed capacity.

    ``levels[i]`` is the usage on ``[times[i], times[i+1])``; the last level (to
    infinity) is always 0 because every reservation is finite.
    """

    __slots__ = ("cap", "levels", "times")

    def __init__(self, capacity: int) -> None:
        self.cap = capacity
        self.times: list[int] = [0]
        self.levels: list[int] = [0]

    def earliest(self, t: int, d: int, q: int) -> int:
        """Smallest start ``>= t`` where ``q`` units fit for ``d`` units of time."""
        if d <= 0 or q <= 0:
            return t
        times = self.times
        levels = self.levels
        lim = self.cap - q
        n = len(times)
        i = bisect_right(times, t) - 1
        while True:
            end = t + d
            j = i
            while j < n and times[j] < end:
                if levels[j] > lim:
                    # The last level is 0 <= lim, so j + 1 exists.
                    t = times[j + 1]
                    i = j + 1
                    break
                j += 1
            else:
                return t

    def _split(self, t: int) -> int:
        times = self.times
        i = bisect_right(times, t) - 1
        if times[i] == t:
            return i
        times.insert(i + 1, t)
        self.levels.insert(i + 1, self.levels[i])
        return i + 1

    def add(self, s: int, d: int, q: int) -> None:
        """Reserves ``q`` units on ``[s, s + d)``."""
        if d <= 0 or q <= 0:
            return
        i = self._split(s)
        j = self._split(s + d)
        levels = self.levels
        for k in range(i, j):
            levels[k] += q
        # Equal neighbours merge, so a run of back-to-back work is one step that
        # `earliest` skips at once: unmerged, an agent's queue of n tasks made every
        # search from an early time walk n breakpoints (quadratic on large plans).
        times = self.times
        if levels[j] == levels[j - 1]:
            del times[j], levels[j]
        if i > 0 and levels[i] == levels[i - 1]:
            del times[i], levels[i]
