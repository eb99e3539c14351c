#!/usr/bin/env bash
# tools/demo.sh - graft's main job, end to end, in a few minutes on 2 cores:
# installs what is missing, builds graft (Release, build/), then fine-tunes a
# new head on the default backbone (models/fmnist_cnn.onnx, pretrained on
# Fashion-MNIST classes 0-4) for classes 5-9 (Sandal, Shirt, Sneaker, Bag,
# Ankle boot) from 100 labelled images per class, evaluates it on every
# Fashion-MNIST test image of those classes, trains the same head on raw
# pixels for comparison, and prints both.
#
#   bash tools/demo.sh
#
# Output: build/demo/fmnist_5to9.onnx (the fine-tuned model) and
# build/demo/report.json (every metric).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
t0=$(date +%s)
jobs="${JOBS:-$(nproc)}"

GRAFT_SETUP_NO_ORT=1 bash tools/setup.sh

echo "== building graft (Release, build/)"
mkdir -p build
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >build/demo.configure.log 2>&1 ||
    { cat build/demo.configure.log; exit 1; }
cmake --build build --target graft_cli -j "$jobs" >build/demo.build.log 2>&1 ||
    { grep -E 'error' build/demo.build.log | head -40; exit 1; }

mkdir -p build/demo
echo "== graft train: default backbone, Fashion-MNIST classes 5-9, 100 images per class"
build/graft train \
    --model models/fmnist_cnn.onnx \
    --classes 5,6,7,8,9 --per-class 100 \
    --epochs 60 --batch 32 --optimizer adam --lr 0.003 --l2 0.0001 \
    --val-split 0.2 --patience 10 --seed 42 \
    --baseline \
    --out build/demo/fmnist_5to9.onnx --json build/demo/report.json

echo "== demo took $(( $(date +%s) - t0 ))s; model: build/demo/fmnist_5to9.onnx, metrics: build/demo/report.json"
