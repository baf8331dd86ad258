#!/usr/bin/env bash
# Sets up a fresh machine and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-build
swift build --product securerouter >&2
# The pretrained MiniLM (vocab + weights) backs the tokenizer and forward-pass
# reference tests; fetching is idempotent and verified by sha256.
.build/debug/securerouter data fetch --task none
swift test 2>&1
