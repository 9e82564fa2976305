"""Allowed values (docs/enlivy-api-notes.md §13). Where the SDK guide and its enum disagree the enum wins."""

from __future__ import annotations

INVOICE_STATUSES = (
    "approval_required", "draft", "scheduled", "pending", "sent_email", "sent_physical",
    "payment_partial", "paid", "solved", "overdue", "cancelled",
)  # fmt: skip
INVOICE_TYPES = ("standard", "reversal", "proforma")
INVOICE_SOURCES = ("internal", "external")
INVOICE_DIRECTIONS = ("outbound", "inbound")
PAYMENT_METHODS = (
    "bank_transfer",
    "card_payment",
    "stripe_card_payment",
    "paypal",
    "cash",
    "paid_by_personal_funds",
)
DELIVERY_METHODS = ("email", "delegate")
PRODUCT_TYPES = ("service", "digital", "physical", "bonus")  # also the line item types
PREFIX_TYPES = ("standard", "reversal", "proforma")
# Statuses from which --auto-pay-after turns an invoice into "paid".
PAYABLE_STATUSES = frozenset({"pending", "sent_email", "sent_physical"})
# Statuses without an assigned number (a draft gets its number when it leaves this set).
UNNUMBERED_STATUSES = frozenset({"draft"})

# ISO 4217 active codes.
_CURRENCY_CODES = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
    CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD
    GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT
    LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR
    NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP
    STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF
    XPF YER ZAR ZMW ZWL
"""
CURRENCIES = frozenset(_CURRENCY_CODES.split())
