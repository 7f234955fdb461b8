"""Learning-rate schedules that ``kvae fit`` offers beyond Keras' own (constant, cosine).

Registered with Keras, so a ``.keras`` file whose optimizer uses one loads after
``import keras_vae``.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_vae")
class BurdaStages(keras.optimizers.schedules.LearningRateSchedule):
    """The learning-rate stages of Burda et al. 2016 (sec. 5.1): stage i = 0, 1, ... lasts
    3^i epochs at lr * 10^(-i/7), so stage i starts at epoch (3^i - 1) / 2 (0, 1, 4, 13, 40,
    121, 364, 1093; stages 0..7 make their 3,280 epochs, stages 0..4 make 121)."""

    def __init__(self, initial_learning_rate, steps_per_epoch):
        self.initial_learning_rate = float(initial_learning_rate)
        self.steps_per_epoch = int(steps_per_epoch)

    def __call__(self, step):
        epoch = tf.cast(step, tf.int64) // self.steps_per_epoch
        starts = tf.constant([(3**i - 1) // 2 for i in range(1, 8)], tf.int64)
        stage = tf.reduce_sum(tf.cast(epoch >= starts, tf.float32))
        return self.initial_learning_rate * tf.pow(10.0, -stage / 7.0)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "steps_per_epoch": self.steps_per_epoch}
