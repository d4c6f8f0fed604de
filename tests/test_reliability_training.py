"""Training settings and resume: zeros are errors before anything exists; a resumed run keeps its config."""

from __future__ import annotations

import json

import pytest
import toy_family
from test_toy_family import toy_config_file

from gsgm.training.driver import train_run
from gsgm.training.loop import TrainingSetupError


@pytest.mark.parametrize(
    ("option", "value", "flag"),
    [("epochs", 0, "--epochs"), ("epochs", -3, "--epochs"), ("max_per_class", 0, "--max-jets-per-class"),
     ("seed", -1, "--seed"), ("epochs", 2.5, "--epochs")],
)  # fmt: skip
def test_zero_or_negative_training_settings_are_errors_and_create_nothing(tmp_path, option, value, flag):
    out = tmp_path / "run"
    with pytest.raises(TrainingSetupError, match=rf"{flag} must be an integer >= [01], got {value}"):
        train_run(
            toy_family.TOY,
            toy_config_file(tmp_path, epochs=2),
            "generated",
            out,
            verbose=0,
            **{option: value},
        )
    assert not out.exists()


def test_resume_with_a_different_config_names_the_differing_keys(tmp_path):
    out = tmp_path / "run"
    train_run(toy_family.TOY, toy_config_file(tmp_path, epochs=1), "generated", out, verbose=0)
    (tmp_path / "other").mkdir()
    other = toy_config_file(tmp_path / "other", epochs=1)
    payload = json.loads(other.read_text())
    payload["training"]["learning_rate"] *= 3
    payload["net"] = {**payload["net"], "width": payload["net"]["width"] * 2}
    other.write_text(json.dumps(payload))
    with pytest.raises(TrainingSetupError, match=r"differs in net.width, training.learning_rate\)"):
        train_run(toy_family.TOY, other, "generated", out, resume=True, verbose=0)
    # the run's own config resumes (nothing left to do: the run is complete)
    train_run(toy_family.TOY, toy_config_file(tmp_path, epochs=1), "generated", out, resume=True, verbose=0)
