// libFuzzer target: a model's key release policy (attest/keyd/policy.h), which the key service
// reads from its store and `appliance-keyd add-model` from an operator's file.
#include <cstddef>
#include <cstdint>
#include <span>

#include "attest/keyd/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto p = attest::keyd::ParseModelPolicy(std::span<const uint8_t>(data, size));
  if (p.ok()) {
    // What parses serializes to what parses again, to the same policy.
    const std::string again = attest::keyd::SerializeModelPolicy(*p);
    auto q = attest::keyd::ParseModelPolicy(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(again.data()), again.size()));
    if (!q.ok() || q->model_id != p->model_id || q->platforms != p->platforms ||
        q->launch_config_sha256 != p->launch_config_sha256 ||
        q->min_release_version != p->min_release_version ||
        q->revoked_releases != p->revoked_releases) {
      __builtin_trap();
    }
  }
  return 0;
}
