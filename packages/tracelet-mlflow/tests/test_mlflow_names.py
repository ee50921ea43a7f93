"""The name-mapping rule: MLflow-valid names pass untouched, the rest map deterministically to valid ones."""

from __future__ import annotations

import pytest
from mlflow.utils.validation import _validate_metric_name, _validate_param_name

from tracelet_mlflow.names import MAX_NAME_LENGTH, NameMap, map_name, rename_tag


@pytest.mark.parametrize("name", ["loss", "train/loss", "val acc", "lr-0.1_x", "époque/perte", "a.b/c"])
def test_valid_names_are_kept(name: str) -> None:
    assert map_name(name) == name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("loss!", "loss_"),
        ("val:loss", "val_loss"),  # colon: refused on Windows, so mapped everywhere
        ("a//b", "a/b"),
        ("/abs/name/", "abs/name"),
        ("a/./b", "a/_/b"),
        ("../up", "__/up"),
        (".", "_"),
        ("", "_"),
        ("acc@top(1)", "acc_top_1_"),
        ("tab\tname\n", "tab_name_"),
    ],
)
def test_refused_names_map_by_the_rule(name: str, expected: str) -> None:
    assert map_name(name) == expected


def test_long_names_are_cut_with_a_hash_of_the_original() -> None:
    a, b = "x" * 300 + "a", "x" * 300 + "b"
    ma, mb = map_name(a), map_name(b)
    assert len(ma) == len(mb) == MAX_NAME_LENGTH
    assert ma != mb and ma.startswith("x" * 241 + "-")
    assert map_name(a) == ma  # deterministic


@pytest.mark.parametrize(
    "name", ["loss!", "val:loss", "a//b", "/x/", "a/./b", "../up", ".", "", "ü" * 400, "a/" * 200, "é:" * 300]
)
def test_every_mapped_name_is_accepted_by_mlflow(name: str) -> None:
    mapped = map_name(name)
    _validate_metric_name(mapped)
    _validate_param_name(mapped)
    assert len(mapped) <= MAX_NAME_LENGTH


def test_name_map_collects_renames_once() -> None:
    names = NameMap("metric")
    assert names("ok") == "ok" and names("bad!") == "bad_" and names("bad!") == "bad_"
    assert names.record_tags() == {"tracelet.renamed.metric.bad_": "bad!"}
    assert len(rename_tag("metric", "y" * 250)) <= MAX_NAME_LENGTH
