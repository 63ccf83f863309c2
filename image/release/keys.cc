#include "keys.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/status.h"
#include "attest/tuf/metadata.h"

namespace appliance::release {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string PemOf(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace

absl::StatusOr<SigningKey> SigningKey::Wrap(EVP_PKEY* raw) {
  SigningKey k;
  k.key_.reset(raw, EVP_PKEY_free);
  if (EVP_PKEY_get_base_id(raw) == EVP_PKEY_ED25519) {
    uint8_t pub[32];
    size_t n = sizeof(pub);
    EVP_PKEY_get_raw_public_key(raw, pub, &n);
    k.public_json_ = {{"keytype", "ed25519"},
                      {"scheme", "ed25519"},
                      {"keyval", {{"public", attest::HexEncode(std::span(pub, n))}}}};
  } else if (EVP_PKEY_get_base_id(raw) == EVP_PKEY_EC && EVP_PKEY_get_bits(raw) == 256) {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, raw);
    k.public_json_ = {{"keytype", "ecdsa"},
                      {"scheme", "ecdsa-sha2-nistp256"},
                      {"keyval", {{"public", PemOf(bio)}}}};
    BIO_free(bio);
  } else {
    return absl::InvalidArgumentError("not an Ed25519 or ECDSA P-256 key");
  }
  ASSIGN_OR_RETURN(auto parsed, attest::tuf::ParseKey(k.public_json_));
  k.id_ = parsed.KeyId();
  return k;
}

absl::StatusOr<SigningKey> SigningKey::Generate(const std::string& type) {
  EVP_PKEY* raw = type == "ed25519" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")
                  : type == "ecdsa" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
                                    : nullptr;
  if (raw == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot generate a key of type '", type, "' (ed25519 or ecdsa)"));
  }
  return Wrap(raw);
}

absl::StatusOr<SigningKey> SigningKey::Load(const fs::path& file, const std::string& passphrase) {
  ASSIGN_OR_RETURN(auto pem, attest::ReadFileBounded(file, 16 * 1024));
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* raw =
      PEM_read_bio_PrivateKey(bio, nullptr, nullptr, const_cast<char*>(passphrase.c_str()));
  BIO_free(bio);
  ERR_clear_error();
  if (raw == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat(file.string(), ": cannot decrypt the key (wrong passphrase?)"));
  }
  auto key = Wrap(raw);
  if (!key.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(file.string(), ": ", key.status().message()));
  }
  return key;
}

absl::Status SigningKey::Save(const fs::path& file, const std::string& passphrase) const {
  if (passphrase.size() < kMinPassphrase) {
    return absl::InvalidArgumentError(
        absl::StrCat("the passphrase needs ", kMinPassphrase, " characters or more"));
  }
  BIO* bio = BIO_new(BIO_s_mem());
  const int ok = PEM_write_bio_PKCS8PrivateKey(bio, key_.get(), EVP_aes_256_cbc(), nullptr, 0,
                                               nullptr, const_cast<char*>(passphrase.c_str()));
  const std::string pem = ok == 1 ? PemOf(bio) : std::string();
  BIO_free(bio);
  if (ok != 1) return absl::InternalError("cannot encrypt the key");
  std::error_code ec;
  if (!file.parent_path().empty()) fs::create_directories(file.parent_path(), ec);
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return absl::AlreadyExistsError(file.string() + ": exists");
    return absl::InvalidArgumentError(absl::StrCat(file.string(), ": ", std::strerror(errno)));
  }
  size_t done = 0;
  while (done < pem.size()) {
    const ssize_t n = ::write(fd, pem.data() + done, pem.size() - done);
    if (n <= 0) {
      ::close(fd);
      return absl::InternalError(absl::StrCat(file.string(), ": write failed"));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    return absl::InternalError(absl::StrCat(file.string(), ": write failed"));
  }
  return absl::OkStatus();
}

std::string SigningKey::SignHex(const std::string& message) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ed = EVP_PKEY_get_base_id(key_.get()) == EVP_PKEY_ED25519;
  EVP_DigestSignInit(ctx, nullptr, ed ? nullptr : EVP_sha256(), nullptr, key_.get());
  size_t n = 0;
  const auto* m = reinterpret_cast<const uint8_t*>(message.data());
  EVP_DigestSign(ctx, nullptr, &n, m, message.size());
  std::vector<uint8_t> sig(n);
  EVP_DigestSign(ctx, sig.data(), &n, m, message.size());
  EVP_MD_CTX_free(ctx);
  sig.resize(n);
  return attest::HexEncode(sig);
}

absl::StatusOr<std::string> ReadPassphrase(const std::string& file, const char* env) {
  return attest::ReadPassphrase(file, env);
}

}  // namespace appliance::release
