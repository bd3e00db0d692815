"""Locust's response-time buckets at 3 significant digits instead of 2. Pure: no locust import;
``locust_setup`` installs it as ``locust.stats.bucket_response_time`` in every process."""

from __future__ import annotations

import math

__all__ = ["bucket_response_time_3sig"]


def bucket_response_time_3sig(response_time: float) -> float:
    """Round to 3 significant digits: 106.4 -> 106, 10.64 -> 10.6, 1064 -> 1060.

    Keys stay ints from 100 ms up, as Locust returns them; below, floats, which Locust's
    sorting, percentiles, msgpack transport and reports all accept. Locust calls it twice per
    request, so a float time from 0.1 ms to 10 s takes a shortcut around ``round(x, ndigits)``,
    which is slow; a time on or next to a tie (1.125, 100.5), or an int, goes through
    ``round``, so the keys are always the ones ``round`` gives.
    """
    if type(response_time) is float and 0.1 <= response_time < 9995.0:
        if response_time >= 100.0:
            scale = 1.0 if response_time < 999.5 else 0.1
        elif response_time >= 10.0:
            scale = 10.0 if response_time < 99.95 else 0.0
        elif response_time >= 1.0:
            scale = 100.0 if response_time < 9.995 else 0.0
        else:
            scale = 1000.0 if response_time < 0.9995 else 0.0
        if scale:
            scaled = response_time * scale
            whole = int(scaled)
            fraction = scaled - whole
            if abs(fraction - 0.5) > 1e-6:  # not a tie, so no rounding rule to disagree on
                rounded = whole + 1 if fraction > 0.5 else whole
                if scale == 1.0:
                    return rounded
                if scale == 0.1:
                    return rounded * 10
                return rounded / scale
    if response_time <= 0:
        return 0
    digits = 2 - math.floor(math.log10(response_time))
    rounded_time = round(response_time, digits)
    return int(rounded_time) if rounded_time >= 100 else rounded_time
