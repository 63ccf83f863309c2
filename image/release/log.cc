#include "log.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/merkle.h"
#include "attest/status.h"
#include "attest/tlog.h"
#include "attest/tuf/metadata.h"

namespace appliance::release {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
constexpr size_t kMaxEntry = 64 * 1024;
constexpr uint64_t kMaxEntries = 1u << 24;

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

absl::StatusOr<Pkey> LoadKey(const fs::path& file, const std::string& passphrase) {
  ASSIGN_OR_RETURN(auto pem, attest::ReadFileBounded(file, 16 * 1024));
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  Pkey key(PEM_read_bio_PrivateKey(bio, nullptr, nullptr, const_cast<char*>(passphrase.c_str())));
  BIO_free(bio);
  if (!key)
    return absl::PermissionDeniedError(
        absl::StrCat(file.string(), ": cannot decrypt the key (wrong passphrase?)"));
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError(absl::StrCat(file.string(), ": not an Ed25519 key"));
  }
  return key;
}

json PublicJson(EVP_PKEY* key) {
  uint8_t pub[32];
  size_t n = sizeof(pub);
  EVP_PKEY_get_raw_public_key(key, pub, &n);
  return {{"keytype", "ed25519"},
          {"scheme", "ed25519"},
          {"keyval", {{"public", attest::HexEncode(std::span(pub, n))}}}};
}

std::string SignHex(EVP_PKEY* key, const std::string& message) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key);
  size_t n = 64;
  std::vector<uint8_t> sig(n);
  EVP_DigestSign(ctx, sig.data(), &n, reinterpret_cast<const uint8_t*>(message.data()),
                 message.size());
  EVP_MD_CTX_free(ctx);
  sig.resize(n);
  return attest::HexEncode(sig);
}

struct Log {
  std::string name;
  attest::tuf::Key key;
  std::vector<attest::merkle::Hash> leaves;
};

absl::StatusOr<Log> Open(const fs::path& dir) {
  ASSIGN_OR_RETURN(auto meta, attest::ReadFileBounded(dir / "log.json", 16 * 1024));
  json j = json::parse(meta.begin(), meta.end(), nullptr, false);
  if (j.is_discarded() || !j.contains("name") || !j["name"].is_string() || !j.contains("key")) {
    return absl::InvalidArgumentError(absl::StrCat((dir / "log.json").string(), ": malformed"));
  }
  Log log;
  log.name = j["name"];
  ASSIGN_OR_RETURN(log.key, attest::tuf::ParseKey(j["key"]));
  for (uint64_t i = 0; i < kMaxEntries; ++i) {
    const fs::path f = dir / "entries" / absl::StrCat(i, ".json");
    if (!fs::exists(f)) break;
    ASSIGN_OR_RETURN(auto bytes, attest::ReadFileBounded(f, kMaxEntry));
    log.leaves.push_back(attest::merkle::LeafHash(bytes));
  }
  return log;
}

attest::merkle::Tree TreeOf(const Log& log) {
  attest::merkle::Tree t;
  for (const auto& l : log.leaves) t.Append(l);
  return t;
}

}  // namespace

absl::Status LogInit(const fs::path& dir, const std::string& name, const fs::path& key_out,
                     const std::string& passphrase) {
  if (passphrase.size() < 8)
    return absl::InvalidArgumentError("the passphrase needs 8 characters or more");
  if (fs::exists(dir / "log.json"))
    return absl::AlreadyExistsError(dir.string() + ": a log exists");
  if (fs::exists(key_out)) return absl::AlreadyExistsError(key_out.string() + ": exists");
  Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) return absl::InternalError("key generation failed");
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PKCS8PrivateKey(bio, key.get(), EVP_aes_256_cbc(), nullptr, 0, nullptr,
                                const_cast<char*>(passphrase.c_str()));
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  const std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  std::error_code ec;
  fs::create_directories(dir / "entries", ec);
  fs::create_directories(key_out.parent_path().empty() ? "." : key_out.parent_path(), ec);
  {
    std::ofstream out(key_out, std::ios::binary);
    fs::permissions(key_out, fs::perms::owner_read | fs::perms::owner_write, ec);
    out << pem;
  }
  json meta = {{"name", name}, {"key", PublicJson(key.get())}};
  return attest::WriteFileAtomically(dir / "log.json", meta.dump(2) + "\n");
}

absl::StatusOr<uint64_t> LogAppend(const fs::path& dir, const fs::path& key_file,
                                   const std::string& passphrase, const fs::path& entry_file) {
  ASSIGN_OR_RETURN(Log log, Open(dir));
  ASSIGN_OR_RETURN(Pkey key, LoadKey(key_file, passphrase));
  ASSIGN_OR_RETURN(auto pub, attest::tuf::ParseKey(PublicJson(key.get())));
  if (pub.KeyId() != log.key.KeyId()) {
    return absl::PermissionDeniedError("the key is not this log's key");
  }
  ASSIGN_OR_RETURN(auto entry, attest::ReadFileBounded(entry_file, kMaxEntry));
  const uint64_t index = log.leaves.size();
  RETURN_IF_ERROR(
      attest::WriteFileAtomically(dir / "entries" / absl::StrCat(index, ".json"), entry));
  log.leaves.push_back(attest::merkle::LeafHash(entry));
  const auto tree = TreeOf(log);
  attest::tlog::Checkpoint c;
  c.log = log.name;
  c.size = tree.size();
  ASSIGN_OR_RETURN(c.root, tree.Root(c.size));
  c.timestamp = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  const json signed_part = attest::tlog::CheckpointSigned(c);
  ASSIGN_OR_RETURN(auto canonical, attest::tuf::CanonicalJson(signed_part));
  json checkpoint = {
      {"signed", signed_part},
      {"signatures",
       json::array({{{"keyid", log.key.KeyId()}, {"sig", SignHex(key.get(), canonical)}}})}};
  RETURN_IF_ERROR(attest::WriteFileAtomically(dir / "checkpoint.json", checkpoint.dump(2) + "\n"));
  return index;
}

absl::StatusOr<std::string> LogProveInclusion(const fs::path& dir, uint64_t index, uint64_t size) {
  ASSIGN_OR_RETURN(Log log, Open(dir));
  const auto tree = TreeOf(log);
  if (size == 0) size = tree.size();
  ASSIGN_OR_RETURN(auto proof, tree.InclusionProof(index, size));
  return attest::tlog::InclusionProofJson(index, size, proof);
}

absl::StatusOr<std::string> LogProveConsistency(const fs::path& dir, uint64_t size1,
                                                uint64_t size2) {
  ASSIGN_OR_RETURN(Log log, Open(dir));
  const auto tree = TreeOf(log);
  if (size2 == 0) size2 = tree.size();
  ASSIGN_OR_RETURN(auto proof, tree.ConsistencyProof(size1, size2));
  return attest::tlog::ConsistencyProofJson(size1, size2, proof);
}

}  // namespace appliance::release
