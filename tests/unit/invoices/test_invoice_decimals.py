from __future__ import annotations

from decimal import Decimal

import pytest

from enlivy_provider.invoices.decimals import NotADecimalError, decimal_places, to_decimal


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, Decimal("3")),
        ("12.50", Decimal("12.50")),
        ("  7 ", Decimal("7")),
        ("-1", Decimal("-1")),
        (".5", Decimal("0.5")),
        ("1e3", Decimal("1000")),
        (Decimal("0.000001"), Decimal("0.000001")),
        (0.1, Decimal("0.1")),
        (12.34, Decimal("12.34")),
        (1.005, Decimal("1.005")),
    ],
)
def test_to_decimal_accepts_numbers_and_numeric_strings(value: object, expected: Decimal) -> None:
    result = to_decimal(value)
    assert result == expected
    assert str(result) == str(expected)


def test_float_goes_through_its_shortest_repr_not_its_binary_value() -> None:
    assert to_decimal(0.1) == Decimal("0.1")
    assert to_decimal(0.1) != Decimal(0.1)  # noqa: RUF032 - the point of the test


@pytest.mark.parametrize(
    "value",
    ["abc", "", "12,50", "1_000", "NaN", "Infinity", "€5", None, [], {}, True, float("nan"), float("inf")],
)
def test_to_decimal_refuses_what_is_not_a_number(value: object) -> None:
    with pytest.raises(NotADecimalError, match="must be"):
        to_decimal(value)


def test_decimal_places_ignores_trailing_zeros() -> None:
    assert decimal_places(Decimal("12.500")) == 1
    assert decimal_places(Decimal("3")) == 0
    assert decimal_places(Decimal("0.000001")) == 6


def test_a_huge_value_is_refused_and_a_zero_with_any_exponent_is_zero() -> None:
    assert to_decimal("1e99") == Decimal(10) ** 99  # exact: no 28-digit context rounding, no crash
    assert to_decimal("0e1000") == 0
    with pytest.raises(NotADecimalError, match="is too large"):
        to_decimal("1e100")
