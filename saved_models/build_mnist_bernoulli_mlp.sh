#!/usr/bin/env bash
# Builds saved_models/mnist-bernoulli-mlp, the reference model that ships with keras-vae:
# the preset burda-mnist (keras_vae/presets.py: the one-stochastic-layer VAE of Burda et al.
# 2016, stages 0..4 of their protocol, 121 epochs), then its K=5000 evaluation, its exports,
# a copy of the test images, and finally `runs.publish`: the machine's data path leaves
# config.json and the folder becomes protected (its PROTECTED file).
#
#   bash saved_models/build_mnist_bernoulli_mlp.sh [MNIST_DIR]   (from the repository root)
#
# Every step can be interrupted and rerun: training continues from its last epoch and the
# K=5000 estimate from its last batch. About 6 hours on 2 CPU cores (MODEL_CARD.md).
# A published folder is not rebuilt: delete its PROTECTED file first to rebuild it.
set -euo pipefail
data=${1:-../shared/data/mnist}
run=saved_models/mnist-bernoulli-mlp
if [ -f "$run/PROTECTED" ]; then
  echo "$run is published (it holds PROTECTED); delete that file to rebuild it." >&2
  exit 1
fi
if [ ! -f "$run/model.keras" ]; then
  resume=()
  if [ -d "$run.partial" ]; then resume=(--resume); fi
  # tests/test_shipped_model.py checks that this command gives the shipped config.json.
  kvae fit --preset burda-mnist --data-dir "$data" --seed 0 --output "$run" "${resume[@]}"
fi
metrics_k=$(python -c "import json,sys; print(json.load(open(sys.argv[1])).get('iw_samples', 0))" "$run/metrics.json" 2>/dev/null || echo 0)
if [ "$metrics_k" != 5000 ]; then
  kvae evaluate "$run" --data-dir "$data" --iw-samples 5000 --seed 0
fi
kvae export "$run" --format saved_model --overwrite
kvae export "$run" --format tflite --overwrite
kvae export "$run" --format tflite --quantize float16 --overwrite
python -c "from keras_vae import bundled_examples; bundled_examples.bundle_test_examples('$run', data_dir='$data')"
rm -rf "$run/logs"  # TensorBoard event files: history.csv holds the same curves
python -c "from keras_vae import runs; runs.publish('$run')"
du -sh "$run"
