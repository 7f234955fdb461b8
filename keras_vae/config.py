"""The options of a model and of a training run: their valid values, defaults and checks.

``TrainConfig`` holds every option of ``kvae fit`` and is written to a run's config.json.
The vocabularies below (``LIKELIHOODS``, ``ARCHITECTURES``, ...) are the one list of valid
values that the library, the ``kvae`` command's choices and the error messages share;
``tests/test_config.py`` keeps them equal to the registries that implement them (the
likelihood heads, the strategies, the schedules).

Pure Python with no TensorFlow import, so that ``kvae --help`` and argument errors answer at
once.
"""

import dataclasses

from keras_vae import likelihoods
from keras_vae.checks import (check_choice, check_fraction, check_non_negative_float,
                              check_positive_float, check_positive_int)
from keras_vae.errors import ConfigError

# ------------------------------------------------------------------ vocabularies

# The registered likelihoods (likelihoods.py, the built-ins at import): the decoder head of each.
LIKELIHOODS = likelihoods.names()
ARCHITECTURES = ("mlp", "conv")  # networks.py
BINARIZATIONS = ("dynamic", "static", "none")  # data.py
OBJECTIVES = ("elbo", "iwae")  # objectives.py
LEARNING_RATE_SCHEDULES = ("constant", "cosine", "burda")  # schedules.py
KL_WARMUPS = ("none", "linear", "cyclical")  # warmup.py
KL_WARMUP_UNITS = ("epochs", "steps")
STRATEGIES = ("auto", "default", "mirrored", "multi-worker")  # distribute.py
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
QUANTIZATIONS = ("none", "float16", "dynamic-int8", "int8")  # export
EXPORT_FORMATS = ("saved_model", "tflite")
LATENT_PROJECTIONS = ("active", "pca", "tsne", "umap")  # figures_latent.py
PRIORS = ("standard", "mog", "vamp", "flow")  # priors/ (build_prior)
# kvae fit --model: the one-layer VAE (model.py), the bottom-up hierarchy of Burda et al. 2016
# and the top-down (ladder) hierarchy of Sønderby et al. 2016 (hierarchy/).
MODELS = ("vae", "hvae", "ladder")
HIERARCHY_INFERENCE = {"hvae": "bottom_up", "ladder": "top_down"}
MERGES = ("precision", "residual")  # how a ladder merges evidence and prior (hierarchy/steps.py)
# The decoder's output bias at the start: zeros (Keras), or the head's parameters of the mean
# training image (Burda et al.'s code; ImageDecoder.start_output_bias).
DECODER_BIASES = ("zero", "data-mean")
# Latent layers of a hierarchy when none are given: z1 of 100 and z2 of 50, each MLP between
# two layers 100-100 (the two-stochastic-layer model of Burda et al. 2016).
DEFAULT_LATENT_DIMS = (100, 50)
DEFAULT_LATENT_HIDDEN_UNITS = (100, 100)
# K of the priors made of components when --prior-components is not given: 10 Gaussians for
# the mixture; 500 pseudo-inputs for the VampPrior (Tomczak & Welling 2018's MNIST setting).
DEFAULT_PRIOR_COMPONENTS = {"mog": 10, "vamp": 500}

# kv.VAE's bodies when none are given: the MLP of Burda et al. 2016 (784-200-200-50).
DEFAULT_HIDDEN_UNITS = {"mlp": (200, 200), "conv": (32, 64)}
# kvae fit's MLP: wider than kv.VAE's default. With the cosine schedule and batch 50 it
# reaches a test ELBO of -98.44 and -98.36 nats on MNIST in 10 epochs (seeds 0 and 1); at
# batch 100 -99.72 and -100.00; 200-200 reaches -103.8 (benchmarks/RESULTS.md).
RECIPE_HIDDEN_UNITS = (500, 500)
DEFAULT_LATENT_DIM = 50
# Training steps per tf.function call of kv.VAE.compile and kvae fit when none is given. At
# batch 20 Python and op dispatch between calls are most of a one-step call; 100 steps per
# call amortise them at every batch size measured (benchmarks/RESULTS.md, issue 20).
DEFAULT_STEPS_PER_EXECUTION = 100
# Evaluation batches of ``kvae evaluate`` and of fit's closing summary: the same examples in
# the same batches with the same seed give the same figures.
EVALUATION_BATCH_SIZE = 100


# ------------------------------------------------------------------ checks of model options


def check_latent_dim(latent_dim):
    """latent_dim as a positive int, or a ConfigError that names the value."""
    return check_positive_int("latent_dim", latent_dim)


def check_kl_weight(kl_weight):
    """The KL weight beta as a finite float >= 0."""
    return check_non_negative_float("kl_weight", kl_weight)


def resolve_hidden_units(architecture, hidden_units):
    """The hidden sizes as a tuple of positive ints; ``None`` selects the architecture's
    default (``DEFAULT_HIDDEN_UNITS``)."""
    check_choice("architecture", architecture, ARCHITECTURES)
    if hidden_units is None:
        return DEFAULT_HIDDEN_UNITS[architecture]
    if isinstance(hidden_units, int):
        hidden_units = (hidden_units,)
    hidden_units = tuple(hidden_units)
    if not hidden_units or any(isinstance(units, bool) or not isinstance(units, int)
                               or units <= 0 for units in hidden_units):
        raise ConfigError(f"hidden_units must be a non-empty sequence of positive integers, "
                          f"for example (200, 200); received {hidden_units!r}.")
    return hidden_units


def check_image_shape(shape, name="input_shape"):
    """A data shape (no batch axis) as a tuple of positive ints."""
    try:
        shape = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a tuple of positive integers such as (28, 28, 1); "
                          f"received {shape!r}.") from None
    if not shape or any(d <= 0 for d in shape):
        raise ConfigError(f"{name} must be a non-empty tuple of positive integers such as "
                          f"(28, 28, 1); received {shape!r}.")
    return shape


def check_architecture_accepts(architecture, shape, hidden_units):
    """ConfigError when ``architecture`` cannot take data of ``shape``."""
    if architecture != "conv":
        return
    factor = 2 ** len(hidden_units)
    if len(shape) != 3:
        raise ConfigError(
            f"architecture='conv' takes images of shape (height, width, channels); "
            f"received input_shape={tuple(shape)}. Use architecture='mlp' for other shapes.")
    if shape[0] % factor or shape[1] % factor:
        raise ConfigError(
            f"architecture='conv' with {len(hidden_units)} stride-2 layers needs height and "
            f"width divisible by {factor}; received input_shape={tuple(shape)}. Pad the "
            f"images, use fewer hidden_units, or use architecture='mlp'.")


_DATA_DESCRIPTIONS = {"unit_interval": "values in [0, 1]", "real": "real values",
                      "levels": "integer levels"}


def resolve_binarize(binarize, likelihood):
    """How the data of ``likelihood`` are binarised, one of ``BINARIZATIONS``: "dynamic" (a
    fresh draw each epoch, Burda et al. 2016), "static" (one seeded draw of the training set,
    as validation and test always get) or "none". ``None`` selects "dynamic" for a binary
    likelihood (``likelihoods.data_kind``), "none" for the others; every other pairing of a
    binary likelihood and "none", or of a non-binary one and a binarisation, is refused."""
    binary = likelihoods.data_kind(likelihood) == "binary"
    if binarize is None:
        return "dynamic" if binary else "none"
    check_choice("binarize", binarize, BINARIZATIONS)
    if binary and binarize == "none":
        raise ConfigError(f"binarize='none' would give likelihood={likelihood!r} grey levels, "
                          f"and a Bernoulli log-probability of grey levels is not a "
                          f"likelihood (it does not normalise over [0, 1]); use "
                          f"likelihood='continuous_bernoulli' for grey levels, or "
                          f"binarize='dynamic' or 'static'.")
    if not binary and binarize != "none":
        raise ConfigError(f"binarize={binarize!r} makes binary data for a binary likelihood "
                          f"such as 'bernoulli'; likelihood={likelihood!r} takes "
                          f"{_DATA_DESCRIPTIONS[likelihoods.data_kind(likelihood)]} as they "
                          f"are: use binarize='none' (its default), or "
                          f"likelihood='bernoulli'.")
    return binarize


def check_groups(latent_dim, num_groups):
    """free_bits_groups must split latent_dim into equal groups."""
    if not (isinstance(num_groups, int) and 1 <= num_groups <= latent_dim
            and latent_dim % num_groups == 0):
        raise ConfigError(f"free_bits_groups must divide latent_dim={latent_dim} into equal "
                          f"groups; received {num_groups!r}. Use a divisor of {latent_dim}.")
    return num_groups


def check_objective(objective, iw_samples, free_bits, free_bits_groups, latent_dim):
    """The training objective's options, checked: (objective, K, lambda, groups)."""
    objective = check_choice("objective", objective, OBJECTIVES)
    iw_samples = check_positive_int("iw_samples", iw_samples)
    free_bits = check_non_negative_float("free_bits", free_bits)
    if free_bits and objective == "iwae":
        raise ConfigError("free_bits applies to the ELBO's KL term; the IWAE objective has "
                          "none. Use objective='elbo' with free bits, or free_bits=0.")
    if free_bits_groups is not None:
        check_groups(latent_dim, free_bits_groups)
    return objective, iw_samples, free_bits, free_bits_groups


def check_prior(prior, num_components):
    """(prior, K): the prior's name checked against PRIORS and its number of components,
    defaulting to DEFAULT_PRIOR_COMPONENTS; ConfigError for K < 1, or K given to a prior
    that has no components."""
    check_choice("prior", prior, PRIORS)
    if num_components is None:
        return prior, DEFAULT_PRIOR_COMPONENTS.get(prior)
    if prior not in DEFAULT_PRIOR_COMPONENTS:
        with_components = " or ".join(repr(name) for name in DEFAULT_PRIOR_COMPONENTS)
        raise ConfigError(f"prior_components applies to the priors made of components "
                          f"({with_components}); the {prior!r} prior has none. Drop "
                          f"--prior-components or choose one of them with --prior.")
    return prior, check_positive_int("prior_components", num_components)


def check_free_bits_prior(free_bits, free_bits_groups, factorized):
    """Free bits per group of latents need the KL of each group, which a prior that does not
    factorise over the latents (a mixture, the VampPrior) does not define: with one group the
    floor applies to the whole KL, which always works."""
    if free_bits and not factorized and free_bits_groups != 1:
        raise ConfigError("free_bits per group of latents needs a prior that factorises over "
                          "them, as the standard one does; with a mixture or VampPrior use "
                          "free_bits_groups=1 (a floor on the whole KL) or free_bits=0.")


def check_warmup(schedule, length, unit, ratio):
    """ConfigError naming the problem for a KL warm-up that cannot run."""
    check_choice("kl_warmup", schedule, KL_WARMUPS)
    check_choice("kl_warmup_unit", unit, KL_WARMUP_UNITS)
    if schedule != "none":
        check_positive_int("kl_warmup_length", length)
    if schedule == "cyclical":
        check_fraction("kl_warmup_ratio", ratio, low_open=True)


def check_hierarchy(model, latent_dims, latent_hidden_units, merge, prior):
    """(latent_dims, latent_hidden_units) as tuples of positive ints for a hierarchy
    (``model`` "hvae" or "ladder"; None: ``DEFAULT_LATENT_DIMS`` and
    ``DEFAULT_LATENT_HIDDEN_UNITS``), or (None, ...)
    for the one-layer "vae"; ConfigError for options the model does not take."""
    units = tuple(DEFAULT_LATENT_HIDDEN_UNITS if latent_hidden_units is None
                  else latent_hidden_units)
    if any(isinstance(u, bool) or not isinstance(u, int) or u <= 0 for u in units):
        raise ConfigError(f"latent_hidden_units must be positive integers, e.g. 100,100 (or "
                          f"none); received {latent_hidden_units!r}.")
    if model == "vae":
        if latent_dims is not None:
            raise ConfigError("--latent-dims sets the layers of a hierarchy; with --model vae "
                              "use --latent-dim, or choose --model hvae or ladder.")
        if merge != "precision":
            raise ConfigError("--merge applies to --model ladder only.")
        return None, units
    if latent_dims is None:
        latent_dims = DEFAULT_LATENT_DIMS
    if isinstance(latent_dims, int):
        latent_dims = (latent_dims,)
    dims = tuple(latent_dims)
    if not dims or any(isinstance(d, bool) or not isinstance(d, int) or d <= 0 for d in dims):
        raise ConfigError(f"latent_dims must be positive integers, one per layer from the "
                          f"data up, e.g. 100,50; received {latent_dims!r}.")
    if model == "hvae" and merge != "precision":
        raise ConfigError("--merge applies to --model ladder only (hvae infers bottom-up).")
    if model == "hvae" and prior == "vamp" and len(dims) > 1:
        raise ConfigError("The VampPrior encodes its pseudo-inputs with q(zL|x), which "
                          "bottom-up inference does not have; use --model ladder.")
    return dims, units


# ------------------------------------------------------------------ a training run


@dataclasses.dataclass
class TrainConfig:
    """Every option of a training run (``kvae fit``); written to config.json."""

    dataset: str = "mnist"
    data_dir: str | None = None
    label_column: str | None = None  # a CSV's column of class labels, not modelled
    likelihood: str = "bernoulli"
    binarize: str | None = None  # BINARIZATIONS; None: dynamic if binary, else none
    architecture: str = "mlp"
    latent_dim: int = DEFAULT_LATENT_DIM
    hidden_units: tuple | None = None  # None: RECIPE_HIDDEN_UNITS for mlp, (32, 64) for conv
    activation: str = "relu"
    epochs: int = 10
    batch_size: int = 50  # with RECIPE_HIDDEN_UNITS: see the comment there
    learning_rate: float = 1e-3
    learning_rate_schedule: str = "cosine"
    adam_epsilon: float = 1e-7  # Keras' default; Burda et al. used 1e-4
    kl_weight: float = 1.0
    objective: str = "elbo"  # or "iwae"
    iw_samples: int = 1  # K posterior draws per example in training
    free_bits: float = 0.0  # nats per group; 0: off
    free_bits_groups: int | None = None  # None: one group per latent dimension
    kl_warmup: str = "none"  # "linear" or "cyclical" (warmup.py)
    kl_warmup_length: int = 10  # T, in kl_warmup_unit
    kl_warmup_unit: str = "epochs"  # or "steps"
    kl_warmup_ratio: float = 0.5  # rising fraction of a cycle ("cyclical")
    validation_fraction: float = 1 / 12  # 5,000 of MNIST's 60,000 training images
    seed: int = 0
    jit_compile: bool = False
    # training steps per tf.function call (less Python per step); callbacks see every N-th
    steps_per_execution: int = DEFAULT_STEPS_PER_EXECUTION
    strategy: str = "auto"  # STRATEGIES
    precision: str = "float32"  # PRECISIONS
    tensorboard: bool = True  # RUN/logs: losses, KL per latent dimension, images per epoch
    prior: str = "standard"  # PRIORS
    prior_components: int | None = None  # None: DEFAULT_PRIOR_COMPONENTS[prior]
    model: str = "vae"  # MODELS
    # sizes of z1 (next to the data) .. zL of a hierarchy; None: DEFAULT_LATENT_DIMS. A
    # hierarchy's latent_dim is set to the size of z1, the layer the decoder reads.
    latent_dims: tuple | None = None
    # each MLP between two latent layers; None: DEFAULT_LATENT_HIDDEN_UNITS; () none
    latent_hidden_units: tuple | None = None
    merge: str = "precision"  # MERGES, for --model ladder
    decoder_bias: str = "zero"  # DECODER_BIASES; set on a fresh run only, never on resume

    def __post_init__(self):
        check_choice("model", self.model, MODELS)
        check_choice("merge", self.merge, MERGES)
        self.latent_dims, self.latent_hidden_units = check_hierarchy(
            self.model, self.latent_dims, self.latent_hidden_units, self.merge, self.prior)
        if self.latent_dims is not None:
            self.latent_dim = self.latent_dims[0]
        check_choice("likelihood", self.likelihood, LIKELIHOODS)
        self.binarize = resolve_binarize(self.binarize, self.likelihood)
        check_choice("architecture", self.architecture, ARCHITECTURES)
        check_choice("decoder_bias", self.decoder_bias, DECODER_BIASES)
        if self.decoder_bias == "data-mean" and self.architecture == "conv":
            raise ConfigError("decoder_bias='data-mean' sets one bias per pixel, which a conv "
                              "decoder's per-pixel head does not have; use --architecture mlp "
                              "or --decoder-bias zero.")
        if self.hidden_units is None and self.architecture == "mlp":
            self.hidden_units = RECIPE_HIDDEN_UNITS
        self.hidden_units = resolve_hidden_units(self.architecture, self.hidden_units)
        check_choice("learning_rate_schedule", self.learning_rate_schedule,
                     LEARNING_RATE_SCHEDULES)
        check_choice("strategy", self.strategy, STRATEGIES)
        check_choice("precision", self.precision, PRECISIONS)
        for name in ("epochs", "batch_size", "latent_dim", "steps_per_execution"):
            check_positive_int(name, getattr(self, name))
        for size in self.latent_dims or (self.latent_dim,):
            check_objective(self.objective, self.iw_samples, self.free_bits,
                            self.free_bits_groups, size)
        check_warmup(self.kl_warmup, self.kl_warmup_length, self.kl_warmup_unit,
                     self.kl_warmup_ratio)
        check_prior(self.prior, self.prior_components)
        check_free_bits_prior(self.free_bits, self.free_bits_groups,
                              factorized=self.prior == "standard")
        check_positive_float("learning_rate", self.learning_rate)
        check_positive_float("adam_epsilon", self.adam_epsilon)
        check_kl_weight(self.kl_weight)
        check_fraction("validation_fraction", self.validation_fraction, high_open=True)

    def to_json(self):
        return {**dataclasses.asdict(self), "hidden_units": list(self.hidden_units),
                "latent_dims": None if self.latent_dims is None else list(self.latent_dims),
                "latent_hidden_units": list(self.latent_hidden_units)}

    @classmethod
    def from_json(cls, values):
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})

    @classmethod
    def defaults(cls):
        """{option: default} of every field (``hidden_units``: None, resolved by architecture)."""
        return {field.name: field.default for field in dataclasses.fields(cls)}
