"""Export of hierarchical VAEs (z1 next to the data .. zL at the top), bottom-up and top-down,
with learned priors at the top: the TFLite sampler takes the noise of every layer and holds no
random ops, the decoder takes z1, both match the Keras model number by number; metadata.json
alone lets an app sample; the SavedModel's signatures are the VAE's, per layer where a
hierarchy has several; ``kvae export`` exports a hierarchical run."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vae import export, priors, train
from keras_vae.errors import ExportError
from keras_vae.export.parity import RANDOM_OPS
from keras_vae.hierarchy import HierarchicalVAE
from tests.helpers import tiny_train_config
from tests.test_cli import run_kvae

IMAGE_SHAPE = (6, 6, 1)

# name -> HierarchicalVAE options: both inferences, both merges, 2 and 3 layers, the
# mixture and the VampPrior at the top (bottom-up with the standard prior: the kvae export
# test below).
# Each is exported three times (float32, float16, SavedModel): about 30 s of CPU.
CONFIGS = {
    "bottom_up-mog-3-layers": dict(inference="bottom_up", prior="mog", latent_dims=(4, 3, 2)),
    "top_down-residual-mog": dict(inference="top_down", merge="residual", prior="mog"),
    "top_down-vamp": dict(inference="top_down", prior="vamp"),
}
FRESH_PROCESS_CONFIG = "top_down-residual-mog"  # its SavedModel is also loaded without us


def _model(name):
    keras.utils.set_random_seed(5)
    options = dict(CONFIGS[name])
    latent_dims = options.pop("latent_dims", (4, 3))
    prior = options.pop("prior", "standard")
    options["prior"] = priors.build_prior(
        prior, latent_dims[-1], num_components=None if prior == "standard" else 3,
        input_shape=IMAGE_SHAPE)
    model = HierarchicalVAE(IMAGE_SHAPE, latent_dims=latent_dims, hidden_units=(16,),
                            latent_hidden_units=(8,), **options)
    # Every weight moved off its initial value (biases start at 0, the mixture with equal
    # weights): the files must carry every layer's trained state.
    rng = np.random.default_rng(2)
    for weight in model.trainable_weights:
        weight.assign(weight.numpy() + rng.normal(0, 0.2, weight.shape).astype("float32"))
    return model


@pytest.fixture(scope="module", params=list(CONFIGS))
def exported(request, tmp_path_factory):
    """{"name", "model", "tflite": {quantize: (folder, metadata)}, "saved_model": folder}."""
    model = _model(request.param)
    root = tmp_path_factory.mktemp(request.param)
    tflite = {quantize: (root / quantize, export.export_tflite(model, root / quantize, quantize))
              for quantize in ("none", "float16")}
    report = export.export_saved_model(model, root / "saved_model")
    return {"name": request.param, "model": model, "tflite": tflite,
            "saved_model": root / "saved_model", "saved_model_report": report}


def _images(num, seed=0):
    return (np.random.default_rng(seed).random((num, *IMAGE_SHAPE)) < 0.4).astype("float32")


def _keras_mean(model, noise):
    return model.decode(model.latent_from_noise(noise)).mean().numpy()


# ---------------------------------------------------------------- the sampler


@pytest.mark.parametrize("quantize, tolerance", [("none", 1e-5), ("float16", 1e-3)])
def test_sampler_takes_every_layers_noise_and_matches_keras(exported, quantize, tolerance):
    model = exported["model"]
    folder, metadata = exported["tflite"][quantize]
    runner = export.tflite_runner(folder / "sampler.tflite", "sample_from_noise")
    spec = model.sampler_noise_spec()
    # one noise input per layer below the top, then the top prior's, named after the layer
    layers = list(model.latent_sizes)
    assert [f"{layer}_noise" for layer in layers[:-1]] == list(spec)[:len(layers) - 1]
    assert all(name.startswith(f"{layers[-1]}_") for name in list(spec)[len(layers) - 1:])
    noise = priors.draw_noise(spec, 64, seed=7)  # not the export check's noise
    expected = _keras_mean(model, noise)
    for batch in (1, 64):
        got = runner(**{name: value[:batch] for name, value in noise.items()})
        assert list(got) == ["mean"] and got["mean"].shape == (batch, *IMAGE_SHAPE)
        assert np.max(np.abs(got["mean"] - expected[:batch])) <= tolerance
    assert max(metadata["files"]["sampler"]["max_abs_difference"].values()) <= (
        export.PARITY_TOLERANCE[quantize])
    # The noise of every layer reaches the image: new noise for one input changes it.
    for name in spec:
        changed = dict(noise, **priors.draw_noise({name: spec[name]}, 64, seed=8))
        assert np.max(np.abs(runner(**changed)["mean"] - expected)) > 1e-3, name


def test_no_file_holds_random_or_flex_ops(exported):
    for quantize, (folder, metadata) in exported["tflite"].items():
        for part in ("decoder", "encoder", "sampler"):
            ops = {op["op_name"] for op in
                   export.runner_ops((folder / f"{part}.tflite").read_bytes())}
            assert ops == set(metadata["files"][part]["ops"])
            assert not any(op.startswith("Flex") or op in RANDOM_OPS or "RANDOM" in op
                           for op in ops), (quantize, part, ops)


# ---------------------------------------------------------------- decoder and encoder


@pytest.mark.parametrize("quantize, tolerance", [("none", 1e-5), ("float16", 1e-3)])
def test_decoder_takes_z1_and_encoder_gives_every_layer(exported, quantize, tolerance):
    model = exported["model"]
    folder, _ = exported["tflite"][quantize]
    decoder = export.tflite_runner(folder / "decoder.tflite", "decode")
    encoder = export.tflite_runner(folder / "encoder.tflite", "encode")
    x = _images(64)
    means = {name: mean.posterior_mean.numpy()
             for name, mean in model.latent_diagnostics(x, seed=1).items()}
    encoded = encoder(x=x)
    assert sorted(encoded) == sorted(f"{name}_{key}" for name in model.latent_sizes
                                     for key in ("loc", "scale"))
    # The encoder within the export's own bound (float16: one grey level, 1/255).
    bound = export.PARITY_TOLERANCE[quantize]
    for name, mean in means.items():
        # each layer's loc: its posterior mean given the means of the layers it depends on
        assert np.max(np.abs(encoded[f"{name}_loc"] - mean)) <= bound, name
        assert encoded[f"{name}_scale"].min() > 0
    z1 = model.latent_from_noise(priors.draw_noise(model.sampler_noise_spec(), 64, 3))["z1"]
    for z in (z1.numpy(), means["z1"]):  # z1 of the prior and of the posterior
        for batch in (1, 64):
            got = decoder(z1=z[:batch])["mean"]
            assert np.max(np.abs(got - model.decode(z[:batch]).mean())) <= tolerance
    # An app's reconstruction, encoder.tflite then decoder.tflite, is the model's.
    reconstructed = decoder(z1=encoded["z1_loc"])["mean"]
    assert np.max(np.abs(reconstructed - model.reconstruct(x))) <= 2 * bound


def test_encoder_outputs_are_the_posteriors_of_the_inference_pass():
    """Top-down, z_L's loc and scale are q(z_L | x) itself; bottom-up, z1's are q(z1 | x)
    (the encoder): the first layer inferred is a marginal of q, checked against ``encode``."""
    x = _images(5, seed=3)
    for name, first in (("top_down-vamp", "z2"), ("bottom_up-mog-3-layers", "z1")):
        model = _model(name)
        outputs = export.encoder_outputs(model, x)
        distributions, _ = model.encode(x).sample_distributions(seed=[1, 2])
        marginal = distributions[0]  # the first part of the joint q, in inference order
        np.testing.assert_allclose(outputs[f"{first}_loc"], marginal.mean(), atol=1e-6)
        np.testing.assert_allclose(outputs[f"{first}_scale"], marginal.stddev(), rtol=1e-6)


# ---------------------------------------------------------------- metadata.json


def test_metadata_alone_lets_an_app_draw_samples(exported):
    """What an app does with metadata.json and sampler.tflite: plain numpy and LiteRT."""
    model = exported["model"]
    folder, _ = exported["tflite"]["none"]
    metadata = json.loads((folder / "metadata.json").read_text())
    layers = list(model.latent_sizes)
    assert metadata["latent_sizes"] == dict(model.latent_sizes)
    assert metadata["decoder_layer"] == "z1" and metadata["latent_dim"] == model.latent_sizes["z1"]
    prior = metadata["prior"]
    assert prior["distribution"] == "hierarchy"
    assert prior["factorization"] == " ".join(
        [f"p({layers[-1]})"] + [f"p({layers[i]} | {layers[i + 1]})"
                                for i in reversed(range(len(layers) - 1))])
    assert prior["top"] == {"layer": layers[-1],
                            "distribution": keras.saving.get_registered_name(
                                type(model.prior)),
                            "event_shape": [model.latent_sizes[layers[-1]]]}
    (z1,) = metadata["files"]["decoder"]["inputs"]
    assert z1["name"] == "z1" and z1["shape"] == [-1, model.latent_sizes["z1"]]
    assert "N(0, I) numbers are not samples of it" in z1["meaning"]

    sampler = metadata["files"]["sampler"]
    rng = np.random.default_rng(11)
    noise = {}
    for row in sampler["inputs"]:
        layer = row["name"].split("_")[0]
        assert f"of layer {layer}" in row["meaning"] or f"top layer {layer}" in row["meaning"]
        assert row["how_to_sample"].startswith("draw ") and f"{row['name']} ~ " in (
            sampler["how_to_sample"])
        shape = [5 if size == -1 else size for size in row["shape"]]
        noise[row["name"]] = (rng.standard_normal(shape) if row["distribution"] ==
                              "standard normal" else rng.random(shape)).astype(row["dtype"])
    assert sorted(noise) == sorted(model.sampler_noise_spec())
    runner = export.tflite_runner(folder / sampler["file"], sampler["signature"])
    (output,) = sampler["outputs"]
    images = runner(**noise)[output["name"]]
    assert images.shape == (5, *metadata["image_shape"])
    assert output["range"][0] <= images.min() and images.max() <= output["range"][1]
    np.testing.assert_allclose(images, _keras_mean(model, noise), atol=1e-5)
    assert metadata["num_parameters"] == sum(int(np.prod(w.shape))
                                             for w in model.trainable_weights)


# ---------------------------------------------------------------- SavedModel


def test_saved_model_signatures_of_a_hierarchy(exported):
    model = exported["model"]
    report = exported["saved_model_report"]["max_abs_difference"]
    assert sorted(report) == ["decode", "encode", "reconstruct", "sample", "sample_from_noise",
                              "serving_default"]
    loaded = tf.saved_model.load(str(exported["saved_model"]))
    x = _images(10, seed=4)
    z1 = np.random.default_rng(1).standard_normal((10, model.latent_sizes["z1"]))
    decoded = loaded.signatures["decode"](z1=tf.constant(z1, tf.float32))
    np.testing.assert_allclose(decoded["mean"], model.decode(z1).mean(), atol=1e-5)
    np.testing.assert_allclose(decoded["logits"], model.decode(z1).distribution.logits,
                               atol=1e-5)
    encoded = loaded.signatures["encode"](x=tf.constant(x))
    for name, (loc, scale) in model.layer_posterior_parameters(x).items():
        np.testing.assert_allclose(encoded[f"{name}_loc"], loc, atol=1e-5)
        np.testing.assert_allclose(encoded[f"{name}_scale"], scale, atol=1e-5)
    np.testing.assert_allclose(loaded.signatures["reconstruct"](x=tf.constant(x))["mean"],
                               model.reconstruct(x), atol=1e-5)
    noise = priors.draw_noise(model.sampler_noise_spec(), 10, seed=9)
    drawn = loaded.signatures["sample_from_noise"](
        **{name: tf.constant(value) for name, value in noise.items()})
    latent = model.latent_from_noise(noise)
    assert sorted(drawn) == sorted(["mean", "logits", *model.latent_sizes])
    for name in model.latent_sizes:
        np.testing.assert_allclose(drawn[name], latent[name], atol=1e-5)
    np.testing.assert_allclose(drawn["mean"], model.decode(latent).mean(), atol=1e-5)
    # sample(num, seed): decoded draws of the joint prior p(z) from the stateless seed
    # [seed, 0], the same images for the same seed.
    sampled = loaded.signatures["sample"](num=tf.constant(6), seed=tf.constant(4))["x"]
    draw = model.prior_distribution().sample(6, seed=tf.constant([4, 0]))
    np.testing.assert_allclose(sampled, model.decode(draw).mean(), atol=1e-5)
    # ... which is what the Keras model's own sample(num, seed) gives
    np.testing.assert_allclose(sampled, model.sample(6, seed=4), atol=1e-5)
    again = loaded.signatures["sample"](num=tf.constant(6), seed=tf.constant(4))["x"]
    other = loaded.signatures["sample"](num=tf.constant(6), seed=tf.constant(5))["x"]
    np.testing.assert_array_equal(sampled, again)
    assert np.max(np.abs(sampled - other)) > 1e-3


FRESH_PROCESS = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(sys.argv[1])
    rows = []
    for name, function in sorted(loaded.signatures.items()):
        specs = function.structured_input_signature[1]
        rows.append(name + "(" + ", ".join(f"{key}:{spec.shape}" for key, spec in
                                           sorted(specs.items())) + ")")
    noise = {key: tf.random.normal([3] + spec.shape[1:]) if "component" not in key else
             tf.random.uniform([3]) for key, spec in
             loaded.signatures["sample_from_noise"].structured_input_signature[1].items()}
    out = loaded.signatures["sample_from_noise"](**noise)
    rows.append("sample_from_noise -> " + ", ".join(sorted(out)))
    assert "keras_vae" not in sys.modules, "the SavedModel pulled in keras_vae"
    print("\\n".join(rows))
""")


def test_saved_model_of_a_hierarchy_loads_without_keras_vae(exported, tmp_path):
    if exported["name"] != FRESH_PROCESS_CONFIG:  # one fresh TensorFlow process is enough
        return
    script = tmp_path / "load.py"
    script.write_text(FRESH_PROCESS)
    process = subprocess.run([sys.executable, script, exported["saved_model"]],
                             capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stderr[-3000:]
    assert process.stdout.split("\n")[:-1] == [
        "decode(z1:(None, 4))", "encode(x:(None, 6, 6, 1))", "reconstruct(x:(None, 6, 6, 1))",
        "sample(num:(), seed:())",
        "sample_from_noise(z1_noise:(None, 4), z2_component_noise:(None,), "
        "z2_noise:(None, 3))",
        "serving_default(z1:(None, 4))",
        "sample_from_noise -> logits, mean, z1, z2"]


# ---------------------------------------------------------------- the command and its errors


def test_kvae_export_exports_a_hierarchical_run(idx_folder, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    config = tiny_train_config(idx_folder, model="hvae", latent_dims=(3, 2),
                               latent_hidden_units=(8,), epochs=1)
    train.fit(config, run, verbose=0)
    for arguments in (["--format", "tflite"], ["--format", "saved_model"]):
        status, out, err = run_kvae(monkeypatch, capsys, "export", run, *arguments)
        assert status == 0, err
    assert sorted(p.name for p in (run / "export" / "tflite").iterdir()) == [
        "decoder.tflite", "encoder.tflite", "metadata.json", "sampler.tflite"]
    assert "saved_model.pb" in {p.name for p in (run / "export" / "saved_model").iterdir()}
    metadata = json.loads((run / "export" / "tflite" / "metadata.json").read_text())
    assert metadata["latent_sizes"] == {"z1": 3, "z2": 2} and metadata["decoder_layer"] == "z1"
    model = keras.models.load_model(run / "model.keras")
    noise = priors.draw_noise(model.sampler_noise_spec(), 4, seed=2)
    runner = export.tflite_runner(run / "export" / "tflite" / "sampler.tflite",
                                  "sample_from_noise")
    np.testing.assert_allclose(runner(**noise)["mean"], _keras_mean(model, noise), atol=1e-5)


def test_a_model_without_the_export_members_is_refused_by_name(tmp_path):
    class EvaluatedOnly:
        image_shape, latent_sizes = IMAGE_SHAPE, {"z": 2}

    with pytest.raises(ExportError, match="EvaluatedOnly cannot be exported: it lacks "
                                          "decoder_layer, decoder_input, "
                                          "layer_posterior_parameters"):
        export.export_tflite(EvaluatedOnly(), tmp_path / "tflite")
    assert not (tmp_path / "tflite").exists()
