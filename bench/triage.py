"""Triage models on the project's labelled incidents (tests/data/incidents.csv, fixed
split): per-class precision/recall/F1, accuracy, and the share routed automatically at
each model's threshold with the accuracy of those, for every model installed here.

    .venv/bin/python bench/triage.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tenant_runtime.triage.evaluate import evaluate_split, table
from tenant_runtime.triage.model import TfidfClassifier

MODELS = {
    "tfidf-svm (the base model)": TfidfClassifier,
    "tfidf-logreg (peer: same features, logistic regression)": lambda: TfidfClassifier(svm=False),
}


def main() -> None:
    for title, make in MODELS.items():
        started = time.perf_counter()
        print(f"== {title}")
        for evaluation in evaluate_split(make):
            print(table(evaluation), end="\n\n")
        print(f"trained and evaluated in {time.perf_counter() - started:.1f} s\n")
    print("sentence-transformers (storeops[ai]): not installed here; not measured")


if __name__ == "__main__":
    main()
