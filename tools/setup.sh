#!/usr/bin/env bash
# tools/setup.sh - installs everything graft needs to build, run its demo and
# test itself on Debian 12. Idempotent: a second run installs nothing new.
#
#   bash tools/setup.sh            # as root, or with sudo available
#
# Environment: GRAFT_ORT_DIR  where onnxruntime-node goes (default build/ort);
#              GRAFT_SETUP_NO_ORT=1 skips it (the ONNX Runtime tests then skip).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ort_dir="${GRAFT_ORT_DIR:-$here/build/ort}"

build_pkgs=(cmake gcc make pkg-config libprotobuf-c-dev protobuf-c-compiler libonnx-dev
            libblis-dev libcmocka-dev libjson-c-dev zlib1g-dev libpng-dev libjpeg62-turbo-dev)
test_pkgs=(python3-onnx python3-numpy python3-torch python3-torchvision python3-protobuf
           dataset-fashion-mnist libonnx-testdata nodejs)

sudo_cmd=()
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then sudo_cmd=(sudo); else
        echo "setup: not root and no sudo: install ${build_pkgs[*]} ${test_pkgs[*]} npm by hand" >&2
        exit 1
    fi
fi

missing=()
for p in "${build_pkgs[@]}" "${test_pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
# npm: Debian's package, unless node already brings its own npm (nodesource).
if ! command -v npm >/dev/null; then
    missing+=(npm)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "setup: Debian packages present"
fi

if [ "${GRAFT_SETUP_NO_ORT:-0}" != 1 ]; then
    # ONNX Runtime for the conformance tests: the npm package bundles its CPU
    # library, so no install script (which would download more) is run.
    if [ ! -d "$ort_dir/node_modules/onnxruntime-node" ]; then
        echo "setup: npm install onnxruntime-node into $ort_dir"
        mkdir -p "$ort_dir"
        (cd "$ort_dir" && npm install --ignore-scripts --no-audit --no-fund --silent onnxruntime-node)
    fi
    if (cd "$ort_dir" && node -e "require('onnxruntime-node')" 2>/dev/null); then
        echo "setup: onnxruntime-node loads ($ort_dir)"
    else
        echo "setup: onnxruntime-node in $ort_dir does not load; the ONNX Runtime tests will skip" >&2
    fi
fi
