"""Numbers that are not numbers: NaN/inf configs, a non-finite training loss, unphysical input jets."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import make_synthetic_jets
from reliability_support import REPO, dataset, regression_data, tiny_regression

from gsgm.config import ConfigError
from gsgm.config.base import validate_section
from gsgm.config.registry import load_any_config
from gsgm.data.jetnet_format import JetNetFormatError, write_jetnet_file
from gsgm.data.loading import load_class
from gsgm.evaluation.samples import load_comparison
from gsgm.training.loop import NonFiniteLossError, fit_epochs
from gsgm.training.run_dir import RunDirectory


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize(
    "config",
    ["quick.json", "images_quick.json", "dis_quick.json", "calo_quick.json", "phase_space_muon_quick.json"],
)
def test_every_family_config_rejects_non_finite_numbers(tmp_path, config, value):
    text = (REPO / "configs" / config).read_text()
    payload = json.loads(text)
    payload["training"]["learning_rate"] = "__BAD__"
    path = tmp_path / config
    path.write_text(json.dumps(payload).replace('"__BAD__"', value))
    with pytest.raises(ConfigError, match=rf"{config}: training.learning_rate: must be a finite number, got"):
        load_any_config(path)


def test_non_finite_numbers_are_found_inside_free_form_values():
    from gsgm.config.base import Section

    class Loose(Section):
        weights: dict = {}

    with pytest.raises(ConfigError, match=r"<dict>: weights.a\[1\]: must be a finite number, got NaN"):
        validate_section(Loose, {"weights": {"a": [1.0, math.nan]}})
    assert validate_section(Loose, {"weights": {"a": [1.0, 2.0]}}).weights == {"a": [1.0, 2.0]}


def _fit(run_dir, epochs, poison_epoch=None, poison_row=40):
    model = tiny_regression()
    clean = regression_data()
    poisoned = regression_data(poison_from=poison_row)

    def make_train(epoch):
        return dataset(*(poisoned if epoch == poison_epoch else clean))

    return fit_epochs(
        RunDirectory(run_dir),
        model,
        make_train,
        dataset(*clean),
        epochs=epochs,
        patience=10,
        resume=False,
        verbose=0,
    )


def test_a_non_finite_loss_stops_training_naming_epoch_and_step_and_keeps_the_last_good_checkpoint(tmp_path):
    run = RunDirectory(tmp_path / "run")
    with pytest.raises(NonFiniteLossError) as failure:
        _fit(run.path, epochs=4, poison_epoch=2)  # rows 40.. of 64 are NaN: the third batch of 16
    message = str(failure.value)
    assert "non-finite at step 3 of epoch 3 (loss=nan)" in message
    assert f"last good checkpoint (epoch 2) is kept in {run.epoch_dir(1)}" in message
    assert run.latest_checkpoint() == run.epoch_dir(1)
    assert len(run.read_history()) == 2  # the broken epoch is not recorded
    state = json.loads((run.latest_checkpoint() / "state.json").read_text())
    assert state["next_epoch"] == 2 and math.isfinite(state["best_val_loss"])
    assert run.best_weights_path.is_file()


def test_a_non_finite_loss_in_the_first_epoch_says_no_checkpoint_exists(tmp_path):
    with pytest.raises(
        NonFiniteLossError, match="at step 1 of epoch 1 .*no epoch finished, so no checkpoint"
    ):
        _fit(tmp_path / "run", epochs=2, poison_epoch=0, poison_row=0)
    assert not (tmp_path / "run" / "best.weights.h5").exists()


def test_finite_training_is_not_stopped(tmp_path):
    state = _fit(tmp_path / "run", epochs=2)
    assert state.next_epoch == 2


@pytest.mark.parametrize(
    ("column", "what"),
    [((1, 0), "'jet_features' pt"), ((1, 2), "'jet_features' mass"), ((0, 2), "'particle_features' pt_rel")],
)
def test_input_files_with_negative_momenta_or_masses_are_rejected(tmp_path, column, what):
    jets = make_synthetic_jets(50, 30, seed=4)
    arrays = [jets.particles.copy(), jets.jets.copy()]
    which, feature = column
    if which == 1:
        arrays[1][7, feature] = -3.0
    else:
        arrays[0][7, 0, feature] = -0.1  # a real particle (slot 0 is always filled)
    write_jetnet_file(tmp_path / "t.hdf5", *arrays)
    with pytest.raises(
        JetNetFormatError, match=rf"t.hdf5: {what}.* is negative for 1 (jets|particles) \(first at"
    ):
        load_class(tmp_path, "t", 30)
    with pytest.raises(ValueError, match=r"is negative|pt_rel < 0"):  # the truth side of an evaluation
        load_comparison(tmp_path, [("gen", tmp_path)], classes="t", jets_per_class=10, truth_split="all")


def test_valid_input_files_still_load(tmp_path):
    jets = make_synthetic_jets(50, 30, seed=4)
    write_jetnet_file(tmp_path / "t.hdf5", jets.particles, jets.jets)
    particles, features = load_class(tmp_path, "t", 30)
    assert len(features) == 50 and np.all(features[:, [0, 2]] >= 0)


def test_a_class_whose_jets_are_all_empty_is_named_with_its_file(tmp_path):
    jets = make_synthetic_jets(20, 30, seed=4)
    particles, features = np.zeros_like(jets.particles), jets.jets.copy()
    features[:, 3] = 0
    write_jetnet_file(tmp_path / "w.hdf5", particles, features)
    with pytest.raises(JetNetFormatError, match=r"w.hdf5: all 20 jets are empty .* class w has nothing"):
        load_class(tmp_path, "w", 30)
