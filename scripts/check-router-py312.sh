#!/bin/bash
# Shows that each router's pinned closure (smg 1.13.0, sglang-router 0.3.2) installs on CPython 3.12
# (Ubuntu 24.04's python3, on the aws gateway):
# every pin has a cp312 (or abi3) wheel for x86_64 and aarch64 (Graviton gateways), and with a local
# python3.12 the x86_64 wheels install offline into a venv, pass `pip check` and start the router's CLI.
# Needs PyPI access. Usage: scripts/check-router-py312.sh [path to python3.12]
set -euo pipefail
routers="$(cd "$(dirname "$0")/.." && pwd)/templates/routers"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for router in "smg-1.13.0 smg" "sglang-router-0.3.2 sglang_router"; do
read -r name module <<<"$router"
constraints="$routers/$name.constraints.txt"
for arch in x86_64 aarch64; do
    platforms=()
    for tag in manylinux2014 manylinux_2_17 manylinux_2_28 manylinux_2_34; do platforms+=(--platform "${tag}_${arch}"); done
    # The file pins the whole closure: --no-deps downloads exactly it, and fails on any pin without a wheel.
    pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" -d "$work/$name-$arch" -r "$constraints"
    echo "$name $arch: $(ls "$work/$name-$arch" | wc -l) wheels for cp312, $(grep -c . "$constraints") pins"
done
python312=${1:-$(command -v python3.12 || true)}
if [ -z "$python312" ]; then
    echo "no python3.12 here: download checked, install not" >&2
    continue
fi
"$python312" -m venv "$work/venv-$name"
"$work/venv-$name/bin/pip" install --quiet --no-index --find-links "$work/$name-x86_64" -r "$constraints"
"$work/venv-$name/bin/pip" check
"$work/venv-$name/bin/python" -m "$module.launch_router" --help >/dev/null
echo "$name installed on $("$work/venv-$name/bin/python" --version): pip check clean, launch_router --help runs"
done
