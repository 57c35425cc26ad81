"""Amounts are integer minor units of their currency; these turn them into words."""

from __future__ import annotations

from decimal import Decimal

#: ISO 4217 currencies whose minor unit is not a hundredth of the major one.
_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
         "VND", "VUV", "XAF", "XOF", "XPF"),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    "CLF": 4,
    "UYW": 4,
}  # fmt: skip


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency, 2)


def major(amount: int, currency: str) -> Decimal:
    """Minor units as the major amount: 1250 EUR -> 12.50."""
    return Decimal(amount).scaleb(-exponent(currency))


def money(amount: int, currency: str) -> str:
    return f"{major(amount, currency):,.{exponent(currency)}f} {currency}"
