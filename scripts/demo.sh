#!/usr/bin/env bash
# The end-to-end demo: set up, fetch data and the pretrained MiniLM, fine-tune a
# small (2-layer) MiniLM on the `mr` sentiment task and print its test accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bin=.build/release/securerouter
$bin data fetch --task mr
$bin train-pool --config configs/demo-mr.yaml --out runs/demo
$bin inspect runs/demo/pool/minilm-l2.h5
