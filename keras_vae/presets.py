"""Named recipes (presets), as KerasHub keeps them: one place that says what a recipe is.

A preset is a set of ``TrainConfig`` options with a description and the figures it is known
to reach. ``kvae fit --preset NAME`` starts from it (options given on the command line win);
``train_config(NAME, **overrides)`` does the same from Python; ``benchmarks/`` and the
shipped models' build scripts use these names instead of restating the options.

A shipped model is a trained run in the repository's ``saved_models/`` folder, made from a
preset; ``VAE.from_preset(NAME)`` (``load_shipped_model``) loads it.

Pure Python: no TensorFlow import until a model is loaded.
"""

import dataclasses
import pathlib

from keras_vae.checks import check_choice
from keras_vae.config import TrainConfig
from keras_vae.errors import RunError


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named recipe: ``options`` are TrainConfig fields; the rest documents it."""

    name: str
    description: str
    options: dict
    reference: str = ""


def burda_epochs(stages):
    """Epochs of Burda et al.'s stages 0..stages-1, stage i lasting 3^i epochs:
    sum 3^i = (3^stages - 1) / 2 (5 stages: 121 epochs; the paper's 8: 3,280)."""
    return (3 ** stages - 1) // 2


# The recipe of Burda et al. (2016), whatever the model: dynamically binarised MNIST (all
# 60,000 training images), batch 20, Adam (epsilon 1e-4), stage i of 3^i epochs at
# 1e-3 * 10^(-i/7), stages 0..4 (121 epochs).
BURDA_RECIPE = dict(dataset="mnist", likelihood="bernoulli", epochs=burda_epochs(5),
                    batch_size=20, learning_rate=1e-3, learning_rate_schedule="burda",
                    adam_epsilon=1e-4, validation_fraction=0.0,
                    # 100 Adam steps per tf.function call: at batch 20 Python's per-step
                    # overhead is otherwise most of the time (benchmarks/RESULTS.md).
                    steps_per_execution=100)
# Their two-stochastic-layer model (yburda/iwae, experiments.py, layers=2): z1 of 100 and z2
# of 50; q: 784-200-200-z1, z1-100-100-z2; p: z2-100-100-z1, z1-200-200-784; tanh.
BURDA_TWO_LAYERS = dict(architecture="mlp", latent_dims=(100, 50), hidden_units=(200, 200),
                        latent_hidden_units=(100, 100), activation="tanh")
# Every two-layer preset warms up the KL: its weight rises linearly from 0 to 1 over the first
# 4 epochs, stages 0 and 1 (12,000 steps at batch 20): 3% of the 121. Without it a ladder's
# layers collapsed (KL 0.0 nats after 1,200 steps at batch 100; issue 22), and the bottom-up
# model kept about 5 units of z1 and let z2 collapse (KL 12.4 and 0.7 nats after 121 epochs,
# test log p(x) -108.09 nats against the one-layer VAE's -90.10). With it the bottom-up model
# is at the one-layer VAE's training ELBO from epoch 5 on (-105.0 against -105.5 at epoch 10,
# -127.7 without; z2 keeps 11 nats): benchmarks/hvae_recipe.py. Burda et al.'s code trains
# without one; of its differences from keras_vae (exp scales, Adam's beta_1 = 0.99, ...) the
# one that does as much here is its decoder's output bias started at the logits of the mean
# training image (-104.6 at epoch 10), which keras_vae's decoders do not do.
HIERARCHY_WARMUP = dict(kl_warmup="linear", kl_warmup_length=4)
# Issue 24's recipe for the second shipped model: Tomczak & Welling's one-layer VAE with the
# VampPrior (784-300-300-40 ReLU MLPs, 500 pseudo-inputs, batch 100; theirs: gated layers,
# Adam 5e-4) on Burda's stage schedule from 1e-3, with ladder-mnist's 4 epochs of linear KL
# warm-up, stages 0..5 (364 epochs, 218,400 steps); `--epochs 1093 --resume` (stage 6)
# trains it further on the same schedule. It beat the ladder, with or without the VampPrior,
# per CPU-second in the pilots (benchmarks/RESULTS.md, "Issue 24: the recipe").
VAMP_RECIPE = dict(architecture="mlp", latent_dim=40, hidden_units=(300, 300),
                   activation="relu", prior="vamp", prior_components=500, batch_size=100,
                   learning_rate=1e-3, kl_warmup="linear", kl_warmup_length=4,
                   epochs=burda_epochs(6))

PRESETS = {preset.name: preset for preset in (
    Preset(
        name="kvae-mnist",
        description="kvae fit's defaults: 784-500-500-(2x50) ReLU MLPs, batch 50, Adam 1e-3 "
                    "decayed to 0 along half a cosine; 10 epochs reach a test ELBO of about "
                    "-98.4 nats on MNIST in about 30 minutes on 2 CPU cores.",
        options={},
        reference="benchmarks/RESULTS.md"),
    Preset(
        name="burda-mnist",
        description="The one-stochastic-layer VAE of Burda et al. (2016): 784-200-200-50 tanh "
                    "MLPs, dynamically binarised MNIST (all 60,000 training images), batch 20, "
                    "Adam (epsilon 1e-4) with stage i of 3^i epochs at 1e-3 * 10^(-i/7), "
                    "stages 0..4 (121 epochs). Test log p(x) at K=5000: -90.10 nats here; "
                    "-86.76 in the paper after 3,280 epochs.",
        options=dict(architecture="mlp", latent_dim=50, hidden_units=(200, 200),
                     activation="tanh", **BURDA_RECIPE),
        reference="Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, ICLR "
                  "2016, table 1"),
    Preset(
        name="burda-mnist-2layer",
        description="The two-stochastic-layer VAE of Burda et al. (2016), inferred bottom-up, "
                    "q(z1|x) q(z2|z1): z1 of 100 and z2 of 50, 784-200-200 tanh MLPs next to "
                    "the data and 100-100 between the layers, on the burda-mnist recipe "
                    "(batch 20, Adam epsilon 1e-4, stages 0..4: 121 epochs) plus a linear KL "
                    "warm-up over the first 4 epochs, which the paper does not have: without "
                    "it z2 collapses and z1 keeps about 5 units (-108.09 nats at 121 epochs). "
                    "The paper's test log p(x) at K=5000 after 3,280 epochs: -85.33 nats "
                    "(IWAE k=50: -82.90).",
        options=dict(model="hvae", **BURDA_TWO_LAYERS, **HIERARCHY_WARMUP, **BURDA_RECIPE),
        reference="Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, ICLR "
                  "2016, table 1; sizes from their code, yburda/iwae experiments.py"),
    Preset(
        name="ladder-mnist",
        description="burda-mnist-2layer's layers and recipe inferred top-down, as a Ladder "
                    "VAE: each layer's posterior is the precision-weighted merge of a "
                    "bottom-up Gaussian with the top-down prior p(z1|z2). Differs from "
                    "burda-mnist-2layer in the inference alone (both warm up the KL over the "
                    "first 4 epochs; without it the ladder's layers collapse).",
        options=dict(model="ladder", merge="precision", **BURDA_TWO_LAYERS, **HIERARCHY_WARMUP,
                     **BURDA_RECIPE),
        reference="Sønderby, Raiko, Maaløe, Sønderby & Winther, Ladder Variational "
                  "Autoencoders, NeurIPS 2016"),
    Preset(
        name="ladder-conv-mnist",
        description="A convHVAE-like ladder: two stride-2 convolutions (32 and 64 filters, "
                    "tanh) next to the data both ways, z1 and z2 of 40 as in Tomczak & "
                    "Welling's (convolutional) HVAE, 100-100 MLPs between the layers, "
                    "precision merge, KL warm-up over 4 epochs, on the burda-mnist recipe "
                    "(121 epochs). Their convHVAE "
                    "(gated convolutions, 100 epochs of KL warm-up, early stopping) reaches "
                    "-82.41 nats with the standard prior.",
        options=dict(model="ladder", merge="precision", architecture="conv",
                     hidden_units=(32, 64), latent_dims=(40, 40),
                     latent_hidden_units=(100, 100), activation="tanh", **HIERARCHY_WARMUP,
                     **BURDA_RECIPE),
        reference="Tomczak & Welling, VAE with a VampPrior, AISTATS 2018, table 2 "
                  "(convHVAE); Sønderby et al. 2016 (Ladder VAE)"),
    Preset(
        name="vamp-mnist",
        description="The one-stochastic-layer VAE with the VampPrior of Tomczak & Welling "
                    "(2018): 784-300-300-40 ReLU MLPs, p(z) the mixture of the posteriors at "
                    "500 learned pseudo-inputs, batch 100, Adam (epsilon 1e-4) at 1e-3 * "
                    "10^(-i/7) in stage i of 3^i epochs, stages 0..5 (364 epochs), linear KL "
                    "warm-up over 4 epochs: the recipe of the second shipped model (issue 24). "
                    "Pilots of 150 CPU-s: test log p(x) -93.03 nats at K=100 on 2,000 test "
                    "images, against -99.36 for ladder-mnist and -98.65 for a ladder with the "
                    "VampPrior at the top.",
        options={**BURDA_RECIPE, **VAMP_RECIPE},
        reference="Tomczak & Welling, VAE with a VampPrior, AISTATS 2018, table 2 (VAE + "
                  "VampPrior: -85.57 nats); benchmarks/RESULTS.md, issue 24"),
)}


def get(name):
    """The Preset called ``name``; ConfigError listing the valid names otherwise."""
    return PRESETS[check_choice("preset", name, tuple(PRESETS))]


def train_config(name, **overrides):
    """The TrainConfig of preset ``name`` with ``overrides`` (TrainConfig fields) applied."""
    return TrainConfig(**{**get(name).options, **overrides})


# ------------------------------------------------------------------ shipped models

# Where the repository keeps its shipped models: saved_models/ beside the package.
SHIPPED_MODELS_DIR = pathlib.Path(__file__).resolve().parents[1] / "saved_models"
# name -> the preset it was trained with
SHIPPED_MODELS = {"mnist-bernoulli-mlp": "burda-mnist"}


def shipped_model_dir(name):
    """The folder of shipped model ``name``; RunError when this installation lacks it (the
    models live in the repository, not in a wheel)."""
    from keras_vae import runs

    check_choice("shipped model", name, tuple(SHIPPED_MODELS))
    folder = SHIPPED_MODELS_DIR / name
    if not (folder / runs.MODEL).exists():
        raise RunError(f"The shipped model {name} is not in {SHIPPED_MODELS_DIR}: it comes "
                       f"with a clone of the repository (pip install -e .), not with a wheel.")
    return folder


def load_shipped_model(name):
    """The trained ``VAE`` of shipped model ``name`` (``VAE.from_preset``)."""
    from keras_vae import runs

    return runs.load_run(shipped_model_dir(name)).model
