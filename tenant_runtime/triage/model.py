"""Text -> label with a confidence. The base model is TF-IDF features (words, and
character 2-5-grams within words, so typos and abbreviations still match) feeding a
linear support vector machine whose scores are calibrated into probabilities (sigmoid,
3-fold); the confidence is the predicted class's probability. Training is
deterministic: the same examples give the same model.

On the project's labelled incidents a calibrated linear SVM routes about half of the
held-out items above a 97 %-on-training threshold, against about a quarter for a logistic
regression on the same features (``bench/triage.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import normalize
from sklearn.svm import LinearSVC


class Prediction(NamedTuple):
    label: str
    confidence: float


class Classifier(Protocol):
    """What the workflow engine and the evaluation need of any model."""

    name: str
    version: str

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> Classifier: ...

    def predict(self, texts: Sequence[str]) -> list[Prediction]: ...

    def similarity(self, text: str, others: Sequence[str]) -> list[float]:
        """Cosine similarity of ``text`` to each of ``others`` in the model's feature
        space (the ``recommend`` step's "most similar cases")."""
        ...


class LinearModel:
    """A features step feeding a linear support vector machine whose scores are calibrated
    into probabilities (sigmoid, 3-fold), or, with ``svm=False``, a logistic regression
    (the peer the benchmark measures it against). The confidence is the predicted class's
    probability; "most similar" is the cosine of the features."""

    version = "1"

    def __init__(self, features: Any, *, name: str, svm: bool, logreg_c: float) -> None:
        classifier: CalibratedClassifierCV | LogisticRegression = CalibratedClassifierCV(
            LinearSVC(C=1.0, random_state=0), cv=3, method="sigmoid"
        )
        if not svm:
            classifier = LogisticRegression(C=logreg_c, max_iter=5000, random_state=0)
        self.name = name
        self._pipeline = Pipeline([("features", features), ("classifier", classifier)])
        self._fitted = False

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> LinearModel:
        if len(set(labels)) < 2:
            raise ValueError("training needs examples of at least two labels")
        self._pipeline.fit(list(texts), list(labels))
        self._fitted = True
        return self

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        if not self._fitted:
            raise RuntimeError("the model is not trained yet")
        if not texts:
            return []
        probabilities = self._pipeline.predict_proba(list(texts))
        classes = self._pipeline.classes_
        out = []
        for row in probabilities:
            best = int(row.argmax())
            out.append(Prediction(str(classes[best]), float(row[best])))
        return out

    def similarity(self, text: str, others: Sequence[str]) -> list[float]:
        if not self._fitted:
            raise RuntimeError("the model is not trained yet")
        if not others:
            return []
        vectors = normalize(self._pipeline.named_steps["features"].transform([text, *others]))
        scores = vectors[1:] @ vectors[0].T  # sparse for TF-IDF, dense for embeddings
        dense = scores.toarray() if hasattr(scores, "toarray") else scores
        return [float(v) for v in np.asarray(dense).ravel()]


class TfidfClassifier(LinearModel):
    """The base install's model (scikit-learn only, nothing downloaded)."""

    def __init__(self, *, svm: bool = True) -> None:
        features = FeatureUnion(
            [
                ("words", TfidfVectorizer(sublinear_tf=True, strip_accents="unicode")),
                ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5),
                                          sublinear_tf=True, min_df=2)),
            ]
        )  # fmt: skip
        name = "tfidf-svm" if svm else "tfidf-logreg"
        super().__init__(features, name=name, svm=svm, logreg_c=8.0)


def make(kind: str) -> Classifier:
    """A new, untrained model of ``kind``: "tfidf" (the base install's) or "embeddings"
    (the ``storeops[ai]`` extra's, imported only when asked for)."""
    if kind == "tfidf":
        return TfidfClassifier()
    if kind == "embeddings":
        from tenant_runtime.triage.embed import EmbeddingClassifier

        return EmbeddingClassifier()
    raise ValueError(f"unknown triage model {kind!r}: use tfidf or embeddings")


def available() -> list[str]:
    """The kinds whose dependencies are installed here (found without importing torch)."""
    from tenant_runtime.triage.embed import installed

    return ["tfidf", "embeddings"] if installed() else ["tfidf"]
