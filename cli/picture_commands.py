"""The ``kvae`` commands that draw pictures: sample, reconstruct, interpolate, latent-plot,
traverse, training-plot and rate-distortion. Each parses, then calls one ``figures.write_*``
function, which writes a PNG atomically where --out says (docs/pictures.md shows them all).

Only click and the option vocabularies are imported here: TensorFlow and matplotlib load when
a command runs, so ``kvae --help`` answers at once.
"""

import click

from keras_vae import config as options
from keras_vae.cli.common import (examples, out_option, run_argument, say_which_test_images,
                                  with_data_options)

SHIPPED = "saved_models/mnist-bernoulli-mlp"


@click.command(epilog=examples(f"kvae sample {SHIPPED} --num 64 --seed 0 --out samples.png",
                               "kvae sample runs/table --num 100 --out samples.csv"))
@run_argument
@click.option("--num", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@out_option("samples.png", help="PNG file to write, or .npy/.csv for the sampled values (the "
                                "form for tabular data); missing folders are created.")
def sample(run, num, seed, out):
    """Draw z from the prior and save the decoded means as a PNG grid (or as values)."""
    from keras_vae import figures, samples

    if samples.writes_values(out):
        written = samples.write_sample_values(run, out, num, seed)
    else:
        written = figures.write_samples(run, out, num, seed)
    click.echo(f"Wrote {written.count} samples to {written.path}")


@click.command(epilog=examples(f"kvae reconstruct {SHIPPED} --num 16 --out recon.png"))
@run_argument
@click.option("--num", type=click.IntRange(min=1), default=16, show_default=True)
@out_option("recon.png")
@with_data_options
def reconstruct(run, num, out, dataset, data_dir):
    """Save test images (top row) above their reconstructions (bottom row)."""
    from keras_vae import figures

    written = figures.write_reconstructions(run, out, num, dataset, data_dir)
    say_which_test_images(written)
    click.echo(f"Wrote {written.count} reconstructions to {written.path}")


_layer_option = click.option(
    "--layer", default=None, help="Latent layer to picture [default: the one next to the "
                                  "data]; a hierarchical model has several (z1, z2, ...), "
                                  "and a higher one is decoded with the layers below it at "
                                  "their conditional means.")


@click.command(epilog=examples(f"kvae interpolate {SHIPPED} --steps 10 --out interp.png",
                               "kvae interpolate runs/ladder --layer z2 --out interp-z2.png"))
@run_argument
@click.option("--steps", type=click.IntRange(min=2), default=10, show_default=True)
@click.option("--pairs", type=click.IntRange(min=1), default=4, show_default=True,
              help="Number of image pairs, one row each.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Chooses which test images are paired.")
@_layer_option
@out_option("interp.png")
@with_data_options
def interpolate(run, steps, pairs, seed, layer, out, dataset, data_dir):
    """Decode points on the line between the posterior means of two test images."""
    from keras_vae import figures

    written = figures.write_interpolations(run, out, steps, pairs, seed, dataset, data_dir,
                                           layer)
    say_which_test_images(written)
    click.echo(f"Wrote {written.count} interpolations of {steps} steps to {written.path}")


@click.command("latent-plot", epilog=examples(
    f"kvae latent-plot {SHIPPED} --out latent.png",
    f"kvae latent-plot {SHIPPED} --projection active --out latent-active.png",
    f"kvae latent-plot {SHIPPED} --projection tsne --num 2000 --out latent-tsne.png"))
@run_argument
@click.option("--num", type=click.IntRange(min=1), default=5000, show_default=True,
              help="Number of test examples to plot.")
@click.option("--projection", type=click.Choice(options.LATENT_PROJECTIONS), default=None,
              help="How the means reach the plane: the two most active dimensions, PCA, "
                   "t-SNE or UMAP (these two: pip install 'keras-vae[projections]') "
                   "[default: the means themselves for 1 or 2 dimensions, else pca].")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of t-SNE and UMAP.")
@_layer_option
@out_option("latent.png")
@with_data_options
def latent_plot(run, num, projection, seed, layer, out, dataset, data_dir):
    """Scatter test-set posterior means, coloured by label, on labelled axes; beside it, for a
    2-D latent space, the decoded manifold (a grid of z at Normal quantiles)."""
    from keras_vae import figures

    written = figures.write_latent_plot(run, out, num, dataset, data_dir, projection, layer,
                                        seed)
    say_which_test_images(written)
    click.echo(f"Wrote the posterior means of {written.count} test examples to "
               f"{written.path}")


@click.command(epilog=examples(
    f"kvae traverse {SHIPPED} --out traverse.png",
    f"kvae traverse {SHIPPED} --dims 4 --steps 11 --span 2 --image-index 3 --out t.png"))
@run_argument
@click.option("--dims", "num_dimensions", type=click.IntRange(min=1), default=8,
              show_default=True, help="Rows: the most active latent dimensions.")
@click.option("--steps", type=click.IntRange(min=2), default=9, show_default=True,
              help="Images per row.")
@click.option("--span", type=click.FloatRange(min=0, min_open=True), default=3.0,
              show_default=True,
              help="Each row sweeps z_i from -span to +span prior standard deviations "
                   "around the prior mean.")
@click.option("--image-index", type=click.IntRange(min=0), default=0, show_default=True,
              help="Test image whose posterior mean holds the other dimensions.")
@_layer_option
@out_option("traverse.png")
@with_data_options
def traverse(run, num_dimensions, steps, span, image_index, layer, out, dataset, data_dir):
    """Latent traversals: for each of the most active dimensions (one row each, labelled with
    its KL and activity), decode a sweep of that coordinate with the others held at a test
    image's posterior mean."""
    from keras_vae import figures

    written = figures.write_traversal(run, out, num_dimensions, steps, span, image_index,
                                      layer, dataset, data_dir)
    say_which_test_images(written)
    click.echo(f"Wrote traversals of {written.count} latent dimensions to {written.path}")


@click.command("training-plot", epilog=examples(
    f"kvae training-plot {SHIPPED} --out training.png"))
@run_argument
@out_option("training.png")
def training_plot(run, out):
    """Training curves of a run folder: -ELBO and loss, reconstruction, KL and the KL weight
    per epoch (training and validation, nats per example, from history.csv), and KL per
    latent dimension and active units per epoch when the run recorded them
    (latent_history.csv); for a hierarchy, each layer's."""
    from keras_vae import figures

    written = figures.write_training_plot(run, out)
    click.echo(f"Wrote the curves of {written.count} epochs to {written.path}")


@click.command("rate-distortion", epilog=examples(
    f"kvae rate-distortion {SHIPPED} --out rate-distortion.png",
    "kvae rate-distortion runs/beta-0.5 runs/beta-1 runs/beta-2 --out beta-sweep.png"))
@click.argument("runs", nargs=-1, required=True, type=click.Path())
@out_option("rate-distortion.png")
@with_data_options
def rate_distortion(runs, out, dataset, data_dir):
    """Rate (KL) against distortion (-log p(x|z)) of each run's test set, in nats per example,
    with the lines of equal ELBO (D + R = c): what the KL weight trades. Reads each run's
    metrics.json (kvae evaluate); a run without one is evaluated here (seed 0, not saved)."""
    from keras_vae import figures

    points = []
    for run in runs:
        point, evaluated = figures.rate_point(run, dataset, data_dir)
        if evaluated:
            click.echo(f"Evaluated {run} (it has no metrics.json; kvae evaluate {run} saves "
                       f"them).", err=True)
        points.append(point)
    written = figures.write_rate_distortion(points, out)
    click.echo(f"Wrote the rate and distortion of {written.count} "
               f"run{'s' if written.count != 1 else ''} to {written.path}")


COMMANDS = [sample, reconstruct, interpolate, latent_plot, traverse, training_plot,
            rate_distortion]
