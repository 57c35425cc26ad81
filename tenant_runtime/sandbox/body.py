"""Typed access to a request's JSON object; a bad field is a 422 naming what is accepted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tenant_runtime.sandbox.errors import InvalidInput


@dataclass(frozen=True)
class Line:
    """One order or document line; templates send lines as objects or as bare SKUs.

    ``sku`` is empty for a non-stock line (a service, a hire) known by its description."""

    sku: str
    quantity: int
    unit_price: float | None = None
    line_id: str | None = None
    description: str | None = None


class Body:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def has(self, name: str) -> bool:
        value = self.data.get(name)
        return value is not None and value != ""

    def text(self, name: str, default: str | None = None) -> str:
        value = self.data.get(name)
        if value is None or value == "":
            if default is not None:
                return default
            raise InvalidInput(f"field {name!r} is required: a non-empty string", field=name)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InvalidInput(f"field {name!r} must be a string, not {_kind(value)}", field=name)
        return str(value)

    def optional(self, name: str) -> str | None:
        """A string field that may be absent or empty (None then)."""
        return self.text(name) if self.has(name) else None

    def integer(self, name: str, default: int | None = None, minimum: int | None = None) -> int:
        number = self._number(name, None if default is None else float(default))
        if number != int(number):
            raise InvalidInput(f"field {name!r} must be a whole number, not {number}", field=name)
        if minimum is not None and number < minimum:
            raise InvalidInput(
                f"field {name!r} must be at least {minimum}, not {number:g}", field=name
            )
        return int(number)

    def number(
        self, name: str, default: float | None = None, minimum: float | None = None
    ) -> float:
        number = self._number(name, default)
        if minimum is not None and number < minimum:
            raise InvalidInput(
                f"field {name!r} must be at least {minimum}, not {number}", field=name
            )
        return number

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.data.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise InvalidInput(f"field {name!r} must be true or false, not {_kind(value)}", field=name)

    def strings(self, name: str, required: bool = True) -> list[str]:
        value = self.data.get(name)
        if value is None and not required:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
            raise InvalidInput(f"field {name!r} must be a list of strings", field=name)
        return [str(v) for v in value]

    def objects(self, name: str, required: bool = True) -> list[dict[str, Any]]:
        value = self.data.get(name)
        if value is None and not required:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise InvalidInput(f"field {name!r} must be a list of objects", field=name)
        return list(value)

    def lines(self, name: str = "lines", required: bool = True) -> list[Line]:
        """Lines as ``{sku, quantity, unit_price?, line_id?}`` objects or bare SKU strings."""
        value = self.data.get(name)
        if value is None and not required:
            return []
        if not isinstance(value, list) or (required and not value):
            raise InvalidInput(
                f"field {name!r} must be a non-empty list of lines "
                "({sku, quantity, unit_price?} objects or SKU strings)",
                field=name,
            )
        lines: list[Line] = []
        for index, raw in enumerate(value):
            if isinstance(raw, str) and raw:
                lines.append(Line(sku=raw, quantity=1))
                continue
            if not isinstance(raw, dict) or not any(
                raw.get(k) for k in ("sku", "line_id", "description")
            ):
                raise InvalidInput(
                    f"{name}[{index}] must be a SKU string or an object with 'sku' (or "
                    "'line_id', or 'description' for a non-stock line) and 'quantity'",
                    field=name,
                )
            item = Body(raw)
            price_field = "unit_price" if "unit_price" in raw else "price"
            lines.append(
                Line(
                    sku=item.optional("sku") or "",
                    quantity=item.integer("quantity", default=1, minimum=1),
                    unit_price=item.number(price_field, minimum=0)
                    if item.has(price_field)
                    else None,
                    line_id=item.optional("line_id"),
                    description=item.optional("description"),
                )
            )
        return lines

    def _number(self, name: str, default: float | None) -> float:
        value = self.data.get(name)
        if value is None or value == "":
            if default is not None:
                return default
            raise InvalidInput(f"field {name!r} is required: a number", field=name)
        if isinstance(value, bool):
            raise InvalidInput(f"field {name!r} must be a number, not a boolean", field=name)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise InvalidInput(f"field {name!r} must be a number, not {_kind(value)}", field=name)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", bool: "a boolean"}.get(type(value), repr(value))
