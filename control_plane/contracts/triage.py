"""Incident triage between the control plane and a tenant runtime: the tenant's settings
(which model, when a recurring pattern becomes an insight), carried in the desired state,
and the insight a runtime reports home (a ``insight`` telemetry event's ``data``).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

#: ``tfidf``: the base install's TF-IDF features and linear classifier (scikit-learn).
#: ``embeddings``: sentence embeddings from the ``storeops[ai]`` extra's local model.
ModelKind = Literal["tfidf", "embeddings"]
StoreThreshold = Annotated[int, msgspec.Meta(ge=2, le=1000)]
RegionThreshold = Annotated[int, msgspec.Meta(ge=2, le=10000)]
WindowDays = Annotated[int, msgspec.Meta(ge=1, le=365)]


class TriageSettings(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A tenant's triage settings (partner defaults, tenant overrides). Open to additions:
    a runtime ignores fields it does not know, and uses its base model for a model kind it
    does not have (the control plane validates what may be set: ``ModelKind``)."""

    model: str = "tfidf"
    #: An insight is raised when one category recurs this many times at one store...
    store_threshold: StoreThreshold = 3
    #: ... or this many times across the stores of one region...
    region_threshold: RegionThreshold = 6
    #: ... within this many days.
    window_days: WindowDays = 30


class Evidence(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One incident behind an insight."""

    run_id: str
    store: str
    at: str
    #: The first 200 characters of the incident's description.
    text: str
    #: auto (the model routed it) or review (a person confirmed or corrected it).
    routed: str


class Insight(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A category recurring beyond its threshold at a store or in a region."""

    #: Stable for one pattern and window start: a re-sent insight is the same insight.
    id: str
    kind: Literal["recurring_category"] = "recurring_category"
    scope: Literal["store", "region"]
    #: The store id or the region id.
    subject: str
    #: The incident category (a triage label).
    label: str
    count: int
    threshold: int
    window_days: int
    first_at: str
    last_at: str
    evidence: list[Evidence]
    #: Who was told in the tenant: ``regional_manager@region:<id>``.
    notified: str | None = None
