"""The ``storeops[ai]`` embeddings model: loaded offline from the packaged files, its
classifier on the project's held-out split, the factory, and ``storeops triage eval
--model embeddings``."""

from __future__ import annotations

import csv
import hashlib
import os
import socket
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from control_plane.cli import main
from tenant_runtime.triage import embed as embed_module
from tenant_runtime.triage.embed import (
    MISSING,
    EmbeddingClassifier,
    ModelUnavailable,
    embed,
    encoder,
    model_path,
)
from tenant_runtime.triage.evaluate import (
    PROJECT_SET,
    Evaluation,
    evaluate_split,
    load,
    project_examples,
)
from tenant_runtime.triage.model import TfidfClassifier, available, make

#: sentence-transformers/all-MiniLM-L6-v2's model.safetensors (revision 1110a243).
UPSTREAM_WEIGHTS = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def refuse(*_: object) -> None:
    raise AssertionError("the embeddings model tried to reach the network")


@pytest.fixture(scope="module")
def encoded() -> None:
    """Load the encoder with every connection refused, and encode the project's texts
    once for the whole module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket.socket, "connect_ex", refuse)
        embed([e.text for e in project_examples()])


@pytest.fixture(scope="module")
def split_results(encoded: None) -> dict[str, Evaluation]:
    return {e.target: e for e in evaluate_split(EmbeddingClassifier)}


def test_the_encoder_loads_offline_from_site_packages(encoded: None) -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "1"
    path = model_path()
    assert path.is_relative_to(Path(sysconfig.get_paths()["purelib"]).resolve())
    with (path / "model.safetensors").open("rb") as weights:
        assert hashlib.file_digest(weights, "sha256").hexdigest() == UPSTREAM_WEIGHTS
    assert encoder() is encoder()  # one per process
    assert str(encoder().device) == "cpu"


def test_embeddings_are_unit_length_and_deterministic(encoded: None) -> None:
    texts = ["Freezer alarm at 9C in aisle 4.", "Till 3 frozen on the card screen."]
    first = embed(texts)
    assert first.shape == (2, 384)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(embed(texts), first)
    # Encoded afresh in another batch: the same vector to float precision.
    fresh = encoder().encode(texts[::-1], normalize_embeddings=True, show_progress_bar=False)
    assert np.allclose(fresh[::-1], first, atol=1e-6)
    assert embed([]).shape == (0, 384)


def test_fit_predict_and_similarity(encoded: None) -> None:
    texts = ["freezer alarm at 9C", "till 3 frozen", "mice droppings in stockroom"] * 3
    labels = ["refrigeration", "pos_hardware", "pest"] * 3
    model = EmbeddingClassifier().fit(texts, labels)
    assert (model.name, model.version) == ("minilm-svm", "1")
    new = ["the chiller is warm", "rat seen behind the bins"]
    predictions = model.predict(new)
    assert [p.label for p in predictions] == ["refrigeration", "pest"]
    assert all(0.0 < p.confidence <= 1.0 for p in predictions)
    assert EmbeddingClassifier().fit(texts, labels).predict(new) == predictions
    assert model.predict([]) == []
    with pytest.raises(ValueError, match="at least two labels"):
        EmbeddingClassifier().fit(["a", "b"], ["x", "x"])
    with pytest.raises(RuntimeError, match="not trained"):
        EmbeddingClassifier().predict(["a"])

    close, far = model.similarity(
        "walk-in fridge is too warm", ["chiller cabinet reading 8 degrees", "card reader dead"]
    )
    assert close > far and close == pytest.approx(
        float(
            embed(["walk-in fridge is too warm"])[0]
            @ embed(["chiller cabinet reading 8 degrees"])[0]
        )
    )
    assert model.similarity("x", []) == []


def test_confident_routing_is_right_on_the_held_out_split(
    split_results: dict[str, Evaluation],
) -> None:
    category = split_results["category"]
    assert category.model == "minilm-svm"
    assert category.routed_accuracy is not None
    assert category.routed_accuracy >= 0.95, category
    assert category.routed_share >= 0.4, category
    assert category.accuracy >= 0.75, category
    assert split_results["priority"].accuracy > 0.5, split_results["priority"]


def test_the_factory() -> None:
    assert isinstance(make("tfidf"), TfidfClassifier)
    assert isinstance(make("embeddings"), EmbeddingClassifier)
    assert available() == ["tfidf", "embeddings"]
    with pytest.raises(ValueError, match="unknown triage model 'nope'"):
        make("nope")


def test_a_missing_extra_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(embed_module, "installed", lambda: False)
    with pytest.raises(ModelUnavailable, match=r"storeops\[ai\]"):
        make("embeddings")
    assert available() == ["tfidf"]
    mine = tmp_path / "mine.csv"
    mine.write_text("text,category,priority\nfreezer warm,refrigeration,high\n")
    result = CliRunner().invoke(main, ["triage", "eval", "--model", "embeddings", str(mine)])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {MISSING}"


def test_eval_with_embeddings_on_a_users_file(encoded: None, tmp_path: Path) -> None:
    mine = tmp_path / "mine.csv"
    rows = [e for e in load(PROJECT_SET) if e.split == "test"][:25]
    with mine.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "category", "priority"])
        writer.writerows((e.text, e.category, e.priority) for e in rows)
    result = CliRunner().invoke(main, ["triage", "eval", "--model", "embeddings", str(mine)])
    assert result.exit_code == 0, result.output
    assert "minilm-svm / category on 25 held-out items" in result.output
    assert "minilm-svm / priority on 25 held-out items" in result.output
    assert "routed automatically" in result.output
    unknown = CliRunner().invoke(main, ["triage", "eval", "--model", "bert", str(mine)])
    assert unknown.exit_code == 2 and "'bert' is not one of" in unknown.output
