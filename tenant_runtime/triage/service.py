"""The tenant's triage: its models (the platform's labelled incidents plus this tenant's
own labelled examples: its people's review answers and its imports, nothing else), what
they predict, the resolved cases a recommendation
draws on, and the corrections people make.

Every tenant runtime has its own database, so the examples one tenant's people label stay
in it: another tenant's model never sees them. A model is trained once per set of examples
(in a worker thread, the event loop keeps serving) and kept until the tenant's examples or
its settings change; its version names a digest of exactly what it learnt from.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.contracts import uuid7
from control_plane.contracts.triage import TriageSettings
from tenant_runtime.db.dialect import insert_for, iso
from tenant_runtime.db.schema import triage_cases, triage_examples
from tenant_runtime.triage.evaluate import TARGETS, project_examples

if TYPE_CHECKING:  # scikit-learn is imported when a model is first made, not at start-up
    from tenant_runtime.triage.model import Classifier

log = logging.getLogger(__name__)

#: How many times a tenant's own example counts against one of the platform's: a person's
#: correction in this tenant outweighs the generic examples it contradicts.
TENANT_WEIGHT = 3
#: The resolved cases a recommendation compares against (the newest first).
CASES_SEARCHED = 2000
#: Below this similarity a past case is not "similar" at all.
SIMILARITY_FLOOR = 0.15
#: How many of the most similar cases the resolution counts are taken over.
RESOLUTION_POOL = 20


def digest(text: str) -> str:
    """The input hash an AI decision is audited with."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Verdict:
    """What a model said of one text."""

    label: str
    confidence: float
    model: str
    model_version: str
    #: The labels the model knows: what a reviewer chooses from.
    labels: list[str]
    input_hash: str


@dataclass
class _Trained:
    fingerprint: tuple[Any, ...]
    model: Classifier
    version: str
    labels: list[str]


def _factory(kind: str) -> Classifier:
    """The model the tenant chose; the base model when this install lacks its extra (the
    audit names the model that actually decided)."""
    from tenant_runtime.triage.model import available, make

    if kind not in available():
        log.warning("triage model %r is not installed here; using tfidf", kind)
        kind = "tfidf"
    return make(kind)


class Triage:
    def __init__(
        self,
        db: AsyncEngine,
        *,
        settings: Callable[[], TriageSettings] = TriageSettings,
        factory: Callable[[str], Classifier] = _factory,
    ) -> None:
        self.db = db
        #: The tenant's settings as they are now (the desired state may change them).
        self._settings = settings
        self._factory = factory
        self._trained: dict[str, _Trained] = {}
        self._locks: dict[str, asyncio.Lock] = {t: asyncio.Lock() for t in TARGETS}

    # --- models -------------------------------------------------------------------------

    @property
    def settings(self) -> TriageSettings:
        return self._settings()

    async def model(self, target: str) -> _Trained:
        """The tenant's model for ``target``, trained again only when its examples or the
        chosen model kind changed."""
        if target not in TARGETS:
            raise ValueError(f"unknown triage target {target!r} (known: {', '.join(TARGETS)})")
        async with self._locks[target]:
            async with self.db.connect() as conn:
                count, newest = (
                    await conn.execute(
                        select(func.count(), func.max(triage_examples.c.created_at)).where(
                            triage_examples.c.target == target
                        )
                    )
                ).one()
            kind = self.settings.model
            fingerprint = (kind, count, str(newest))
            known = self._trained.get(target)
            if known is not None and known.fingerprint == fingerprint:
                return known
            async with self.db.connect() as conn:
                rows = (
                    await conn.execute(
                        select(triage_examples.c.text, triage_examples.c.label)
                        .where(triage_examples.c.target == target)
                        .order_by(triage_examples.c.input_hash)
                    )
                ).all()
            texts, labels = _training_set(target, [(r.text, r.label) for r in rows])
            model = self._factory(kind)
            await asyncio.to_thread(model.fit, texts, labels)
            examples = hashlib.sha256()
            for text, label in zip(texts, labels, strict=True):
                examples.update(f"{label}\x1f{text}\x1e".encode())
            version = f"{model.version}+{examples.hexdigest()[:12]}"
            trained = _Trained(fingerprint, model, version, sorted(set(labels)))
            self._trained[target] = trained
            return trained

    async def classify(self, target: str, text: str) -> Verdict:
        trained = await self.model(target)
        [prediction] = await asyncio.to_thread(trained.model.predict, [text])
        return Verdict(
            label=prediction.label,
            confidence=round(prediction.confidence, 4),
            model=trained.model.name,
            model_version=trained.version,
            labels=trained.labels,
            input_hash=digest(text),
        )

    # --- recommendations ----------------------------------------------------------------

    async def recommend(self, text: str, label: str | None, limit: int) -> dict[str, Any]:
        """The most similar resolved cases (across the tenant's stores), what resolved them
        and how often."""
        trained = await self.model("category")
        query = (
            select(
                triage_cases.c.run_id,
                triage_cases.c.store,
                triage_cases.c.text,
                triage_cases.c.label,
                triage_cases.c.resolution,
                triage_cases.c.outcome,
                triage_cases.c.resolved_at,
            )
            .where(triage_cases.c.status == "resolved")
            .order_by(triage_cases.c.resolved_at.desc())
            .limit(CASES_SEARCHED)
        )
        if label:
            query = query.where(triage_cases.c.label == label)
        async with self.db.connect() as conn:
            cases = (await conn.execute(query)).all()
        scores = await asyncio.to_thread(trained.model.similarity, text, [c.text for c in cases])
        ranked = sorted(
            (
                (score, case)
                for score, case in zip(scores, cases, strict=True)
                if score >= SIMILARITY_FLOOR
            ),
            key=lambda pair: -pair[0],
        )
        tally = Counter(c.resolution for _, c in ranked[:RESOLUTION_POOL] if c.resolution)
        pool = sum(tally.values())
        return {
            "similar": [
                {
                    "run_id": str(case.run_id),
                    "store": case.store,
                    "text": case.text,
                    "label": case.label,
                    "resolution": case.resolution,
                    "outcome": case.outcome,
                    "resolved_at": iso(case.resolved_at) if case.resolved_at else None,
                    "similarity": round(score, 3),
                }
                for score, case in ranked[:limit]
            ],
            "resolutions": [
                {"resolution": text, "count": n, "share": round(n / pool, 3)}
                for text, n in tally.most_common(5)
            ],
            "cases_searched": len(cases),
            "model": trained.model.name,
            "model_version": trained.version,
            "input_hash": digest(text),
        }

    # --- what people teach it -----------------------------------------------------------

    @staticmethod
    async def learn(
        conn: AsyncConnection,
        *,
        target: str,
        text: str,
        label: str,
        source: str,
        actor: str,
        now: datetime,
        decision_id: UUID | None = None,
    ) -> None:
        """A labelled example for this tenant (the latest label for a text wins)."""
        values = {
            "id": uuid7(),
            "target": target,
            "input_hash": digest(text),
            "text": text,
            "label": label,
            "source": source,
            "decision_id": decision_id,
            "created_by": actor,
            "created_at": now,
        }
        insert = insert_for(conn, triage_examples).values(**values)
        await conn.execute(
            insert.on_conflict_do_update(
                index_elements=[triage_examples.c.target, triage_examples.c.input_hash],
                set_={
                    k: insert.excluded[k]
                    for k in ("label", "source", "decision_id", "created_by", "created_at")
                },
            )
        )


def _training_set(target: str, tenant: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """The platform's examples, less the texts this tenant labelled itself, then the
    tenant's, each counted :data:`TENANT_WEIGHT` times."""
    own = {text for text, _ in tenant}
    texts, labels = [], []
    for example in project_examples():
        if example.text not in own:
            texts.append(example.text)
            labels.append(example.label(target))
    for text, label in tenant:
        texts += [text] * TENANT_WEIGHT
        labels += [label] * TENANT_WEIGHT
    return texts, labels
