"""Issue 17's spec fields and overrides (``loggers``, ``optuna_storage``, ``energy.cloud_region``,
``--grid-intensity``): a bad value is a ``SpecError`` naming the field, the value and what is allowed (the pattern of
test_bad_inputs.py); a storage URL's password never reaches the message."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search_spaces import SpecError, parse_spec


def _refused(raw: Any, field: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_spec({"name": "s", **raw})
    assert info.value.field == field, info.value
    return info.value


@pytest.mark.parametrize("bad", ["tensorboard", ["mlflow", "neptune"], ["mlflow", "mlflow"], {"mlflow": 1}, 0, [3]])
def test_loggers_are_names_of_known_trackers(bad: Any) -> None:
    e = _refused({"loggers": bad}, "loggers")
    assert "mlflow" in e.allowed and "wandb" in e.allowed


def test_loggers_accept_a_list_or_one_name() -> None:
    assert parse_spec({"name": "s", "loggers": ["wandb", "mlflow"]}).loggers == ("wandb", "mlflow")
    assert parse_spec({"name": "s", "loggers": "mlflow"}).loggers == ("mlflow",)
    assert parse_spec({"name": "s"}).loggers == ()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://bob:s3cret@db/x", "postgresql://***@db/x"),
        ("mysql+pymysql://u:s3cret@h:3306/d?charset=utf8", "mysql+pymysql://***@h:3306/d?charset=utf8"),
        ("postgresql://db/x?password=s3cret", "postgresql://db/x?***"),
    ],
)
def test_a_storage_url_with_a_password_is_refused_masked(url: str, shown: str) -> None:
    e = _refused({"optuna_storage": url}, "optuna_storage")
    assert e.value == shown and "s3cret" not in str(e)
    assert "PGPASSWORD" in e.allowed


@pytest.mark.parametrize("bad", ["", "runs/x.db", "sqlite:///a b.db", "://x", 42, ["sqlite://"], "x" * 2001 + "://"])
def test_a_storage_that_is_no_url_is_refused(bad: Any) -> None:
    _refused({"optuna_storage": bad}, "optuna_storage")


def test_overrides_are_checked_and_recorded_for_resume() -> None:
    spec = parse_spec({"name": "s"}).with_overrides(
        loggers=["mlflow"], optuna_storage="sqlite:////tmp/t.db", grid_intensity=42
    )
    assert (spec.loggers, spec.optuna_storage, spec.energy.grid_g_per_kwh) == (("mlflow",), "sqlite:////tmp/t.db", 42.0)
    assert spec.overrides == {"loggers": ["mlflow"], "optuna_storage": "sqlite:////tmp/t.db", "grid_intensity": 42}
    again = parse_spec({"name": "s"}).with_overrides(**spec.overrides)  # what resume does with the manifest
    assert (again.loggers, again.optuna_storage, again.energy) == (spec.loggers, spec.optuna_storage, spec.energy)
    for changes, field in (
        ({"loggers": ["comet"]}, "--logger"),
        ({"optuna_storage": "postgresql://a:b@h/d"}, "--optuna-storage"),
        ({"grid_intensity": -1}, "--grid-intensity"),
        ({"grid_intensity": float("nan")}, "--grid-intensity"),
    ):
        with pytest.raises(SpecError) as info:
            parse_spec({"name": "s"}).with_overrides(**changes)
        assert info.value.field == field


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_storage_text_is_accepted_or_refused_never_a_crash_and_never_echoes_a_password(text: str) -> None:
    url = f"postgresql://user:{text}@host/db"
    try:
        parse_spec({"name": "s", "optuna_storage": url})
    except SpecError as e:
        if text and ":" not in text and "@" not in text:
            assert text not in str(e.value) or text in "postgresql://***@host/db"
