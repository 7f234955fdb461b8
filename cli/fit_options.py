"""The options of ``kvae fit``, built from the library's ``TrainConfig`` (one option per
field, with the field's default) and its vocabularies (each choice list), plus ``--preset``:
nothing is restated here (``tests/test_config.py`` keeps them in step).

Pure Python: building them imports no TensorFlow.
"""

import fractions

import click

from keras_vae import config as options, presets
from keras_vae.config import TrainConfig

_DEFAULTS = TrainConfig.defaults()


def _parse_hidden_units(context, parameter, value):
    """--hidden-units 200,200 -> (200, 200)."""
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


def _parse_optional_units(context, parameter, value):
    """--latent-hidden-units 100,100 -> (100, 100); "none" -> () (the layers meet in their
    heads)."""
    if value is not None and value.strip().lower() == "none":
        return ()
    return _parse_hidden_units(context, parameter, value)


def _units(hidden_units):
    return ",".join(map(str, hidden_units))


def _train_option(field, **settings):
    """The option --<field> of ``kvae fit`` for TrainConfig field ``field``, whose default is
    the field's (shown in --help unless it is None)."""
    default = _DEFAULTS[field]
    shown = default is not None and not isinstance(default, bool)
    if isinstance(default, float) and len(repr(default)) > 10:  # 1/12, not 0.08333333...
        ratio = fractions.Fraction(default).limit_denominator(1000)
        shown = str(ratio) if float(ratio) == default else True
    return click.option("--" + field.replace("_", "-"), default=default, show_default=shown,
                        **settings)


_NOT_GIVEN = (click.core.ParameterSource.DEFAULT, click.core.ParameterSource.DEFAULT_MAP)


def train_config(context, preset, values):
    """The TrainConfig of ``kvae fit``'s options. With --preset: the preset's options, then
    the options given on the command line (not those left at their defaults)."""
    if preset is None:
        return TrainConfig(**values)
    given = {name: value for name, value in values.items()
             if context.get_parameter_source(name) not in _NOT_GIVEN}
    return presets.train_config(preset, **given)


# Every TrainConfig field, in the order --help lists them; --preset first.
_OPTIONS = [
    click.option("--preset", type=click.Choice(tuple(presets.PRESETS)), default=None,
                 help="Start from a named recipe (keras_vae/presets.py); options given here win. "
                      + " ".join(f"{preset.name}: {preset.description.split(':')[0]}."
                                 for preset in presets.PRESETS.values())),
    _train_option("dataset", help="TFDS image dataset name (mnist, fashion_mnist, kmnist, "
                                  "cifar10, ...); with --data-dir, a name for the data (the "
                                  "run folder's)."),
    _train_option("data_dir", type=click.Path(),
                  help="Local data: a folder of MNIST IDX files, an .npz, a folder of images, "
                       "or a .csv of numeric columns with a header row (flat vectors: "
                       "--architecture mlp)."),
    _train_option("label_column", help="The CSV column of class labels (numbers or names): "
                                       "not modelled, it colours kvae latent-plot."),
    _train_option("likelihood", type=click.Choice(options.LIKELIHOODS)),
    _train_option("binarize", type=click.Choice(options.BINARIZATIONS),
                  help="Binarised pixels for a binary likelihood (bernoulli): dynamic (a fresh "
                       "draw each epoch) or static (one seeded draw); none keeps grey levels "
                       "for the others [default: dynamic for bernoulli, none otherwise]."),
    _train_option("architecture", type=click.Choice(options.ARCHITECTURES)),
    _train_option("model", type=click.Choice(options.MODELS),
                  help="vae: one layer of latents; hvae: a hierarchy inferred bottom-up, "
                       "q(z1|x) q(z2|z1) (Burda et al. 2016); ladder: a hierarchy inferred "
                       "top-down, each layer's posterior merged with its prior (Ladder VAE, "
                       "Sønderby et al. 2016)."),
    _train_option("latent_dim", type=click.IntRange(min=1),
                  help="Latent variables of --model vae."),
    _train_option("latent_dims", callback=_parse_hidden_units,
                  help=f"Sizes of the latent layers of --model hvae/ladder from the data up "
                       f"[default: {_units(options.DEFAULT_LATENT_DIMS)}]."),
    _train_option("latent_hidden_units", callback=_parse_optional_units,
                  help="Sizes of each MLP between two latent layers of a hierarchy, or none "
                       "[default: " + _units(options.DEFAULT_LATENT_HIDDEN_UNITS) + "]."),
    _train_option("merge", type=click.Choice(options.MERGES),
                  help="How --model ladder merges a layer's bottom-up evidence with its "
                       "prior: precision (Sønderby et al. 2016) or residual (NVAE)."),
    _train_option("hidden_units", callback=_parse_hidden_units,
                  help=f"Comma-separated layer sizes (mlp) or filter counts (conv) [default: "
                       f"{_units(options.RECIPE_HIDDEN_UNITS)} for mlp, "
                       f"{_units(options.DEFAULT_HIDDEN_UNITS['conv'])} for conv]."),
    _train_option("activation"),
    _train_option("decoder_bias", type=click.Choice(options.DECODER_BIASES),
                  help="The decoder's output bias at the start: zero, or data-mean: the "
                       "logits of the mean training image (Burda et al.'s code; bernoulli "
                       "with --architecture mlp). Fresh runs only: --resume keeps the "
                       "trained bias."),
    _train_option("epochs", type=click.IntRange(min=1)),
    _train_option("batch_size", type=click.IntRange(min=1),
                  help="Global batch (split across replicas under a --strategy)."),
    _train_option("learning_rate", type=click.FloatRange(min=0, min_open=True)),
    _train_option("learning_rate_schedule", type=click.Choice(options.LEARNING_RATE_SCHEDULES),
                  help="cosine: decay the learning rate to 0 over the run (half a cosine); "
                       "burda: stage i of 3^i epochs at lr * 10^(-i/7) (Burda et al. 2016)."),
    _train_option("adam_epsilon", type=click.FloatRange(min=0, min_open=True),
                  help="Adam's epsilon (Burda et al. used 1e-4)."),
    _train_option("kl_weight", type=click.FloatRange(min=0),
                  help="Weight of the KL term (beta); 1 trains on the ELBO."),
    _train_option("objective", type=click.Choice(options.OBJECTIVES),
                  help="iwae: the importance-weighted bound of Burda et al."),
    _train_option("iw_samples", type=click.IntRange(min=1),
                  help="Posterior draws K per training example (the IWAE's K)."),
    _train_option("free_bits", type=click.FloatRange(min=0),
                  help="Floor in nats on the batch-mean KL of each latent group; 0: off."),
    _train_option("free_bits_groups", type=click.IntRange(min=1),
                  help="Equal groups of latents for --free-bits [default: one per dimension]."),
    _train_option("prior", type=click.Choice(options.PRIORS),
                  help="p(z): standard N(0, I); mog: a mixture of learned Gaussians; vamp: the "
                       "VampPrior, the mixture of the encoder's posteriors at learned "
                       "pseudo-inputs (Tomczak & Welling 2018)."),
    _train_option("prior_components", type=click.IntRange(min=1),
                  help="Gaussians of --prior mog [default: 10] or pseudo-inputs of --prior "
                       "vamp [default: 500]."),
    _train_option("kl_warmup", type=click.Choice(options.KL_WARMUPS),
                  help="Raise the KL weight from 0 to --kl-weight."),
    _train_option("kl_warmup_length", type=click.IntRange(min=1),
                  help="Warm-up length (the cycle length for cyclical), in --kl-warmup-unit."),
    _train_option("kl_warmup_unit", type=click.Choice(options.KL_WARMUP_UNITS)),
    _train_option("kl_warmup_ratio", type=click.FloatRange(min=0, max=1, min_open=True),
                  help="Rising fraction of each cycle (cyclical warm-up)."),
    _train_option("validation_fraction", type=click.FloatRange(min=0, max=1, max_open=True),
                  help="Share of the training images held out for validation; 0 trains on all "
                       "of them (the Burda et al. protocol)."),
    _train_option("steps_per_execution", type=click.IntRange(min=1),
                  help="Training steps per tf.function call: less Python per step, which "
                       "matters at small batches (100 at batch 20: 2.2x faster, "
                       "benchmarks/RESULTS.md)."),
    _train_option("jit_compile", is_flag=True,
                  help="Compile the training step with XLA."),
    _train_option("strategy", type=click.Choice(options.STRATEGIES),
                  help="auto: all GPUs when there are 2 or more, else one device; mirrored: all "
                       "GPUs of this machine; multi-worker: the machines TF_CONFIG lists. "
                       "--batch-size is the global batch, split across them."),
    _train_option("precision", type=click.Choice(options.PRECISIONS),
                  help="Mixed precision for GPUs; log_prob, KL and log-sum-exp stay in float32."),
    click.option("--tensorboard/--no-tensorboard", default=_DEFAULTS["tensorboard"],
                 show_default=True,
                 help="Write TensorBoard logs to RUN/logs: losses, KL per latent dimension, "
                      "active units, samples and reconstructions each epoch."),
    _train_option("seed", type=int),
]


def train_options(command):
    """Decorates ``command`` with every option of ``_OPTIONS`` (``--preset`` and one per
    TrainConfig field)."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command
