#include "seal/aead.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <cstring>
#include <memory>
#include <string>

#include "common/openssl_util.h"

namespace attest::seal::aead {
namespace {

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, ossl::Deleter<EVP_CIPHER_CTX_free>>;

absl::StatusOr<std::vector<uint8_t>> Gcm(bool encrypt, const Key256& key,
                                         std::span<const uint8_t> nonce, absl::string_view aad,
                                         std::span<const uint8_t> in) {
  if (nonce.size() != kNonceSize) return absl::InvalidArgumentError("AES-256-GCM: 12-byte nonce");
  if (!encrypt && in.size() < kTagSize) {
    return absl::PermissionDeniedError("AES-256-GCM: authentication failed (no tag)");
  }
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  const size_t body = encrypt ? in.size() : in.size() - kTagSize;
  std::vector<uint8_t> out(body + (encrypt ? kTagSize : 0));
  int len = 0;
  bool ok = ctx && (encrypt ? EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(),
                                                 nonce.data())
                            : EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(),
                                                 nonce.data())) == 1;
  auto update = encrypt ? EVP_EncryptUpdate : EVP_DecryptUpdate;
  ok = ok && update(ctx.get(), nullptr, &len, reinterpret_cast<const uint8_t*>(aad.data()),
                    static_cast<int>(aad.size())) == 1;
  ok = ok &&
       (body == 0 || update(ctx.get(), out.data(), &len, in.data(), static_cast<int>(body)) == 1);
  if (encrypt) {
    ok = ok && EVP_EncryptFinal_ex(ctx.get(), out.data() + body, &len) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize, out.data() + body) == 1;
  } else {
    std::array<uint8_t, kTagSize> tag{};
    std::memcpy(tag.data(), in.data() + body, kTagSize);
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize, tag.data()) == 1 &&
         EVP_DecryptFinal_ex(ctx.get(), out.data() + body, &len) == 1;
  }
  if (!ok) {
    ERR_clear_error();
    OPENSSL_cleanse(out.data(), out.size());
    if (!encrypt) return absl::PermissionDeniedError("AES-256-GCM: authentication failed");
    return absl::InternalError("AES-256-GCM failed");
  }
  return out;
}

}  // namespace

absl::StatusOr<Key256> HkdfSha256(std::span<const uint8_t> key, std::span<const uint8_t> salt,
                                  absl::string_view info) {
  std::unique_ptr<EVP_KDF, ossl::Deleter<EVP_KDF_free>> kdf(
      EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  std::unique_ptr<EVP_KDF_CTX, ossl::Deleter<EVP_KDF_CTX_free>> ctx(kdf ? EVP_KDF_CTX_new(kdf.get())
                                                                        : nullptr);
  if (!ctx) return absl::InternalError("HKDF unavailable: " + ossl::LastError());
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(key.data()),
                                        key.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<uint8_t*>(salt.data()),
                                        salt.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()),
                                        info.size()),
      OSSL_PARAM_construct_end()};
  Key256 out{};
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    return absl::InternalError("HKDF: " + ossl::LastError());
  }
  return out;
}

absl::StatusOr<std::vector<uint8_t>> Encrypt(const Key256& key, std::span<const uint8_t> nonce,
                                             absl::string_view aad,
                                             std::span<const uint8_t> plain) {
  return Gcm(true, key, nonce, aad, plain);
}

absl::StatusOr<std::vector<uint8_t>> Decrypt(const Key256& key, std::span<const uint8_t> nonce,
                                             absl::string_view aad,
                                             std::span<const uint8_t> ciphertext_and_tag) {
  return Gcm(false, key, nonce, aad, ciphertext_and_tag);
}

}  // namespace attest::seal::aead
