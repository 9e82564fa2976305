"""Where the public API page and the SDK disagree (docs/enlivy-api-notes.md §20), the client reads both shapes.

The emulator keeps one documented choice per point (docs/emulator.md "Fidelity"); these pin that the client
does not depend on it: the create envelope, the amount format, and the discount reading (the client reports
the server's totals and never recomputes them).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from enlivy_provider.client import core
from enlivy_provider.invoices.writer import invoice_summary

# Public page: 201 with the invoice unwrapped, amounts as numbers, relations wrapped.
PUBLIC_CREATE = b"""{"id": "org_inv_1", "status": "pending", "currency": "EUR", "sub_total": 100.00,
  "discount": 10.00, "tax_total": 17.10, "total": 107.10, "line_items": {"data": [{"discount": 10.00}]}}"""
# SDK mocks: {"data": ...}, amounts as decimal strings with six places, relations bare. The totals are
# whatever the server computed (discount as an amount or a percentage): the summary copies them.
SDK_CREATE = b"""{"data": {"id": "org_inv_1", "object": "invoice", "status": "pending", "currency": "EUR",
  "sub_total": "100.000000", "discount": "10.000000", "tax_total": "17.100000", "total": "107.100000",
  "line_items": [{"discount": "10.000000"}]}}"""


@pytest.mark.parametrize("body", [PUBLIC_CREATE, SDK_CREATE], ids=["public-page", "sdk"])
def test_create_answer_of_either_shape_gives_the_same_summary(body: bytes) -> None:
    response = core.ApiResponse(201, {}, body, "POST", "/organizations/org_x/invoices")
    answer = core.WriteAnswer.from_response(response)
    assert answer.record["id"] == "org_inv_1"
    assert Decimal(str(answer.record["line_items"][0]["discount"])) == Decimal(10)
    summary = invoice_summary(answer.record, outcome="created", idempotency_key="k", url=None)
    assert summary["totals"] == {
        "sub_total": "100.00",
        "discount": "10.00",
        "tax_total": "17.10",
        "total": "107.10",
    }
