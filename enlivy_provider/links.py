"""EnlivyInvoiceLink: the "Enlivy invoice" button on an invoice task, opening the invoice in the Enlivy app.

It reads the ``url`` of the summary the operator returned (its ``return_value`` XCom). The URL comes from the
connection extra ``app_url``; without one there is no URL and the link stays empty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperatorLink

from enlivy_provider.invoices.writer import OUTCOMES

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import BaseOperator, TaskInstanceKey


def url_from_result(result: Any) -> str:
    """The invoice URL in an operator result: a summary's ``url``, or a bulk result's single invoice."""
    if not isinstance(result, dict):
        return ""
    url = result.get("url")
    if isinstance(url, str):
        return url
    summaries = [summary for outcome in OUTCOMES for summary in result.get(outcome) or []]
    if len(summaries) == 1 and isinstance(summaries[0], dict):
        return str(summaries[0].get("url") or "")
    return ""


class EnlivyInvoiceLink(BaseOperatorLink):
    name = "Enlivy invoice"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.providers.common.compat.sdk import XCom

        try:
            result = XCom.get_value(ti_key=ti_key, key="return_value")
        except Exception:  # no XCom yet (task failed or still running): no link
            return ""
        return url_from_result(result)
