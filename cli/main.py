"""The ``kvae`` command: parse, validate, call one library function, print the result.

Bad input ends with one line, ``Error: <what is wrong and how to fix it>``, and a non-zero
exit status; never a traceback.
"""

import re
import sys
import warnings

import click

# Pure-Python modules only (no TensorFlow): `kvae --help` and argument errors answer at once.
from keras_vae import config as options
from keras_vae.cli import fit_options, picture_commands
from keras_vae.cli.common import examples as _examples
from keras_vae.cli.common import run_argument as _run_argument
from keras_vae.cli.common import with_data_options as _with_data_options


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    return f"Warning: {message}\n"


warnings.formatwarning = _one_line_warning


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="keras-vae", prog_name="kvae")
def cli():
    """keras-vae: variational autoencoders for TensorFlow.

    Every figure is in nats per example (summed over pixels, averaged over examples).
    """


@cli.command(epilog=_examples(
    "kvae fit --dataset mnist",
    "kvae fit --preset burda-mnist --data-dir ../shared/data/mnist --epochs 1",
    "kvae fit --dataset mnist --data-dir ../shared/data/mnist --epochs 10",
    "kvae fit --dataset fashion_mnist --architecture conv --latent-dim 16",
    "kvae fit --dataset mnist --data-dir ../shared/data/mnist --likelihood normal",
    "kvae fit --dataset blobs --data-dir examples/blobs.csv --label-column cluster "
    "--likelihood normal",
    "kvae fit --dataset mnist --output runs/run1 --resume",
    "kvae fit --dataset mnist --objective iwae --iw-samples 5 --kl-warmup linear",
    "kvae fit --dataset mnist --strategy mirrored --batch-size 256",
    "TF_CONFIG='{...}' kvae fit --dataset mnist --strategy multi-worker --output /shared/run"))
@fit_options.train_options
@click.option("--output", type=click.Path(), default=None,
              help="Run directory [default: runs/<dataset>-<likelihood>-<architecture>,"
                   " numbered -2, -3, ... when that name holds a run].")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run in --output, or train a complete one further "
                   "when --epochs is larger than the epochs it trained.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run in --output.")
@click.option("--replace-protected", is_flag=True,
              help="Allow --overwrite or --resume of a protected (shipped) model folder.")
@click.pass_context
def fit(context, preset, output, resume, overwrite, replace_protected, **values):
    """Train a VAE and write its run directory."""
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other; choose one.")
    # Checked before TensorFlow is imported: an option error answers at once.
    config = fit_options.train_config(context, preset, values)
    from keras_vae import runs

    notice = None
    if output is None:
        output, notice = runs.default_output(config, resume=resume, overwrite=overwrite)
    import keras

    from keras_vae import lifecycle, train
    from keras_vae.callbacks import epoch_progress

    # The notice comes as training starts: after every check, so an error stays the only line.
    started = [keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: click.echo(notice, err=True))] if notice else []
    verbose, progress = epoch_progress.progress_for(sys.stdout)
    try:
        metrics = train.fit(config, output, resume=resume, overwrite=overwrite,
                            replace_protected=replace_protected, verbose=verbose,
                            callbacks=[*started, *progress])
    except KeyboardInterrupt:
        # The message starts on a line of its own, not after a progress bar.
        epoch_progress.end_progress_line(sys.stdout)
        _fail(lifecycle.interrupted_message(output), status=130)
    click.echo(_summary(f"Trained {output}", metrics))


_replace_protected_option = click.option(
    "--replace-protected", is_flag=True,
    help="Allow replacing files in a protected (shipped) model folder: its metrics.json and "
         "per_example.csv (evaluate) or an existing export (export --overwrite).")


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
@click.option("--batch-size", type=click.IntRange(min=1), default=options.EVALUATION_BATCH_SIZE,
              show_default=True)
@_replace_protected_option
def evaluate(run, dataset, data_dir, iw_samples, seed, batch_size, replace_protected):
    """Test ELBO, reconstruction, KL, active units and log-likelihood in nats.

    Writes RUN/metrics.json and RUN/per_example.csv (each test example's ELBO terms and
    log-likelihood estimate). An interrupted --iw-samples estimate continues where it
    stopped when the same command is run again.
    """
    from keras_vae import runs

    loaded = runs.load_run(run)
    metrics, examples = runs.evaluate_run(loaded, iw_samples=iw_samples, seed=seed,
                                          batch_size=batch_size, dataset=dataset,
                                          data_dir=data_dir,
                                          replace_protected=replace_protected)
    click.echo(_summary(f"Evaluated {run} on {examples} test examples ({metrics['test_data']})",
                        metrics))


@cli.command(epilog=_examples(
    "kvae export saved_models/mnist-bernoulli-mlp --format saved_model",
    "kvae export saved_models/mnist-bernoulli-mlp --format tflite",
    "kvae export saved_models/mnist-bernoulli-mlp --format tflite --quantize float16",
    "kvae export model.keras --format tflite --output deploy/ --overwrite"))
@_run_argument
@click.option("--format", "export_format", type=click.Choice(options.EXPORT_FORMATS),
              default="saved_model", show_default=True)
@click.option("--quantize", type=click.Choice(options.QUANTIZATIONS),
              default="none", show_default=True,
              help="TFLite weights: float32, float16 (half size), int8 weights, or full int8.")
@click.option("--output", type=click.Path(file_okay=False), default=None,
              help="Export folder [default: RUN/export/saved_model, RUN/export/tflite or "
                   "RUN/export/tflite-<quantize>].")
@click.option("--overwrite", is_flag=True, help="Replace an existing export.")
@_replace_protected_option
def export(run, export_format, quantize, output, overwrite, replace_protected):
    """Export a SavedModel (encode/decode/reconstruct/sample/sample_from_noise signatures) or
    TFLite files (decoder.tflite, encoder.tflite, sampler.tflite, metadata.json), checked
    against the Keras model."""
    from keras_vae import export as export_module

    directory, report = export_module.export_run(run, export_format, quantize, output,
                                                 overwrite, replace_protected)
    click.echo(f"Exported {run} to {directory} ({export_format}"
               f"{', ' + quantize if export_format == 'tflite' else ''})")
    if export_format == "saved_model":
        click.echo(f"  signatures: {', '.join(report['signatures'])}")
        for signature, difference in report["max_abs_difference"].items():
            click.echo(f"  {signature:<17} max |SavedModel - Keras| "
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

    from keras_vae import run_reports, runs

    described = run_reports.describe(runs.load_run(run))
    model = described["model"]
    click.echo(f"run: {run}")
    click.echo(f"model: {model['likelihood']} likelihood, {model['architecture']} bodies "
               f"{model['hidden_units']}, {_latent_description(model)}, input "
               f"{model['input_shape']}, {described['trainable_parameters']:,} trainable "
               f"parameters")
    if described["train"] is not None:
        click.echo("config: " + json.dumps(described["train"], sort_keys=True))
        click.echo("versions: " + json.dumps(described["versions"], sort_keys=True))
    if described["metrics"] is not None:
        click.echo(_summary("metrics (kvae evaluate)", described["metrics"]))
    else:
        click.echo("metrics: none yet (run kvae evaluate)")


for _command in picture_commands.COMMANDS:  # sample, latent-plot, traverse, ... (pictures)
    cli.add_command(_command)


def _latent_description(model):
    """"latent_dim 50" of a one-layer model; the layers of a hierarchy, from the data up:
    "latent layers z1 8, z2 4 (top-down inference, precision merge, 16 units between two
    layers)"."""
    sizes = model.get("latent_sizes") or {"z": model["latent_dim"]}
    if len(sizes) == 1:
        return f"latent_dim {model['latent_dim']}"
    layers = ", ".join(f"{name} {size}" for name, size in sizes.items())
    how = [f"{str(model.get('inference')).replace('_', '-')} inference"]
    if model.get("inference") == "top_down":
        how.append(f"{model.get('merge')} merge")
    units = model.get("latent_hidden_units")
    how.append(f"{','.join(map(str, units))} units between two layers" if units
               else "no units between layers")
    return f"latent layers {layers} ({', '.join(how)})"


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
    if "bits_per_dim_meaning" in metrics:  # a mass (8-bit tables' figure) or a density
        lines.append(f"  bits/dim of {metrics['bits_per_dim_meaning']}")
    if "active_units" in metrics:
        lines.append(f"  {'active units':<20} {metrics['active_units']:>10d} of "
                     f"{len(metrics['kl_per_dimension'])}")
    if metrics.get("layers"):
        lines.append("per latent layer (kl: its share of the rate, nats per example):")
        for name, layer in metrics["layers"].items():
            lines.append(f"  {'kl ' + name:<20} {layer['kl']:10.3f}   active units "
                         f"{layer['active_units']} of {len(layer['kl_per_dimension'])}")
    return "\n".join(lines)


def _fail(message, status=1):
    click.echo(f"Error: {message}", err=True)
    sys.exit(status)


def main():
    """Entry point: runs the group and turns every expected failure into one line."""
    from keras_vae import quiet
    from keras_vae.errors import KerasVAEError

    quiet.silence_tensorflow_start_up()
    try:
        status = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        _fail("Aborted.", status=130)
    except click.ClickException as error:
        _fail(error.format_message(), status=error.exit_code)
    except (KerasVAEError, ValueError, OSError) as error:
        if quiet.debugging():
            raise
        _fail(_first_line(error))
    except Exception as error:  # noqa: BLE001 - a failure no check foresaw: still one line
        if quiet.debugging():
            raise
        _fail(f"{_first_line(error)} ({type(error).__name__}; KVAE_DEBUG=1 shows the "
              f"traceback).")
    sys.exit(status if isinstance(status, int) else 0)


def _first_line(error):
    """The first non-blank line of an exception's message, or its type's name; for a failed
    run-time check (a likelihood head's ``data_checks``, ``tf.debugging.Assert`` in a graph,
    whose first line is only "Graph execution error:"), the check's own message."""
    failed_check = re.search(r"assertion failed: \[(.*)\]", str(error))
    if failed_check:
        return failed_check.group(1).replace("\\'", "'")
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
