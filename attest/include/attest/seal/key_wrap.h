// Key release wrapping (issue 10, docs/sealed-model.md): how the key service hands a model key to
// an attested appliance. The appliance makes an ephemeral P-256 key pair in memory (the
// "key-request" key; its SubjectPublicKeyInfo is an entry of the evidence binding, DESIGN §3);
// the key service, once the evidence satisfies the model's policy, wraps the model key to it:
//
//   ephemeral P-256 key pair E (key service side, per release)
//   shared = ECDH(E, key-request key)
//   kek    = HKDF-SHA-256(shared, salt = SHA-256(key-request SPKI || E's SPKI),
//                         info = "appliance-key-release-v1:" || context)
//   wrapped = AES-256-GCM(kek, 12-byte random nonce, model key, associated data = context)
//
// The context names what is released (the model id), so a wrapped key cannot be presented as
// another model's. Only the holder of the key-request private key — the attested appliance's
// memory — can unwrap it; a replayed response is useless to anyone else.
#ifndef ATTEST_SEAL_KEY_WRAP_H_
#define ATTEST_SEAL_KEY_WRAP_H_

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attest/seal/sealed_blob.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace attest::seal {

struct WrappedKey {
  std::vector<uint8_t> ephemeral_spki_der;  // E's public key
  std::vector<uint8_t> nonce;               // 12 bytes
  std::vector<uint8_t> ciphertext;          // 32-byte key + 16-byte tag
};

// The appliance's side: an ephemeral P-256 key pair, and its SubjectPublicKeyInfo (DER) for the
// binding's `key-request` entry.
class KeyRequestKey {
 public:
  static absl::StatusOr<KeyRequestKey> Generate();
  const std::vector<uint8_t>& spki_der() const { return spki_der_; }
  // Unwraps a model key released for `context`; PermissionDenied if it was not wrapped to this
  // key, for this context, or was changed.
  absl::StatusOr<ModelKey> Unwrap(const WrappedKey& wrapped, const std::string& context) const;

 private:
  std::shared_ptr<EVP_PKEY> key_;
  std::vector<uint8_t> spki_der_;
};

// The key service's side. `key_request_spki_der` must be a P-256 SubjectPublicKeyInfo
// (InvalidArgument otherwise, naming what it is).
absl::StatusOr<WrappedKey> WrapForKeyRequest(const ModelKey& key,
                                             std::span<const uint8_t> key_request_spki_der,
                                             const std::string& context);

}  // namespace attest::seal

#endif  // ATTEST_SEAL_KEY_WRAP_H_
