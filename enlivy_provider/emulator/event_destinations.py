"""Event destinations (webhook targets), their subscriptions and delivery records: shapes and validation.

Sources, the official PHP SDK (enlivy/enlivy-php), all read at commit ``1dd385f``:

* ``src/Service/Organization/EventDestinationService.php`` — the routes (line 21 ``event-destinations``;
  ``/{id}`` lines 45-75, ``/subscriptions`` 82-87, ``/deliveries`` 97-102, ``/deliveries/{id}`` 104-109),
  includes ``organization``, ``deleted_by_user``, ``event_subscriptions``, ``event_deliveries`` (24-29),
  global filters only on the destination list (31), and the delivery filters
  ``organization_event_destination_id``, ``event``, ``status``, ``created_at`` / ``updated_at`` pairs (92-93);
* ``src/Organization/EventDestination.php`` lines 12-25, ``EventSubscription.php`` 12-17,
  ``EventDelivery.php`` 12-24 — the fields;
* ``src/Enums/EventDelivery/TriggerEvent.php`` 13-89, ``DeliveryStatus.php`` 13-17, ``DestinationType.php``
  13-14 — the values;
* ``docs/organization/event-destinations.md`` — create fields (``type``, ``destination_url`` "HTTPS URL —
  required for webhook destinations", ``config``, ``name``, ``is_active`` default true, ``events`` as
  ``[{event, includes}]``), ``signing_secret`` "returned on creation", PUT ``events`` replaces the
  subscription set, ``is_active: false`` disables.

What the emulator cannot honour it refuses with 422 instead of accepting silently: Slack destinations (it
posts to no Slack), events of records it does not model (only the ``invoice.*`` events are ever emitted),
and ``includes`` that are not invoice includes. Plain ``http://`` is accepted for loopback hosts only, so a
test can receive deliveries without TLS (an emulator choice; the SDK asks for HTTPS).
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import Any
from urllib.parse import urlsplit

from enlivy_provider.emulator.common import new_id, now_iso, validation_error
from enlivy_provider.emulator.listing import INCLUDES
from enlivy_provider.emulator.record_lists import ListSpec, live_record, register
from enlivy_provider.emulator.store import Store

# TriggerEvent.php lines 13-89, every case in order; the emulator emits the invoice ones (lines 21-25).
TRIGGER_EVENTS = (
    "bank_account.created", "bank_account.updated", "bank_account.deleted", "bank_account.restored",
    "bank_transaction.created", "bank_transaction.updated", "bank_transaction.deleted",
    "bank_transaction.restored",
    "invoice.created", "invoice.updated", "invoice.deleted", "invoice.restored", "invoice.paid",
    "payslip.created", "payslip.updated", "payslip.deleted", "payslip.restored",
    "receipt.created", "receipt.updated", "receipt.deleted", "receipt.restored",
    "user.created", "user.updated", "user.deleted", "user.restored",
    "network_exchange.created", "network_exchange.updated",
    "contract.created", "contract.updated", "contract.deleted", "contract.restored",
    "billing_schedule.created", "billing_schedule.updated", "billing_schedule.deleted",
    "billing_schedule.restored",
    "billing_scheduled_payment.created", "billing_scheduled_payment.updated",
    "playbook.created", "playbook.updated", "playbook.deleted", "playbook.restored",
    "project.created", "project.updated", "project.deleted", "project.restored",
    "project.member.created", "project.member.updated", "project.member.deleted",
    "prospect.created", "prospect.updated", "prospect.deleted", "prospect.restored",
    "prospect_activity.created", "prospect_activity.updated", "prospect_activity.deleted",
    "prospect_activity.restored",
    "billing_package.created", "billing_package.updated", "billing_package.deleted",
    "billing_package.restored",
    "proposal.created", "proposal.updated", "proposal.deleted", "proposal.restored", "proposal.sent",
    "proposal.accepted", "proposal.rejected", "proposal.expired", "proposal.viewed",
    "product.created", "product.updated", "product.deleted",
    "contract_signature.created", "contract_signature.updated", "contract_signature.deleted",
    "contract_signature.restored", "contract.all_parties_signed",
)  # fmt: skip
INVOICE_EVENTS = ("invoice.created", "invoice.updated", "invoice.deleted", "invoice.restored", "invoice.paid")
DESTINATION_TYPES = ("webhook", "slack")  # DestinationType.php
DELIVERY_STATUSES = ("pending", "success", "failed", "dropped", "anomaly")  # DeliveryStatus.php
MAX_URL = 2048
MAX_NAME = 255
_LOOPBACK_NAMES = frozenset({"localhost"})

DESTINATIONS = register(
    ListSpec(
        kind="event_destination",
        includes=frozenset({"organization", "deleted_by_user", "event_subscriptions", "event_deliveries"}),
    )
)
SUBSCRIPTIONS = register(ListSpec(kind="event_subscription", includes=frozenset()))
DELIVERIES = register(
    ListSpec(
        kind="event_delivery",
        includes=frozenset(),
        equals={"organization_event_destination_id": "organization_event_destination_id", "event": "event"},
        enums={"status": ("status", dict.fromkeys(DELIVERY_STATUSES))},
        date_pairs=("created_at", "updated_at"),
    )
)


def _loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(value: Any, errors: dict[str, list[str]]) -> None:
    if not isinstance(value, str) or not value.strip():
        errors["destination_url"] = ["The destination url field is required for webhook destinations."]
        return
    if len(value) > MAX_URL:
        errors["destination_url"] = [f"The destination url may not be greater than {MAX_URL} characters."]
        return
    parts = urlsplit(value)
    host = parts.hostname or ""
    if not host or parts.scheme not in ("https", "http") or (parts.scheme == "http" and not _loopback(host)):
        errors["destination_url"] = [
            "The destination url must be an HTTPS URL (the emulator also takes http:// to a loopback host)."
        ]


def _check_events(value: Any, errors: dict[str, list[str]]) -> list[dict[str, Any]]:
    """``[{event, includes}]`` → the subscriptions to store; problems are collected per ``events.N…`` path."""
    if not isinstance(value, list):
        errors["events"] = ["The events must be a list of {event, includes} objects."]
        return []
    subscriptions: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, item in enumerate(value):
        path = f"events.{index}"
        if not isinstance(item, dict):
            errors[path] = ["Each subscription must be an object with `event` and `includes`."]
            continue
        event, includes = item.get("event"), item.get("includes")
        if not isinstance(event, str) or event not in TRIGGER_EVENTS:
            errors[f"{path}.event"] = ["The selected event is invalid."]
        elif event not in INVOICE_EVENTS:
            errors[f"{path}.event"] = [
                f"The emulator emits only {', '.join(INVOICE_EVENTS)}; it cannot deliver {event}."
            ]
        elif event in seen:
            errors[f"{path}.event"] = [f"The event {event} is listed twice."]
        seen.add(str(event))
        if includes is not None:
            unknown = (
                sorted(set(includes) - INCLUDES["invoice"])
                if isinstance(includes, list) and all(isinstance(n, str) for n in includes)
                else ["(not a list of names)"]
            )
            if unknown:
                errors[f"{path}.includes"] = [f"Unknown invoice include(s): {', '.join(unknown)}."]
        subscriptions.append({"event": event, "includes": list(includes) if includes else None})
    return subscriptions


def _check_fields(body: dict[str, Any], errors: dict[str, list[str]], *, creating: bool) -> None:
    if creating or "type" in body:
        kind = body.get("type")
        if kind not in DESTINATION_TYPES:
            errors["type"] = ["The selected type is invalid (webhook or slack)."]
        elif kind == "slack":
            errors["type"] = ["The emulator posts to no Slack workspace: only webhook destinations."]
    if creating or "destination_url" in body:
        _check_url(body.get("destination_url"), errors)
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME):
        errors["name"] = [f"The name must be a string of at most {MAX_NAME} characters."]
    if body.get("config") is not None and not isinstance(body.get("config"), dict):
        errors["config"] = ["The config must be an object."]
    if "is_active" in body and not isinstance(body["is_active"], bool):
        errors["is_active"] = ["The is active field must be true or false."]


def create_destination(store: Store, organization_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Validate and store a destination with its subscriptions; returns it with its ``signing_secret``
    (kept privately as ``_signing_secret``: only the create answer shows it)."""
    errors: dict[str, list[str]] = {}
    _check_fields(body, errors, creating=True)
    subscriptions = _check_events(body.get("events", []), errors)
    if errors:
        raise validation_error(errors)
    now = now_iso()
    destination = {
        "id": new_id("org_evt_dst"),
        "object": "event_destination",
        "organization_id": organization_id,
        "destination_url": body["destination_url"],
        "signing_secret": None,
        "is_active": body.get("is_active", True),
        "type": body["type"],
        "name": body.get("name"),
        "organization_api_credential_id": None,
        "config": body.get("config"),
        "created_at": now,
        "updated_at": now,
        "deleted_at": None,
        "deleted_by_user_id": None,
        # The SDK's test fixture secrets look like whsec_…; 32 random bytes, URL-safe.
        "_signing_secret": "whsec_" + secrets.token_urlsafe(32),
    }
    store.put_record("event_destination", destination)
    _replace_subscriptions(store, destination, subscriptions)
    return destination


def update_destination(
    store: Store, organization_id: str, destination_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    """PUT: the fields sent change; ``events`` replaces the whole subscription set."""
    destination = live_destination(store, organization_id, destination_id)
    errors: dict[str, list[str]] = {}
    _check_fields(body, errors, creating=False)
    subscriptions = _check_events(body["events"], errors) if "events" in body else None
    if errors:
        raise validation_error(errors)
    for name in ("type", "destination_url", "name", "config", "is_active"):
        if name in body:
            destination[name] = body[name]
    destination["updated_at"] = now_iso()
    store.put_record("event_destination", destination)
    if subscriptions is not None:
        _replace_subscriptions(store, destination, subscriptions)
    return destination


def delete_destination(store: Store, organization_id: str, destination_id: str) -> dict[str, Any]:
    """Soft delete: the destination and its subscriptions leave the lists; no more deliveries."""
    destination = live_destination(store, organization_id, destination_id)
    destination["deleted_at"] = destination["updated_at"] = now_iso()
    store.put_record("event_destination", destination)
    _replace_subscriptions(store, destination, [])
    return destination


def live_destination(store: Store, organization_id: str, destination_id: str) -> dict[str, Any]:
    return live_record(store, "event_destination", destination_id, organization_id, "event destination")


def _replace_subscriptions(
    store: Store, destination: dict[str, Any], subscriptions: list[dict[str, Any]]
) -> None:
    now = now_iso()
    for old in subscriptions_of(store, destination):
        old["deleted_at"] = now
        store.put_record("event_subscription", old)
    store.put_records(
        "event_subscription",
        [
            {
                "id": new_id("org_evt_sub"),
                "object": "event_subscription",
                "organization_id": destination["organization_id"],
                "organization_event_destination_id": destination["id"],
                "event": item["event"],
                "includes": item["includes"],
                "created_at": now,
                "updated_at": now,
                "deleted_at": None,
            }
            for item in subscriptions
        ],
    )


def subscriptions_of(store: Store, destination: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s
        for s in store.list_records("event_subscription", destination["organization_id"])
        if s["organization_event_destination_id"] == destination["id"] and not s.get("deleted_at")
    ]


def public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def render_destination(
    store: Store, destination: dict[str, Any], includes: list[str], *, with_secret: bool = False
) -> dict[str, Any]:
    out = public(destination)
    if with_secret:
        out["signing_secret"] = destination["_signing_secret"]
    for name in includes:
        if name == "organization":
            out[name] = {"data": store.get_record("organization", destination["organization_id"])}
        elif name == "event_subscriptions":
            out[name] = {"data": [public(s) for s in subscriptions_of(store, destination)]}
        elif name == "event_deliveries":
            deliveries = store.list_records("event_delivery", destination["organization_id"])
            out[name] = {
                "data": [
                    public(d)
                    for d in deliveries
                    if d["organization_event_destination_id"] == destination["id"]
                ]
            }
        else:
            out[name] = {"data": None}  # deleted_by_user: the emulator's API writes have no acting user
    return out


def render_public(store: Store, record: dict[str, Any], includes: list[str]) -> dict[str, Any]:
    """Subscriptions and deliveries: their public fields (they take no includes)."""
    return public(record)
