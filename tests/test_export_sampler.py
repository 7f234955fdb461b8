"""The exported samplers: sampler.tflite and the SavedModel's sample_from_noise take the prior's
noise as inputs (model.sampler_noise_spec) and hold no random ops, for every prior, checked
number by number against the Keras model on the same noise; metadata.json alone lets an app
draw the noise and sample; the standard prior's exports stay as they were."""

import json
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import keras_vae as kv
from keras_vae import export, priors, runs
from keras_vae.export.parity import RANDOM_OPS
from keras_vae.priors.flow import FlowPrior
from tests.test_cli import run_kvae

tfd = tfp.distributions

IMAGE_SHAPE = (6, 6, 1)
LATENT_DIM = 3
SHIPPED = pathlib.Path(__file__).resolve().parents[1] / "saved_models" / "mnist-bernoulli-mlp"
NOT_MERGED = "priors helper's classes not merged"


class LocalMixturePrior(keras.layers.Layer):
    """A mixture of K diagonal Gaussians written here against the prior contract only, so
    that the export is shown to ask the model and nothing else. Its draw from noise:

        c = the k with F_{k-1} <= u < F_k  (F the cumulative weights, u ~ U[0, 1)),
        z = mu_c + sigma_c * eps,          eps ~ N(0, I),

    with c as a one-hot row from comparisons and matrix products, ops TFLite lowers."""

    def __init__(self, latent_dim, num_components=3, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        rng = np.random.default_rng(0)
        shape = (num_components, latent_dim)
        self.means = self.add_weight(name="means", shape=shape)
        self.means.assign(rng.normal(0, 2, shape))
        self.log_scales = self.add_weight(name="log_scales", shape=shape)
        self.log_scales.assign(rng.normal(-1, 0.3, shape))
        self.logits = self.add_weight(name="logits", shape=(num_components,))
        self.logits.assign(rng.normal(0, 1, num_components))
        self.built = True

    def distribution(self):
        return tfd.MixtureSameFamily(
            tfd.Categorical(logits=self.logits),
            tfd.Independent(tfd.Normal(self.means, tf.exp(self.log_scales)), 1))

    def noise_spec(self):
        return {"z_noise": priors.NoiseInput((self.latent_dim,), "normal"),
                "component_noise": priors.NoiseInput((), "uniform")}

    def sample_from_noise(self, noise):
        weights = tf.nn.softmax(self.logits)
        num = weights.shape[0]
        upper = tf.linalg.matvec(tf.linalg.band_part(tf.ones([num, num]), -1, 0), weights)
        upper = tf.concat([upper[:-1], [2.0]], 0)  # u < 1 always falls in the last component
        u = noise["component_noise"][:, None]
        one_hot = (tf.cast(u >= upper - weights, tf.float32) - tf.cast(u >= upper, tf.float32))
        return (tf.matmul(one_hot, self.means)
                + tf.matmul(one_hot, tf.exp(self.log_scales)) * noise["z_noise"])


class DrawingPrior(kv.StandardNormalPrior):
    """Breaks the contract: draws inside sample_from_noise instead of using its noise."""

    def sample_from_noise(self, noise):
        return noise["z_noise"] + tf.random.normal(tf.shape(noise["z_noise"]))


def _helper_prior(name):
    def build(latent_dim):
        cls = getattr(kv.priors, name, None)
        if cls is None:
            pytest.skip(NOT_MERGED)
        options = {"input_shape": IMAGE_SHAPE} if name == "VampPrior" else {}
        return cls(latent_dim, num_components=4, name="prior", **options)
    return build


PRIORS = {
    "standard": lambda d: kv.StandardNormalPrior(d, name="prior"),
    "local-mixture": lambda d: LocalMixturePrior(d, name="prior"),
    "flow": lambda d: FlowPrior(d, hidden_units=(8,), name="prior"),
    "mog": _helper_prior("MixtureOfGaussiansPrior"),
    "vamp": _helper_prior("VampPrior"),
}


def _model(prior_name):
    keras.utils.set_random_seed(3)
    prior = PRIORS[prior_name](LATENT_DIM)
    # Every learned weight moved off its initial value (the flow starts as the identity, the
    # mixture with equal weights): the sampler must carry the prior's trained state.
    rng = np.random.default_rng(1)
    for weight in prior.weights:
        weight.assign(weight.numpy() + rng.normal(0, 0.1, weight.shape).astype("float32"))
    return kv.VAE(IMAGE_SHAPE, latent_dim=LATENT_DIM, hidden_units=(16,), prior=prior)


@pytest.fixture(scope="module", params=list(PRIORS))
def exported(request, tmp_path_factory):
    """A tiny model with the prior ``request.param`` and its float32, float16 and SavedModel
    exports: {"model", "tflite": {quantize: (folder, metadata)}, "saved_model": folder}."""
    model = _model(request.param)
    root = tmp_path_factory.mktemp(request.param)
    tflite = {quantize: (root / quantize, export.export_tflite(model, root / quantize, quantize))
              for quantize in ("none", "float16")}
    export.export_saved_model(model, root / "saved_model")
    return {"name": request.param, "model": model, "tflite": tflite,
            "saved_model": root / "saved_model"}


def _keras_mean(model, noise):
    return model.decode(model.latent_from_noise(noise)).mean().numpy()


@pytest.mark.parametrize("quantize, tolerance", [("none", 1e-5), ("float16", 1e-3)])  # float16
# tighter than the export's bound (1/255): a tiny model's rounding errors add up less
def test_sampler_matches_keras_on_the_same_noise(exported, quantize, tolerance):
    model = exported["model"]
    folder, metadata = exported["tflite"][quantize]
    runner = export.tflite_runner(folder / "sampler.tflite", "sample_from_noise")
    noise = priors.draw_noise(model.sampler_noise_spec(), 64, seed=7)  # not the check's noise
    expected = _keras_mean(model, noise)
    for batch in (1, 64):
        got = runner(**{name: value[:batch] for name, value in noise.items()})
        assert list(got) == ["mean"]
        assert got["mean"].shape == (batch, *IMAGE_SHAPE)
        assert np.max(np.abs(got["mean"] - expected[:batch])) <= tolerance
    recorded = metadata["files"]["sampler"]["max_abs_difference"]
    assert max(recorded.values()) <= export.PARITY_TOLERANCE[quantize]
    # The images differ from draw to draw: the noise reaches them.
    assert np.std(expected, axis=0).max() > 1e-3


def test_sampler_holds_no_random_or_flex_ops(exported):
    for quantize, (folder, metadata) in exported["tflite"].items():
        content = (folder / "sampler.tflite").read_bytes()
        ops = {op["op_name"] for op in export.runner_ops(content)}
        assert ops == set(metadata["files"]["sampler"]["ops"])
        assert not any(op.startswith("Flex") or op in RANDOM_OPS or "RANDOM" in op
                       for op in ops), (quantize, ops)


def test_metadata_alone_lets_an_app_draw_the_noise_and_sample(exported):
    """What an app does with metadata.json and sampler.tflite, and nothing else."""
    model = exported["model"]
    folder, _ = exported["tflite"]["none"]
    metadata = json.loads((folder / "metadata.json").read_text())
    sampler = metadata["files"]["sampler"]
    spec = model.sampler_noise_spec()
    assert [row["name"] for row in sampler["inputs"]] == sorted(spec)
    rng = np.random.default_rng(11)
    noise = {}
    for row in sampler["inputs"]:
        item = spec[row["name"]]
        assert row["shape"] == [-1, *item.shape] and row["dtype"] == "float32"
        assert row["distribution"] == {"normal": "standard normal",
                                       "uniform": "uniform [0, 1)"}[item.distribution]
        assert f"{row['name']} ~ " in sampler["how_to_sample"]
        shape = [5 if size == -1 else size for size in row["shape"]]
        noise[row["name"]] = (rng.standard_normal(shape) if row["distribution"].startswith(
            "standard normal") else rng.random(shape)).astype(row["dtype"])
    runner = export.tflite_runner(folder / sampler["file"], sampler["signature"])
    (output,) = sampler["outputs"]
    images = runner(**noise)[output["name"]]
    assert images.shape == (5, *metadata["image_shape"])
    low, high = output["range"]
    assert low <= images.min() and images.max() <= high
    np.testing.assert_allclose(images, _keras_mean(model, noise), atol=1e-5)
    # The prior entry: N(0, I) for the standard prior (decoder.tflite alone still samples
    # it, as before), else the prior's registered name and the sampler's recipe.
    if exported["name"] == "standard":
        assert metadata["prior"]["distribution"] == "Normal"
        assert "standard Normal" in metadata["files"]["decoder"]["inputs"][0]["meaning"]
    else:
        assert metadata["prior"] == {
            "distribution": keras.saving.get_registered_name(type(model.prior)),
            "event_shape": [LATENT_DIM], "how_to_sample": sampler["how_to_sample"]}
        assert "N(0, I) numbers are not samples of it" in (
            metadata["files"]["decoder"]["inputs"][0]["meaning"])
    assert metadata["num_parameters"] == (model.encoder.count_params() + model.decoder
                                          .count_params() + model.prior.count_params())


def test_saved_model_samples_every_prior(exported):
    model = exported["model"]
    loaded = tf.saved_model.load(str(exported["saved_model"]))
    # sample(num, seed) draws through the prior's own distribution: the same images as
    # VAE.sample with that seed.
    sampled = loaded.signatures["sample"](num=tf.constant(6), seed=tf.constant(4))["x"]
    np.testing.assert_allclose(sampled, model.sample(6, seed=4), atol=1e-5)
    noise = priors.draw_noise(model.sampler_noise_spec(), 10, seed=9)
    outputs = loaded.signatures["sample_from_noise"](
        **{name: tf.constant(value) for name, value in noise.items()})
    z = model.latent_from_noise(noise)
    np.testing.assert_allclose(outputs["z"], z, atol=1e-5)
    np.testing.assert_allclose(outputs["mean"], model.decode(z).mean(), atol=1e-5)
    np.testing.assert_allclose(outputs["logits"], model.decode(z).distribution.logits,
                               atol=1e-5)


def test_a_prior_that_draws_inside_its_sampler_is_refused(tmp_path):
    model = kv.VAE(IMAGE_SHAPE, latent_dim=LATENT_DIM, hidden_units=(16,),
                   prior=DrawingPrior(LATENT_DIM))
    with pytest.raises(export.ExportError, match="TFLite sampler uses RANDOM_STANDARD_NORMAL"):
        export.export_tflite(model, tmp_path / "tflite")
    assert not (tmp_path / "tflite").exists()


def test_kvae_export_writes_the_sampler_of_a_flow_prior_model(tmp_path, monkeypatch, capsys):
    model = _model("flow")
    model.save(tmp_path / "flow.keras")
    status, out, err = run_kvae(monkeypatch, capsys, "export", tmp_path / "flow.keras",
                                "--format", "tflite", "--output", tmp_path / "tflite")
    assert status == 0, err
    assert "sampler.tflite" in out
    noise = priors.draw_noise(model.sampler_noise_spec(), 4, seed=2)
    runner = export.tflite_runner(tmp_path / "tflite" / "sampler.tflite", "sample_from_noise")
    np.testing.assert_allclose(runner(**noise)["mean"], _keras_mean(model, noise), atol=1e-5)


def test_reexporting_the_shipped_model_keeps_its_metadata_and_adds_the_sampler(tmp_path):
    """The shipped export (made before learned priors) is what today's export writes, plus
    sampler.tflite: the same metadata, entry for entry, for the decoder and the encoder."""
    shipped = json.loads((SHIPPED / "export" / "tflite" / "metadata.json").read_text())
    metadata = export.export_tflite(runs.load_run(SHIPPED).model, tmp_path / "tflite")
    assert sorted(metadata["files"]) == ["decoder", "encoder", "sampler"]
    for key in set(shipped) - {"files", "versions"}:
        assert metadata[key] == shipped[key], key
    for part in ("decoder", "encoder"):
        now, then = metadata["files"][part], shipped["files"][part]
        # The measured differences depend on the CPU's kernels; both are within 1e-5.
        assert max(now.pop("max_abs_difference").values()) <= 1e-5
        then.pop("max_abs_difference")
        # The converter writes the names of the traced functions into the file, which carry
        # counters of what the process traced before: a few bytes, and so the hash, differ
        # when other exports ran first (in a fresh process the bytes are the shipped ones).
        assert abs(now.pop("bytes") - then.pop("bytes")) < 100
        now.pop("sha256"), then.pop("sha256")
        assert now == then, part
