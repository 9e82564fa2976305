"""The shared status rule: input normalisation, batching, classification, messages (no network)."""

from __future__ import annotations

from typing import Any

import pytest

from enlivy_provider.client import (
    EnlivyAuthenticationError,
    EnlivyConnectionError,
    EnlivyForbiddenError,
    EnlivyRateLimitError,
    EnlivyServerError,
    EnlivyValidationError,
    Page,
)
from enlivy_provider.invoice_status import (
    MAX_IDS_PER_CALL,
    MESSAGE_LIST_LIMIT,
    ObservedStatuses,
    StatusCheck,
    batch_params,
    batched,
    classify,
    is_transient,
    normalize_invoice_ids,
    normalize_statuses,
    validate_status_sets,
)

# ---------------------------------------------------------------------------------------- normalize_invoice_ids


def test_single_id_becomes_a_list() -> None:
    assert normalize_invoice_ids("org_inv_1") == ["org_inv_1"]


def test_list_of_ids_keeps_order_and_drops_duplicates() -> None:
    assert normalize_invoice_ids(["org_inv_2", "org_inv_1", "org_inv_2"]) == ["org_inv_2", "org_inv_1"]


def test_bulk_operator_output_uses_its_invoice_ids() -> None:
    bulk = {
        "created": [{"id": "x"}],
        "existing": [],
        "replayed": [],
        "failed": [],
        "invoice_ids": ["org_inv_1", "org_inv_2"],
    }
    assert normalize_invoice_ids(bulk) == ["org_inv_1", "org_inv_2"]


def test_list_of_summaries_uses_their_ids() -> None:
    summaries = [{"id": "org_inv_1", "status": "pending"}, {"id": "org_inv_2", "status": "draft"}]
    assert normalize_invoice_ids(summaries) == ["org_inv_1", "org_inv_2"]


def test_one_summary_uses_its_id() -> None:
    assert normalize_invoice_ids({"id": "org_inv_1", "outcome": "created"}) == ["org_inv_1"]


def test_ids_are_stripped() -> None:
    assert normalize_invoice_ids(("  org_inv_1 ",)) == ["org_inv_1"]


def test_empty_list_gives_no_ids() -> None:
    assert normalize_invoice_ids([]) == []


def test_dict_without_ids_names_its_keys() -> None:
    with pytest.raises(ValueError, match=r"'invoice_ids'.*dry_run, previews"):
        normalize_invoice_ids({"dry_run": True, "previews": []})


def test_empty_id_is_refused() -> None:
    with pytest.raises(ValueError, match="empty id"):
        normalize_invoice_ids(["org_inv_1", " "])


@pytest.mark.parametrize("value", [42, None, [["org_inv_1"]], [{"id": 3}]])
def test_other_types_are_refused(value: Any) -> None:
    with pytest.raises(TypeError):
        normalize_invoice_ids(value)


# ---------------------------------------------------------------------------------------- statuses


def test_statuses_accept_a_string_or_a_list() -> None:
    assert normalize_statuses("Paid", name="t") == ("paid",)
    assert normalize_statuses(["paid", " SOLVED", "paid"], name="t") == ("paid", "solved")


def test_statuses_must_be_strings() -> None:
    with pytest.raises(ValueError, match="target_statuses"):
        normalize_statuses(["paid", 3], name="target_statuses")
    with pytest.raises(TypeError):
        normalize_statuses(7, name="target_statuses")


def test_status_sets_must_not_overlap_and_targets_must_exist() -> None:
    with pytest.raises(ValueError, match="both in target_statuses and failure_statuses: paid"):
        validate_status_sets(("paid",), ("paid", "cancelled"))
    with pytest.raises(ValueError, match="at least one"):
        validate_status_sets((), ("cancelled",))


# ---------------------------------------------------------------------------------------- batching


def test_300_ids_make_10_batches_of_30() -> None:
    ids = [f"org_inv_{n}" for n in range(300)]
    batches = batched(ids)
    assert len(batches) == 10
    assert all(len(batch) == MAX_IDS_PER_CALL for batch in batches)
    assert [i for batch in batches for i in batch] == ids


def test_31_ids_make_two_batches() -> None:
    assert [len(b) for b in batched([str(n) for n in range(31)])] == [30, 1]


def test_batch_size_is_capped_by_the_api_limit() -> None:
    with pytest.raises(ValueError):
        batched(["a"], size=31)


def test_batch_params_ask_for_live_and_deleted_invoices_on_one_page() -> None:
    params = batch_params(["a", "b"])
    assert params == {"ids": ["a", "b"], "deleted": -1, "page": 1, "per_page": 30}


def test_observed_statuses_record_only_wanted_ids_and_deleted_ones() -> None:
    observed = ObservedStatuses()
    page = Page(
        [
            {"id": "a", "status": "paid", "deleted_at": None},
            {"id": "b", "status": "PENDING", "deleted_at": "2026-01-01T00:00:00Z"},
            {"id": "zzz", "status": "paid"},
        ],
        meta={"pagination": {"current_page": 1, "total_pages": 1}},
        status_code=200,
        headers={},
    )
    assert observed.add_page(page, ["a", "b"]) is None
    assert observed.statuses == {"a": "paid", "b": "pending"}
    assert observed.deleted == {"b"}


# ---------------------------------------------------------------------------------------- classify


def _observed(statuses: dict[str, str], deleted: set[str] | None = None) -> ObservedStatuses:
    return ObservedStatuses(statuses=dict(statuses), deleted=set(deleted or ()))


def test_all_in_target_is_success() -> None:
    check = classify(["a", "b"], _observed({"a": "paid", "b": "solved"}), ("paid", "solved"), ("cancelled",))
    assert check.outcome == "success"
    assert check.statuses == {"a": "paid", "b": "solved"}
    assert check.failures == {} and check.pending == {}


def test_one_not_in_target_is_pending_with_its_status() -> None:
    check = classify(["a", "b"], _observed({"a": "paid", "b": "sent_email"}), ("paid",), ("cancelled",))
    assert check.outcome == "pending"
    assert check.pending == {"b": "sent_email"}


def test_unknown_status_values_are_pending_not_errors() -> None:
    check = classify(["a"], _observed({"a": "brand_new_status"}), ("paid",), ("cancelled",))
    assert check.outcome == "pending"


def test_failure_status_beats_pending_ones() -> None:
    check = classify(["a", "b"], _observed({"a": "cancelled", "b": "pending"}), ("paid",), ("cancelled",))
    assert check.outcome == "failure"
    assert check.failures == {"a": "status cancelled"}


def test_missing_invoice_is_a_failure() -> None:
    check = classify(["a", "b"], _observed({"a": "paid"}), ("paid",), ("cancelled",))
    assert check.outcome == "failure"
    assert check.failures == {"b": "not found"}
    assert check.statuses == {"a": "paid", "b": None}


def test_deleted_invoice_is_a_failure_even_when_paid() -> None:
    check = classify(["a"], _observed({"a": "paid"}, {"a"}), ("paid",), ("cancelled",))
    assert check.outcome == "failure"
    assert check.failures == {"a": "deleted (status paid)"}


def test_statuses_keep_the_order_of_the_ids() -> None:
    check = classify(["c", "a", "b"], _observed({"a": "paid", "b": "paid", "c": "paid"}), ("paid",), ())
    assert list(check.statuses) == ["c", "a", "b"]


def test_messages_name_the_invoices() -> None:
    check = classify(
        ["a", "b", "c"], _observed({"a": "cancelled", "b": "pending"}), ("paid",), ("cancelled",)
    )
    assert (
        check.failure_message()
        == "2 of 3 invoice(s) will not become paid: a (status cancelled), c (not found)"
    )
    pending = classify(["a", "b"], _observed({"a": "paid", "b": "overdue"}), ("paid",), ("cancelled",))
    assert (
        pending.timeout_message()
        == "Timed out; 1 of 2 invoice(s) still pending (waiting for paid): b (overdue)"
    )


def test_progress_message_counts_statuses_instead_of_listing_ids() -> None:
    statuses = {"a": "pending", "b": "pending", "c": "sent_email", "d": "paid"}
    check = classify(list(statuses), _observed(statuses), ("paid",), ())
    assert check.progress_message() == "Waiting for 3 of 4 invoice(s) to be paid: 2 pending, 1 sent_email"


def test_long_lists_are_cut_in_messages() -> None:
    ids = [f"org_inv_{n}" for n in range(MESSAGE_LIST_LIMIT + 7)]
    check = classify(ids, _observed(dict.fromkeys(ids, "pending")), ("paid",), ())
    assert check.pending_message().endswith(" and 7 more")


def test_unread_check_reports_every_invoice_pending() -> None:
    check = StatusCheck.unread(["a", "b"], ("paid",))
    assert check.outcome == "pending"
    assert "a (status not read), b (status not read)" in check.timeout_message()


# ---------------------------------------------------------------------------------------- error kinds


def _api_error(cls: type, status: int, **extra: Any) -> Any:
    return cls(status=status, message="x", method="GET", path="/organizations/o/invoices", **extra)


def test_connection_errors_429_and_503_are_transient() -> None:
    assert is_transient(EnlivyConnectionError("GET", "/x", "refused"))
    assert is_transient(_api_error(EnlivyRateLimitError, 429, retry_after=1))
    assert is_transient(_api_error(EnlivyServerError, 503))


def test_auth_and_validation_errors_are_not_transient() -> None:
    for exc in (
        _api_error(EnlivyAuthenticationError, 401),
        _api_error(EnlivyForbiddenError, 403),
        _api_error(EnlivyValidationError, 422),
    ):
        assert not is_transient(exc)


def test_an_empty_page_ends_the_batch_whatever_the_meta_says() -> None:
    page = Page(
        items=[], meta={"pagination": {"current_page": 1, "total_pages": 9}}, status_code=200, headers={}
    )
    assert ObservedStatuses().add_page(page, ["a"]) is None
