"""Master data of the simulated retailer: a small named catalogue, suppliers, vendors and
DCs, and seeded generators for anything else a run asks about (any SKU, store, customer
or employee id gets stable, plausible values the first time it is seen)."""

from __future__ import annotations

from typing import Any

from tenant_runtime.sandbox.state import Item, Stock
from tenant_runtime.sandbox.world import World, money

REGIONS = ("NE", "METRO", "SOUTH", "WEST")
DCS = ("DC-NORTH", "DC-SOUTH")
CATEGORIES = ("household", "grocery", "electronics", "health-beauty", "toys", "apparel")

ITEMS: dict[str, Item] = {
    item.sku: item
    for item in (
        Item(
            "SKU-10001",
            "Organic whole milk 2L",
            "dairy",
            1.35,
            2.29,
            6,
            "dc",
            "SUP-1001",
            "DC-NORTH",
        ),
        Item(
            "SKU-10002",
            "Free-range eggs 12 pack",
            "dairy",
            2.10,
            3.49,
            10,
            "dc",
            "SUP-1001",
            "DC-NORTH",
        ),
        Item(
            "SKU-20001",
            "Wireless earbuds",
            "electronics",
            38.00,
            79.99,
            4,
            "supplier",
            "SUP-1002",
            "DC-SOUTH",
        ),
        Item(
            "SKU-20002",
            "USB-C charger 30W",
            "electronics",
            9.50,
            24.99,
            10,
            "supplier",
            "SUP-1002",
            "DC-SOUTH",
        ),
        Item(
            "SKU-30001",
            "Eau de parfum 50ml",
            "fragrance",
            31.00,
            69.00,
            3,
            "supplier",
            "SUP-1003",
            "DC-SOUTH",
        ),
        Item(
            "SKU-40001",
            "Single malt whisky 70cl",
            "spirits",
            22.00,
            44.99,
            6,
            "supplier",
            "SUP-1004",
            "DC-NORTH",
        ),
        Item(
            "SKU-50001",
            "Razor blades 8 pack",
            "razors",
            7.20,
            17.99,
            12,
            "dc",
            "SUP-1005",
            "DC-NORTH",
        ),
        Item(
            "SKU-60001",
            "Infant formula 800g",
            "infant-formula",
            11.40,
            19.99,
            6,
            "dc",
            "SUP-1005",
            "DC-SOUTH",
        ),
        Item(
            "SKU-70001",
            "Paper towels 6 rolls",
            "household",
            3.10,
            5.99,
            8,
            "dc",
            "SUP-1005",
            "DC-NORTH",
        ),
        Item(
            "SKU-70002",
            "Laundry detergent 2L",
            "household",
            4.20,
            8.99,
            6,
            "dc",
            "SUP-1005",
            "DC-NORTH",
        ),
        Item("SKU-80001", "Sourdough loaf", "bakery", 0.95, 2.80, 10, "dc", "SUP-1001", "DC-NORTH"),
    )
}

#: The approved vendor list; any other supplier id is known but not approved.
SUPPLIERS: dict[str, dict[str, Any]] = {
    "SUP-1001": {"name": "Northwind Dairy Co.", "contact_email": "orders@northwind-dairy.example"},
    "SUP-1002": {"name": "Contoso Electronics", "contact_email": "edi@contoso-electronics.example"},
    "SUP-1003": {"name": "Fabrikam Fragrances", "contact_email": "accounts@fabrikam.example"},
    "SUP-1004": {"name": "Highland Spirits Ltd", "contact_email": "trade@highland-spirits.example"},
    "SUP-1005": {"name": "Acme Household Supplies", "contact_email": "po@acme-household.example"},
    "SUP-2001": {"name": "CoolTemp Rentals", "contact_email": "hire@cooltemp.example"},
    "SUP-2002": {"name": "SafeGuard Security Services", "contact_email": "ops@safeguard.example"},
    "SUP-2003": {"name": "StormReady Supplies", "contact_email": "sales@stormready.example"},
}

#: Facilities vendors of the service desk.
VENDORS: dict[str, dict[str, str]] = {
    "FAC-GENERAL": {
        "name": "Allied Facilities Services",
        "escalation_email": "escalations@allied-fm.example",
    },
    "FAC-BACKUP": {
        "name": "RapidFix Maintenance",
        "escalation_email": "duty-manager@rapidfix.example",
    },
    "FAC-COOL": {
        "name": "Arctic Refrigeration Services",
        "escalation_email": "control@arctic-refrigeration.example",
    },
    "FAC-DOORS": {
        "name": "Entrance Systems Ltd",
        "escalation_email": "service@entrance-systems.example",
    },
    "FAC-POS": {"name": "TillCare Field Services", "escalation_email": "noc@tillcare.example"},
}

AGENCIES = ("Staffline Retail", "BlueArrow Temporary Staffing", "Randstad Retail Cover")
ROLES = ("cashier", "stock_associate", "shift_supervisor", "baker", "customer_service")
FIRST_NAMES = (
    "Amelia",
    "Noah",
    "Priya",
    "Lucas",
    "Sofia",
    "Mateo",
    "Chloe",
    "Kwame",
    "Hana",
    "Oliver",
    "Zara",
    "Tomasz",
)
LAST_NAMES = (
    "Okafor",
    "Nguyen",
    "Schmidt",
    "Garcia",
    "Patel",
    "Kowalski",
    "Murphy",
    "Rossi",
    "Haddad",
    "Larsen",
)


def is_dc(location: str) -> bool:
    return location in DCS or location.startswith("DC-")


def item(w: World, sku: str) -> Item:
    found = w.erp.items.get(sku)
    if found is None:
        found = ITEMS.get(sku) or _generated_item(w, sku)
        found = Item(**vars(found))
        w.erp.items[sku] = found
    return found


def _generated_item(w: World, sku: str) -> Item:
    r = w.rng("item", sku)
    cost = money(r.uniform(0.8, 45.0))
    category = r.choice(CATEGORIES)
    return Item(
        sku=sku,
        description=f"{category.replace('-', ' ').title()} item {sku}",
        category=category,
        unit_cost=cost,
        price=money(cost * r.uniform(1.5, 2.3)),
        pack_size=r.choice((1, 4, 6, 10, 12)),
        sourcing=r.choice(("dc", "dc", "supplier")),
        supplier_id=r.choice(tuple(SUPPLIERS)[:5]),
        dc_id=r.choice(DCS),
    )


def stock(w: World, store: str, sku: str) -> Stock:
    per_store = w.erp.stock.setdefault(store, {})
    found = per_store.get(sku)
    if found is None:
        r = w.rng("stock", store, sku)
        reorder_point = r.choice((6, 8, 12, 18, 24))
        order_up_to = reorder_point * 3
        found = Stock(
            on_hand=r.randint(0, order_up_to + reorder_point),
            on_order=r.choice((0, 0, 0, item(w, sku).pack_size)),
            in_transit=0,
            reorder_point=reorder_point,
            order_up_to=order_up_to,
        )
        per_store[sku] = found
    return found


def shelf_price(w: World, store: str, sku: str) -> float:
    return w.erp.store_prices.get(store, {}).get(sku, item(w, sku).price)


def dc_available(w: World, dc: str, sku: str) -> int:
    per_dc = w.wms.dc_stock.setdefault(dc, {})
    if sku not in per_dc:
        r = w.rng("dc", dc, sku)
        per_dc[sku] = 0 if r.random() < 0.1 else r.randint(40, 900)
    return per_dc[sku]


def region(w: World, store: str) -> str:
    return w.rng("region", store).choice(REGIONS)


def supplier(supplier_id: str) -> dict[str, Any]:
    known = SUPPLIERS.get(supplier_id)
    if known is None:
        return {
            "name": f"Supplier {supplier_id}",
            "contact_email": f"sales@{supplier_id.lower()}.example",
            "approved": False,
        }
    return {**known, "approved": True}


def vendor(vendor_id: str) -> dict[str, str]:
    return VENDORS.get(
        vendor_id,
        {"name": f"Vendor {vendor_id}", "escalation_email": f"service@{vendor_id.lower()}.example"},
    )


def person(w: World, *parts: str) -> tuple[str, str]:
    r = w.rng("person", *parts)
    return r.choice(FIRST_NAMES), r.choice(LAST_NAMES)


STORE_NAMES = (
    "Riverside",
    "Old Town",
    "Harbour Point",
    "Northgate",
    "Westfield",
    "Elm Park",
    "Station Square",
    "Lakeside",
    "Market Street",
    "Hillcrest",
    "Southbank",
    "Airport Retail Park",
)
STORES = tuple(f"S-{101 + n}" for n in range(len(STORE_NAMES)))


def store_profile(w: World, store: str) -> dict[str, Any]:
    """Master data of a store: name, price zone, region, online assortment, manager."""
    r = w.rng("store", store)
    name = STORE_NAMES[STORES.index(store)] if store in STORES else f"Store {store}"
    return {
        "id": store,
        "name": name,
        "zone": r.choice(("Z1", "Z2", "Z3")),
        "region": region(w, store),
        "online_enabled": r.random() < 0.75,
        "manager_email": f"manager.{store.lower()}@stores.example",
    }
