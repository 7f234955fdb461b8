"""The ``kvae`` command: parse, validate, call one library function, print the result.

Bad input ends with one line, ``Error: <what is wrong and how to fix it>``, and a non-zero
exit status; never a traceback.
"""

import os
import sys
import warnings

import click


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    return f"Warning: {message}\n"


warnings.formatwarning = _one_line_warning


def _examples(*lines):
    return "\n\n\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="keras-vae", prog_name="kvae")
def cli():
    """keras-vae: variational autoencoders for TensorFlow.

    Every figure is in nats per example (summed over pixels, averaged over examples).
    """


def _parse_hidden_units(context, parameter, value):
    if value is None:
        return None
    try:
        units = tuple(int(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers "
                                 f"such as 200,200.") from None
    if not units or min(units) <= 0:
        raise click.BadParameter(f"{value!r}: every size must be a positive integer.")
    return units


def _default_output(config, resume, overwrite):
    """(run directory, notice): saved_models/<dataset>-<likelihood>-<architecture>, numbered
    -2, -3, ... past the names that already hold a run (the shipped
    saved_models/mnist-bernoulli-mlp is one), so that a new ``kvae fit`` never stops on an
    earlier run; the notice says so, or is None. --resume and --overwrite take the last name
    in use, the run most recently started there, and the notice names it: either may end by
    replacing that run."""
    import itertools

    from keras_vae.train import partial_dir

    base = os.path.join("saved_models", f"{config.dataset}-{config.likelihood}-"
                                        f"{config.architecture}")
    in_use = None
    for number in itertools.count(1):
        name = base if number == 1 else f"{base}-{number}"
        if not (os.path.exists(name) or partial_dir(name).exists()):
            break
        in_use = name
    if (resume or overwrite) and in_use is None:
        return base, None
    if resume or overwrite:
        return in_use, (f"--{'resume' if resume else 'overwrite'} without --output: "
                        f"{'continuing' if resume else 'replacing'} {in_use}, the last run "
                        f"of this name.")
    if in_use is not None:
        return name, f"{base} holds a run already; this one goes to {name}."
    return name, None


def _say_when_training_starts(notice):
    """A callback that prints ``notice`` to stderr as training starts: after every check of the
    options, so that an error stays the only line."""
    import keras

    class Notice(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            click.echo(notice, err=True)

    return [Notice()] if notice else []


@cli.command(epilog=_examples(
    "kvae fit --dataset mnist",
    "kvae fit --dataset mnist --data-dir ../shared/data/mnist --epochs 10",
    "kvae fit --dataset fashion_mnist --architecture conv --latent-dim 16",
    "kvae fit --dataset mnist --output saved_models/run1 --resume",
    "kvae fit --dataset mnist --objective iwae --iw-samples 5 --kl-warmup linear",
    "kvae fit --dataset mnist --strategy mirrored --batch-size 256",
    "TF_CONFIG='{...}' kvae fit --dataset mnist --strategy multi-worker --output /shared/run"))
@click.option("--dataset", default="mnist", show_default=True,
              help="TFDS image dataset name (mnist, fashion_mnist, kmnist, cifar10, ...).")
@click.option("--data-dir", type=click.Path(), default=None,
              help="Local data: a folder of MNIST IDX files, an .npz, or a folder of images.")
@click.option("--likelihood", type=click.Choice(["bernoulli", "normal"]), default="bernoulli",
              show_default=True)
@click.option("--architecture", type=click.Choice(["mlp", "conv"]), default="mlp",
              show_default=True)
@click.option("--latent-dim", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--hidden-units", default=None, callback=_parse_hidden_units,
              help="Comma-separated layer sizes (mlp) or filter counts (conv) "
                   "[default: 500,500 for mlp, 32,64 for conv].")
@click.option("--activation", default="relu", show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=50, show_default=True,
              help="Global batch (split across replicas under a --strategy).")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=1e-3,
              show_default=True)
@click.option("--learning-rate-schedule", type=click.Choice(["constant", "cosine", "burda"]),
              default="cosine", show_default=True,
              help="cosine: decay the learning rate to 0 over the run (half a cosine); "
                   "burda: stage i of 3^i epochs at lr * 10^(-i/7) (Burda et al. 2016).")
@click.option("--adam-epsilon", type=click.FloatRange(min=0, min_open=True), default=1e-7,
              show_default=True, help="Adam's epsilon (Burda et al. used 1e-4).")
@click.option("--kl-weight", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Weight of the KL term (beta); 1 trains on the ELBO.")
@click.option("--objective", type=click.Choice(["elbo", "iwae"]), default="elbo",
              show_default=True, help="iwae: the importance-weighted bound of Burda et al.")
@click.option("--iw-samples", type=click.IntRange(min=1), default=1, show_default=True,
              help="Posterior draws K per training example (the IWAE's K).")
@click.option("--free-bits", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Floor in nats on the batch-mean KL of each latent group; 0: off.")
@click.option("--free-bits-groups", type=click.IntRange(min=1), default=None,
              help="Equal groups of latents for --free-bits [default: one per dimension].")
@click.option("--kl-warmup", type=click.Choice(["none", "linear", "cyclical"]), default="none",
              show_default=True, help="Raise the KL weight from 0 to --kl-weight.")
@click.option("--kl-warmup-length", type=click.IntRange(min=1), default=10, show_default=True,
              help="Warm-up length (the cycle length for cyclical), in --kl-warmup-unit.")
@click.option("--kl-warmup-unit", type=click.Choice(["epochs", "steps"]), default="epochs",
              show_default=True)
@click.option("--kl-warmup-ratio", type=click.FloatRange(min=0, max=1, min_open=True),
              default=0.5, show_default=True,
              help="Rising fraction of each cycle (cyclical warm-up).")
@click.option("--validation-fraction", type=click.FloatRange(min=0, max=1, max_open=True),
              default=1 / 12, show_default="1/12",
              help="Share of the training images held out for validation; 0 trains on all "
                   "of them (the Burda et al. protocol).")
@click.option("--steps-per-execution", type=click.IntRange(min=1), default=1,
              show_default=True,
              help="Training steps per tf.function call: less Python per step, which matters "
                   "at small batches (100 at batch 20: 2.2x faster, benchmarks/RESULTS.md).")
@click.option("--strategy", type=click.Choice(["auto", "default", "mirrored", "multi-worker"]),
              default="auto", show_default=True,
              help="auto: all GPUs when there are 2 or more, else one device; mirrored: all "
                   "GPUs of this machine; multi-worker: the machines TF_CONFIG lists. "
                   "--batch-size is the global batch, split across them.")
@click.option("--precision", type=click.Choice(["float32", "mixed_float16", "mixed_bfloat16"]),
              default="float32", show_default=True,
              help="Mixed precision for GPUs; log_prob, KL and log-sum-exp stay in float32.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--output", type=click.Path(), default=None,
              help="Run directory [default: saved_models/<dataset>-<likelihood>-<architecture>,"
                   " numbered -2, -3, ... when that name holds a run].")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run in --output, or train a complete one further "
                   "when --epochs is larger than the epochs it trained.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run in --output.")
def fit(output, resume, overwrite, **options):
    """Train a VAE and write its run directory."""
    from keras_vae import train

    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other; choose one.")
    config = train.TrainConfig(**options)
    notice = None
    if output is None:
        output, notice = _default_output(config, resume, overwrite)
    try:
        metrics = train.fit(config, output, resume=resume, overwrite=overwrite,
                            callbacks=_say_when_training_starts(notice))
    except KeyboardInterrupt:
        _fail(f"Interrupted. The last completed epoch is saved in "
              f"{train.partial_dir(output)}; continue with the same command plus --resume "
              f"--output {output}.", status=130)
    click.echo(_summary(f"Trained {output}", metrics))



_run_argument = click.argument("run", type=click.Path())
_data_options = [
    click.option("--dataset", default=None,
                  help="Data to use [default: the run's own]; needed for a bare .keras file."),
    click.option("--data-dir", type=click.Path(), default=None,
                  help="Local data folder or .npz [default: the run's own]."),
]


def _with_data_options(function):
    for option in reversed(_data_options):
        function = option(function)
    return function


def _test_data(run, dataset, data_dir):
    """(images [N, ...] float32, labels or None) of the test split a run is evaluated on; a
    run that ships test_examples.npz uses those unless --dataset or --data-dir is given."""
    import numpy as np

    from keras_vae import data, runs, train

    if dataset is None and data_dir is None and run.directory is not None:
        shipped = runs.load_test_examples(run.directory)
        if shipped is not None:
            click.echo(f"Using the {len(shipped[0])} test images shipped in "
                       f"{run.directory / runs.TEST_EXAMPLES} (--data-dir for others).",
                       err=True)
            return shipped
    splits = train.load_splits(run.data_config(dataset, data_dir))
    data.check_examples_shape(splits.image_shape, run.model.image_shape, splits.source)
    images = np.concatenate([np.asarray(batch) for batch in splits.test])
    return images, splits.test_labels


@cli.command(epilog=_examples(
    "kvae evaluate saved_models/mnist-bernoulli-mlp",
    "kvae evaluate saved_models/mnist-bernoulli-mlp --iw-samples 5000",
    "kvae evaluate model.keras --dataset mnist --data-dir ../shared/data/mnist"))
@_run_argument
@_with_data_options
@click.option("--iw-samples", type=click.IntRange(min=0), default=0, show_default=True,
              help="K for the importance-weighted log-likelihood (papers use 5000); 0: skip.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of every posterior draw: the same seed gives the same figures.")
@click.option("--batch-size", type=click.IntRange(min=1), default=100, show_default=True)
def evaluate(run, dataset, data_dir, iw_samples, seed, batch_size):
    """Test ELBO, reconstruction, KL, active units and log-likelihood in nats.

    Writes RUN/metrics.json and RUN/per_example.csv (each test example's ELBO terms and
    log-likelihood estimate). An interrupted --iw-samples estimate continues where it
    stopped when the same command is run again.
    """
    from keras_vae import runs

    loaded = runs.load_run(run)
    metrics, examples = runs.evaluate_run(loaded, iw_samples=iw_samples, seed=seed,
                                          batch_size=batch_size, dataset=dataset,
                                          data_dir=data_dir)
    click.echo(_summary(f"Evaluated {run} on {examples} test examples", metrics))


@cli.command(epilog=_examples("kvae sample saved_models/mnist-bernoulli-mlp --num 64 --seed 0 "
                              "--out samples.png"))
@_run_argument
@click.option("--num", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default="samples.png", show_default=True)
def sample(run, num, seed, out):
    """Draw z from the prior and save the decoded means as a PNG grid."""
    from keras_vae import plots, runs

    model = runs.load_run(run).model
    plots.save_png(plots.image_grid(model.sample(num, seed=seed).numpy()), out)
    click.echo(f"Wrote {num} samples to {out}")


@cli.command(epilog=_examples("kvae reconstruct saved_models/mnist-bernoulli-mlp --num 16 "
                              "--out recon.png"))
@_run_argument
@click.option("--num", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default="recon.png", show_default=True)
@_with_data_options
def reconstruct(run, num, out, dataset, data_dir):
    """Save test images (top row) above their reconstructions (bottom row)."""
    import numpy as np

    from keras_vae import plots, runs

    loaded = runs.load_run(run)
    images, _ = _test_data(loaded, dataset, data_dir)
    originals = images[:num]
    pairs = np.concatenate([originals, loaded.model.reconstruct(originals).numpy()])
    plots.save_png(plots.image_grid(pairs, num_columns=len(originals)), out)
    click.echo(f"Wrote {len(originals)} reconstructions to {out}")


@cli.command(epilog=_examples("kvae interpolate saved_models/mnist-bernoulli-mlp --steps 10 "
                              "--out interp.png"))
@_run_argument
@click.option("--steps", type=click.IntRange(min=2), default=10, show_default=True)
@click.option("--pairs", type=click.IntRange(min=1), default=4, show_default=True,
              help="Number of image pairs, one row each.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Chooses which test images are paired.")
@click.option("--out", type=click.Path(dir_okay=False), default="interp.png", show_default=True)
@_with_data_options
def interpolate(run, steps, pairs, seed, out, dataset, data_dir):
    """Decode points on the line between the posterior means of two test images."""
    import numpy as np

    from keras_vae import plots, runs

    loaded = runs.load_run(run)
    images, _ = _test_data(loaded, dataset, data_dir)
    chosen = np.random.default_rng(seed).choice(len(images), size=2 * pairs,
                                                replace=len(images) < 2 * pairs)
    means = loaded.model.encode(images[chosen]).mean().numpy()
    rows = [plots.interpolation_points(means[2 * i], means[2 * i + 1], steps)
            for i in range(pairs)]
    decoded = loaded.model.decode(np.concatenate(rows)).mean().numpy()
    plots.save_png(plots.image_grid(decoded, num_columns=steps), out)
    click.echo(f"Wrote {pairs} interpolations of {steps} steps to {out}")


@cli.command("latent-plot", epilog=_examples("kvae latent-plot saved_models/mnist-bernoulli-mlp "
                                             "--out latent.png"))
@_run_argument
@click.option("--num", type=click.IntRange(min=1), default=5000, show_default=True,
              help="Number of test examples to plot.")
@click.option("--out", type=click.Path(dir_okay=False), default="latent.png", show_default=True)
@_with_data_options
def latent_plot(run, num, out, dataset, data_dir):
    """Scatter test-set posterior means, coloured by label (first two principal components
    when the latent space has more than two dimensions)."""
    import numpy as np

    from keras_vae import plots, runs

    loaded = runs.load_run(run)
    images, labels = _test_data(loaded, dataset, data_dir)
    means = loaded.model.encode(images[:num]).mean().numpy()
    if means.shape[1] == 1:
        points = np.concatenate([means, np.zeros_like(means)], axis=1)
    elif means.shape[1] == 2:
        points = means
    else:
        points = plots.principal_components(means)
    plots.save_png(plots.latent_scatter(points, None if labels is None else labels[:num]), out)
    click.echo(f"Wrote the posterior means of {len(means)} test examples to {out}")


@cli.command(epilog=_examples(
    "kvae export saved_models/mnist-bernoulli-mlp --format saved_model",
    "kvae export saved_models/mnist-bernoulli-mlp --format tflite",
    "kvae export saved_models/mnist-bernoulli-mlp --format tflite --quantize float16",
    "kvae export model.keras --format tflite --output deploy/ --overwrite"))
@_run_argument
@click.option("--format", "export_format", type=click.Choice(["saved_model", "tflite"]),
              default="saved_model", show_default=True)
@click.option("--quantize", type=click.Choice(["none", "float16", "dynamic-int8", "int8"]),
              default="none", show_default=True,
              help="TFLite weights: float32, float16 (half size), int8 weights, or full int8.")
@click.option("--output", type=click.Path(file_okay=False), default=None,
              help="Export folder [default: RUN/export/saved_model, RUN/export/tflite or "
                   "RUN/export/tflite-<quantize>].")
@click.option("--overwrite", is_flag=True, help="Replace an existing export.")
def export(run, export_format, quantize, output, overwrite):
    """Export a SavedModel (encode/decode/reconstruct/sample signatures) or TFLite files
    (decoder.tflite, encoder.tflite, metadata.json), checked against the Keras model."""
    from keras_vae import export as export_module

    directory, report = export_module.export_run(run, export_format, quantize, output,
                                                 overwrite)
    click.echo(f"Exported {run} to {directory} ({export_format}"
               f"{', ' + quantize if export_format == 'tflite' else ''})")
    if export_format == "saved_model":
        click.echo(f"  signatures: {', '.join(report['signatures'])}")
        for signature, difference in report["max_abs_difference"].items():
            click.echo(f"  {signature:<12} max |SavedModel - Keras| "
                       f"{max(difference.values()):.2g}")
        return
    for part in report["files"].values():
        click.echo(f"  {part['file']:<16} {part['bytes']:>12,} bytes   max |TFLite - Keras| "
                   f"{max(part['max_abs_difference'].values()):.2g}")
    click.echo("  metadata.json    latent_dim, prior, tensors, preprocessing, versions")


@cli.command(epilog=_examples("kvae info saved_models/mnist-bernoulli-mlp"))
@_run_argument
def info(run):
    """Show a run's configuration, parameter count and metrics."""
    import json

    import numpy as np

    from keras_vae import runs

    loaded = runs.load_run(run)
    model = loaded.model
    # Trainable weights only: count_params() also counts the KL weight and the noise seed.
    weights = sum(int(np.prod(variable.shape)) for variable in model.trainable_weights)
    click.echo(f"run: {run}")
    click.echo(f"model: {model.likelihood} likelihood, {model.architecture} bodies "
               f"{list(model.hidden_units)}, latent_dim {model.latent_dim}, input "
               f"{list(model.image_shape)}, {weights:,} trainable parameters")
    if loaded.record is not None:
        click.echo("config: " + json.dumps(loaded.record["train"], sort_keys=True))
        click.echo("versions: " + json.dumps(loaded.record.get("versions", {}), sort_keys=True))
    metrics_path = loaded.directory / "metrics.json" if loaded.directory else None
    if metrics_path is not None and metrics_path.exists():
        metrics = json.loads(metrics_path.read_text())
        click.echo(_summary("metrics (kvae evaluate)", metrics))
    else:
        click.echo("metrics: none yet (run kvae evaluate)")


def _summary(title, metrics):
    errors = " (+- standard error)" if "elbo_stderr" in metrics else ""
    lines = [title, f"test set, nats per example{errors}:"]
    for name in ("elbo", "reconstruction", "kl", "loss", "log_likelihood"):
        if name in metrics:
            error = metrics.get(f"{name}_stderr")
            spread = f" +- {error:.3f}" if error is not None else ""
            label = f"log p(x), K={metrics['iw_samples']}" if name == "log_likelihood" else name
            lines.append(f"  {label:<20} {metrics[name]:10.3f}{spread}")
    for name, unit in (("bits_per_dim", "bits/dim (ELBO)"), ("nll_bits_per_dim",
                                                            "bits/dim (log p(x))")):
        if name in metrics:
            lines.append(f"  {unit:<20} {metrics[name]:10.4f}")
    if "active_units" in metrics:
        lines.append(f"  {'active units':<20} {metrics['active_units']:>10d} of "
                     f"{len(metrics['kl_per_dimension'])}")
    return "\n".join(lines)


def _fail(message, status=1):
    click.echo(f"Error: {message}", err=True)
    sys.exit(status)


def main():
    """Entry point: runs the group and turns every expected failure into one line."""
    from keras_vae.errors import KerasVAEError

    try:
        status = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        _fail("Aborted.", status=130)
    except click.ClickException as error:
        _fail(error.format_message(), status=error.exit_code)
    except (KerasVAEError, ValueError, OSError) as error:
        if os.environ.get("KVAE_DEBUG"):
            raise
        _fail(str(error).splitlines()[0] if str(error) else type(error).__name__)
    sys.exit(status if isinstance(status, int) else 0)
