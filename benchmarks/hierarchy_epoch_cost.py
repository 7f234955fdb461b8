"""CPU time per training epoch of the issue-22 configurations, side by side (issue 22).

Each configuration is a preset (keras_vae/presets.py) with its objective: the one-layer VAE
(``burda-mnist``) and the two-layer VAE of Burda et al. 2016 (``burda-mnist-2layer``), each
trained with the ELBO and with the IWAE bound at k = 5 and 50, the ladder (``ladder-mnist``)
and the convolutional ladder (``ladder-conv-mnist``). The model and its compile call are
exactly those of ``kvae fit`` (``train.build_model``); the data are random binary 28x28 images
held in memory, so the input pipeline costs nothing and the figure is the model's.

    nice -n 19 python benchmarks/hierarchy_epoch_cost.py --steps 300 --rounds 3

Every model is built and traced first; then each round trains every configuration for
``--steps`` steps in turn (alternating, so a change in the load of this shared machine hits
all of them alike), and the table gives the median over the rounds of

    CPU ms per step = process CPU time (all threads, ``time.process_time``) / steps,
    CPU s per epoch = CPU ms per step x 60,000 / batch size (all of MNIST's training images),
    CPU h for 121 epochs (stages 0..4 of the Burda schedule),

and the wall-clock ms per step beside it. CPU time, unlike wall time, does not count the
time another process held the cores, so it is the figure to compare on a shared machine
(it still grows somewhat under load: caches and memory bandwidth are shared).
"""

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from throughput_trainers import in_memory_batches, random_binary_images  # noqa: E402

MNIST_TRAINING_IMAGES = 60_000
EPOCHS = 121  # stages 0..4 of Burda et al.'s schedule (presets.burda_epochs(5))

# name -> (preset, TrainConfig overrides)
CONFIGURATIONS = {
    "1-layer VAE": ("burda-mnist", {}),
    "1-layer IWAE k=5": ("burda-mnist", dict(objective="iwae", iw_samples=5)),
    "1-layer IWAE k=50": ("burda-mnist", dict(objective="iwae", iw_samples=50)),
    "2-layer VAE": ("burda-mnist-2layer", {}),
    "2-layer IWAE k=5": ("burda-mnist-2layer", dict(objective="iwae", iw_samples=5)),
    "2-layer IWAE k=50": ("burda-mnist-2layer", dict(objective="iwae", iw_samples=50)),
    "ladder": ("ladder-mnist", {}),
    "conv ladder": ("ladder-conv-mnist", {}),
}


def build(name):
    """(model, batches) of configuration ``name``: ``kvae fit``'s model and compile call."""
    from keras_vae import presets, train

    preset, overrides = CONFIGURATIONS[name]
    config = presets.train_config(preset, **overrides)
    steps_per_epoch = MNIST_TRAINING_IMAGES // config.batch_size
    model = train.build_model(config, (28, 28, 1), steps_per_epoch=steps_per_epoch)
    batches = in_memory_batches(random_binary_images(10 * config.batch_size),
                                config.batch_size)
    return config, model, batches


def trainable_parameters(model):
    """Number of trainable weights (the optimiser's state variables not counted)."""
    return sum(int(weight.numpy().size) for weight in model.trainable_weights)


def timed_steps(model, batches, steps):
    """(CPU seconds, wall seconds) of ``steps`` training steps."""
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0)
    return time.process_time() - cpu, time.perf_counter() - wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300,
                        help="training steps per timed window (a multiple of 100, the "
                             "presets' steps per call)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--configurations", default=",".join(CONFIGURATIONS),
                        help="comma-separated names of: " + ", ".join(CONFIGURATIONS))
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    names = [name.strip() for name in args.configurations.split(",")]
    unknown = [name for name in names if name not in CONFIGURATIONS]
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; choose from {list(CONFIGURATIONS)}")

    built = {name: build(name) for name in names}
    for name, (config, model, batches) in built.items():  # trace every train function
        timed_steps(model, batches, config.steps_per_execution)
    times = {name: [] for name in names}
    for _ in range(args.rounds):
        for name, (config, model, batches) in built.items():
            times[name].append(timed_steps(model, batches, args.steps))

    print(f"{args.rounds} rounds of {args.steps} steps, medians")
    print("| configuration | preset | objective, K | batch | trainable parameters | "
          "CPU ms per step | wall ms per step | CPU s per epoch | CPU h for 121 epochs |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    rows = {}
    for name, (config, model, _) in built.items():
        cpu = statistics.median(c for c, _ in times[name]) / args.steps
        wall = statistics.median(w for _, w in times[name]) / args.steps
        epoch = cpu * MNIST_TRAINING_IMAGES / config.batch_size
        rows[name] = dict(preset=CONFIGURATIONS[name][0], objective=config.objective,
                          iw_samples=config.iw_samples, batch_size=config.batch_size,
                          parameters=trainable_parameters(model), cpu_ms_per_step=1e3 * cpu,
                          wall_ms_per_step=1e3 * wall, cpu_seconds_per_epoch=epoch,
                          cpu_hours_121_epochs=epoch * EPOCHS / 3600,
                          windows_cpu_wall_seconds=times[name])
        print(f"| {name} | `{rows[name]['preset']}` | {config.objective}, {config.iw_samples} "
              f"| {config.batch_size} | {rows[name]['parameters']:,} | {1e3 * cpu:.1f} | "
              f"{1e3 * wall:.1f} | {epoch:.0f} | {epoch * EPOCHS / 3600:.2f} |", flush=True)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(rows, file, indent=2)


if __name__ == "__main__":
    main()
