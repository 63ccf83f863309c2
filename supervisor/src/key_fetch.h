// The supervisor's side of key release (issue 10, DESIGN §6 step 4, docs/sealed-model.md): asks
// the key service for a challenge, has the daemon build evidence that binds the challenge, its
// TLS key and a fresh key-request key, and unwraps the released model key. Private to the
// supervisor executable; no gRPC in this header.
#ifndef SUPERVISOR_SRC_KEY_FETCH_H_
#define SUPERVISOR_SRC_KEY_FETCH_H_

#include <array>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "attest/seal/sealed_blob.h"

namespace appliance::supervisor {

struct KeyFetchRequest {
  std::string key_service;                          // host:port
  std::array<uint8_t, 32> key_service_spki_sha256;  // the only server key accepted
  std::string model_id;
  std::string client_cert_pem, client_key_pem;  // the supervisor's current TLS identity
  std::vector<uint8_t> launch_config;           // exact bytes
  absl::Duration timeout = absl::Seconds(30);
};

// Serialized appliance.v1.Evidence whose binding carries `nonce` and `key-request` (its SPKI).
using KeyEvidenceBuilder = std::function<absl::StatusOr<std::string>(
    const std::string& nonce, const std::vector<uint8_t>& key_request_spki)>;

// The model key. PermissionDenied "key service refused: <check>: <detail>" when the service
// refused the evidence; Unavailable when it cannot be reached or presents another key.
absl::StatusOr<attest::seal::ModelKey> FetchModelKey(const KeyFetchRequest& request,
                                                     const KeyEvidenceBuilder& build_evidence);

}  // namespace appliance::supervisor

#endif  // SUPERVISOR_SRC_KEY_FETCH_H_
