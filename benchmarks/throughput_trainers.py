"""The trainers that ``throughput.py`` times side by side: the same 784-500-500-(2x50) MLP VAE
(ReLU, Bernoulli likelihood, one reparameterised draw, analytic KL, Adam 1e-3) as keras-vae's
``compile()`` defaults, ``kvae fit``'s model, a hand-written Keras 3 VAE and a PyTorch loop,
each on random binary 28x28 images held in memory. Frameworks are imported inside the
functions: a worker process imports only the one it times (and sets its threads first).
"""

import time

INPUT_DIM, HIDDEN, LATENT_DIM = 784, (500, 500), 50


def random_binary_images(num, seed=0):
    import numpy as np

    return (np.random.default_rng(seed).random((num, 28, 28, 1)) > 0.5).astype("float32")


def in_memory_batches(images, batch_size):
    """Images held as tensors, batched, cached and repeated: the input costs nothing."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(images.astype("float32"))
    return dataset.batch(batch_size, drop_remainder=True).cache().repeat().prefetch(2)


# ------------------------------------------------------------------ the trainers


def keras_vae_model(batch_size):
    """kv.VAE with compile()'s defaults: what a user of the Python API gets."""
    import keras

    import keras_vae as kv

    model = kv.VAE(input_shape=(28, 28, 1), latent_dim=LATENT_DIM, hidden_units=HIDDEN)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def kvae_fit_model(batch_size):
    """The model and compile() of ``kvae fit`` with a default TrainConfig."""
    from keras_vae import train

    config = train.TrainConfig(batch_size=batch_size)
    return train.build_model(config, (28, 28, 1), steps_per_epoch=55_000 // batch_size)


def hand_written_keras_model(batch_size):
    """A Keras 3 VAE as a user would write it from the Keras examples, compiled with Keras'
    defaults."""
    import keras
    import tensorflow as tf

    class HandWrittenVAE(keras.Model):
        def __init__(self):
            super().__init__()
            self.encoder = keras.Sequential(
                [keras.layers.Flatten()] + [keras.layers.Dense(u, "relu") for u in HIDDEN]
                + [keras.layers.Dense(2 * LATENT_DIM)])
            self.decoder = keras.Sequential(
                [keras.layers.Dense(u, "relu") for u in HIDDEN[::-1]]
                + [keras.layers.Dense(INPUT_DIM)])
            self.loss_tracker = keras.metrics.Mean(name="loss")

        def call(self, x):
            loc, _ = tf.split(self.encoder(x), 2, axis=-1)
            return self.decoder(loc)

        def train_step(self, x):
            with tf.GradientTape() as tape:
                loc, raw_scale = tf.split(self.encoder(x), 2, axis=-1)
                scale = tf.nn.softplus(raw_scale) + 1e-5
                z = loc + scale * tf.random.normal(tf.shape(loc))
                logits = self.decoder(z)
                labels = tf.reshape(x, [-1, INPUT_DIM])
                reconstruction = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(
                    labels=labels, logits=logits), axis=-1)
                kl = 0.5 * tf.reduce_sum(tf.square(scale) + tf.square(loc) - 1
                                         - 2 * tf.math.log(scale), axis=-1)
                loss = tf.reduce_mean(reconstruction + kl)
            gradients = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply(gradients, self.trainable_variables)
            self.loss_tracker.update_state(loss)
            return {"loss": self.loss_tracker.result()}

        @property
        def metrics(self):
            return [self.loss_tracker]

    model = HandWrittenVAE()
    model.build((None, 28, 28, 1))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


class KerasTrainer:
    """Times model.fit on in-memory batches: examples/s of one window of about ``seconds``."""

    def __init__(self, make_model, batch_size):
        import keras

        keras.utils.set_random_seed(0)
        self.model = make_model(batch_size)
        self.batch_size = batch_size
        self.dataset = in_memory_batches(random_binary_images(10 * batch_size), batch_size)
        self.unit = getattr(self.model, "steps_per_execution", 1)
        self.seconds_per_step = self._fit(self._round(200))  # trace, warm up, calibrate

    def _round(self, steps):
        return max(self.unit, int(round(steps / self.unit)) * self.unit)

    def _fit(self, steps):
        start = time.perf_counter()
        self.model.fit(self.dataset, epochs=1, steps_per_epoch=steps, verbose=0,
                       shuffle=False)
        return (time.perf_counter() - start) / steps

    def examples_per_second(self, seconds):
        steps = self._round(max(20, seconds / self.seconds_per_step))
        self.seconds_per_step = self._fit(steps)
        return self.batch_size / self.seconds_per_step


class TorchTrainer:
    """The same VAE in PyTorch: a plain loop over in-memory batches, Adam 1e-3."""

    def __init__(self, batch_size):
        import torch
        from torch import nn

        torch.manual_seed(0)
        self.torch, self.batch_size = torch, batch_size
        self.encoder = nn.Sequential(nn.Linear(INPUT_DIM, HIDDEN[0]), nn.ReLU(),
                                     nn.Linear(HIDDEN[0], HIDDEN[1]), nn.ReLU(),
                                     nn.Linear(HIDDEN[1], 2 * LATENT_DIM))
        self.decoder = nn.Sequential(nn.Linear(LATENT_DIM, HIDDEN[1]), nn.ReLU(),
                                     nn.Linear(HIDDEN[1], HIDDEN[0]), nn.ReLU(),
                                     nn.Linear(HIDDEN[0], INPUT_DIM))
        self.optimizer = torch.optim.Adam(
            [*self.encoder.parameters(), *self.decoder.parameters()], lr=1e-3)
        images = random_binary_images(10 * batch_size).reshape(10, batch_size, INPUT_DIM)
        self.batches = torch.from_numpy(images)
        self.seconds_per_step = self._train(200)

    def _step(self, x):
        functional = self.torch.nn.functional
        loc, raw_scale = self.encoder(x).chunk(2, dim=-1)
        scale = functional.softplus(raw_scale) + 1e-5
        z = loc + scale * self.torch.randn_like(loc)
        logits = self.decoder(z)
        reconstruction = functional.binary_cross_entropy_with_logits(
            logits, x, reduction="none").sum(-1)
        kl = 0.5 * (scale.square() + loc.square() - 1 - 2 * scale.log()).sum(-1)
        loss = (reconstruction + kl).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def _train(self, steps):
        start = time.perf_counter()
        total = 0.0
        for step in range(steps):
            total = total + self._step(self.batches[step % len(self.batches)])
        float(total)  # as Keras logs the loss
        return (time.perf_counter() - start) / steps

    def examples_per_second(self, seconds):
        self.seconds_per_step = self._train(max(20, int(seconds / self.seconds_per_step)))
        return self.batch_size / self.seconds_per_step
