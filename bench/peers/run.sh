#!/usr/bin/env bash
# TensorFlow.js vs cifake-torch training throughput (bench/peers/tfjs-vs-native.ts).
# Installs the peers (bench/peers/package.json, pinned; never part of the root package) into
# bench/peers/node_modules when missing, then runs the benchmark with the given options, e.g.
#   bash bench/peers/run.sh --images 512 --batches 32,256 --repeats 3 --threads 1,2
# Needs the root package set up (node_modules and the native addon: scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -d bench/peers/node_modules/@tensorflow/tfjs ] || [ ! -d bench/peers/node_modules/@tensorflow/tfjs-backend-wasm ]; then
  echo "installing TensorFlow.js into bench/peers/node_modules (npm ci --prefix bench/peers)" >&2
  npm ci --prefix bench/peers --no-audit --no-fund >&2
fi
exec npx tsx bench/peers/tfjs-vs-native.ts "$@"
