"""Validate normalised payloads against the JSON Schemas shipped in ``schemas/`` and name each error's path.

The schemas are read with ``parse_float=Decimal`` and instances carry Decimals, so ``multipleOf: 0.01``
is an exact "at most 2 decimal places" rule (no binary float noise on either side).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from decimal import MAX_EMAX, MIN_EMIN, Decimal, localcontext
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from enlivy_provider.invoices.decimals import decimal_places
from enlivy_provider.invoices.errors import ValidationIssue, join_path

SCHEMA_NAMES = ("line_item.schema.json", "invoice.schema.json", "invoice_update.schema.json")
_ENUM_LISTED_MAX = 12


def load_schema(name: str) -> dict[str, Any]:
    """One of :data:`SCHEMA_NAMES`, parsed with Decimal numbers."""
    text = resources.files("enlivy_provider.invoices").joinpath("schemas", name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text, parse_float=Decimal)
    return schema


def _multiple_of(
    validator: Validator, step: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """``multipleOf`` in exact decimal arithmetic at any magnitude. jsonschema's own computes ``instance % step``
    in the default 28-digit context, which raises ``decimal.InvalidOperation`` for a huge amount (``1e30``)
    instead of reporting it; the range keywords (``maximum``) report such values. A float (a caller that did not
    normalise) is compared through its shortest repr; ``float % Decimal`` would raise ``TypeError``."""
    if isinstance(instance, float) and isinstance(step, Decimal):
        if not math.isfinite(instance):
            return  # not a number at all: the normalisation reports it with its path
        instance = Decimal(repr(instance))
    if not (isinstance(instance, Decimal) and isinstance(step, Decimal)):
        yield from _DEFAULT_MULTIPLE_OF(validator, step, instance, schema)
        return
    if not instance.is_finite() or not step:
        return
    digits = instance.adjusted() - step.adjusted() + 2  # of the integer quotient
    if digits > 1000:
        return  # far beyond any maximum: reported by the range keywords
    with localcontext() as context:
        context.prec = max(context.prec, digits)
        context.Emin, context.Emax = MIN_EMIN, MAX_EMAX  # 1E-999999999 must not underflow to a 0 remainder
        if instance % step:
            yield ValidationError(f"{instance} is not a multiple of {step}")


_DEFAULT_MULTIPLE_OF = Draft202012Validator.VALIDATORS["multipleOf"]
_DecimalValidator = validators.extend(Draft202012Validator, {"multipleOf": _multiple_of})


@cache
def _validator(name: str) -> Validator:
    # Without "$schema", a referenced schema is validated by this class too (jsonschema would otherwise pick
    # the stock 2020-12 validator for it, and its multipleOf); every schema here is 2020-12.
    schemas = {n: _without_dialect(load_schema(n)) for n in SCHEMA_NAMES}
    registry: Registry[Any] = Registry().with_resources(
        (s["$id"], DRAFT202012.create_resource(s)) for s in schemas.values()
    )
    return _DecimalValidator(
        schemas[name], registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def _without_dialect(schema: dict[str, Any]) -> dict[str, Any]:
    assert schema.get("$schema") == "https://json-schema.org/draft/2020-12/schema", schema.get("$schema")
    return {key: value for key, value in schema.items() if key != "$schema"}


def schema_issues(instance: object, name: str, *, prefix: str = "") -> list[ValidationIssue]:
    """Every schema violation of ``instance`` as issues with readable paths (``line_items[2].quantity``)."""
    issues: list[ValidationIssue] = []
    for error in _validator(name).iter_errors(instance):
        issues.append(_to_issue(error, prefix))
    return issues


def _path(prefix: str, parts: Iterable[str | int]) -> str:
    path = prefix
    for part in parts:
        path = join_path(path, part)
    return path


def _to_issue(error: ValidationError, prefix: str) -> ValidationIssue:
    path = _path(prefix, error.absolute_path)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    validator = str(error.validator)
    value = error.validator_value
    instance = error.instance

    if validator == "required":
        missing = _missing_key(error)
        return ValidationIssue(join_path(path, missing), "is required")
    if validator == "additionalProperties":
        extras = (
            sorted(set(instance) - set(schema.get("properties", {}))) if isinstance(instance, dict) else []
        )
        name = extras[0] if len(extras) == 1 else ", ".join(extras)
        return ValidationIssue(join_path(path, name) if len(extras) == 1 else path, f"unknown field {name!r}")
    if validator == "dependentRequired":
        return ValidationIssue(path, error.message.replace("is a dependency of", "is required together with"))

    custom = schema.get("x-messages", {}).get(validator) or schema.get("x-message")
    if custom:
        return ValidationIssue(path, f"{custom} (got {_show(instance)})" if validator != "anyOf" else custom)

    message: str
    if validator == "type":
        expected = value if isinstance(value, str) else " or ".join(value)
        article = "an" if str(expected)[:1] in "aeiou" else "a"
        message = f"must be {article} {expected} (got {_show(instance)})"
    elif validator == "exclusiveMinimum":
        message = f"must be greater than {value}"
    elif validator == "minimum":
        message = f"must be greater than or equal to {value}" if value != 0 else "must not be negative"
    elif validator == "exclusiveMaximum":
        message = f"must be less than {value}"
    elif validator == "maximum":
        message = f"must be at most {value}"
    elif validator == "multipleOf":
        places = decimal_places(Decimal(str(value)))
        message = f"must have at most {places} decimal place{'s' if places != 1 else ''} (got {instance})"
    elif validator == "enum":
        options = list(value)
        if len(options) <= _ENUM_LISTED_MAX:
            message = f"must be one of {', '.join(map(str, options))} (got {_show(instance)})"
        else:
            message = f"is not an allowed value (got {_show(instance)})"
    elif validator == "minItems":
        message = "must not be empty" if value == 1 else f"must have at least {value} items"
    elif validator == "maxItems":
        message = f"must have at most {value} items"
    elif validator == "minLength":
        message = "must not be empty" if value == 1 else f"must be at least {value} characters long"
    elif validator == "maxLength":
        message = f"must be at most {value} characters long"
    elif validator == "minProperties":
        message = "must not be empty"
    elif validator == "propertyNames":
        message = f"has an invalid key {_show(instance)}"
    elif validator == "pattern":
        message = f"is not in the expected form (got {_show(instance)})"
    elif validator == "format":
        message = f"must be a valid {value} (got {_show(instance)})"
    else:
        message = error.message
    return ValidationIssue(path, message)


def _missing_key(error: ValidationError) -> str:
    # jsonschema's message is "'quantity' is a required property"; the key is the quoted part.
    message = error.message
    if message.startswith("'") and "' is a required property" in message:
        return message[1 : message.index("' is a required property")]
    return message


def _show(value: object, limit: int = 60) -> str:
    text = str(value) if isinstance(value, Decimal) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
