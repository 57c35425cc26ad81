"""Payment gateway: captured transactions with what is still refundable, refunds that
never exceed it, and store credit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tenant_runtime.sandbox.body import Body
from tenant_runtime.sandbox.errors import Conflict, InvalidInput
from tenant_runtime.sandbox.registry import payments
from tenant_runtime.sandbox.systems.erp_stock import CURRENCY
from tenant_runtime.sandbox.world import World, money


def transaction(
    w: World, ref: str, amount: float | None = None, captured_at: str = ""
) -> dict[str, Any]:
    """The captured payment ``ref`` (made up, stable, when the gateway has not seen it)."""
    found = w.payments.transactions.get(ref)
    if found is None:
        r = w.rng("payment", ref)
        found = {
            "transaction_ref": ref,
            "amount": money(amount if amount is not None else r.uniform(8, 240)),
            "currency": CURRENCY,
            "captured_at": captured_at or w.stamp(-timedelta(days=r.randint(1, 40))),
            "method": r.choice(("card", "card", "card", "wallet")),
            "card_brand": r.choice(("visa", "mastercard", "amex")),
            "last4": f"{r.randint(0, 9999):04d}",
            "refunded_amount": 0.0,
            "chargeback_open": r.random() < 0.03,
        }
        w.payments.transactions[ref] = found
    return found


def _refundable(tx: dict[str, Any]) -> float:
    return money(tx["amount"] - tx["refunded_amount"])


@payments.read
def get_transaction(w: World, b: Body) -> dict[str, Any]:
    """A captured payment: amount, refunds so far, what is still refundable, chargebacks."""
    tx = transaction(w, b.text("transaction_ref"))
    return {**tx, "refundable_amount": _refundable(tx)}


@payments.write
def refund_payment(w: World, b: Body) -> dict[str, Any]:
    """Refund to the original tender; never more than is still refundable."""
    tx = transaction(w, b.text("transaction_ref"))
    amount = b.number("amount", minimum=0.01)
    if tx["chargeback_open"]:
        raise Conflict(f"transaction {tx['transaction_ref']} has an open chargeback")
    if amount > _refundable(tx) + 0.005:
        raise InvalidInput(
            f"refund {amount} exceeds the refundable amount {_refundable(tx)} of "
            f"{tx['transaction_ref']}",
            field="amount",
            refundable_amount=_refundable(tx),
        )
    refund_id = w.mint("RF")
    tx["refunded_amount"] = money(tx["refunded_amount"] + amount)
    w.payments.refunds[refund_id] = {
        "refund_id": refund_id,
        "transaction_ref": tx["transaction_ref"],
        "amount": amount,
        "reason": b.text("reason", ""),
        "status": "succeeded",
        "created_at": w.stamp(),
    }
    return {
        "refund_id": refund_id,
        "status": "succeeded",
        "transaction_ref": tx["transaction_ref"],
        "amount": amount,
        "refundable_amount": _refundable(tx),
        "currency": CURRENCY,
    }


@payments.write
def issue_store_credit(w: World, b: Body) -> dict[str, Any]:
    """Issue store credit (a gift-card style code; anonymous when no customer is given)."""
    amount = b.number("amount", minimum=0.01)
    customer_id = b.text("customer_id", "")
    credit_id = w.mint("SC")
    code = f"{w.rng('credit-code', credit_id).randint(0, 10**16 - 1):016d}"
    balance = money(
        sum(
            c["amount"]
            for c in w.payments.store_credits.values()
            if customer_id and c["customer_id"] == customer_id
        )
        + amount
    )
    w.payments.store_credits[credit_id] = {
        "credit_id": credit_id,
        "customer_id": customer_id,
        "amount": amount,
        "code": code,
        "issued_at": w.stamp(),
    }
    return {
        "credit_id": credit_id,
        "status": "issued",
        "amount": amount,
        "code": code,
        "customer_id": customer_id,
        "customer_balance": balance if customer_id else amount,
        "currency": CURRENCY,
    }
