"""KL warm-up: the schedules' formulas, and the weight and loss they give inside model.fit."""

import keras
import numpy as np
import pytest

import keras_vae as kv
from keras_vae import warmup


def test_linear_schedule_rises_to_the_target_then_stays():
    values = [warmup.linear_warmup(t, 4, target=2.0) for t in range(7)]
    np.testing.assert_allclose(values, [0.0, 0.5, 1.0, 1.5, 2.0, 2.0, 2.0])


def test_cyclical_schedule_repeats_rise_and_plateau():
    values = [warmup.cyclical_warmup(t, 4, target=1.0, ratio=0.5) for t in range(9)]
    np.testing.assert_allclose(values, [0, 0.5, 1, 1, 0, 0.5, 1, 1, 0])
    thirds = [warmup.cyclical_warmup(t, 6, target=3.0, ratio=1 / 3) for t in range(6)]
    np.testing.assert_allclose(thirds, [0, 1.5, 3, 3, 3, 3])


@pytest.mark.parametrize("arguments, message", [
    (("sigmoid", 3, "epochs", 0.5), "Unknown kl_warmup .sigmoid.: expected one of"),
    (("linear", 0, "epochs", 0.5), "kl_warmup_length must be a positive"),
    (("linear", 3, "minutes", 0.5), "Unknown kl_warmup_unit .minutes.: expected one of"),
    (("cyclical", 3, "steps", 0.0), "kl_warmup_ratio must lie in"),
])
def test_bad_warmup_options_name_the_problem(arguments, message):
    with pytest.raises(ValueError, match=message):
        warmup.check_warmup(*arguments)


def _frozen_tiny_vae(**compile_options):
    keras.utils.set_random_seed(0)  # the same weights and noise stream every time
    model = kv.VAE(input_shape=(8, 8, 1), latent_dim=4, hidden_units=(16,), kl_weight=2.0)
    model.compile(optimizer=keras.optimizers.SGD(0.0), **compile_options)
    return model


def test_epoch_warmup_sets_the_weight_and_the_loss_follows_it(structured_data):
    model = _frozen_tiny_vae()
    history = model.fit(structured_data[0][:64], batch_size=16, epochs=6, verbose=0,
                        callbacks=[warmup.KLWarmUp("linear", 4, "epochs", target=2.0)]).history
    np.testing.assert_allclose(history["kl_weight"], [0.0, 0.5, 1.0, 1.5, 2.0, 2.0])
    # loss = reconstruction + beta_epoch * kl, epoch by epoch (means of per-example terms).
    expected = np.array(history["reconstruction"]) + np.array(history["kl_weight"]) * np.array(
        history["kl"])
    np.testing.assert_allclose(history["loss"], expected, rtol=1e-5)
    assert history["kl"][0] > 0.1  # the KL exists; only its weight was 0


class _WeightRecorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_train_batch_end(self, batch, logs=None):
        self.weights.append(self.model.kl_weight)


class _SetWeightBeforeEveryStep(keras.callbacks.Callback):
    """The reference: a Python callback that sets the weight of step t before it runs."""

    def on_train_batch_begin(self, batch, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self.model.kl_weight = warmup.cyclical_warmup(step, 6, 2.0, 0.5)


def test_step_warmup_follows_the_optimizer_step_count(structured_data):
    model = _frozen_tiny_vae(steps_per_execution=1)
    recorder = _WeightRecorder()
    model.fit(structured_data[0][:64], batch_size=16, epochs=3, verbose=0,
              callbacks=[warmup.KLWarmUp("cyclical", 6, "steps", target=2.0, ratio=0.5),
                         recorder])
    # The weight step t trained with (t = completed steps before it), read after the step.
    expected = [warmup.cyclical_warmup(step, 6, 2.0, 0.5) for step in range(12)]
    np.testing.assert_allclose(recorder.weights, expected)
    np.testing.assert_allclose(recorder.weights[:6], [0, 2 / 3, 4 / 3, 2, 2, 2], rtol=1e-6)


def test_step_warmup_inside_many_step_calls_trains_as_one_step_per_call(structured_data):
    """With the default of many steps per call, callbacks run once per call; the schedule,
    computed inside every step, still gives each step its own weight: the per-epoch losses
    equal those of a Python callback setting the weight before every single step."""
    data = structured_data[0][:64]
    reference = _frozen_tiny_vae(steps_per_execution=1)
    expected = reference.fit(data, batch_size=8, epochs=3, verbose=0, shuffle=False,
                             callbacks=[_SetWeightBeforeEveryStep()]).history
    model = _frozen_tiny_vae()
    assert model.steps_per_execution > 8  # a whole epoch (8 steps) in one call
    recorder = _WeightRecorder()
    history = model.fit(data, batch_size=8, epochs=3, verbose=0, shuffle=False,
                        callbacks=[warmup.KLWarmUp("cyclical", 6, "steps", target=2.0,
                                                   ratio=0.5), recorder]).history
    assert len(recorder.weights) == 3  # one call per epoch
    # the losses differ from step to step only through the weight: a constant weight (the
    # schedule evaluated once per call) would give other epoch means
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=1e-6)
    np.testing.assert_allclose(recorder.weights, [warmup.cyclical_warmup(t, 6, 2.0, 0.5)
                                                  for t in (7, 15, 23)], rtol=1e-6)


def test_step_warmup_schedule_in_graph_ops_equals_the_python_formula():
    steps = np.arange(0, 40)
    for schedule, length, ratio in (("linear", 7, 0.5), ("cyclical", 6, 1 / 3),
                                    ("cyclical", 5, 0.5), ("none", 3, 0.5)):
        in_graph = keras.ops.convert_to_numpy(
            warmup.kl_weight_at_step(schedule, steps, length, 2.5, ratio))
        np.testing.assert_allclose(in_graph, [warmup.kl_weight_at(schedule, t, length, 2.5, ratio)
                                              for t in steps], rtol=1e-12)
