#include "attest/files.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "attest/status.h"
#include "attest/tpm/hash_alg.h"
#include "common/openssl_util.h"
#include "tpm/md_internal.h"

namespace attest {

absl::StatusOr<std::vector<uint8_t>> ReadFileBounded(const std::filesystem::path& path,
                                                     size_t max_size) {
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    return absl::NotFoundError(absl::StrCat(path.string(), ": no such file"));
  }
  if (!std::filesystem::is_regular_file(status)) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": not a regular file"));
  }
  auto size = std::filesystem::file_size(path, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat(path.string(), ": ", ec.message()));
  if (size > max_size) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: %u bytes, larger than the %u-byte limit",
                                                      path.string(), size, max_size));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(path.string(), ": cannot open"));
  // Read at most max_size + 1 bytes: the file may have grown since it was measured. The buffer
  // starts at the measured size (plus one byte to notice growth), not at the limit.
  std::vector<uint8_t> data;
  size_t n = 0;
  size_t want = static_cast<size_t>(std::min<uintmax_t>(size, max_size)) + 1;
  for (;;) {
    data.resize(want);
    in.read(reinterpret_cast<char*>(data.data() + n), static_cast<std::streamsize>(want - n));
    n += static_cast<size_t>(in.gcount());
    if (n < want || want > max_size) break;
    want = std::min(max_size + 1, want * 2);
  }
  if (n > max_size) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: larger than the %u-byte limit", path.string(), max_size));
  }
  data.resize(n);
  return data;
}

absl::Status WriteFileAtomically(const std::filesystem::path& path,
                                 std::span<const uint8_t> bytes) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
    if (!f.flush()) return absl::UnavailableError(absl::StrCat("write ", tmp.string()));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("rename ", tmp.string(), ": ", ec.message()));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::vector<uint8_t>>> DigestsOfFile(const std::filesystem::path& path,
                                                                const std::vector<uint16_t>& algs) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path.string(), ": cannot open"));
  std::vector<ossl::EvpMdCtxPtr> ctx;
  for (uint16_t alg : algs) {
    ctx.emplace_back(EVP_MD_CTX_new());
    const EVP_MD* md = tpm::TpmAlgMd(alg);
    if (md == nullptr || !ctx.back() || EVP_DigestInit_ex(ctx.back().get(), md, nullptr) != 1) {
      return absl::InternalError("digest init failed");
    }
  }
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    for (auto& c : ctx) {
      if (in.gcount() > 0 &&
          EVP_DigestUpdate(c.get(), buf.data(), static_cast<size_t>(in.gcount())) != 1) {
        return absl::InternalError("digest update failed");
      }
    }
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat(path.string(), ": read error"));
  std::vector<std::vector<uint8_t>> out;
  for (auto& c : ctx) {
    out.emplace_back(static_cast<size_t>(EVP_MD_CTX_get_size(c.get())));
    if (EVP_DigestFinal_ex(c.get(), out.back().data(), nullptr) != 1) {
      return absl::InternalError("digest final failed");
    }
  }
  return out;
}

absl::StatusOr<std::vector<uint8_t>> Sha256OfFile(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(auto d, DigestsOfFile(path, {tpm::kAlgSha256}));
  return std::move(d[0]);
}

absl::Status WriteFileAtomically(const std::filesystem::path& path, absl::string_view text) {
  return WriteFileAtomically(
      path, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

bool LooksLikePem(std::span<const uint8_t> bytes) {
  static constexpr absl::string_view kBegin = "-----BEGIN ";
  absl::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  size_t start = text.find_first_not_of(" \t\r\n");
  return start != absl::string_view::npos && text.substr(start, kBegin.size()) == kBegin;
}

namespace {

// Reads PEM blocks of one kind; stops at the end, fails on any block that does not parse.
template <typename T, typename Reader, typename Writer>
absl::StatusOr<std::vector<std::vector<uint8_t>>> ReadPemBlocks(std::span<const uint8_t> bytes,
                                                                absl::string_view what, Reader read,
                                                                Writer write, void (*free_fn)(T*)) {
  ERR_clear_error();
  ossl::BioPtr bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
  if (!bio) return absl::ResourceExhaustedError("BIO_new_mem_buf failed");
  std::vector<std::vector<uint8_t>> out;
  for (;;) {
    T* obj = read(bio.get(), nullptr, nullptr, nullptr);
    if (obj == nullptr) break;
    unsigned char* der = nullptr;
    int n = write(obj, &der);
    free_fn(obj);
    if (n <= 0) return absl::InvalidArgumentError(absl::StrCat(what, ": cannot re-encode"));
    out.emplace_back(der, der + n);
    OPENSSL_free(der);
  }
  // End of input reads as PEM_R_NO_START_LINE; anything else is a broken block.
  unsigned long err = ERR_peek_last_error();  // NOLINT(runtime/int)
  if (err != 0 && ERR_GET_REASON(err) != PEM_R_NO_START_LINE) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": malformed PEM (", ossl::LastError(), ")"));
  }
  ERR_clear_error();
  if (out.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": no PEM block found"));
  return out;
}

}  // namespace

absl::StatusOr<std::vector<std::vector<uint8_t>>> ParseCertificates(std::span<const uint8_t> bytes,
                                                                    absl::string_view what) {
  if (bytes.size() > kMaxCertificateFileSize) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: %u bytes, larger than the %u-byte limit",
                                                      what, bytes.size(), kMaxCertificateFileSize));
  }
  if (!LooksLikePem(bytes)) {
    RETURN_IF_ERROR(ossl::ParseDerCertificate(bytes, what).status());
    return std::vector<std::vector<uint8_t>>{std::vector<uint8_t>(bytes.begin(), bytes.end())};
  }
  return ReadPemBlocks<X509>(bytes, what, PEM_read_bio_X509, i2d_X509, X509_free);
}

absl::StatusOr<std::vector<uint8_t>> ParseCrl(std::span<const uint8_t> bytes,
                                              absl::string_view what) {
  if (bytes.size() > kMaxCertificateFileSize) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": larger than the size limit"));
  }
  if (!LooksLikePem(bytes)) {
    RETURN_IF_ERROR(ossl::ParseDerCrl(bytes, what).status());
    return std::vector<uint8_t>(bytes.begin(), bytes.end());
  }
  ASSIGN_OR_RETURN(auto blocks, ReadPemBlocks<X509_CRL>(bytes, what, PEM_read_bio_X509_CRL,
                                                        i2d_X509_CRL, X509_CRL_free));
  if (blocks.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": expected one CRL"));
  }
  return std::move(blocks.front());
}

absl::StatusOr<std::string> ReadPassphrase(const std::string& file, const char* env) {
  if (!file.empty()) {
    ASSIGN_OR_RETURN(auto b, ReadFileBounded(file, 4096));
    std::string p(b.begin(), b.end());
    if (auto nl = p.find_first_of("\r\n"); nl != std::string::npos) p.resize(nl);
    return p;
  }
  const char* value = std::getenv(env);
  if (value == nullptr || *value == '\0') {
    return absl::InvalidArgumentError(
        absl::StrCat("no passphrase: set ", env, " or give --passphrase-file"));
  }
  return std::string(value);
}

}  // namespace attest
