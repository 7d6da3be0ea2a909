#!/usr/bin/env bash
# Build llama.cpp's llama-server and llama-batched-bench for benchmarking only.
#
# The source is the llama.cpp copy vendored in the llama-cpp-python sdist, so the
# server benchmarks compare mingyan against exactly the llama.cpp it runs on.
# CPU only, Release, no network libraries (no curl, no OpenSSL, no web-UI download).
#
# Usage: bench/build_llama_server.sh [--jobs N]
# Env:   LLAMA_CPP_PYTHON_VERSION (default 0.3.36)
#        MINGYAN_BENCH_CACHE      (default ${XDG_CACHE_HOME:-~/.cache}/mingyan-bench)
#        PIP                      (default: .venv/bin/pip when present, else pip)
# Prints the two binary paths on stdout (last two lines). Idempotent: exits early
# when both binaries already exist. Never commit the binaries.
set -euo pipefail

VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
CACHE_ROOT="${MINGYAN_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mingyan-bench}"
DEST="$CACHE_ROOT/llama.cpp-$VERSION"
JOBS=2
if [[ "${1:-}" == "--jobs" ]]; then JOBS="$2"; fi

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${PIP:-}" ]]; then
    if [[ -x "$REPO_ROOT/.venv/bin/pip" ]]; then PIP="$REPO_ROOT/.venv/bin/pip"; else PIP=pip; fi
fi

SERVER="$DEST/build/bin/llama-server"
BATCHED="$DEST/build/bin/llama-batched-bench"

if [[ -x "$SERVER" && -x "$BATCHED" ]]; then
    echo "already built (delete $DEST to rebuild)" >&2
    echo "$SERVER"
    echo "$BATCHED"
    exit 0
fi

mkdir -p "$DEST"
SRC="$DEST/src/llama_cpp_python-$VERSION/vendor/llama.cpp"
if [[ ! -f "$SRC/CMakeLists.txt" ]]; then
    echo "fetching llama-cpp-python==$VERSION sdist" >&2
    "$PIP" download --no-binary :all: --no-deps "llama-cpp-python==$VERSION" -d "$DEST/sdist" >&2
    mkdir -p "$DEST/src"
    tar -xzf "$DEST/sdist/llama_cpp_python-$VERSION.tar.gz" -C "$DEST/src"
fi

echo "configuring in $DEST/build" >&2
cmake -S "$SRC" -B "$DEST/build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_BUILD_TOOLS=ON \
    -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_APP=OFF \
    -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF \
    -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_BLAS=OFF \
    >&2

echo "building with -j $JOBS (about 12 minutes on 2 cores)" >&2
cmake --build "$DEST/build" --config Release -j "$JOBS" \
    --target llama-server llama-batched-bench >&2

for bin in "$SERVER" "$BATCHED"; do
    [[ -x "$bin" ]] || { echo "missing after build: $bin" >&2; exit 1; }
done
# Record how the binaries were built, for the benchmark report.
{
    echo "llama-cpp-python sdist $VERSION"
    grep -E "^(CMAKE_BUILD_TYPE|GGML_NATIVE|GGML_LLAMAFILE|GGML_OPENMP|BUILD_SHARED_LIBS)" \
        "$DEST/build/CMakeCache.txt" || true
} > "$DEST/BUILD_INFO.txt"
echo "$SERVER"
echo "$BATCHED"
