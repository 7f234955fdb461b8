"""KL warm-up: the weight of the KL term rises from 0 to its target during training.

Two schedules of the training time t (epochs or optimizer steps), for a target weight beta:

    linear     beta(t) = beta * min(1, t / T)                       (Bowman et al. 2016)
    cyclical   beta(t) = beta * min(1, (t mod T) / (R * T))         (Fu et al. 2019)

T is the warm-up length (the cycle length for "cyclical"), R the fraction of each cycle spent
rising. t counts completed epochs or steps, so the first epoch (or step) trains with weight 0.
``KLWarmUp`` sets ``VAE.kl_weight`` before each epoch; by steps it hands the model the schedule
of t (``kl_weight_at_step``), which the model computes inside every training step from the
optimizer's step count (``ELBOModel.set_kl_weight_schedule``), so it works with several steps
per tf.function call. The epoch index and the step count are both restored on resume, so a
resumed run continues the schedule.
"""

import warnings

import keras

from keras_vae.config import KL_WARMUP_UNITS as UNITS  # noqa: F401
from keras_vae.config import KL_WARMUPS as SCHEDULES  # noqa: F401
from keras_vae.config import check_warmup


def linear_warmup(t, length, target=1.0):
    """beta * min(1, t / T); the target itself when T = 0."""
    return target if length <= 0 else target * min(1.0, t / length)


def cyclical_warmup(t, length, target=1.0, ratio=0.5):
    """beta * min(1, (t mod T) / (R T)): R T of rise, then (1 - R) T at beta, repeated."""
    return target * min(1.0, (t % length) / (ratio * length))


def kl_weight_at(schedule, t, length, target=1.0, ratio=0.5):
    """The KL weight of ``schedule`` ("none", "linear", "cyclical") at time t."""
    if schedule == "linear":
        return linear_warmup(t, length, target)
    if schedule == "cyclical":
        return cyclical_warmup(t, length, target, ratio)
    return target


def kl_weight_at_step(schedule, step, length, target=1.0, ratio=0.5):
    """``kl_weight_at`` of a step-count tensor, in graph ops (float64 arithmetic, so the
    float32 result equals ``kl_weight_at``'s value rounded to float32)."""
    t = keras.ops.cast(step, "float64")
    if schedule == "linear":
        return target * keras.ops.minimum(1.0, t / length) if length > 0 else \
            keras.ops.cast(target, "float64")
    if schedule == "cyclical":
        return target * keras.ops.minimum(1.0, keras.ops.mod(t, length) / (ratio * length))
    return keras.ops.cast(target, "float64")


class KLWarmUp(keras.callbacks.Callback):
    """Sets the model's KL weight from a warm-up schedule before every epoch or step, and logs
    it as ``kl_weight`` at the end of each epoch.

    Args:
        schedule: "linear" or "cyclical" ("none" keeps ``target``).
        length: T, in ``unit``s.
        unit: "epochs" (t = epoch index) or "steps" (t = the optimizer's step count).
        target: beta, the weight reached at the end of the warm-up.
        ratio: R, the rising fraction of each cycle ("cyclical" only).
    """

    def __init__(self, schedule="linear", length=10, unit="epochs", target=1.0, ratio=0.5):
        super().__init__()
        check_warmup(schedule, length, unit, ratio)
        self.schedule, self.length, self.unit = schedule, length, unit
        self.target, self.ratio = float(target), float(ratio)
        self._in_graph = False

    def _set(self, t):
        self.model.kl_weight = kl_weight_at(self.schedule, t, self.length, self.target,
                                            self.ratio)

    def weight_at_step(self, step):
        """The schedule's weight at the optimizer step count ``step`` (a tensor)."""
        return kl_weight_at_step(self.schedule, step, self.length, self.target, self.ratio)

    def on_train_begin(self, logs=None):
        self._in_graph = self.unit == "steps" and hasattr(self.model, "set_kl_weight_schedule")
        if self._in_graph:
            self.model.set_kl_weight_schedule(self.weight_at_step)
        elif self.unit == "steps" and getattr(self.model, "steps_per_execution", 1) > 1:
            warnings.warn(f"KLWarmUp by steps sets the weight once per call of "
                          f"{self.model.steps_per_execution} steps on a model without "
                          f"set_kl_weight_schedule; compile it with steps_per_execution=1 "
                          f"for a new weight every step.", stacklevel=2)

    def on_train_end(self, logs=None):
        if self._in_graph:
            self.model.set_kl_weight_schedule(None)

    def on_epoch_begin(self, epoch, logs=None):
        if self.unit == "epochs":
            self._set(epoch)

    def on_train_batch_begin(self, batch, logs=None):
        if self.unit == "steps" and not self._in_graph:
            self._set(int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["kl_weight"] = self.model.kl_weight
