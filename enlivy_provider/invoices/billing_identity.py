"""What one billing is, and how Enlivy is asked about it again.

A *billing* is one thing billed to one customer for one period: (organization, customer, billing period,
billing key). The billing key says *what* is billed ("platform-fee", "consulting-hours"); by default it is
``<dag_id>.<task_id>``, so two DAGs billing one customer for the same month are two billings, and every run,
retry, backfill or mapped copy of one task is the same billing.

Two things follow from the identity, both defined here and nowhere else:

* **The Idempotency-Key** of the create is derived from the billing, not from the run, so runs racing to bill
  the same thing send the same key and the server keeps one invoice. Once the billing's invoices were all
  cancelled or deleted, the key moves to a new *generation* (the dead invoices' ids are part of it), so the
  billing can be invoiced again, and racing runs still agree on the key.
* **The marker on the invoice**: the billing key travels in the invoice field :data:`BILLING_KEY_FIELD`
  (``peppol_project_reference``, a free-text reference Enlivy stores and returns on every invoice), so the
  existence check can tell this billing's invoice from another billing's invoice of the same customer and
  period. It is set in the create body itself: there is no moment when an invoice exists without it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from enlivy_provider.invoices.billing_period import BillingPeriod
from enlivy_provider.invoices.errors import ValidationIssue, join_path

# A free-text reference of the invoice model (the SDK's Invoice lists it; the API stores and returns it) that
# billing integrations rarely need for anything else; it is printed as the "project reference" of e-invoices.
BILLING_KEY_FIELD = "peppol_project_reference"
BILLING_KEY_MAX_LENGTH = 255  # the field's length limit in the invoice schema
KEY_PREFIX = "airflow-billing-"
_VERSION = "enlivy-provider/billing/v1"


def default_billing_key(dag_id: str, task_id: str) -> str:
    """What a task bills when the DAG author does not say: stable across runs, distinct across tasks."""
    return f"{dag_id}.{task_id}"


def check_billing_key(value: object, path: str = "billing_key") -> tuple[str | None, list[ValidationIssue]]:
    """A non-empty string of at most :data:`BILLING_KEY_MAX_LENGTH` characters (``None`` = the default)."""
    if value is None:
        return None, []
    if not isinstance(value, str) or not value.strip():
        return None, [ValidationIssue(path, f"must be a non-empty string (got {value!r})")]
    text = value.strip()
    if len(text) > BILLING_KEY_MAX_LENGTH:
        return None, [
            ValidationIssue(path, f"must be at most {BILLING_KEY_MAX_LENGTH} characters (got {len(text)})")
        ]
    return text, []


def check_marker_field(
    fields: Mapping[str, Any], billing_key: str, path: str = "invoice"
) -> list[ValidationIssue]:
    """The invoice's own fields must not put something else where the billing key is carried."""
    value = fields.get(BILLING_KEY_FIELD)
    if value is None or value == billing_key:
        return []
    return [
        ValidationIssue(
            join_path(path, BILLING_KEY_FIELD),
            f"carries the billing key ({billing_key!r}) on invoices with a billing period; "
            "set billing_key instead of this field",
        )
    ]


@dataclass(frozen=True)
class Billing:
    organization_id: str
    customer_id: str
    period: BillingPeriod
    billing_key: str
    # A bulk spec's explicit ``key``: two specs billing one customer and period (if_exists="create") are two
    # billings of the same billing key. Empty for everything else.
    item: str = ""

    def idempotency_key(self, superseded: Iterable[str] = ()) -> str:
        """The create's key: the same for every run of this billing; a new generation per set of dead invoices."""
        return generation_key(self.base_key(), superseded)

    def base_key(self) -> str:
        return _hashed(
            KEY_PREFIX,
            [
                "invoice.create",
                self.organization_id,
                self.customer_id,
                self.period.start.isoformat(),
                self.period.end.isoformat(),
                self.billing_key,
                self.item,
            ],
        )

    def marks(self, invoice: Mapping[str, Any]) -> bool:
        """Whether the invoice carries this billing's key, or none at all.

        An invoice of the same customer and period without any billing key was made by hand in Enlivy or by a
        version of this provider without billing keys; it is taken as this billing's invoice, because billing
        the customer a second time is the worse mistake (the log says so when it happens).
        """
        carried = invoice.get(BILLING_KEY_FIELD)
        return not carried or carried == self.billing_key

    def describe(self) -> str:
        return (
            f"billing {self.billing_key!r} of customer {self.customer_id} for "
            f"{self.period.start} .. {self.period.end}"
        )


def generation_key(base: str, superseded: Iterable[str] = ()) -> str:
    """``base`` itself for the first invoice of a billing; once invoices written under it are dead (cancelled or
    deleted), a key derived from ``base`` and their ids, so every run that sees the same dead invoices agrees."""
    dead = sorted(set(superseded))
    if not dead:
        return base
    return _hashed(KEY_PREFIX, ["next-generation", base, *dead])


def action_key(prefix: str, action: str, *parts: str) -> str:
    """The Idempotency-Key of a write identified by what it acts on (not by the run that sends it), e.g.
    ``action_key("airflow-refund-", "invoice.refund", organization_id, invoice_id, reason)``: every run,
    retry and racing copy of the same action sends the same key, so the server performs it once."""
    return _hashed(prefix, [action, *parts])


ACTION_KEY_PREFIX = "airflow-action-"


def invoice_action_key(organization_id: str, invoice_id: str, action: str, step: str) -> str:
    """The Idempotency-Key of one action on one invoice: an e-mail for one purpose (``"first_send"``,
    ``"reminder:7d"``), a charge attempt (``"attempt:2"``)."""
    return action_key(ACTION_KEY_PREFIX, "invoice.action", organization_id, invoice_id, action, step)


def _hashed(prefix: str, parts: list[str]) -> str:
    material = json.dumps([_VERSION, *parts], separators=(",", ":"), ensure_ascii=True)
    return prefix + hashlib.sha256(material.encode("utf-8")).hexdigest()[:40]
