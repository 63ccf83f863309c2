#include "attest/seal/key_wrap.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <array>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/openssl_util.h"
#include "seal/aead.h"

namespace attest::seal {
namespace {

constexpr char kInfoPrefix[] = "appliance-key-release-v1:";

absl::StatusOr<std::vector<uint8_t>> SpkiDer(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int n = i2d_PUBKEY(key, &der);
  if (n <= 0) return absl::InternalError("i2d_PUBKEY: " + ossl::LastError());
  std::vector<uint8_t> out(der, der + n);
  OPENSSL_free(der);
  return out;
}

// A P-256 public key from its SPKI DER (exactly, no trailing bytes).
absl::StatusOr<ossl::EvpPkeyPtr> P256FromSpki(std::span<const uint8_t> der) {
  const unsigned char* p = der.data();
  ossl::EvpPkeyPtr key(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (!key || p != der.data() + der.size()) {
    ERR_clear_error();
    return absl::InvalidArgumentError("key-request key: not a SubjectPublicKeyInfo (DER)");
  }
  char group[64] = {};
  size_t len = 0;
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC ||
      EVP_PKEY_get_utf8_string_param(key.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                     &len) != 1 ||
      std::strcmp(group, "prime256v1") != 0) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat("key-request key: a P-256 EC key expected, got ",
                                                   EVP_PKEY_get0_type_name(key.get()), " ", group));
  }
  return key;
}

absl::StatusOr<std::vector<uint8_t>> Ecdh(EVP_PKEY* mine, EVP_PKEY* theirs) {
  ossl::EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, mine, nullptr));
  size_t len = 0;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer(ctx.get(), theirs) != 1 ||
      EVP_PKEY_derive(ctx.get(), nullptr, &len) != 1) {
    return absl::InternalError("ECDH: " + ossl::LastError());
  }
  std::vector<uint8_t> secret(len);
  if (EVP_PKEY_derive(ctx.get(), secret.data(), &len) != 1)
    return absl::InternalError("ECDH: " + ossl::LastError());
  secret.resize(len);
  return secret;
}

absl::StatusOr<std::array<uint8_t, 32>> Kek(std::vector<uint8_t>& shared,
                                            std::span<const uint8_t> request_spki,
                                            std::span<const uint8_t> ephemeral_spki,
                                            const std::string& context) {
  std::vector<uint8_t> both(request_spki.begin(), request_spki.end());
  both.insert(both.end(), ephemeral_spki.begin(), ephemeral_spki.end());
  const std::vector<uint8_t> salt = ossl::Sha256(both);
  auto kek = aead::HkdfSha256(shared, salt, kInfoPrefix + context);
  OPENSSL_cleanse(shared.data(), shared.size());
  return kek;
}

}  // namespace

absl::StatusOr<KeyRequestKey> KeyRequestKey::Generate() {
  KeyRequestKey k;
  k.key_.reset(EVP_EC_gen("P-256"), EVP_PKEY_free);
  if (!k.key_) return absl::InternalError("EVP_EC_gen: " + ossl::LastError());
  auto spki = SpkiDer(k.key_.get());
  if (!spki.ok()) return spki.status();
  k.spki_der_ = std::move(*spki);
  return k;
}

absl::StatusOr<ModelKey> KeyRequestKey::Unwrap(const WrappedKey& w,
                                               const std::string& context) const {
  auto denied = [] {
    return absl::PermissionDeniedError(
        "released key: not wrapped to this key-request key, for this model, or changed");
  };
  if (w.nonce.size() != 12 || w.ciphertext.size() != kKeySize + 16) {
    return absl::InvalidArgumentError(
        "released key: nonce of 12 and ciphertext of 48 bytes expected");
  }
  auto ephemeral = P256FromSpki(w.ephemeral_spki_der);
  if (!ephemeral.ok()) return ephemeral.status();
  auto shared = Ecdh(key_.get(), ephemeral->get());
  if (!shared.ok()) return shared.status();
  auto kek = Kek(*shared, spki_der_, w.ephemeral_spki_der, context);
  if (!kek.ok()) return kek.status();
  auto plain = aead::Decrypt(*kek, w.nonce, context, w.ciphertext);
  OPENSSL_cleanse(kek->data(), kek->size());
  if (absl::IsPermissionDenied(plain.status())) return denied();
  if (!plain.ok()) return plain.status();
  ModelKey key{};
  std::memcpy(key.data(), plain->data(), key.size());
  OPENSSL_cleanse(plain->data(), plain->size());
  return key;
}

absl::StatusOr<WrappedKey> WrapForKeyRequest(const ModelKey& key,
                                             std::span<const uint8_t> key_request_spki_der,
                                             const std::string& context) {
  auto recipient = P256FromSpki(key_request_spki_der);
  if (!recipient.ok()) return recipient.status();
  ossl::EvpPkeyPtr ephemeral(EVP_EC_gen("P-256"));
  if (!ephemeral) return absl::InternalError("EVP_EC_gen: " + ossl::LastError());
  WrappedKey w;
  auto spki = SpkiDer(ephemeral.get());
  if (!spki.ok()) return spki.status();
  w.ephemeral_spki_der = std::move(*spki);
  auto shared = Ecdh(ephemeral.get(), recipient->get());
  if (!shared.ok()) return shared.status();
  auto kek = Kek(*shared, key_request_spki_der, w.ephemeral_spki_der, context);
  if (!kek.ok()) return kek.status();
  w.nonce.resize(aead::kNonceSize);
  if (RAND_bytes(w.nonce.data(), static_cast<int>(w.nonce.size())) != 1) {
    OPENSSL_cleanse(kek->data(), kek->size());
    return absl::InternalError("RAND_bytes failed");
  }
  auto ct = aead::Encrypt(*kek, w.nonce, context, key);
  OPENSSL_cleanse(kek->data(), kek->size());
  if (!ct.ok()) return ct.status();
  w.ciphertext = std::move(*ct);
  return w;
}

}  // namespace attest::seal
