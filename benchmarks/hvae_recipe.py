"""Short runs of the bottom-up two-layer VAE (preset ``burda-mnist-2layer``) with one change
at a time, to find why it trains worse than the one-layer VAE (-108.09 against -90.10 nats
at 121 epochs).

Each variant is ``kvae fit``'s run (``train.fit``: the same data pipeline, seed, recipe and
logs) of a preset for ``--epochs`` epochs, with one change patched in for the run (variants
below). It prints one row per variant: training ELBO, KL per layer (training means of the
last epoch, nats) and the units whose KL exceeds 0.1 and 1 nat, and whose posterior mean
varies (Var_x E_q[z_i|x] > 0.01, Burda et al. 2016 sec. 5.2), on the monitor's test images.

    nice -n 19 python benchmarks/hvae_recipe.py --data-dir ../shared/data/mnist \\
        --epochs 5 --variant baseline --output /tmp/hvae-recipe
"""

import argparse
import csv
import json
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


DATA_DIR = "/work/shared/data/mnist"  # set from --data-dir


def _patch_step_scale(scale):
    """Every GaussianStep (q(z2|z1), p(z1|z2)) reads its scale through ``scale``."""
    from keras_vae.hierarchy import passes, steps

    steps.layer_scale = scale
    passes.layer_scale = scale


def _patch_encoder_scale(scale):
    """q(z1|x) (the GaussianEncoder) reads its scale through ``scale``."""
    from keras_vae.layers import encoder

    encoder.positive_scale = scale


def _exp_scale(raw):
    import tensorflow as tf

    return tf.exp(raw)


def _unit_softplus(raw):
    """softplus(raw + log(e - 1)) + 1e-5: 1 at raw = 0."""
    import tensorflow as tf

    return tf.math.softplus(raw + float(np.log(np.expm1(1.0)))) + 1e-5


def _patch_sticking_the_landing():
    """The sampled KL of a layer drawn before its prior's condition (z1 of a bottom-up pass)
    with log q at stopped parameters: the same value, an unbiased gradient without the score
    term E[d log q / d params] = 0 (Roeder, Wu & Duvenaud 2017, "sticking the landing")."""
    import tensorflow as tf

    from keras_vae.hierarchy import passes

    original = passes.layer_kl

    def layer_kl(layer):
        if layer.closed_form_kl:
            return original(layer)
        inner = layer.posterior.distribution
        stopped = passes.diagonal_normal(tf.stop_gradient(inner.loc),
                                         tf.stop_gradient(inner.scale))
        kl = stopped.log_prob(layer.z) - layer.prior.log_prob(layer.z)
        return tf.reduce_mean(kl, axis=0) if kl.shape.rank > 1 else kl

    passes.layer_kl = layer_kl


def _zero_head(name):
    """Zero the output kernel of the steps whose names start with ``name``, after build."""
    def patch(model):
        for step in model.up_steps + model.down_steps:
            if step.name.startswith(name):
                step.head.kernel.assign(np.zeros(step.head.kernel.shape, np.float32))
    return patch


def _data_bias(model):
    """The decoder's output bias at the logits of the training images' mean grey levels,
    clipped to [0.001, 0.999] (yburda/iwae: datasets.py get_train_bias_np)."""
    import gzip

    with gzip.open(pathlib.Path(DATA_DIR) / "train-images-idx3-ubyte.gz") as images:
        pixels = np.frombuffer(images.read(), np.uint8, offset=16).reshape(-1, 784)
    mean = np.clip(pixels.mean(axis=0) / 255.0, 0.001, 0.999)
    model.decoder.head.bias.assign((np.log(mean) - np.log1p(-mean)).astype(np.float32))


def _patch_adam(beta_1=0.9, unit_velocity=False):
    """kvae fit's Adam with ``beta_1``, and with ``unit_velocity`` the second moments
    initialised to 1 instead of 0 (yburda/iwae optimizers.py: beta_1 = 0.99, ones)."""
    import keras

    base = keras.optimizers.Adam

    class Patched(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, beta_1=beta_1, **kwargs)

        def build(self, var_list):
            if self.built:
                return
            super().build(var_list)
            if unit_velocity:
                for velocity in self._velocities:
                    velocity.assign(keras.ops.ones_like(velocity))

    keras.optimizers.Adam = Patched


VARIANTS = {
    # name -> (preset, TrainConfig overrides, patch before build, patch of the built model)
    "baseline": ("burda-mnist-2layer", {}, None, None),
    "one-layer": ("burda-mnist", {}, None, None),
    "exp-steps": ("burda-mnist-2layer", {}, lambda: _patch_step_scale(_exp_scale), None),
    "exp-all": ("burda-mnist-2layer", {},
                lambda: (_patch_step_scale(_exp_scale), _patch_encoder_scale(_exp_scale)),
                None),
    "unit-steps": ("burda-mnist-2layer", {}, lambda: _patch_step_scale(_unit_softplus), None),
    "warmup4": ("burda-mnist-2layer", dict(kl_warmup="linear", kl_warmup_length=4), None,
                None),
    "zero-down": ("burda-mnist-2layer", {}, None, _zero_head("down")),
    "data-bias": ("burda-mnist-2layer", {}, None, _data_bias),
    "one-layer-data-bias": ("burda-mnist", {}, None, _data_bias),
    "data-bias-warmup4": ("burda-mnist-2layer", dict(kl_warmup="linear", kl_warmup_length=4),
                          None, _data_bias),
    "warmup1": ("burda-mnist-2layer", dict(kl_warmup="linear", kl_warmup_length=1), None,
                None),
    "stl": ("burda-mnist-2layer", {}, _patch_sticking_the_landing, None),
    "adam-b1": ("burda-mnist-2layer", {}, lambda: _patch_adam(0.99), None),
    "burda-adam": ("burda-mnist-2layer", {}, lambda: _patch_adam(0.99, True), None),
    "one-layer-burda-adam": ("burda-mnist", {}, lambda: _patch_adam(0.99, True), None),
}


def _patched_build(after_build):
    """train.build_model followed by ``after_build(model)``."""
    from keras_vae import train

    original = train.build_model

    def build(*args, **kwargs):
        model = original(*args, **kwargs)
        after_build(model)
        return model

    train.build_model = build


def summarise(run_dir, latent_sizes):
    """{elbo, kl, kl_z1, ..., units} of the run's last epoch."""
    history = list(csv.DictReader(open(run_dir / "history.csv")))[-1]
    latent = list(csv.DictReader(open(run_dir / "latent_history.csv")))[-1]
    row = {"epoch": int(history["epoch"]), "elbo": float(history["elbo"]),
           "kl": float(history["kl"])}
    for index, size in enumerate(latent_sizes):
        name = f"z{index + 1}"
        prefix = f"kl_{name}_dim_" if f"kl_{name}_dim_0" in latent else "kl_dim_"
        layer = np.array([float(latent[f"{prefix}{i}"]) for i in range(size)])
        row[f"kl_{name}"] = float(history.get(f"kl_{name}", history["kl"]))
        row[f"{name}_kl>0.1"] = int((layer > 0.1).sum())
        row[f"{name}_kl>1"] = int((layer > 1.0).sum())
        row[f"{name}_active"] = int(latent.get(f"active_units_{name}",
                                               latent["active_units"]))
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--variant", choices=sorted(VARIANTS), required=True)
    parser.add_argument("--output", required=True, help="folder of the runs")
    args = parser.parse_args()

    from keras_vae import presets, train

    global DATA_DIR
    DATA_DIR = args.data_dir
    preset, overrides, before, after = VARIANTS[args.variant]
    if before:
        before()
    if after:
        _patched_build(after)
    config = presets.train_config(preset, data_dir=args.data_dir, epochs=args.epochs,
                                  tensorboard=False, **overrides)
    run_dir = pathlib.Path(args.output) / args.variant
    train.fit(config, run_dir, overwrite=True, verbose=2)
    sizes = config.latent_dims if config.model != "vae" else (config.latent_dim,)
    row = {"variant": args.variant, **summarise(run_dir, sizes)}
    print(json.dumps(row))
    with open(pathlib.Path(args.output) / "rows.jsonl", "a") as rows:
        rows.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
