"""Tags (``GET``/``POST /tags``) and tagging invoices (``PUT``/``DELETE /invoices/{id}/tag/{tagId}``).

The SDK: ``TagService`` (list, create, ...), the ``Tag`` model (``alias``, ``description``,
``rgba_color_code``), ``HasTagging::addTag/removeTag`` with the tag id in the path and no body. Emulator
choices (inference): the tag must exist in the organization (else 404), ``alias`` is required and unique
per organization, tagging twice or untagging a tag the invoice does not carry changes nothing, and both
answer ``{"data": invoice}`` with its ``tag_ids``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from enlivy_provider.emulator.common import new_id, now_iso, validation_error
from enlivy_provider.emulator.record_lists import ListSpec, live_record, register
from enlivy_provider.emulator.store import Store

if TYPE_CHECKING:
    from enlivy_provider.emulator.state import EmulatorState

TAGS = register(ListSpec(kind="tag", includes=frozenset({"organization", "deleted_by_user"})))
MAX_ALIAS = 255
DEFAULT_COLOR = "rgba(107, 114, 128, 1)"  # the sources show no default; any rgba() string is accepted


def build_tag(store: Store, organization_id: str, body: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    alias = body.get("alias")
    if not isinstance(alias, str) or not alias.strip():
        errors["alias"] = ["The alias field is required."]
    elif len(alias) > MAX_ALIAS:
        errors["alias"] = [f"The alias may not be greater than {MAX_ALIAS} characters."]
    elif any(
        (t.get("alias") or "").lower() == alias.strip().lower() and not t.get("deleted_at")
        for t in store.list_records("tag", organization_id)
    ):
        errors["alias"] = ["The alias has already been taken."]
    for name in ("description", "rgba_color_code"):
        if body.get(name) is not None and not isinstance(body.get(name), str):
            errors[name] = [f"The {name.replace('_', ' ')} must be a string."]
    if errors:
        raise validation_error(errors)
    now = now_iso()
    return {
        "id": new_id("org_tag"),
        "object": "tag",
        "organization_id": organization_id,
        "alias": str(alias).strip(),
        "description": body.get("description"),
        "rgba_color_code": body.get("rgba_color_code") or DEFAULT_COLOR,
        "created_at": now,
        "updated_at": now,
        "deleted_at": None,
        "deleted_by_user_id": None,
    }


def live_tag(store: Store, organization_id: str, tag_id: str) -> dict[str, Any]:
    return live_record(store, "tag", tag_id, organization_id, "tag")


def set_tag(
    state: EmulatorState, organization_id: str, invoice_id: str, tag_id: str, *, on: bool
) -> dict[str, Any]:
    """Add (``on``) or remove a tag; the invoice's ``tag_ids`` keep the order tags were added in."""
    invoices = state.invoices
    with invoices.lock:
        invoice = invoices.get(organization_id, invoice_id, allow_deleted=False)
        live_tag(state.store, organization_id, tag_id)
        tag_ids = list(invoice.get("tag_ids") or [])
        if on and tag_id not in tag_ids:
            tag_ids.append(tag_id)
        elif not on and tag_id in tag_ids:
            tag_ids.remove(tag_id)
        if tag_ids != (invoice.get("tag_ids") or []):
            invoice["tag_ids"] = tag_ids
            invoice["updated_at"] = now_iso()
            invoices.save(invoice)
        return invoice


def render_tag(store: Store, tag: dict[str, Any], includes: list[str]) -> dict[str, Any]:
    out = dict(tag)
    for name in includes:
        if name == "organization":
            out[name] = {"data": store.get_record("organization", tag["organization_id"])}
        else:
            out[name] = {"data": None}
    return out
