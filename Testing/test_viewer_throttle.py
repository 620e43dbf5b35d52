"""The page's readout throttle: at most one call per interval, and the newest state always sent last."""
from __future__ import annotations

import asyncio

from FuseVisViewer.throttle import Throttle

INTERVAL = 0.2


def test_a_burst_of_requests_runs_at_once_and_once_more_at_the_end_of_the_interval():
    async def scenario():
        loop = asyncio.get_running_loop()
        state = {"value": 0}
        calls: list[tuple[float, int]] = []
        throttle = Throttle(lambda: calls.append((loop.time(), state["value"])), INTERVAL)
        started = loop.time()
        for value in range(1, 6):  # five changes within a few milliseconds
            state["value"] = value
            throttle.request()
            await asyncio.sleep(0.005)
        after_burst = list(calls)
        await asyncio.sleep(INTERVAL * 2)
        return started, after_burst, calls

    started, after_burst, calls = asyncio.run(scenario())
    assert [value for _, value in after_burst] == [1]  # the first change went out at once
    assert [value for _, value in calls] == [1, 5]  # then only the newest, once
    assert calls[1][0] - calls[0][0] >= INTERVAL - 0.01
    assert calls[0][0] - started < 0.05


def test_requests_further_apart_than_the_interval_all_run_and_cancel_drops_the_pending_one():
    async def scenario():
        calls: list[int] = []
        throttle = Throttle(lambda: calls.append(len(calls)), INTERVAL)
        throttle.request()
        await asyncio.sleep(INTERVAL + 0.05)
        throttle.request()  # the interval is over: runs at once
        throttle.request()  # within it: pending
        throttle.cancel()
        await asyncio.sleep(INTERVAL + 0.05)
        return calls

    assert asyncio.run(scenario()) == [0, 1]
