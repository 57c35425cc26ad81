"""The base triage model on the project's labelled incidents (fixed held-out split), the
evaluation arithmetic, and ``storeops triage eval`` on a user's file."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from control_plane.cli import main
from tenant_runtime.triage.evaluate import (
    PROJECT_SET,
    BadFile,
    Evaluation,
    choose_threshold,
    evaluate_split,
    load,
    routed,
    scores,
)
from tenant_runtime.triage.model import Prediction, TfidfClassifier


@pytest.fixture(scope="module")
def split_results() -> dict[str, Evaluation]:
    return {e.target: e for e in evaluate_split(TfidfClassifier)}


def test_the_project_set_is_what_the_issue_asks(split_results: dict[str, Evaluation]) -> None:
    examples = load(PROJECT_SET)
    assert len(examples) >= 400
    assert len({e.category for e in examples}) >= 8
    assert {e.priority for e in examples} == {"high", "medium", "low"}
    assert {e.split for e in examples} == {"train", "test"}


def test_confident_routing_is_right_on_the_held_out_split(
    split_results: dict[str, Evaluation],
) -> None:
    category = split_results["category"]
    assert category.routed_accuracy is not None
    # At the threshold chosen on the training set, routed items are at least 95 % right,
    # and routing is not an empty promise: a good share goes without a person.
    assert category.routed_accuracy >= 0.95, category
    assert category.routed_share >= 0.4, category
    assert category.accuracy >= 0.7, category
    priority = split_results["priority"]
    assert priority.accuracy > 0.5, priority


def test_training_is_deterministic() -> None:
    texts = ["freezer alarm at 9C", "till 3 frozen", "mice droppings in stockroom"] * 3
    labels = ["refrigeration", "pos_hardware", "pest"] * 3
    first = TfidfClassifier().fit(texts, labels).predict(["chiller warm", "card reader dead"])
    again = TfidfClassifier().fit(texts, labels).predict(["chiller warm", "card reader dead"])
    assert first == again


def test_the_arithmetic_on_a_hand_example() -> None:
    truth = ["a", "a", "b", "b"]
    predicted = [Prediction("a", 0.9), Prediction("b", 0.6), Prediction("b", 0.95),
                 Prediction("b", 0.4)]  # fmt: skip
    by_label = {s.label: s for s in scores(truth, [p.label for p in predicted])}
    assert (by_label["a"].precision, by_label["a"].recall) == (1.0, 0.5)
    assert (by_label["b"].precision, by_label["b"].recall) == (2 / 3, 1.0)
    assert routed(truth, predicted, 0.85) == (0.5, 1.0)
    assert routed(truth, predicted, 0.99) == (0.0, None)
    # 0.4 routes everything (75 % right); 0.6 routes three with one wrong; 0.9 is exact.
    assert choose_threshold(truth, predicted, wanted=0.95) == 0.9


def test_eval_on_a_users_file(tmp_path: Path) -> None:
    mine = tmp_path / "mine.csv"
    rows = [e for e in load(PROJECT_SET) if e.split == "test"][:25]
    with mine.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "category", "priority"])
        writer.writerows((e.text, e.category, e.priority) for e in rows)
    result = CliRunner().invoke(main, ["triage", "eval", str(mine)])
    assert result.exit_code == 0, result.output
    assert "tfidf-svm / category on 25 held-out items" in result.output
    assert "precision  recall" in result.output and "routed automatically" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("text,category\nx,y\n", "the header lacks priority"),
        ("text,category,priority\n,pest,low\n", "line 2: empty text"),
        ("text,category,priority\n", "no labelled rows"),
    ],
)
def test_bad_files_are_one_line(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    with pytest.raises(BadFile, match=message):
        load(bad)
    result = CliRunner().invoke(main, ["triage", "eval", str(bad)])
    assert result.exit_code == 1
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    missing = CliRunner().invoke(main, ["triage", "eval", str(tmp_path / "none.csv")])
    assert missing.exit_code == 1 and "cannot be read" in missing.output
