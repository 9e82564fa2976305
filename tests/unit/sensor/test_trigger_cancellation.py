"""Airflow cancels a trigger (its task was cleared, marked, or the triggerer hands it to another one): the
trigger must end then, whatever else happens in that loop iteration.

On Python 3.11, ``asyncio.wait_for`` returns the inner result and drops the cancellation when both arrive in
the same iteration; a trigger waiting that way for its shared poller's next round went on polling until its
deadline (seen in CI as a flaky shared-poller test). Here the race is made certain: a round's result is
delivered and the cancellation requested back to back, with no await in between.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from enlivy_provider.invoice_status import ObservedStatuses
from enlivy_provider.triggers import invoice_status as trigger_module
from enlivy_provider.triggers.invoice_status import EnlivyInvoiceStatusTrigger
from enlivy_provider.triggers.status_poller import (
    PollerKey,
    PollResult,
    Subscription,
    loops_with_pollers,
    subscribe,
)

INVOICE = "org_inv_race"
DEADLINE_S = 5.0  # a trigger that lost the cancellation runs until here and fires a timeout event


@asynccontextmanager
async def _never_opens(conn_id: str) -> AsyncIterator[Any]:
    await asyncio.Event().wait()  # the poller never reads: the test delivers every round itself
    yield None


def _pending() -> PollResult:
    return PollResult(ObservedStatuses(statuses={INVOICE: "pending"}), next_poll_in=60.0)


def test_a_cancellation_that_arrives_with_a_round_ends_the_trigger(monkeypatch: pytest.MonkeyPatch) -> None:
    subscriptions: list[Subscription] = []

    def subscribe_without_api(key: PollerKey, invoice_ids: Sequence[str], _opener: Any) -> Subscription:
        subscription = subscribe(key, invoice_ids, _never_opens)
        subscriptions.append(subscription)
        return subscription

    monkeypatch.setattr(trigger_module, "subscribe", subscribe_without_api)
    trigger = EnlivyInvoiceStatusTrigger(invoice_ids=[INVOICE], end_time=time.time() + DEADLINE_S)

    async def scenario() -> None:
        waiting = asyncio.create_task(anext(trigger.run()))
        while not subscriptions:
            await asyncio.sleep(0)
        (subscription,) = subscriptions
        subscription.deliver(_pending())  # the first round: still pending, the trigger waits on
        for _ in range(5):
            await asyncio.sleep(0)
        subscription.deliver(_pending())  # the next round, in the very iteration Airflow cancels
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert subscription.closed  # it left the poller on the way out

    asyncio.run(scenario())
    assert loops_with_pollers() == 0
