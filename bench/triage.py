"""Triage models on the project's labelled incidents (tests/data/incidents.csv, fixed
split): per-class precision/recall/F1, accuracy, and the share routed automatically at
each model's threshold with the accuracy of those, for every model installed here.

    .venv/bin/python bench/triage.py
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tenant_runtime.triage.evaluate import evaluate_split, project_examples, table
from tenant_runtime.triage.model import Classifier, TfidfClassifier

MODELS: dict[str, Callable[[], Classifier]] = {
    "tfidf-svm (the base model)": TfidfClassifier,
    "tfidf-logreg (peer: same features, logistic regression)": lambda: TfidfClassifier(svm=False),
}


def measure(models: dict[str, Callable[[], Classifier]]) -> None:
    for title, make in models.items():
        started = time.perf_counter()
        print(f"== {title}")
        for evaluation in evaluate_split(make):
            print(table(evaluation), end="\n\n")
        print(f"trained and evaluated in {time.perf_counter() - started:.1f} s\n")


def embeddings() -> None:
    """The storeops[ai] models, when the extra is installed. The encoder's load and the
    one-off encoding of the project's texts are timed apart: every fit after that reuses
    the remembered vectors, as a long-running runtime does."""
    from tenant_runtime.triage.embed import EmbeddingClassifier, embed, encoder, installed

    if not installed():
        print("sentence-transformers (storeops[ai]): not installed here; not measured")
        return
    started = time.perf_counter()
    encoder()
    loaded = time.perf_counter()
    texts = [e.text for e in project_examples()]
    embed(texts)
    encoded = time.perf_counter()
    print(
        f"== all-MiniLM-L6-v2 (storeops[ai]): encoder loaded in {loaded - started:.1f} s; "
        f"{len(texts)} texts encoded in {encoded - loaded:.1f} s "
        f"({(encoded - loaded) / len(texts) * 1000:.1f} ms each)\n"
    )
    one = time.perf_counter()
    embed(["Walk-in freezer door seal split, ice building up on the back wall (bench probe)."])
    print(f"one new incident encoded in {(time.perf_counter() - one) * 1000:.0f} ms\n")
    measure(
        {
            "minilm-svm (storeops[ai]; embeddings, calibrated linear SVM)": EmbeddingClassifier,
            "minilm-logreg (peer: same embeddings, logistic regression)": lambda: (
                EmbeddingClassifier(svm=False)
            ),
        }
    )


def main() -> None:
    measure(MODELS)
    embeddings()


if __name__ == "__main__":
    main()
