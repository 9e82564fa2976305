"""List pagination (docs/enlivy-api-notes.md §5): per_page (max 50), limit alias, default page size, meta."""

from __future__ import annotations

from emulator_test_api import Api

from enlivy_provider.emulator.listing import DEFAULT_PER_PAGE
from enlivy_provider.testing import EmulatorHandle


def test_120_invoices_in_pages_of_50(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    enlivy_emulator.bulk_invoices(120)
    seen: list[str] = []
    metas = []
    for page in (1, 2, 3):
        body = api.list_invoices(per_page=50, page=page).json()
        metas.append(body["meta"]["pagination"])
        seen += [invoice["id"] for invoice in body["data"]]
    assert [(m["count"], m["current_page"]) for m in metas] == [(50, 1), (50, 2), (20, 3)]
    assert {(m["total"], m["per_page"], m["total_pages"]) for m in metas} == {(120, 50, 3)}
    assert len(seen) == len(set(seen)) == 120
    assert set(seen) == {invoice["id"] for invoice in enlivy_emulator.invoices()}
    assert "next" in metas[0]["links"] and "previous" not in metas[0]["links"]
    assert "page=2" in metas[0]["links"]["next"] and "per_page=50" in metas[0]["links"]["next"]
    assert "next" not in metas[2]["links"] and "page=2" in metas[2]["links"]["previous"]


def test_page_past_the_end_is_empty_with_correct_meta(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    enlivy_emulator.bulk_invoices(3)
    body = api.list_invoices(page=5, per_page=2).json()
    assert body["data"] == []
    assert body["meta"]["pagination"] == {
        "total": 3,
        "count": 0,
        "per_page": 2,
        "current_page": 5,
        "total_pages": 2,
        "links": body["meta"]["pagination"]["links"],
    }


def test_default_page_size_and_limit_alias(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    enlivy_emulator.bulk_invoices(60)
    default = api.list_invoices().json()
    assert len(default["data"]) == DEFAULT_PER_PAGE == default["meta"]["pagination"]["per_page"]
    limited = api.list_invoices(limit=7).json()
    assert len(limited["data"]) == 7 and limited["meta"]["pagination"]["total_pages"] == 9
    assert len(api.list_invoices(limit=11, per_page=11).json()["data"]) == 11
    conflicting = api.list_invoices(limit=7, per_page=11)  # two page sizes: refused, not one ignored
    assert conflicting.status_code == 422 and "limit" in conflicting.json()["errors"]
    assert len(api.list_invoices(per_page=50).json()["data"]) == 50


def test_empty_list_has_one_page(api: Api) -> None:
    body = api.list_invoices().json()
    assert body == {
        "data": [],
        "meta": {
            "pagination": {
                "total": 0,
                "count": 0,
                "per_page": DEFAULT_PER_PAGE,
                "current_page": 1,
                "total_pages": 1,
                "links": {},
            }
        },
    }


def test_bad_paging_values_are_422(api: Api) -> None:
    for params, field in (
        ({"per_page": 51}, "per_page"),
        ({"per_page": 0}, "per_page"),
        ({"limit": 100}, "limit"),
        ({"per_page": "ten"}, "per_page"),
        ({"page": 0}, "page"),
        ({"page": "x"}, "page"),
    ):
        response = api.list_invoices(**params)
        assert response.status_code == 422, params
        body = response.json()
        assert body["message"] == "The given data was invalid."
        assert field in body["errors"], (params, body)


def test_include_meta_navigation_and_totals(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    kept = [api.create_invoice(n) for n in range(3)]
    api.create_invoice(currency="USD")
    api.delete(f"/invoices/{kept[0]['id']}")
    meta = api.list_invoices(include_meta="navigation,totals").json()["meta"]
    assert meta["navigation"] == {"active": 3, "trash": 1}
    assert meta["totals"] == {
        "EUR": {"count": 2, "sub_total": 380.0, "discount": 0.0, "tax_total": 72.2, "total": 452.2},
        "USD": {"count": 1, "sub_total": 190.0, "discount": 0.0, "tax_total": 36.1, "total": 226.1},
    }
    assert "navigation" not in api.list_invoices().json()["meta"]
    assert api.list_invoices(include_meta="everything").status_code == 422


def test_list_includes_relations_wrapped(api: Api) -> None:
    api.create_invoice()
    invoice = api.list_invoices(include="line_items").json()["data"][0]
    assert invoice["line_items"]["data"][0]["quantity"] == 2
    assert "line_items" not in api.list_invoices().json()["data"][0]
