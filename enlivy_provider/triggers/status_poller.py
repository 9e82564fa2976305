"""One status poller per (connection, poll interval, backoff cap) in an event loop, shared by the triggers.

A triggerer runs every trigger as a task of one asyncio event loop. Polling alone, 1,000 deferred sensors that
each wait for one invoice make 1,000 list calls per interval against a per-token quota. Here the triggers of
one key *subscribe* to a :class:`StatusPoller` instead: every round the poller reads the union of their
invoice ids (each id once) in ``ids``-filtered list calls of at most 30 ids, one after the other (ceil(N / 30)
calls), and hands each subscriber a :class:`PollResult`. Each trigger still applies its own rule (targets,
failures, deadline) to it.

Schedule: the first round runs as soon as the poller exists, the next ``poll_interval`` after a round ends.
Triggers that join between rounds are read together :data:`NEWCOMER_GATHER_S` after the first of them
joined (unless the round is due sooner), so a trigger's first check is not a whole interval late.

Life cycle: :func:`subscribe` creates the poller lazily, in the running loop, on the first subscription of
its key; the poller's task lives in that loop and is cancelled when its last subscriber leaves
(:meth:`Subscription.close`, called from the trigger's ``finally``, so also when Airflow cancels the trigger).
Pollers are registered per event loop, so a loop never sees another loop's poller; an empty loop's entry is
removed, and the entry of a loop closed with a poller still running is dropped at the next subscription.

Errors (docs/sensor.md, "Shared polling"); only the subscribers whose ids were in the failing call are touched:

- A transient error (connection error, 429, 500/502/503/504, after the client's own retries) gives those
  subscribers no result this round; they keep waiting. A 429 or a connection error (no answer at all) also
  ends the round early: the batches not yet read get the same error, and the next round starts with them, so
  no batch is starved. A round in which nothing could be read backs off exponentially (capped at
  ``max_backoff``, at least ``Retry-After``).
- A 400 or 422 (the API refused the request, maybe for one id) on a call holding ids of several subscribers:
  the batch is read again, one subscriber's ids at a time, in the same round, so the error reaches only the
  subscribers whose own ids cause it, as if each had polled alone.
- Any other non-retryable answer (401, 403, 404, ...) is about the token, organization or route, not the
  ids: it goes to every subscriber of that call.
- A connection that cannot be used (missing, bad extras) ends every subscriber of the poller.

Nothing here imports Airflow: the trigger passes the function that opens a client for its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from enlivy_provider.client import EnlivyAPIError, EnlivyConnectionError, EnlivyError, EnlivyRateLimitError
from enlivy_provider.invoice_status import ObservedStatuses, afetch_statuses, batched, is_transient

if TYPE_CHECKING:
    from enlivy_provider.client import AsyncEnlivyClient

log = logging.getLogger(__name__)

#: Triggers that join a running poller are read together this long after the first of them joined (unless
#: the next round is sooner): a triggerer starts its triggers one after another, in a burst.
NEWCOMER_GATHER_S = 1.0

#: Opens a client for a connection id for one round (the trigger gives the hook-based one).
ClientOpener = Callable[[str], AbstractAsyncContextManager["AsyncEnlivyClient"]]


@dataclass(frozen=True)
class PollerKey:
    """Triggers share a poller when everything that shapes the polling is the same. The organization is the
    connection's, so the connection id stands for (token, organization)."""

    conn_id: str
    poll_interval: float
    max_backoff: float


@dataclass(frozen=True)
class PollResult:
    """One round, as seen by one subscriber.

    ``observed`` holds every invoice read in the round (shared by all subscribers; read it, do not change it).
    ``error`` is the error of a batch that held one of the subscriber's ids (a non-transient one before a
    transient one); when it is set, ``observed`` may lack some of the subscriber's ids. ``unusable_connection``
    says why no client could be opened. ``next_poll_in``: seconds until the next round.
    """

    observed: ObservedStatuses
    error: EnlivyError | None = None
    unusable_connection: str | None = None
    next_poll_in: float = 0.0


async def open_client(stack: AsyncExitStack, opener: ClientOpener, conn_id: str) -> AsyncEnlivyClient | str:
    """Open a client for ``conn_id`` on ``stack``, or return why the connection cannot be used (missing,
    bad extras): the text of the ``error`` event, since retrying will not fix a connection."""
    try:
        return await stack.enter_async_context(opener(conn_id))
    except Exception as exc:
        return f"Cannot use Enlivy connection {conn_id!r}: {type(exc).__name__}: {exc}"


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Delay before poll number ``attempt`` (1, 2, ...) after consecutive transient errors: doubling, jittered."""
    exponent = min(attempt - 1, 16)
    return min(cap, max(base, 1.0) * 2**exponent) * random.uniform(0.5, 1.0)


class Subscription:
    """A trigger's place in a poller: the ids it wants and the results meant for it."""

    def __init__(self, poller: StatusPoller, invoice_ids: Sequence[str]) -> None:
        self.invoice_ids = list(invoice_ids)
        self._poller = poller
        self._results: asyncio.Queue[PollResult] = asyncio.Queue()
        self.closed = False

    async def next_result(self) -> PollResult:
        """Wait for the next round that read (or tried to read) this subscription's ids."""
        return await self._results.get()

    def deliver(self, result: PollResult) -> None:
        if not self.closed:
            self._results.put_nowait(result)

    def close(self) -> None:
        """Leave the poller (idempotent, synchronous: safe in a ``finally`` of a cancelled task)."""
        if not self.closed:
            self.closed = True
            self._poller.unsubscribe(self)


@dataclass
class _Round:
    """What one round found: every invoice read, and the error each subscriber's ids ran into."""

    observed: ObservedStatuses = field(default_factory=ObservedStatuses)
    errors: dict[Subscription, list[EnlivyError]] = field(default_factory=dict)
    read_any: bool = False
    retry_after: float = 0.0

    @property
    def failed(self) -> bool:
        """Nothing could be read: the API is down or refusing, so the next round backs off."""
        return bool(self.errors) and not self.read_any

    def fail(self, subscribers: Iterable[Subscription], exc: EnlivyError) -> None:
        for subscriber in subscribers:
            self.errors.setdefault(subscriber, []).append(exc)
        if isinstance(exc, EnlivyRateLimitError) and exc.retry_after:
            self.retry_after = max(self.retry_after, float(exc.retry_after))

    def error_for(self, subscriber: Subscription) -> EnlivyError | None:
        errors = self.errors.get(subscriber, [])
        fatal = [exc for exc in errors if not is_transient(exc)]
        return next(iter(fatal or errors), None)


def _ends_round(exc: EnlivyError) -> bool:
    """No answer at all, or "slow down": the next batches would fare the same, so stop asking this round."""
    return isinstance(exc, (EnlivyConnectionError, EnlivyRateLimitError))


#: Answers to a list call that one of its ids may have caused (an id the API refuses as malformed). Others are
#: about the token, the organization or the route (401, 403, 404, ...) and would be the same for any ids.
ID_SPECIFIC_STATUSES = frozenset({400, 422})


def _concerns_ids(exc: EnlivyError) -> bool:
    return isinstance(exc, EnlivyAPIError) and exc.status in ID_SPECIFIC_STATUSES


class StatusPoller:
    """The polling task of one key in one event loop; see the module docstring for the rules."""

    def __init__(self, key: PollerKey, open_client: ClientOpener, on_stop: Callable[[StatusPoller], None]):
        self.key = key
        self._open_client = open_client
        self._on_stop = on_stop
        self._subscribers: dict[Subscription, None] = {}  # insertion-ordered set
        self._newcomers: dict[Subscription, None] = {}  # joined since the last round began, not read yet
        self._joined = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._resume_from: str | None = None
        self.rounds = 0  # regular rounds (every subscriber); newcomer reads are not counted
        self.stopped = False

    # ------------------------------------------------------------------------------------ membership

    def subscribe(self, invoice_ids: Sequence[str]) -> Subscription:
        subscription = Subscription(self, invoice_ids)
        self._subscribers[subscription] = None
        self._newcomers[subscription] = None
        self._joined.set()
        if self._task is None:
            # A fresh context: the poller serves many triggers, so it must not carry (and log under) the
            # context variables of the trigger that happened to start it.
            loop = asyncio.get_running_loop()
            self._task = contextvars.Context().run(loop.create_task, self._run())
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.pop(subscription, None)
        self._newcomers.pop(subscription, None)
        if not self._subscribers:
            self.stop()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self._on_stop(self)
        task = self._task
        if task is None or task.done() or task.get_loop().is_closed():
            return  # nothing to cancel (a closed loop's task is being garbage-collected)
        if task is not asyncio.current_task(task.get_loop()):
            task.cancel()

    # ------------------------------------------------------------------------------------ schedule

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0)  # triggers started in the same tick as the first one join the first round
        failed_rounds = 0
        next_round = loop.time()
        try:
            while self._subscribers:
                wait = next_round - loop.time()
                if wait > 0:
                    later = await self._serve_newcomers(wait)
                    if later is None:
                        return
                    next_round = max(next_round, loop.time() + later)
                    continue
                subscribers = list(self._subscribers)
                self._newcomers.clear()
                found = await self._poll(subscribers, rotate=True)
                if found is None:
                    return
                self.rounds += 1
                failed_rounds = failed_rounds + 1 if found.failed else 0
                delay = self.key.poll_interval
                if failed_rounds:
                    delay = backoff_delay(failed_rounds, self.key.poll_interval, self.key.max_backoff)
                delay = max(delay, found.retry_after)
                next_round = loop.time() + delay
                self._deliver(subscribers, found, delay)
        except Exception as exc:  # a bug here must not leave triggers waiting until their deadline
            log.exception("Shared invoice status poller %s failed", self.key)
            self._end_all(f"The shared invoice status poller failed: {type(exc).__name__}: {exc}")
        finally:
            self.stop()

    async def _serve_newcomers(self, wait: float) -> float | None:
        """Sleep up to ``wait`` seconds; triggers that join meanwhile are read together after
        :data:`NEWCOMER_GATHER_S`, so a trigger's first check comes at once, as when it polled alone, not up to
        a whole interval later. Returns the least time to the next round (a 429's Retry-After), None when
        the poller must end."""
        if not self._newcomers:
            self._joined.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):  # not wait_for: it can swallow stop()'s cancellation (3.11)
                    await self._joined.wait()
            return 0.0
        gather = min(NEWCOMER_GATHER_S, wait)
        await asyncio.sleep(gather)
        newcomers = list(self._newcomers)
        if gather >= wait or not newcomers:
            return 0.0  # the regular round is due: it reads them
        self._newcomers.clear()
        found = await self._poll(newcomers, rotate=False)
        if found is None:
            return None
        self._deliver(newcomers, found, wait - gather)
        return found.retry_after

    def _end_all(self, message: str) -> None:
        """Tell every subscriber, also those who joined during the round, that the wait cannot go on."""
        for subscriber in list(self._subscribers):
            subscriber.deliver(PollResult(ObservedStatuses(), unusable_connection=message))

    # ------------------------------------------------------------------------------------ reading

    async def _poll(self, subscribers: list[Subscription], *, rotate: bool) -> _Round | None:
        """Read the subscribers' ids with a client opened for this read. A connection that cannot be used
        ends every subscriber (None: the poller stops)."""
        async with AsyncExitStack() as stack:
            client = await open_client(stack, self._open_client, self.key.conn_id)
            if isinstance(client, str):
                self._end_all(client)
                return None
            return await self._read(client, subscribers, rotate=rotate)

    def _wanted_ids(self, subscribers: list[Subscription], *, rotate: bool) -> list[str]:
        """The union of the subscribers' ids in subscription order; a regular round starts where the last
        one was cut short, so no batch is starved by a 429 or a connection error that keeps coming back."""
        ids = list(dict.fromkeys(i for subscriber in subscribers for i in subscriber.invoice_ids))
        if rotate:
            if self._resume_from in ids:
                start = ids.index(self._resume_from)
                ids = ids[start:] + ids[:start]
            self._resume_from = None
        return ids

    async def _read(
        self, client: AsyncEnlivyClient, subscribers: list[Subscription], *, rotate: bool
    ) -> _Round:
        found = _Round()
        owners: dict[str, list[Subscription]] = {}
        for subscriber in subscribers:
            for invoice_id in subscriber.invoice_ids:
                owners.setdefault(invoice_id, []).append(subscriber)
        stopped_by: EnlivyError | None = None
        for batch in batched(self._wanted_ids(subscribers, rotate=rotate)):
            batch_owners = list(dict.fromkeys(s for invoice_id in batch for s in owners[invoice_id]))
            if stopped_by is not None:
                found.fail(batch_owners, stopped_by)
                continue
            try:
                found.observed.update(await afetch_statuses(client, batch))
                found.read_any = True
            except EnlivyError as exc:
                log.warning("Invoice status batch of %d id(s) failed: %s", len(batch), exc)
                if is_transient(exc) and _ends_round(exc):
                    stopped_by = exc
                    if rotate:
                        self._resume_from = batch[0]
                    found.fail(batch_owners, exc)
                elif not is_transient(exc) and _concerns_ids(exc) and len(batch_owners) > 1:
                    await self._read_apart(client, batch, batch_owners, found)
                else:
                    found.fail(batch_owners, exc)
        return found

    async def _read_apart(
        self, client: AsyncEnlivyClient, batch: list[str], batch_owners: list[Subscription], found: _Round
    ) -> None:
        """Read a refused batch again, one subscriber's ids at a time: the error lands where it belongs."""
        in_batch = set(batch)
        for subscriber in batch_owners:
            own = [invoice_id for invoice_id in subscriber.invoice_ids if invoice_id in in_batch]
            try:
                found.observed.update(await afetch_statuses(client, own))
                found.read_any = True
            except EnlivyError as exc:
                found.fail([subscriber], exc)

    def _deliver(self, subscribers: list[Subscription], found: _Round, next_poll_in: float) -> None:
        for subscriber in subscribers:  # those who left during the read are closed: deliver skips them
            subscriber.deliver(
                PollResult(found.observed, found.error_for(subscriber), next_poll_in=next_poll_in)
            )
        log.debug(
            "Read the invoices of %d trigger(s) for %s; next round in %.1f s",
            len(subscribers),
            self.key,
            next_poll_in,
        )


# ------------------------------------------------------------------------------------------------ registry

_lock = threading.Lock()  # several loops (threads) may subscribe at once; each loop's pollers are its own
_pollers: dict[asyncio.AbstractEventLoop, dict[PollerKey, StatusPoller]] = {}


def subscribe(key: PollerKey, invoice_ids: Sequence[str], open_client: ClientOpener) -> Subscription:
    """Join the running loop's poller for ``key`` (created on first use). Must be called in that loop."""
    loop = asyncio.get_running_loop()
    with _lock:
        # A loop closed while a poller was still running (never cancelled) leaves its entry: drop it here.
        for closed in [other for other in _pollers if other.is_closed()]:
            del _pollers[closed]
        pollers = _pollers.setdefault(loop, {})
        poller = pollers.get(key)
        if poller is None or poller.stopped:
            poller = pollers[key] = StatusPoller(key, open_client, _forget)
    return poller.subscribe(invoice_ids)


def _forget(poller: StatusPoller) -> None:
    with _lock:
        for loop, pollers in list(_pollers.items()):
            if pollers.get(poller.key) is poller:
                del pollers[poller.key]
            if not pollers:
                del _pollers[loop]


def active_pollers(loop: asyncio.AbstractEventLoop | None = None) -> dict[PollerKey, StatusPoller]:
    """The pollers running in ``loop`` (default: the running loop); for diagnostics and tests."""
    loop = loop or asyncio.get_running_loop()
    with _lock:
        return dict(_pollers.get(loop, {}))


def loops_with_pollers() -> int:
    """How many event loops hold a poller (0 once every trigger everywhere has finished)."""
    with _lock:
        return len(_pollers)
