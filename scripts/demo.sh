#!/usr/bin/env bash
# The end-to-end demo: set up, fetch data and the pretrained MiniLM, fine-tune a
# small (2-layer) MiniLM on the `mr` sentiment task, print its test accuracy, then
# run the first 100 test sentences under MPC (dealer, server and client as three
# processes on loopback) and print encrypted accuracy, agreement and cost.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bin=.build/release/securerouter
$bin data fetch --task mr
$bin train-pool --config configs/demo-mr.yaml --out runs/demo
$bin inspect runs/demo/pool/minilm-l2.h5
$bin secure-eval --bundle runs/demo/pool/minilm-l2.h5 --task mr --split test --limit 100 \
    --json runs/demo/secure-eval.json | tail -n 14
