# Shared by the project's scripts: paths and the two builds.
#   build/       gcc 12, RelWithDebInfo: everything, all CTest labels
#   build-fuzz/  clang 14 with ASan+UBSan and libFuzzer: unit and fuzz labels (no gRPC parts)
#   build-asan/  gcc 12 with ASan+UBSan: the supervisor, the client and the integration label
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

# The gRPC daemon and client under ASan+UBSan (gcc): only what the integration label needs.
build_asan() {
  log "build (gcc, ASan+UBSan, supervisor, updater and integration tests, $ROOT/build-asan)"
  cmake -S "$ROOT" -B "$ROOT/build-asan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DAPPLIANCE_SANITIZE=ON -DAPPLIANCE_BUILD_BENCH=OFF >/dev/null
  cmake --build "$ROOT/build-asan" -j "$JOBS" --target supervisor_integration_tests tpm_esys_tests \
    systemd_runner_tests updater_tests sealed_model_tests cloud_supervisor_tests
}

vectors_dir() {
  if [ -n "${APPLIANCE_VECTORS:-}" ]; then echo "$APPLIANCE_VECTORS"; else echo "$ROOT/../shared/vectors"; fi
}

# A coordinator's test PKI in DIR: ca.pem/ca.key and client.pem/client.key (CN=coordinator,
# O=Competition), P-256, valid two days.
coordinator_pki() {
  local pki=$1
  mkdir -p "$pki"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/ca.key" \
    -out "$pki/ca.pem" -subj "/CN=Coordinator CA" -days 2 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/client.key" \
    -out "$pki/client.csr" -subj "/O=Competition/CN=coordinator" 2>/dev/null
  openssl x509 -req -in "$pki/client.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial \
    -out "$pki/client.pem" -days 2 2>/dev/null
}

# The image's launch configuration for a vtpm-only VM (scripts/boot-image) whose clients are
# issued by CA_PEM: prints the JSON.
image_launch_config() {
  jq -n --arg ca "$(cat "$1")" '{version: 1, listen: "0.0.0.0:8443", client_ca_pem: $ca,
      allowed_clients: [{subject: "CN=coordinator,O=Competition"}],
      limits: {requests_per_second: 100, burst: 20, query_budget: 0},
      container: {image: "/usr/share/appliance/example-model.oci.tar", runner: "systemd"},
      platform: "vtpm-only", tpm: {tcti: "device:/dev/tpmrm0", trust: "host"}}'
}
