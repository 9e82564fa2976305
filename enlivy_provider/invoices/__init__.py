"""The billing domain: line items, validation, totals and idempotency keys. No HTTP here."""
