"""The poller registry: one entry per event loop, nothing left once the loop's triggers are gone.

The API is not needed here (the integration tests in tests/integration/sensor/test_shared_poller.py cover
the polling itself): the client opener below never finishes opening, so the pollers never send a request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from enlivy_provider.triggers.status_poller import PollerKey, active_pollers, loops_with_pollers, subscribe

KEY = PollerKey("enlivy_default", 60.0, 300.0)


@asynccontextmanager
async def _never_opens(conn_id: str) -> AsyncIterator[Any]:
    await asyncio.Event().wait()  # a connection lookup that never answers
    yield None


def test_a_loop_closed_with_a_running_poller_is_purged_by_the_next_subscription() -> None:
    abandoned = asyncio.new_event_loop()

    async def leave_running() -> None:
        subscribe(KEY, ["org_inv_a"], _never_opens)
        await asyncio.sleep(0)

    abandoned.run_until_complete(leave_running())
    abandoned.close()  # without cancelling its tasks, as a crashed triggerer would
    assert loops_with_pollers() == 1

    async def in_a_new_loop() -> tuple[int, int]:
        subscription = subscribe(KEY, ["org_inv_b"], _never_opens)
        seen = (loops_with_pollers(), active_pollers()[KEY].subscribers)
        subscription.close()
        return seen

    assert asyncio.run(in_a_new_loop()) == (1, 1)  # the closed loop's entry is gone; ours has one subscriber
    assert loops_with_pollers() == 0


def test_the_last_subscriber_to_leave_stops_the_poller_and_a_new_one_starts_afresh() -> None:
    async def scenario() -> None:
        first = subscribe(KEY, ["org_inv_a"], _never_opens)
        second = subscribe(KEY, ["org_inv_a", "org_inv_b"], _never_opens)
        poller = active_pollers()[KEY]
        assert poller.subscribers == 2
        first.close()
        first.close()  # idempotent
        assert active_pollers()[KEY] is poller
        second.close()
        assert poller.stopped and not active_pollers()
        third = subscribe(KEY, ["org_inv_c"], _never_opens)
        assert active_pollers()[KEY] is not poller
        third.close()

    asyncio.run(scenario())
    assert loops_with_pollers() == 0
