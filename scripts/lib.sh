# Shared by the project's scripts: paths and the two builds.
#   build/       gcc 12, RelWithDebInfo: everything, all CTest labels
#   build-fuzz/  clang 14 with ASan+UBSan and libFuzzer: unit and fuzz labels
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JOBS="${APPLIANCE_JOBS:-$(nproc)}"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"

log() { printf '\n==> %s\n' "$*"; }

install_deps() { "$ROOT/scripts/install-deps"; }

build_main() {
  log "build (gcc, $ROOT/build)"
  cmake -S "$ROOT" -B "$ROOT/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$ROOT/build" -j "$JOBS"
}

build_fuzz() {
  log "build (clang-14, ASan+UBSan, libFuzzer, $ROOT/build-fuzz)"
  CC=clang-14 CXX=clang++-14 cmake -S "$ROOT" -B "$ROOT/build-fuzz" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAPPLIANCE_FUZZERS=ON -DAPPLIANCE_GRPC=OFF >/dev/null
  cmake --build "$ROOT/build-fuzz" -j "$JOBS"
}

vectors_dir() {
  if [ -n "${APPLIANCE_VECTORS:-}" ]; then echo "$APPLIANCE_VECTORS"; else echo "$ROOT/../shared/vectors"; fi
}
