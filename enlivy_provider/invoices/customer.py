"""Who an invoice is for: a customer id (``org_user_...``) or ``{"email": ...}`` to look up."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from enlivy_provider.invoices.errors import ValidationIssue

_ID = re.compile(r"^org_user_[A-Za-z0-9_]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class CustomerRef:
    id: str | None = None
    email: str | None = None

    def __str__(self) -> str:
        return self.id or f"email {self.email}"

    def as_json(self) -> str | dict[str, str]:
        return self.id if self.id else {"email": self.email or ""}


def parse_customer(
    value: object, *, path: str = "customer"
) -> tuple[CustomerRef | None, list[ValidationIssue]]:
    """Accept ``"org_user_..."``, ``{"id": ...}``, ``{"email": ...}`` or a bare email address."""
    if value is None or value == "" or value == {}:
        return None, [ValidationIssue(path, "is required (a customer id org_user_... or {'email': ...})")]
    if isinstance(value, CustomerRef):
        return value, []
    if isinstance(value, str):
        text = value.strip()
        if _ID.match(text):
            return CustomerRef(id=text), []
        if _EMAIL.match(text):
            return CustomerRef(email=text), []
        return None, [
            ValidationIssue(path, f"must be a customer id org_user_... or an email (got {value!r})")
        ]
    if isinstance(value, Mapping):
        unknown = sorted(set(map(str, value)) - {"id", "email"})
        if unknown or len(value) != 1:
            return None, [
                ValidationIssue(path, f"must have exactly one of 'id' or 'email' (got {dict(value)!r})")
            ]
        if "id" in value:
            raw_id = value["id"]
            if isinstance(raw_id, str) and _ID.match(raw_id.strip()):
                return CustomerRef(id=raw_id.strip()), []
            return None, [
                ValidationIssue(f"{path}.id", f"must be a customer id org_user_... (got {raw_id!r})")
            ]
        email = value["email"]
        if isinstance(email, str) and _EMAIL.match(email.strip()):
            return CustomerRef(email=email.strip()), []
        return None, [ValidationIssue(f"{path}.email", f"must be an email address (got {email!r})")]
    return None, [
        ValidationIssue(path, f"must be a customer id or {{'email': ...}} (got {type(value).__name__})")
    ]
