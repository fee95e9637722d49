#!/usr/bin/env bash
# Developer build: compiles the extension into build/dev-$1 (default "dev") and
# atomically drops _C into python/maskrcnn_native/, so `PYTHONPATH=python`
# imports the working tree. Users install with `pip install .` instead.
# MN_CUDA=AUTO|ON|OFF (environment, default AUTO) is passed to CMake on every
# run, so a CPU-only dev build (MN_CUDA=OFF, ~4x faster to compile) is one word.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-dev}
py=${PYTHON:-python}
bdir=build/dev-$name
mkdir -p build
pyb=$("$py" -c 'import pybind11; print(pybind11.get_cmake_dir())')
cmake -S . -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMN_CUDA="${MN_CUDA:-AUTO}" -Dpybind11_DIR="$pyb" \
  -DPython_EXECUTABLE="$(command -v "$py")" > "$bdir.log" 2>&1 || { cat "$bdir.log"; exit 1; }
cmake --build "$bdir" > "$bdir.build.log" 2>&1 || { cat "$bdir.build.log"; exit 1; }
grep -A3 -i "warning" "$bdir.build.log" || true
so=$(ls "$bdir"/_C*.so)
tmp=python/maskrcnn_native/.$(basename "$so").$$
cp "$so" "$tmp" && mv -f "$tmp" "python/maskrcnn_native/$(basename "$so")"
echo "built $(basename "$so") from $bdir"
