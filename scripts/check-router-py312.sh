#!/bin/bash
# Shows that the router's pinned closure installs on CPython 3.12 (Ubuntu 24.04's python3, on the aws gateway):
# every pin has a cp312 (or abi3) wheel for x86_64 and aarch64 (Graviton gateways), and with a local
# python3.12 the x86_64 wheels install offline into a venv, pass `pip check` and start the router's CLI.
# Needs PyPI access. Usage: scripts/check-router-py312.sh [path to python3.12]
set -euo pipefail
constraints="$(cd "$(dirname "$0")/.." && pwd)/templates/routers/sglang-router-0.3.2.constraints.txt"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for arch in x86_64 aarch64; do
    platforms=()
    for tag in manylinux2014 manylinux_2_17 manylinux_2_28 manylinux_2_34; do platforms+=(--platform "${tag}_${arch}"); done
    # The file pins the whole closure: --no-deps downloads exactly it, and fails on any pin without a wheel.
    pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" -d "$work/$arch" -r "$constraints"
    echo "$arch: $(ls "$work/$arch" | wc -l) wheels for cp312, $(grep -c . "$constraints") pins"
done
python312=${1:-$(command -v python3.12 || true)}
if [ -z "$python312" ]; then
    echo "no python3.12 here: download checked, install not" >&2
    exit 0
fi
"$python312" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --no-index --find-links "$work/x86_64" -r "$constraints"
"$work/venv/bin/pip" check
"$work/venv/bin/python" -m sglang_router.launch_router --help >/dev/null
echo "installed on $("$work/venv/bin/python" --version): pip check clean, launch_router --help runs"
