"""A sliding window of numbers kept sorted, for running percentiles and medians at every frame.

Streaming's speech level (95th percentile of loudness) and reference pitch (median) are read at every 25 fps
frame over the last 30 seconds: `np.percentile` / `np.median` on a fresh array each time sorted up to 750 values
per frame. Here the window stays sorted (`bisect`: one insertion and one removal per value), and the statistics
are numpy's own formulas (the 'linear' method and its interpolation, `numpy.lib.function_base._lerp`) in Python
floats, so every value is bit for bit the one numpy gives (`tests/test_running_exact.py`).
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque


class SortedWindow:
    """The last `size` values added, in order of arrival and sorted. NaNs are counted, not sorted: as in numpy,
    a window holding one gives NaN."""

    def __init__(self, size: int) -> None:
        self.values: deque[float] = deque(maxlen=size)
        self.sorted: list[float] = []
        self._nans = 0

    def __len__(self) -> int:
        return len(self.values)

    def add(self, value: float) -> None:
        if len(self.values) == self.values.maxlen:
            old = self.values[0]
            if old != old:
                self._nans -= 1
            else:  # an equal value: the same number (+0.0 and -0.0 aside)
                del self.sorted[bisect_left(self.sorted, old)]
        self.values.append(value)
        if value != value:
            self._nans += 1
        else:
            insort(self.sorted, value)

    def percentile(self, q: float) -> float:
        """`np.percentile(values, q)` (method 'linear')."""
        n = len(self.values)
        if self._nans:
            return math.nan
        v = (n - 1) * (q / 100)
        if v >= n - 1:  # numpy takes the last value twice (and a gamma of v + 1)
            a = b = self.sorted[-1]
            gamma = v + 1
        else:
            i = math.floor(v)
            a, b = self.sorted[i], self.sorted[i + 1]
            gamma = v - i
        diff = b - a
        if gamma >= 0.5:
            return b - diff * (1 - gamma)
        return a + diff * gamma

    def median(self) -> float:
        """`np.median(values)`."""
        n = len(self.values)
        if self._nans:
            return math.nan
        h = n // 2
        if n % 2:
            return self.sorted[h]
        return (self.sorted[h - 1] + self.sorted[h]) / 2
