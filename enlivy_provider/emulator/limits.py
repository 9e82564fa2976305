"""The emulator's input limits: beyond them a request gets a 4xx, never a 500 (docs/emulator.md "Limits").

The real API documents none of these; the values are the emulator's own. Quantity, price and line count
match the provider's invoice schema (``enlivy_provider/invoices/schemas``); the rest bound what a schema
cannot (quantity × price, body size, nesting), so no absurd request reaches the arithmetic or SQLite
(whose integers stop at 2**63).
"""

from __future__ import annotations

from decimal import Decimal

MAX_BODY_BYTES = 2 * 1024 * 1024  # 413 above this (a 500-line invoice with long texts stays well below)
MAX_JSON_DEPTH = 32  # an invoice body nests 4-5 levels deep
MAX_LINE_ITEMS = 500  # the provider's invoice schema allows 500 lines
MAX_QUANTITY = Decimal(1_000_000_000)  # 1e9, as the provider's line item schema
MAX_AMOUNT = Decimal(1_000_000_000_000)  # 1e12: any price, discount, line or invoice amount
MAX_DECIMAL_PLACES = 6  # quantity and price (the schema's multipleOf 1e-6)
MAX_PAGE = 1_000_000_000  # page × per_page stays far inside SQLite's OFFSET range
