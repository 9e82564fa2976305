"""Validation and record building for creating organization users (customers) and products."""

from __future__ import annotations

from typing import Any

from enlivy_provider.emulator import enums
from enlivy_provider.emulator.common import new_id, now_iso, validation_error
from enlivy_provider.emulator.jsonio import money, to_decimal
from enlivy_provider.emulator.limits import MAX_AMOUNT
from enlivy_provider.emulator.rules import EMAIL_RE
from enlivy_provider.emulator.store import Store

USER_TEXT_FIELDS = (
    "name", "first_name", "last_name", "phone_number", "phone_number_country_code", "address_line_1",
    "address_line_2", "address_city", "address_county", "address_state", "address_zip_code", "address_iso_3166",
    "timezone", "birthdate", "information", "organization_type",
)  # fmt: skip
PRODUCT_OPTIONAL_FIELDS = (
    "alias", "name_lang_map", "description_lang_map", "unit_lang_map", "note_lang_map", "description",
    "invoice_schema_map", "ean_number", "upc_number",
)  # fmt: skip


def build_user(store: Store, organization_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A new organization user (docs/enlivy-api-notes.md §12.1) or a 422 with every problem found."""
    errors: dict[str, list[str]] = {}
    role_id = payload.get("organization_user_role_id")
    role = store.get_record("user_role", role_id, organization_id) if isinstance(role_id, str) else None
    if role_id is None:
        errors["organization_user_role_id"] = ["The organization user role id field is required."]
    elif role is None:
        errors["organization_user_role_id"] = ["The selected organization user role id is invalid."]
    country = payload.get("country_code")
    if country is None:
        errors["country_code"] = ["The country code field is required."]
    elif not (isinstance(country, str) and len(country) == 2 and country.isalpha() and country.isupper()):
        errors["country_code"] = ["The country code must be an ISO 3166-1 alpha-2 code."]
    business = bool(role and role.get("is_business_entity"))
    if business and not payload.get("name"):
        errors["name"] = ["The name field is required for a business."]
    if not business and not payload.get("name"):
        for field in ("first_name", "last_name"):
            if not payload.get(field):
                errors[field] = [f"The {field.replace('_', ' ')} field is required."]
    email = payload.get("email")
    if email is not None:
        if not (isinstance(email, str) and EMAIL_RE.match(email)):
            errors["email"] = ["The email must be a valid email address."]
        elif any(
            (u.get("email") or "").lower() == email.lower() and not u.get("deleted_at")
            for u in store.list_records("organization_user", organization_id)
        ):
            errors["email"] = ["The email has already been taken."]
    organization = store.get_record("organization", organization_id) or {}
    locale = payload.get("locale", "en")
    if locale not in organization.get("locales", ["en"]):
        errors["locale"] = ["The selected locale is not one of the organization's locales."]
    for field in USER_TEXT_FIELDS:
        if payload.get(field) is not None and not isinstance(payload[field], str):
            errors.setdefault(field, []).append(f"The {field.replace('_', ' ')} must be a string.")
    if errors:
        raise validation_error(errors)
    now = now_iso()
    name = payload.get("name") or f"{payload.get('first_name', '')} {payload.get('last_name', '')}".strip()
    record: dict[str, Any] = {
        "id": new_id("org_user"),
        "object": "organization_user",
        "organization_id": organization_id,
        "organization_user_role_id": role_id,
        "user_id": None,
        **{field: payload.get(field) for field in USER_TEXT_FIELDS},
        "name": name,
        "email": email,
        "country_code": country,
        "locale": locale,
        "is_business_entity": business,
        "tag_ids": [],
        "created_at": now,
        "updated_at": now,
        "deleted_at": None,
    }
    return record


def build_product(store: Store, organization_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A new product (docs/enlivy-api-notes.md §12.2) or a 422."""
    errors: dict[str, list[str]] = {}
    product_type = payload.get("type")
    if product_type is None:
        errors["type"] = ["The type field is required."]
    elif product_type not in enums.PRODUCT_TYPES:
        errors["type"] = ["The selected type is invalid."]
    price_map = payload.get("price_map")
    prices: dict[str, Any] = {}
    if price_map is None:
        errors["price_map"] = ["The price map field is required."]
    elif not isinstance(price_map, dict) or not price_map:
        errors["price_map"] = ["The price map must map currencies to prices."]
    else:
        for currency, raw in price_map.items():
            amount = to_decimal(raw)
            if currency not in enums.CURRENCIES:
                errors.setdefault(f"price_map.{currency}", []).append("Unknown ISO 4217 currency.")
            elif amount is None or amount < 0 or amount > MAX_AMOUNT:
                errors.setdefault(f"price_map.{currency}", []).append(
                    f"The price must be a number between 0 and {MAX_AMOUNT}."
                )
            else:
                prices[currency] = money(amount)
    primary = payload.get("primary_currency")
    if isinstance(price_map, dict) and len(price_map) > 1 and primary is None:
        errors["primary_currency"] = [
            "The primary currency field is required when price map has several currencies."
        ]
    elif primary is not None and (not isinstance(price_map, dict) or primary not in price_map):
        errors["primary_currency"] = ["The primary currency must be one of the price map's currencies."]
    tax_class_id = payload.get("organization_tax_class_id")
    if tax_class_id is not None and (
        not isinstance(tax_class_id, str)
        or store.get_record("tax_class", tax_class_id, organization_id) is None
    ):
        errors["organization_tax_class_id"] = ["The selected organization tax class id is invalid."]
    is_sold = payload.get("is_sold", True)
    if not isinstance(is_sold, bool):
        errors["is_sold"] = ["The is sold field must be true or false."]
    if errors:
        raise validation_error(errors)
    now = now_iso()
    return {
        "id": new_id("org_prod"),
        "object": "product",
        "organization_id": organization_id,
        "type": product_type,
        **{field: payload.get(field) for field in PRODUCT_OPTIONAL_FIELDS},
        "price_map": prices,
        "primary_currency": primary or next(iter(prices)),
        "organization_tax_class_id": tax_class_id,
        "is_sold": is_sold,
        "tag_ids": [],
        "created_at": now,
        "updated_at": now,
        "deleted_at": None,
    }
