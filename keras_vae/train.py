"""``fit(config, run_dir)``: the one training entry point behind ``kvae fit``.

It builds the model a ``TrainConfig`` describes (``build_model``, ``learning_rate``,
``warmup_callbacks``), trains it under the config's strategy with the run's callbacks
(``keras_vae.callbacks``), and leaves a run folder (``runs``: its layout; ``lifecycle``: the
``.partial`` folder, the lock, the resume rules). Its closing figures are those of
``kvae evaluate`` (``runs.test_metrics``, seed 0).
"""

import math
import pathlib
import re
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_vae import distribute, lifecycle, likelihoods, priors, runs, schedules, warmup
from keras_vae.callbacks import (EpochCheckpoint, HistoryWriter, LatentMonitor,
                                 StopOnNonFiniteLoss)
# Importable from here as before: train.TrainConfig, train.RunError, train.partial_dir, ...
from keras_vae.config import HIERARCHY_INFERENCE, TrainConfig  # noqa: F401
from keras_vae.config import check_architecture_accepts, resolve_hidden_units
from keras_vae.errors import RunError, TrainingDiverged, WorkerLost  # noqa: F401
from keras_vae.files import replace_directory, write_json_atomically
from keras_vae.model import VAE
from keras_vae.runs import load_splits, partial_dir  # noqa: F401
from keras_vae.versions import library_versions


def worker_lost(error, run_dir):
    """The WorkerLost to raise for ``error``, a tf.errors.OpError from a collective that
    TensorFlow's health check aborted because another worker stopped. Its message is a wall of
    text about the collective that was waiting; the one-line cause names the lost task when the
    message does, else it is the message's first informative line."""
    text = re.sub(r"\{\{.*?\}\}\s*", "", str(error))
    lost = re.search(r"unhealthy[^\n]*\n\s*(/job:\S+)", text)
    if lost:
        cause = f"{lost.group(1)} stopped sending heartbeats"
    else:  # the first informative line ("Graph execution error:" heads some of them)
        cause = next((line.strip() for line in text.splitlines()
                      if line.strip() and not line.strip().endswith(":")), type(error).__name__)
    return WorkerLost(f"A worker of this multi-worker job stopped ({cause}). The last completed "
                      f"epoch is saved in {runs.partial_dir(run_dir)}: start every worker "
                      f"again with the same command plus --resume.")


def learning_rate(config, steps_per_epoch):
    """Adam's learning rate: the constant ``config.learning_rate``, or with "cosine" a
    schedule that starts there and decays to 0 along half a cosine over all training steps,
    lr(t) = lr * (1 + cos(pi * t / T)) / 2, T = epochs * steps_per_epoch, or with "burda"
    the stages of ``schedules.BurdaStages``. A schedule reads
    the optimizer's step count, which checkpoints restore, so a resumed run continues it."""
    if config.learning_rate_schedule == "constant":
        return config.learning_rate
    if config.learning_rate_schedule == "burda":
        return schedules.BurdaStages(config.learning_rate, steps_per_epoch)
    return keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=config.epochs * steps_per_epoch)


def warmup_callbacks(config):
    """[KLWarmUp] when the config asks for a KL warm-up, else []."""
    if config.kl_warmup == "none":
        return []
    return [warmup.KLWarmUp(config.kl_warmup, config.kl_warmup_length,
                            config.kl_warmup_unit, target=config.kl_weight,
                            ratio=config.kl_warmup_ratio)]


def build_model(config, image_shape, steps_per_epoch=1):
    """The model a config describes (``config.model``: ``VAE`` or ``HierarchicalVAE``),
    compiled with Adam (see ``learning_rate``). Its prior is
    ``config.prior`` with ``config.prior_components`` (``priors.build_prior``), over data of
    ``image_shape`` in the range the likelihood says (``priors.data_range_of``)."""
    top = config.latent_dims[-1] if config.latent_dims else config.latent_dim
    prior = priors.build_prior(
        config.prior, top, config.prior_components, input_shape=image_shape,
        data_range=priors.data_range_of(likelihoods.head_class(config.likelihood)))
    common = dict(input_shape=image_shape, prior=prior, likelihood=config.likelihood,
                  architecture=config.architecture, hidden_units=config.hidden_units,
                  activation=config.activation, kl_weight=config.kl_weight,
                  objective=config.objective, iw_samples=config.iw_samples,
                  free_bits=config.free_bits, free_bits_groups=config.free_bits_groups)
    if config.model == "vae":
        model = VAE(latent_dim=config.latent_dim, **common)
    else:
        from keras_vae.hierarchy import HierarchicalVAE

        model = HierarchicalVAE(latent_dims=config.latent_dims,
                                latent_hidden_units=config.latent_hidden_units,
                                inference=HIERARCHY_INFERENCE[config.model],
                                merge=config.merge, **common)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate(config, steps_per_epoch),
                                                  epsilon=config.adam_epsilon),
                  jit_compile=config.jit_compile,
                  steps_per_execution=config.steps_per_execution)
    return model


def fit(config, run_dir, resume=False, overwrite=False, verbose=1, callbacks=(),
        replace_protected=False):
    """Trains the VAE of ``config`` into ``run_dir``; returns the test metrics (nats).

    The metrics are ``kvae evaluate``'s without importance sampling (``runs.test_metrics``,
    seed 0): the same figures for the same model. ``config.data_dir`` is stored absolute.
    ``replace_protected`` allows ``overwrite``/``resume`` of a protected run (runs.py).

    Runs under ``config.strategy`` (distribute.py) and ``config.precision``. Under a
    multi-worker strategy every worker calls this with the same arguments; only the chief
    writes ``run_dir`` (holding its lock, ``lifecycle.locked``), and with ``resume`` every
    worker restores the chief's last checkpoint, so ``run_dir`` must be on storage that every
    worker can read.

    Raises RunError, data.DataError, distribute.DistributeError or ValueError for unusable
    input before training starts, TrainingDiverged (after saving the last good weights in
    the .partial folder) when the loss becomes non-finite, and WorkerLost when another worker
    of a multi-worker job stops (the run is resumable from its last completed epoch).
    """
    strategy = distribute.make_strategy(config.strategy)  # first: before any op (trap 5)
    previous_policy = distribute.set_precision(config.precision)
    run_dir = pathlib.Path(run_dir)
    config = lifecycle.with_absolute_data_dir(config)
    try:
        if not distribute.is_chief(strategy):
            return _fit_as_worker(strategy, config, run_dir, resume, verbose, callbacks)
        # Refusals first, before the lock or the data: they must leave nothing behind.
        lifecycle.check_target(run_dir, resume, overwrite, replace_protected)
        with lifecycle.locked(run_dir):
            splits = _load_data(config)
            working = lifecycle.prepare_run_dir(config, run_dir, resume, overwrite,
                                                replace_protected)
            metrics = _train(strategy, config, splits, working, run_dir, None, verbose,
                             callbacks)
            # Only now: until the run is in place, a kill must leave a checkpoint to resume
            # from.
            _replace(working, run_dir, replace_protected)
            return metrics
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _load_data(config):
    # Before the pipelines: their op seeds combine with the global seed, so a fit must not
    # depend on whether an earlier fit in this process had set it.
    keras.utils.set_random_seed(config.seed)
    splits = runs.load_splits(config)
    check_architecture_accepts(config.architecture, splits.image_shape, resolve_hidden_units(
        config.architecture, config.hidden_units))  # before any folder is made
    if config.decoder_bias == "data-mean":  # so is this head's refusal, if it has no formula
        likelihoods.head_class(config.likelihood).output_bias_for_mean(splits.train_mean)
    return splits


def _fit_as_worker(strategy, config, run_dir, resume, verbose, callbacks):
    """A worker other than the chief makes the same saves (they may involve collectives),
    into its own temporary folder, deleted at the end: only the chief writes run_dir."""
    splits = _load_data(config)
    working = pathlib.Path(tempfile.mkdtemp(prefix="kvae-worker-"))
    try:
        restore_from = (lifecycle.worker_restore_point(config, run_dir, working)
                        if resume else None)
        return _train(strategy, config, splits, working, run_dir, restore_from, verbose,
                      callbacks)
    finally:
        shutil.rmtree(working, ignore_errors=True)


def _replace(working, run_dir, replace_protected):
    """Puts the complete run in place of ``run_dir`` and drops its checkpoints."""
    replace_directory(working, run_dir, replace_protected)
    shutil.rmtree(run_dir / runs.BACKUP, ignore_errors=True)


def _fit_model(model, config, splits, working, initial_epoch, verbose, checkpoint, others):
    """model.fit on the splits with the run's callbacks, then ``others``."""
    model.fit(
        splits.train, validation_data=splits.validation if splits.num_validation else None,
        epochs=config.epochs, initial_epoch=initial_epoch, verbose=verbose,
        shuffle=False,  # the pipeline shuffles
        callbacks=[
            *warmup_callbacks(config),  # first: the others see the epoch's kl_weight
            *([keras.callbacks.TensorBoard(str(working / runs.LOGS), write_graph=False,
                                           profile_batch=0)] if config.tensorboard else []),
            # Histories before the checkpoint: a kill between them then repeats the epoch
            # (its rows are replaced on resume) instead of checkpointing an unrecorded epoch.
            HistoryWriter(working / runs.HISTORY, initial_epoch),
            # After history.csv and Keras' TensorBoard: the active units it adds to the
            # epoch's logs are for the epoch line (``others``), not for them.
            latent_monitor(config, splits, working, initial_epoch),
            checkpoint,
            *others,
        ])


def latent_monitor(config, splits, working, initial_epoch):
    """The run's ``LatentMonitor``: KL per latent dimension and active units on the first
    validation images (test images when there is no validation split) each epoch, into
    latent_history.csv, the epoch's logs and, unless ``config.tensorboard`` is off, logs/."""
    source = splits.validation if splits.num_validation else splits.test
    # The whole split, read once: a partial read of its cached pipeline would be discarded.
    images = np.concatenate([np.asarray(batch) for batch in source])
    return LatentMonitor(images, log_dir=working / runs.LOGS if config.tensorboard else None,
                         history_file=working / runs.LATENT_HISTORY,
                         initial_epoch=initial_epoch)


def _train(strategy, config, splits, working, run_dir, restore_from, verbose, callbacks):
    """Trains into ``working`` (restoring ``restore_from``, default working/backup); returns
    the test metrics once working holds the complete run."""
    write_json_atomically(working / runs.CONFIG, {
        "train": config.to_json(), "versions": library_versions(),
        "data": {"image_shape": list(splits.image_shape), "num_train": splits.num_train,
                 "num_validation": splits.num_validation, "num_test": splits.num_test,
                 "num_replicas": strategy.num_replicas_in_sync}})
    keras.utils.set_random_seed(config.seed)  # again: the initial weights must not depend on
    # what loading the data drew from the random streams
    checkpoint = EpochCheckpoint(working / runs.BACKUP, restore_from=restore_from)
    with strategy.scope():
        model = build_model(config, splits.image_shape,
                            steps_per_epoch=math.ceil(splits.num_train / config.batch_size))
        initial_epoch = checkpoint.restore(model)
    if config.decoder_bias == "data-mean" and initial_epoch == 0:  # a resumed run: as trained
        model.decoder.start_output_bias(splits.train_mean)
    guard = StopOnNonFiniteLoss()
    try:
        _fit_model(model, config, splits, working, initial_epoch, verbose, checkpoint,
                   [guard, *callbacks])
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as error:
        if not distribute.is_multi_worker(strategy):
            raise
        raise worker_lost(error, run_dir) from None
    if guard.failed_epoch is not None:
        model.save(working / runs.LAST_GOOD)
        raise TrainingDiverged(
            f"The loss became NaN or infinite in epoch {guard.failed_epoch}; the weights of "
            f"the last good epoch are in {runs.partial_dir(run_dir) / runs.LAST_GOOD}. Lower "
            f"the learning rate and start again.")
    model.save(working / runs.MODEL)
    metrics, _ = runs.test_metrics(model, splits.test)
    # The figures of the summary; per-dimension KL and active units: kvae evaluate.
    return {name: value for name, value in metrics.items()
            if name not in ("kl_per_dimension", "active_units")}
