"""``ELBOModel``: the Keras side that every model of the family shares (the one-layer ``VAE``
today; learned priors and hierarchies later).

A subclass implements the model protocol (``protocol.LatentVariableModel``); this base trains
it on ``elbo_terms``. Per step it minimises the mean over the global batch of
``elbo_terms(x).loss`` (nats per example) and tracks the epoch means of ``loss``, ``elbo``,
``reconstruction`` and ``kl``. It owns the weight of the KL term (a variable a callback may
change without retracing) and the reparameterisation noise stream: a stateless seed
[base, step] saved with the weights, from which every replica draws the noise of the whole
global batch and keeps its own rows, so N replicas train exactly like one device and a resumed
run continues the same stream (Kingma & Welling 2014 for the estimator).
"""

import random
import warnings

import keras
import tensorflow as tf

from keras_vae import distribute, objectives
from keras_vae.config import DEFAULT_STEPS_PER_EXECUTION, check_kl_weight

# Keras' Model.compile takes steps_per_execution as its 7th positional argument.
_STEPS_PER_EXECUTION_POSITION = 6


class ELBOModel(keras.Model):
    """Base ``keras.Model`` whose ``train_step``/``test_step`` use ``self.elbo_terms``.

    A subclass builds its layers, then calls ``_add_training_state(kl_weight)`` (the order of
    creation fixes the order of the saved weights), and implements the protocol.
    """

    def _add_training_state(self, kl_weight):
        # "only_first_replica": a warm-up schedule assigns it inside the step, in every
        # replica, to the same value (set_kl_weight_schedule).
        self._kl_weight = self.add_weight(
            name="kl_weight", shape=(), trainable=False, aggregation="only_first_replica",
            initializer=keras.initializers.Constant(check_kl_weight(kl_weight)))
        self._kl_weight_schedule = None
        # [base seed, step] of the reparameterisation noise. Saved with the weights, so a
        # resumed run continues the same noise stream. "only_first_replica" lets every replica
        # of a MirroredStrategy step increment it once (see _layer_noise).
        self._noise_seed = self.add_weight(
            name="noise_seed", shape=(2,), dtype="int64", trainable=False,
            aggregation="only_first_replica",
            initializer=keras.initializers.Constant([random.randint(0, 2**31 - 1), 0]))
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.elbo_tracker = keras.metrics.Mean(name="elbo")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        # A hierarchy also logs each layer's share of the KL, "kl_z1", "kl_z2", ...
        self.layer_kl_trackers = ({name: keras.metrics.Mean(name=f"kl_{name}")
                                   for name in self.latent_sizes}
                                  if len(self.latent_sizes) > 1 else {})

    @property
    def kl_weight(self):
        """Current weight of the KL term (a Python float)."""
        return float(keras.ops.convert_to_numpy(self._kl_weight))

    @kl_weight.setter
    def kl_weight(self, value):
        self._kl_weight.assign(check_kl_weight(value))

    def set_kl_weight_schedule(self, schedule):
        """Computes the KL weight inside every training step as ``schedule(t)``, t the
        optimizer's step count before the step (an int64 tensor; a resumed run restores it),
        or with ``None`` stops doing so. Unlike setting ``kl_weight`` from a callback, this
        works with any ``steps_per_execution``: the callbacks run once per call, the schedule
        once per step. ``warmup.KLWarmUp(unit="steps")`` uses it. The training function is
        traced again when it already exists."""
        self._kl_weight_schedule = schedule
        if self.train_function is not None:
            self.make_train_function(force=True)

    # ----------------------------------------------------------------- training

    def compile(self, *args, **kwargs):
        """Keras' ``compile``; ``steps_per_execution`` (steps per tf.function call) defaults
        to ``DEFAULT_STEPS_PER_EXECUTION`` instead of 1 (1 with ``run_eagerly``).

        Callbacks then see a batch every that many steps (their ``batch`` argument is the
        last step of the call, their logs the epoch's running means); pass
        ``steps_per_execution=1`` for a callback that must run between every two steps.

        Under a tf.distribute strategy it is 1, with a warning when more were asked for:
        Keras 3.15 on TF 2.21 fails there with several steps per call, for any model
        ("You must feed a value for placeholder tensor 'while/cond/Placeholder'").
        """
        if len(args) > _STEPS_PER_EXECUTION_POSITION:  # given by position: Keras' own rules
            return super().compile(*args, **kwargs)
        steps = kwargs.get("steps_per_execution")
        distributed = self._distribute_strategy is not None or tf.distribute.has_strategy()
        if steps is None:
            eager = (args[_STEPS_PER_EXECUTION_POSITION - 1]
                     if len(args) == _STEPS_PER_EXECUTION_POSITION
                     else kwargs.get("run_eagerly"))
            steps = 1 if eager or distributed else DEFAULT_STEPS_PER_EXECUTION
        if steps > 1 and distributed:
            warnings.warn(f"steps_per_execution={steps} fails under a tf.distribute strategy "
                          f"(Keras 3.15, TF 2.21); training runs 1 step per call.",
                          stacklevel=2)
            steps = 1
        super().compile(*args, **{**kwargs, "steps_per_execution": steps})

    def compile_from_config(self, config):
        # Keras' own body: its version skips compile() on loading when a model overrides it.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def train_step(self, data):
        x = _features_of(data)
        if self._kl_weight_schedule is not None:
            self._kl_weight.assign(tf.cast(
                self._kl_weight_schedule(self.optimizer.iterations), self._kl_weight.dtype))
        with tf.GradientTape() as tape:
            terms = self.elbo_terms(x, training=True)
            # Sum over this replica's examples divided by the *global* batch size: Keras sums
            # the replicas' gradients, so this gives the mean over the global batch under any
            # number of replicas (DESIGN.md, trap 3).
            loss = tf.nn.compute_average_loss(terms.loss)
            if self.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(self.losses))
            scaled_loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        return self._update_metrics(terms)

    def test_step(self, data):
        return self._update_metrics(self.elbo_terms(_features_of(data), training=False))

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Overrides a Keras (3.15, TF backend) hook: under a strategy, fit and evaluate first
        # all-reduce the whole first batch across replicas only to trace the compiled loss and
        # metrics. That fails whenever the first batch splits unevenly (a validation set
        # smaller than the batch, say: "Inputs to operation AddN must have the same size", or
        # across workers "Shape mismatch in the collective instance"). The model is built at
        # construction and has no compiled loss or metrics, so only the optimizer is left.
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self):
        # Listing the trackers here makes Keras reset them every epoch and read the logged
        # values from them (epoch means over every replica), not from the last step.
        return [self.loss_tracker, self.elbo_tracker, self.reconstruction_tracker,
                self.kl_tracker, *self.layer_kl_trackers.values()]

    def _update_metrics(self, terms):
        self.loss_tracker.update_state(terms.loss)
        self.elbo_tracker.update_state(terms.elbo)
        self.reconstruction_tracker.update_state(terms.reconstruction)
        self.kl_tracker.update_state(terms.kl)
        for name, tracker in self.layer_kl_trackers.items():
            tracker.update_state(terms.layer_kl[name])
        results = {metric.name: metric.result() for metric in self.metrics}
        if distribute.is_multi_worker(tf.distribute.get_strategy()):
            # Keras reduces these across workers with reduce(MEAN, axis=0), which fails on
            # scalars ("Invalid reduction dimension 0", DESIGN.md trap 5); every replica holds
            # the same global value, so a shape-[1] copy reduces to that value.
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results

    def sample(self, num_samples, seed=None):
        """Means of p(x|z) for ``num_samples`` draws z ~ p(z) (``prior_distribution``, every
        layer): a tensor [num, *input_shape]. The same integer ``seed`` always gives the same
        images (stateless seed [seed, 0]), the ones an exported SavedModel's ``sample`` gives.
        """
        if seed is None:
            seed = random.randint(0, 2**31 - 1)
        z = self.prior_distribution().sample(
            int(num_samples), seed=tf.constant([int(seed), 0], tf.int32))
        return self.decode(z).mean()

    # ----------------------------------------------------------------- noise

    def _noise(self, batch_size, num_draws, seed=None):
        """eps ~ N(0, I) [num_draws, batch_size, total latent size]: the layers' noise
        (``_layer_noise``) side by side in ``latent_sizes`` order."""
        noise = list(self._layer_noise(batch_size, num_draws, seed).values())
        return noise[0] if len(noise) == 1 else tf.concat(noise, axis=-1)

    def _layer_noise(self, batch_size, num_draws, seed=None):
        """{layer name: eps ~ N(0, I) [num_draws, batch_size, size]}, in ``latent_sizes`` order.

        From the stateless ``seed`` when given (evaluation: reproducible, the stream
        untouched), else from the model's stream: the seed state [a, b], which every call
        advances by one step. Layer l draws stateless_normal([num_draws, rows, size]) at
        ``objectives.layer_seed(seed, l)``, so layer 0 draws what a one-layer model of that
        size draws, and seed [a, b] gives the noise the stream gives at state [a, b].

        From the stream every replica draws the noise of the whole global batch (rows =
        replicas * batch_size) and keeps its own rows, so example i of a global batch gets the
        same noise however many replicas share the batch: N replicas train exactly like one
        device (and unlike keras.random with a SeedGenerator, replicas do not reuse each
        other's noise, DESIGN.md trap 11). Uneven final batches may share a few rows between
        replicas; each example still gets a standard Normal draw.
        """
        start, rows, shared = 0, batch_size, False
        if seed is None:
            context = tf.distribute.get_replica_context()
            if context is not None:
                start = tf.cast(context.replica_id_in_sync_group, tf.int32) * batch_size
                rows = context.num_replicas_in_sync * batch_size
                shared = True
            seed = tf.identity(self._noise_seed)
            self._noise_seed.assign_add(tf.constant([0, 1], tf.int64))
        noise = {}
        for layer, (name, size) in enumerate(self.latent_sizes.items()):
            draws = tf.random.stateless_normal(
                [num_draws, rows, size], dtype=tf.float32,
                seed=tf.cast(objectives.layer_seed(seed, layer), tf.int32))
            noise[name] = draws[:, start:start + batch_size] if shared else draws
        return noise


def _features_of(data):
    """The x of a batch given as x, (x,), (x, y) or (x, y, sample_weight); labels are ignored."""
    x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
    return x
