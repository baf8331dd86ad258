#!/usr/bin/env bash
# The end-to-end demo: set up, fetch data and the pretrained MiniLM, fine-tune a
# two-member pool on the `mr` sentiment task (MiniLM's first 2 layers and its first
# layer), fit the router, export one bundle, and run the first 100 test sentences
# under MPC (dealer, server and client as three processes on loopback) twice: routed
# (reveal) and always on the larger member, both with the LAN emulation the router's costs assume.
# Prints the routed accuracy, mean latency
# and the measured speedup over the larger member.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bin=.build/release/securerouter
$bin data fetch --task mr
$bin train-pool --config configs/demo-mr.yaml --out runs/demo --resume
$bin fit-router --pool runs/demo --max-drop 0.02
$bin export --pool runs/demo --out runs/demo/bundle.h5
$bin inspect runs/demo/bundle.h5 | tail -n 6
$bin secure-eval --bundle runs/demo/bundle.h5 --task mr --split test --limit 100 --routing reveal \
    --net lan --json runs/demo/routed.json | tail -n 7
$bin secure-eval --bundle runs/demo/bundle.h5 --task mr --split test --limit 100 --routing model:minilm-l2 --net lan \
    --json runs/demo/largest.json --quiet > /dev/null
python3 - <<'PY'
import json
r = json.load(open("runs/demo/routed.json"))["summary"]
b = json.load(open("runs/demo/largest.json"))["summary"]
print(f"routed: accuracy {100 * r['accuracy']:.2f}% at {r['latency_mean']:.3f} s/query (router {r['router_seconds_mean']:.3f} s); "
      f"minilm-l2 alone: {100 * b['accuracy']:.2f}% at {b['latency_mean']:.3f} s/query; "
      f"speedup {b['latency_mean'] / r['latency_mean']:.2f}x")
PY
