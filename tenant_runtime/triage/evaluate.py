"""Measuring a triage model on labelled incidents: per-class precision, recall and F1,
accuracy, and — the figure the routing policy rests on — the share of items at or above
the confidence threshold (routed without a person) and how many of those are right.

The threshold is chosen on the training examples only (5-fold cross-validated
predictions): the lowest confidence at which the routed items reach the wanted accuracy.
The held-out items never influence it.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the models (scikit-learn) are imported by whoever makes one
    from tenant_runtime.triage.model import Classifier, Prediction

TARGETS = ("category", "priority")
COLUMNS = ("text", *TARGETS)
#: What the routed items must reach when choosing a threshold (held out: reported as is).
WANTED_ACCURACY = 0.97
FOLDS = 5


@dataclass(frozen=True)
class Example:
    text: str
    category: str
    priority: str
    split: str = "train"

    def label(self, target: str) -> str:
        return str(getattr(self, target))


class BadFile(ValueError):
    """A labelled file that cannot be read, with the line that says why."""


def load(path: Path) -> list[Example]:
    """``text,category,priority[,split]`` rows; a missing column, an empty cell or a file
    that is not CSV is a :class:`BadFile` naming the line."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise BadFile(f"{path}: cannot be read ({exc.strerror})") from None
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise BadFile(
                f"{path}: the header lacks {', '.join(missing)} (need {','.join(COLUMNS)})"
            )
        examples = []
        try:
            for row in reader:
                empty = [c for c in COLUMNS if not (row.get(c) or "").strip()]
                if empty:
                    raise BadFile(f"{path}, line {reader.line_num}: empty {', '.join(empty)}")
                examples.append(
                    Example(
                        text=row["text"].strip(),
                        category=row["category"].strip(),
                        priority=row["priority"].strip(),
                        split=(row.get("split") or "train").strip(),
                    )
                )
        except (csv.Error, UnicodeDecodeError) as exc:
            raise BadFile(f"{path}, line {reader.line_num}: not CSV ({exc})") from None
    if not examples:
        raise BadFile(f"{path}: no labelled rows")
    return examples


@dataclass(frozen=True)
class ClassScore:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Evaluation:
    model: str
    target: str
    classes: list[ClassScore]
    accuracy: float
    threshold: float
    routed_share: float
    routed_accuracy: float | None
    items: int


def scores(truth: Sequence[str], predicted: Sequence[str]) -> list[ClassScore]:
    out = []
    for label in sorted(set(truth) | set(predicted)):
        hits = sum(1 for t, p in zip(truth, predicted, strict=True) if t == p == label)
        said = sum(1 for p in predicted if p == label)
        real = sum(1 for t in truth if t == label)
        precision = hits / said if said else 0.0
        recall = hits / real if real else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.append(ClassScore(label, precision, recall, f1, real))
    return out


def routed(
    truth: Sequence[str], predictions: Sequence[Prediction], threshold: float
) -> tuple[float, float | None]:
    """(share routed at ``threshold``, accuracy of those routed or None if none)."""
    chosen = [(t, p) for t, p in zip(truth, predictions, strict=True) if p.confidence >= threshold]
    if not chosen:
        return 0.0, None
    right = sum(1 for t, p in chosen if t == p.label)
    return len(chosen) / len(truth), right / len(chosen)


def cross_validated(
    make: Callable[[], Classifier], texts: Sequence[str], labels: Sequence[str], folds: int = FOLDS
) -> list[Prediction]:
    """Each training item predicted by a model that did not see it (round-robin folds)."""
    out: list[Prediction | None] = [None] * len(texts)
    for fold in range(folds):
        train = [i for i in range(len(texts)) if i % folds != fold]
        held = [i for i in range(len(texts)) if i % folds == fold]
        model = make().fit([texts[i] for i in train], [labels[i] for i in train])
        for i, prediction in zip(held, model.predict([texts[i] for i in held]), strict=True):
            out[i] = prediction
    return [p for p in out if p is not None]


def choose_threshold(
    labels: Sequence[str], predictions: Sequence[Prediction], wanted: float = WANTED_ACCURACY
) -> float:
    """The lowest confidence whose routed items reach ``wanted`` accuracy (1.0 if none)."""
    for candidate in sorted({round(p.confidence, 4) for p in predictions}):
        _, accuracy = routed(labels, predictions, candidate)
        if accuracy is not None and accuracy >= wanted:
            return candidate
    return 1.0


def evaluate(
    make: Callable[[], Classifier],
    train: Sequence[Example],
    test: Sequence[Example],
    target: str,
) -> Evaluation:
    """Train on ``train`` (choosing the threshold there), measure on ``test``."""
    texts, labels = [e.text for e in train], [e.label(target) for e in train]
    threshold = choose_threshold(labels, cross_validated(make, texts, labels))
    model = make().fit(texts, labels)
    truth = [e.label(target) for e in test]
    predictions = model.predict([e.text for e in test])
    share, accuracy = routed(truth, predictions, threshold)
    right = sum(1 for t, p in zip(truth, predictions, strict=True) if t == p.label)
    return Evaluation(
        model=model.name,
        target=target,
        classes=scores(truth, [p.label for p in predictions]),
        accuracy=right / len(truth) if truth else 0.0,
        threshold=threshold,
        routed_share=share,
        routed_accuracy=accuracy,
        items=len(truth),
    )


def table(evaluation: Evaluation) -> str:
    """The evaluation as a plain-text table."""
    width = max([len(c.label) for c in evaluation.classes] + [9])
    lines = [
        f"{evaluation.model} / {evaluation.target} on {evaluation.items} held-out items",
        f"{'class':<{width}}  precision  recall     f1  support",
    ]
    for c in evaluation.classes:
        lines.append(
            f"{c.label:<{width}}  {c.precision:9.3f}  {c.recall:6.3f}  {c.f1:5.3f}  {c.support:7d}"
        )
    routed_accuracy = (
        "n/a" if evaluation.routed_accuracy is None else f"{evaluation.routed_accuracy:.3f}"
    )
    lines += [
        f"accuracy {evaluation.accuracy:.3f}",
        f"threshold {evaluation.threshold:.3f} (chosen on the training set for "
        f"{WANTED_ACCURACY:.0%} routed accuracy): {evaluation.routed_share:.1%} routed "
        f"automatically, {routed_accuracy} of them correct",
    ]
    return "\n".join(lines)


#: The project's labelled incidents (written for it; fixed train/test split), shipped with
#: the runtime as the platform's default examples; ``tests/data/incidents.csv`` links here.
PROJECT_SET = Path(__file__).with_name("incidents.csv")


@cache
def project_examples() -> tuple[Example, ...]:
    """The project's labelled set, read once per process (every tenant model starts
    from it)."""
    if not PROJECT_SET.is_file():
        raise BadFile(f"the project's labelled set is missing at {PROJECT_SET}")
    return tuple(load(PROJECT_SET))


def evaluate_file(path: Path, make: Callable[[], Classifier]) -> list[Evaluation]:
    """A user's labelled file, judged by the model trained on the whole project set."""
    theirs = load(path)
    return [evaluate(make, project_examples(), theirs, target) for target in TARGETS]


def evaluate_split(make: Callable[[], Classifier]) -> list[Evaluation]:
    """The project set's fixed split: train on ``train``, measure on ``test``."""
    examples = project_examples()
    train = [e for e in examples if e.split == "train"]
    test = [e for e in examples if e.split == "test"]
    return [evaluate(make, train, test, target) for target in TARGETS]
