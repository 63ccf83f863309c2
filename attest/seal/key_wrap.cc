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
  const std::string info = kInfoPrefix + context;
  std::unique_ptr<EVP_KDF, void (*)(EVP_KDF*)> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr),
                                                   EVP_KDF_free);
  std::unique_ptr<EVP_KDF_CTX, void (*)(EVP_KDF_CTX*)> kctx(
      kdf ? EVP_KDF_CTX_new(kdf.get()) : nullptr, EVP_KDF_CTX_free);
  if (!kctx) return absl::InternalError("HKDF unavailable");
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, shared.data(), shared.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<uint8_t*>(salt.data()),
                                        salt.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()),
                                        info.size()),
      OSSL_PARAM_construct_end()};
  std::array<uint8_t, 32> kek{};
  const bool ok = EVP_KDF_derive(kctx.get(), kek.data(), kek.size(), params) == 1;
  OPENSSL_cleanse(shared.data(), shared.size());
  if (!ok) return absl::InternalError("HKDF: " + ossl::LastError());
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
  std::unique_ptr<EVP_CIPHER_CTX, void (*)(EVP_CIPHER_CTX*)> ctx(EVP_CIPHER_CTX_new(),
                                                                 EVP_CIPHER_CTX_free);
  ModelKey key{};
  std::array<uint8_t, 16> tag{};
  std::memcpy(tag.data(), w.ciphertext.data() + kKeySize, tag.size());
  int len = 0;
  const bool ok =
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, kek->data(), w.nonce.data()) == 1 &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const uint8_t*>(context.data()),
                        static_cast<int>(context.size())) == 1 &&
      EVP_DecryptUpdate(ctx.get(), key.data(), &len, w.ciphertext.data(),
                        static_cast<int>(kKeySize)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, 16, tag.data()) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), key.data() + kKeySize, &len) == 1;
  OPENSSL_cleanse(kek->data(), kek->size());
  if (!ok) {
    ERR_clear_error();
    OPENSSL_cleanse(key.data(), key.size());
    return denied();
  }
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
  w.nonce.resize(12);
  w.ciphertext.resize(kKeySize + 16);
  std::unique_ptr<EVP_CIPHER_CTX, void (*)(EVP_CIPHER_CTX*)> ctx(EVP_CIPHER_CTX_new(),
                                                                 EVP_CIPHER_CTX_free);
  int len = 0;
  const bool ok =
      RAND_bytes(w.nonce.data(), 12) == 1 &&
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, kek->data(), w.nonce.data()) == 1 &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const uint8_t*>(context.data()),
                        static_cast<int>(context.size())) == 1 &&
      EVP_EncryptUpdate(ctx.get(), w.ciphertext.data(), &len, key.data(),
                        static_cast<int>(kKeySize)) == 1 &&
      EVP_EncryptFinal_ex(ctx.get(), w.ciphertext.data() + kKeySize, &len) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, w.ciphertext.data() + kKeySize) == 1;
  OPENSSL_cleanse(kek->data(), kek->size());
  if (!ok) return absl::InternalError("AES-256-GCM: " + ossl::LastError());
  return w;
}

}  // namespace attest::seal
