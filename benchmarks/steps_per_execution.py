"""Milliseconds per training step of the Burda et al. model at batch 20, with one step per
tf.function call vs 100 (Keras' ``steps_per_execution``), and with XLA.

    python benchmarks/steps_per_execution.py [--steps 600]

At batch 20 the 784-200-200-50 tanh VAE costs ~50 MFLOP per step, a few milliseconds of
arithmetic: most of a one-step call is Python and op dispatch, which a loop of steps inside
one call amortises. Random binary images in memory, so only the step is timed.
"""

import argparse
import time

import keras
import numpy as np
import tensorflow as tf

import keras_vae as kv


def milliseconds_per_step(steps_per_execution, jit_compile, steps, dataset):
    keras.utils.set_random_seed(0)
    model = kv.VAE(input_shape=(28, 28, 1), latent_dim=50, hidden_units=(200, 200),
                   activation="tanh")
    model.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-4),
                  steps_per_execution=steps_per_execution, jit_compile=jit_compile)
    model.fit(dataset, epochs=1, steps_per_epoch=200, verbose=0)  # trace and warm up
    start = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    return (time.perf_counter() - start) / steps * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    args = parser.parse_args()
    images = (np.random.default_rng(0).random((12000, 28, 28, 1)) > 0.8).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(20, drop_remainder=True)
    dataset = dataset.repeat().prefetch(4)
    print("| steps_per_execution | XLA | ms per step (batch 20) |")
    print("|---:|:---:|---:|")
    for steps_per_execution, jit_compile in ((1, False), (100, False), (100, True)):
        ms = milliseconds_per_step(steps_per_execution, jit_compile, args.steps, dataset)
        print(f"| {steps_per_execution} | {'on' if jit_compile else 'off'} | {ms:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
