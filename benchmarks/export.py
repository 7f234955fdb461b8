"""Size, decode latency and quality of every export of a trained run.

    python benchmarks/export.py RUN [--data-dir DIR] [--seconds 2] [--repeats 3]

RUN is a run directory of ``kvae fit`` (its own data is used for the test set unless
``--data-dir`` says otherwise). The script exports the SavedModel and the TFLite files for
each quantisation into a temporary folder, then prints:

- the size of decoder.tflite (and encoder.tflite);
- the decode latency per sample, at batch 1 and batch 64, of the Keras model (eager call,
  and wrapped in one ``tf.function`` as a server would run it), the SavedModel ``decode``
  signature, and each .tflite decoder in the LiteRT interpreter (XNNPACK, 2 threads);
- the quality change: the test-set Bernoulli negative log-likelihood of the reconstruction
  at the posterior mean, -log p(x | z = loc(x)) in nats per image, computed through the
  exported encoder and decoder, minus the same figure from the Keras model; and the largest
  absolute difference of the decoder's output from the Keras model on 64 draws z ~ p(z).

Latencies are medians of ``--repeats`` windows of ``--seconds`` each after a warm-up; the
machines are shared and noisy, so compare figures from one run.
"""

import argparse
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_vae import evaluation, export, runs  # noqa: E402


def per_sample_microseconds(function, batch, seconds, repeats):
    """Median over ``repeats`` windows of the wall time of ``function(batch)`` / batch size."""
    function(batch)  # warm-up: tracing, allocation, delegate set-up
    windows = []
    for _ in range(repeats):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            function(batch)
            count += 1
        windows.append((time.perf_counter() - start) / count / len(batch) * 1e6)
    return statistics.median(windows)


def test_images(run, data_dir):
    """The run's test split as one float32 array, binarised with its fixed seed."""
    splits = runs.load_splits(run.data_config(data_dir=data_dir))
    return np.concatenate([np.asarray(batch) for batch in splits.test])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()

    run = runs.load_run(options.run)
    model = run.model
    if model.likelihood != "bernoulli":
        # The quality column is a Bernoulli NLL of the exported means; the .tflite decoder
        # of another likelihood exports its mean only, not the rest of its distribution.
        parser.error(f"{options.run} uses likelihood {model.likelihood!r}; the NLL change "
                     f"this benchmark reports needs a Bernoulli run.")
    x = test_images(run, options.data_dir)
    z = {batch: np.random.default_rng(batch).standard_normal(
        (batch, model.latent_dim)).astype("float32") for batch in (1, 64)}
    print(f"run {options.run}: {model.count_params():,} parameters, latent_dim "
          f"{model.latent_dim}, {len(x)} test images; {platform.machine()}, "
          f"{os.cpu_count()} cores, TensorFlow {tf.__version__}", flush=True)

    keras_nll = float(np.mean(evaluation.bernoulli_negative_log_likelihood(
        model.reconstruct(x).numpy(), x)))
    decoders = {
        "Keras, eager": lambda batch: model.decode(batch).mean().numpy(),
        "Keras, tf.function": (lambda f: lambda batch: f(batch).numpy())(
            tf.function(lambda batch: model.decode(batch).mean())),
    }
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        start = time.perf_counter()
        export.export_saved_model(model, scratch / "saved_model")
        print(f"SavedModel exported in {time.perf_counter() - start:.0f} s", flush=True)
        loaded = tf.saved_model.load(str(scratch / "saved_model"))
        signature = loaded.signatures["decode"]
        decoders["SavedModel decode"] = lambda batch: signature(z=tf.constant(batch))[
            "mean"].numpy()
        for name, decode in decoders.items():
            rows.append((name, "", *(per_sample_microseconds(decode, z[b], options.seconds,
                                                             options.repeats)
                                     for b in (1, 64)), "", ""))
        for quantize in export.QUANTIZATIONS:
            start = time.perf_counter()
            folder = scratch / quantize
            metadata = export.export_tflite(model, folder, quantize)
            elapsed = time.perf_counter() - start
            decoder = export.tflite_runner(folder / "decoder.tflite", "decode", num_threads=2)
            encoder = export.tflite_runner(folder / "encoder.tflite", "encode", num_threads=2)
            latency = [per_sample_microseconds(lambda batch: decoder(z=batch)["mean"], z[b],
                                               options.seconds, options.repeats)
                       for b in (1, 64)]
            locs = np.concatenate([encoder(x=x[i:i + 500])["loc"]
                                   for i in range(0, len(x), 500)])
            probabilities = np.concatenate([decoder(z=locs[i:i + 500])["mean"]
                                            for i in range(0, len(x), 500)])
            nll = float(np.mean(evaluation.bernoulli_negative_log_likelihood(probabilities, x)))
            sizes = {part: info["bytes"] for part, info in metadata["files"].items()}
            rows.append((f"TFLite {quantize}", f"{sizes['decoder']:,} / {sizes['encoder']:,}",
                         *latency, f"{nll - keras_nll:+.4f}",
                         f"{metadata['files']['decoder']['max_abs_difference']['batch_64']:.2g}"))
            print(f"TFLite {quantize} exported in {elapsed:.0f} s", flush=True)

    print(f"\nKeras reconstruction NLL at the posterior mean: {keras_nll:.3f} nats per image\n")
    print("| decoder | file bytes (decoder / encoder) | us per sample, batch 1 | "
          "us per sample, batch 64 | NLL change, nats | max abs diff |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, size, batch_1, batch_64, nll, difference in rows:
        print(f"| {name} | {size} | {batch_1:,.1f} | {batch_64:,.2f} | {nll} | {difference} |")
    print(f"\ncommand: python {' '.join(sys.argv)}")


if __name__ == "__main__":
    main()
