"""Fast by default (issue 20): the number of training steps per tf.function call that
``VAE.compile`` and ``kvae fit`` choose, where they fall back, and the features that must
keep working with it: the NaN stop (a non-finite loss in the middle of a call), the data
checks (bad data in a later batch of a call), validation. The KL warm-up by steps:
test_warmup.py; the checkpoint, resume and progress under the default: test_train.py,
test_lifecycle.py, test_cli_resume.py, test_epoch_progress.py (they train with it)."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae as kv
from keras_vae import distribute
from keras_vae.callbacks import StopOnNonFiniteLoss
from keras_vae.config import DEFAULT_STEPS_PER_EXECUTION, TrainConfig


def _tiny_vae(**options):
    keras.utils.set_random_seed(3)
    return kv.VAE(input_shape=(8, 8, 1), latent_dim=2, hidden_units=(8,), **options)


def test_compile_chooses_many_steps_per_call_unless_told():
    assert DEFAULT_STEPS_PER_EXECUTION > 1
    model = _tiny_vae()
    model.compile(optimizer="adam")
    assert model.steps_per_execution == DEFAULT_STEPS_PER_EXECUTION
    model.compile(optimizer="adam", steps_per_execution=3)
    assert model.steps_per_execution == 3
    model.compile(optimizer="adam", run_eagerly=True)  # a loop of Python steps gains nothing
    assert model.steps_per_execution == 1
    assert TrainConfig().steps_per_execution == DEFAULT_STEPS_PER_EXECUTION


def test_a_saved_model_keeps_its_steps_per_call(tmp_path):
    model = _tiny_vae()
    model.compile(optimizer="adam", steps_per_execution=7)
    model.save(tmp_path / "model.keras")
    assert keras.models.load_model(tmp_path / "model.keras").steps_per_execution == 7


def test_under_a_strategy_training_falls_back_to_one_step_per_call_saying_why():
    if len(tf.config.list_logical_devices("CPU")) < 2:
        pytest.skip("needs the 2 logical CPUs that conftest configures before TF starts")
    strategy = distribute.make_strategy("mirrored")
    with strategy.scope():
        model = _tiny_vae()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model.compile(optimizer="adam")  # the default: silently 1
        assert model.steps_per_execution == 1
        with pytest.warns(UserWarning, match="steps_per_execution=100 fails under a "
                                             "tf.distribute strategy.*1 step per call"):
            model.compile(optimizer="adam", steps_per_execution=100)
        assert model.steps_per_execution == 1
    x = np.random.default_rng(0).random((32, 8, 8, 1)).astype("float32")
    history = model.fit(tf.data.Dataset.from_tensor_slices(x).batch(8), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


class _Steps(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(batch)


def _normal_data_with_a_huge_value(batch_index, batch_size=8, num=48):
    """Finite data that pass the data checks, with one value so large in batch
    ``batch_index`` that the Normal log-likelihood overflows: an infinite loss there."""
    x = np.random.default_rng(0).normal(size=(num, 8, 8, 1)).astype("float32")
    x[batch_index * batch_size, 0, 0, 0] = 1e30
    return x


@pytest.mark.parametrize("steps_per_execution, calls, failed_steps", [
    (None, 1, (1, 6)),  # the default: the whole epoch of 6 steps in one call
    (2, 2, (3, 4)),  # caught at the end of the second call, which ran steps 3 and 4
])
def test_a_non_finite_loss_inside_a_call_stops_training_with_the_good_weights(
        steps_per_execution, calls, failed_steps):
    model = _tiny_vae(likelihood="normal")
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  **({} if steps_per_execution is None else
                     {"steps_per_execution": steps_per_execution}))
    x = _normal_data_with_a_huge_value(batch_index=3)
    model.fit(x[:8], batch_size=8, epochs=1, verbose=0, shuffle=False)  # epoch 1: finite
    weights_after_epoch_1 = model.get_weights()

    guard, steps = StopOnNonFiniteLoss(), _Steps()
    history = model.fit(x, batch_size=8, epochs=3, initial_epoch=1, verbose=0, shuffle=False,
                        callbacks=[guard, steps])
    assert guard.failed_epoch == 2 and guard.failed_steps == failed_steps
    assert len(steps.calls) == calls  # it stopped at the end of that call: no later one ran
    assert len(history.history.get("loss", [])) <= 1
    for restored, kept in zip(model.get_weights(), weights_after_epoch_1):
        np.testing.assert_array_equal(restored, kept)


def test_bad_data_in_a_later_batch_of_a_call_still_fails_clearly():
    x = np.random.default_rng(0).random((64, 8, 8, 1)).astype("float32")
    x[45] *= 255.0  # batch 5 of 8 in the one call of the epoch
    model = _tiny_vae()
    model.compile(optimizer="adam")
    assert model.steps_per_execution >= 8
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"needs data in \[0, 1\]"):
        model.fit(x, batch_size=8, epochs=1, verbose=0, shuffle=False)
    x[45] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or inf in its input data"):
        model.fit(x, batch_size=8, epochs=1, verbose=0, shuffle=False)


def test_validation_and_evaluate_run_many_steps_per_call_to_the_same_figures():
    x = np.random.default_rng(0).random((40, 8, 8, 1)).astype("float32")
    model = _tiny_vae()
    model.compile(optimizer="adam")
    many = model.evaluate(x, batch_size=8, verbose=0, return_dict=True)
    model.compile(optimizer="adam", steps_per_execution=1)
    one = model.evaluate(x, batch_size=8, verbose=0, return_dict=True)
    # test_step draws from the model's noise stream, which each evaluation advances: the
    # figures agree in distribution, and the KL (no noise) exactly
    np.testing.assert_allclose(many["kl"], one["kl"], rtol=1e-6)


def test_kvae_fit_warms_up_by_steps_with_its_default_steps_per_call(idx_folder, tmp_path):
    """kvae fit refused a warm-up by steps with several steps per call; now the default
    trains it, each step with its own weight (the weight logged at an epoch's end is the
    one its last step used: t = 5 and t = 11 of 6 steps per epoch)."""
    from keras_vae import train
    from tests.helpers import csv_rows, tiny_train_config

    config = tiny_train_config(idx_folder, kl_warmup="linear", kl_warmup_length=8,
                               kl_warmup_unit="steps")
    assert config.steps_per_execution == DEFAULT_STEPS_PER_EXECUTION
    train.fit(config, tmp_path / "run", verbose=0)
    rows = csv_rows(tmp_path / "run" / "history.csv")
    np.testing.assert_allclose([float(r["kl_weight"]) for r in rows], [5 / 8, 1.0], rtol=1e-6)
