#include "attest/seal/key_file.h"

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/seal/sealed_image.h"
#include "nlohmann/json.hpp"
#include "seal/aead.h"

namespace attest::seal {
namespace {

using json = nlohmann::ordered_json;

constexpr uint64_t kScryptN = 1 << 15, kScryptR = 8, kScryptP = 1;
// Bounds: at most 128 MiB of scrypt memory (128 * N * r) and about a second of work.
constexpr uint64_t kMaxScryptN = 1 << 17, kMaxScryptR = 8, kMaxScryptP = 4;
constexpr char kAadPrefix[] = "appliance-model-key-v1:";

struct Kdf {
  uint64_t n = kScryptN, r = kScryptR, p = kScryptP;
  std::vector<uint8_t> salt;
};

absl::StatusOr<std::array<uint8_t, 32>> DeriveKek(const std::string& passphrase, const Kdf& k) {
  std::unique_ptr<EVP_KDF, void (*)(EVP_KDF*)> kdf(EVP_KDF_fetch(nullptr, "SCRYPT", nullptr),
                                                   EVP_KDF_free);
  std::unique_ptr<EVP_KDF_CTX, void (*)(EVP_KDF_CTX*)> ctx(
      kdf ? EVP_KDF_CTX_new(kdf.get()) : nullptr, EVP_KDF_CTX_free);
  if (!ctx) return absl::InternalError("scrypt unavailable");
  uint64_t n = k.n;
  uint32_t r = static_cast<uint32_t>(k.r), p = static_cast<uint32_t>(k.p);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
                                        const_cast<char*>(passphrase.data()), passphrase.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<uint8_t*>(k.salt.data()),
                                        k.salt.size()),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
      OSSL_PARAM_construct_end()};
  std::array<uint8_t, 32> kek{};
  if (EVP_KDF_derive(ctx.get(), kek.data(), kek.size(), params) != 1) {
    ERR_clear_error();
    return absl::InternalError("scrypt failed");
  }
  return kek;
}

std::string Aad(const std::string& model_id) { return kAadPrefix + model_id; }

absl::StatusOr<std::vector<uint8_t>> B64(const json& j, const char* key, size_t size) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string())
    return absl::InvalidArgumentError(absl::StrCat("key file: ", key, " must be a string"));
  auto b = Base64Decode(it->get<std::string>());
  if (!b.ok() || b->size() != size) {
    return absl::InvalidArgumentError(
        absl::StrCat("key file: ", key, " must be base64 of ", size, " bytes"));
  }
  return *b;
}

absl::StatusOr<uint64_t> Param(const json& kdf, const char* key, uint64_t max) {
  auto it = kdf.find(key);
  if (it == kdf.end() || !it->is_number_unsigned() || it->get<uint64_t>() == 0 ||
      it->get<uint64_t>() > max) {
    return absl::InvalidArgumentError(absl::StrCat("key file: kdf.", key, " must be 1..", max));
  }
  return it->get<uint64_t>();
}

}  // namespace

absl::StatusOr<std::string> EncryptModelKey(const ModelKey& key, const std::string& model_id,
                                            const std::string& passphrase) {
  if (auto st = CheckModelId(model_id); !st.ok()) return st;
  if (passphrase.size() < kMinKeyPassphrase) {
    return absl::InvalidArgumentError(
        absl::StrCat("passphrase: at least ", kMinKeyPassphrase, " characters"));
  }
  Kdf kdf;
  kdf.salt.resize(16);
  std::vector<uint8_t> nonce(12);
  if (RAND_bytes(kdf.salt.data(), 16) != 1 || RAND_bytes(nonce.data(), 12) != 1) {
    return absl::InternalError("RAND_bytes failed");
  }
  auto kek = DeriveKek(passphrase, kdf);
  if (!kek.ok()) return kek.status();
  auto ct = aead::Encrypt(*kek, nonce, Aad(model_id), key);
  OPENSSL_cleanse(kek->data(), kek->size());
  if (!ct.ok()) return ct.status();
  json j = {{"version", 1},
            {"model_id", model_id},
            {"kdf",
             {{"name", "scrypt"},
              {"n", kdf.n},
              {"r", kdf.r},
              {"p", kdf.p},
              {"salt", Base64Encode(kdf.salt)}}},
            {"nonce", Base64Encode(nonce)},
            {"ciphertext", Base64Encode(*ct)}};
  return j.dump(2) + "\n";
}

absl::StatusOr<ModelKey> DecryptModelKey(std::span<const uint8_t> bytes,
                                         const std::string& passphrase, std::string* model_id_out) {
  if (bytes.size() > kMaxKeyFile) return absl::InvalidArgumentError("key file: too large");
  const json j = json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (!j.is_object()) return absl::InvalidArgumentError("key file: a JSON object expected");
  for (const auto& [k, v] : j.items()) {
    if (k != "version" && k != "model_id" && k != "kdf" && k != "nonce" && k != "ciphertext") {
      return absl::InvalidArgumentError(absl::StrCat("key file: unknown key '", k, "'"));
    }
  }
  auto version = j.find("version");
  if (version == j.end() || !version->is_number_unsigned() || version->get<uint64_t>() != 1) {
    return absl::InvalidArgumentError("key file: version must be 1");
  }
  auto id = j.find("model_id");
  if (id == j.end() || !id->is_string() || !CheckModelId(id->get<std::string>()).ok()) {
    return absl::InvalidArgumentError("key file: bad model_id");
  }
  auto kdf_json = j.find("kdf");
  if (kdf_json == j.end() || !kdf_json->is_object())
    return absl::InvalidArgumentError("key file: kdf must be an object");
  for (const auto& [k, v] : kdf_json->items()) {
    if (k != "name" && k != "n" && k != "r" && k != "p" && k != "salt") {
      return absl::InvalidArgumentError(absl::StrCat("key file: kdf: unknown key '", k, "'"));
    }
  }
  auto name = kdf_json->find("name");
  if (name == kdf_json->end() || !name->is_string() || *name != "scrypt") {
    return absl::InvalidArgumentError("key file: kdf.name must be scrypt");
  }
  Kdf kdf;
  auto n = Param(*kdf_json, "n", kMaxScryptN);
  auto r = Param(*kdf_json, "r", kMaxScryptR);
  auto p = Param(*kdf_json, "p", kMaxScryptP);
  if (!n.ok()) return n.status();
  if (!r.ok()) return r.status();
  if (!p.ok()) return p.status();
  if ((*n & (*n - 1)) != 0 || *n < 2)
    return absl::InvalidArgumentError("key file: kdf.n must be a power of two");
  kdf.n = *n;
  kdf.r = *r;
  kdf.p = *p;
  auto salt = B64(*kdf_json, "salt", 16);
  auto nonce = B64(j, "nonce", 12);
  auto ct = B64(j, "ciphertext", kKeySize + 16);
  if (!salt.ok()) return salt.status();
  if (!nonce.ok()) return nonce.status();
  if (!ct.ok()) return ct.status();
  kdf.salt = *salt;
  // The KDF parameters are not in the associated data: changing them changes the derived key,
  // and the tag fails.
  auto kek = DeriveKek(passphrase, kdf);
  if (!kek.ok()) return kek.status();
  auto plain = aead::Decrypt(*kek, *nonce, Aad(id->get<std::string>()), *ct);
  OPENSSL_cleanse(kek->data(), kek->size());
  if (absl::IsPermissionDenied(plain.status())) {
    return absl::PermissionDeniedError(
        "key file: wrong passphrase, or its ciphertext, model id or parameters were changed");
  }
  if (!plain.ok()) return plain.status();
  ModelKey key{};
  std::memcpy(key.data(), plain->data(), key.size());
  OPENSSL_cleanse(plain->data(), plain->size());
  if (model_id_out) *model_id_out = id->get<std::string>();
  return key;
}

absl::Status WriteModelKeyFile(const std::filesystem::path& file, const ModelKey& key,
                               const std::string& model_id, const std::string& passphrase) {
  auto text = EncryptModelKey(key, model_id, passphrase);
  if (!text.ok()) return text.status();
  const int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return absl::AlreadyExistsError(absl::StrCat(file.string(), " exists"));
    return absl::InternalError(absl::StrCat(file.string(), ": ", std::strerror(errno)));
  }
  const bool ok =
      write(fd, text->data(), text->size()) == static_cast<ssize_t>(text->size()) && fsync(fd) == 0;
  close(fd);
  if (!ok) return absl::InternalError(absl::StrCat(file.string(), ": write failed"));
  return absl::OkStatus();
}

absl::StatusOr<ModelKey> ReadModelKeyFile(const std::filesystem::path& file,
                                          const std::string& passphrase, std::string* model_id) {
  auto bytes = ReadFileBounded(file, kMaxKeyFile);
  if (!bytes.ok()) return bytes.status();
  return DecryptModelKey(*bytes, passphrase, model_id);
}

}  // namespace attest::seal
