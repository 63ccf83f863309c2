#include "attest/tpm/hash_alg.h"

#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "attest/encoding.h"
#include "attest/status.h"
#include "tpm/md_internal.h"

namespace attest::tpm {
const EVP_MD* TpmAlgMd(uint16_t alg) {
  static EVP_MD* const sha1 = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  static EVP_MD* const sha384 = EVP_MD_fetch(nullptr, "SHA384", nullptr);
  static EVP_MD* const sha512 = EVP_MD_fetch(nullptr, "SHA512", nullptr);
  switch (alg) {
    case kAlgSha1:
      return sha1;
    case kAlgSha256:
      return sha256;
    case kAlgSha384:
      return sha384;
    case kAlgSha512:
      return sha512;
    default:
      return nullptr;
  }
}

std::string HashAlgName(uint16_t alg) {
  switch (alg) {
    case kAlgSha1:
      return "sha1";
    case kAlgSha256:
      return "sha256";
    case kAlgSha384:
      return "sha384";
    case kAlgSha512:
      return "sha512";
    case kAlgSm3:
      return "sm3_256";
    default:
      return absl::StrFormat("0x%04x", alg);
  }
}

absl::StatusOr<uint16_t> HashAlgFromName(absl::string_view name) {
  std::string n = absl::AsciiStrToLower(name);
  n.erase(std::remove(n.begin(), n.end(), '-'), n.end());
  for (uint16_t alg : {kAlgSha1, kAlgSha256, kAlgSha384, kAlgSha512, kAlgSm3}) {
    if (n == HashAlgName(alg)) return alg;
  }
  uint32_t id = 0;
  if (n.size() > 2 && n.substr(0, 2) == "0x" && absl::SimpleHexAtoi(n.substr(2), &id) &&
      id <= 0xffff) {
    return static_cast<uint16_t>(id);
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown hash algorithm '", name, "'"));
}

size_t HashAlgSize(uint16_t alg) {
  const EVP_MD* md = TpmAlgMd(alg);
  return md ? static_cast<size_t>(EVP_MD_get_size(md)) : 0;
}

absl::StatusOr<std::vector<uint8_t>> Hash(uint16_t alg, std::span<const uint8_t> data) {
  const EVP_MD* md = TpmAlgMd(alg);
  if (md == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("hash algorithm ", HashAlgName(alg), " is not supported"));
  }
  std::vector<uint8_t> out(static_cast<size_t>(EVP_MD_get_size(md)));
  unsigned int n = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &n, md, nullptr) != 1) {
    return absl::InternalError("EVP_Digest failed");
  }
  return out;
}

absl::StatusOr<std::vector<uint8_t>> Extend(uint16_t alg, std::span<const uint8_t> old,
                                            std::span<const uint8_t> digest) {
  const EVP_MD* md = TpmAlgMd(alg);
  if (md == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("hash algorithm ", HashAlgName(alg), " is not supported"));
  }
  std::vector<uint8_t> out(static_cast<size_t>(EVP_MD_get_size(md)));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestInit_ex(ctx, md, nullptr) == 1 &&
            EVP_DigestUpdate(ctx, old.data(), old.size()) == 1 &&
            EVP_DigestUpdate(ctx, digest.data(), digest.size()) == 1 &&
            EVP_DigestFinal_ex(ctx, out.data(), nullptr) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) return absl::InternalError("extend: digest failed");
  return out;
}

namespace {

absl::StatusOr<PcrBank> ParseBank(const nlohmann::json& j, uint16_t alg) {
  size_t size = HashAlgSize(alg);
  PcrBank bank;
  auto add = [&](uint32_t index, const nlohmann::json& v) -> absl::Status {
    if (index > 31)
      return absl::InvalidArgumentError(absl::StrCat("PCR index ", index, " is out of range"));
    if (!v.is_string()) return absl::InvalidArgumentError("PCR values must be hex strings");
    ASSIGN_OR_RETURN(auto bytes, HexDecode(v.get<std::string>()));
    if (size != 0 && bytes.size() != size) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "PCR %u: %u bytes, a %s value has %u", index, bytes.size(), HashAlgName(alg), size));
    }
    bank[index] = std::move(bytes);
    return absl::OkStatus();
  };
  if (j.is_array()) {
    if (j.size() > 32) return absl::InvalidArgumentError("more than 32 PCR values");
    for (size_t i = 0; i < j.size(); ++i) RETURN_IF_ERROR(add(static_cast<uint32_t>(i), j[i]));
  } else if (j.is_object()) {
    for (const auto& [key, value] : j.items()) {
      uint32_t index = 0;
      if (!absl::SimpleAtoi(key, &index)) {
        return absl::InvalidArgumentError(absl::StrCat("'", key, "' is not a PCR index"));
      }
      RETURN_IF_ERROR(add(index, value));
    }
  } else {
    return absl::InvalidArgumentError("PCR values must be a JSON object or list");
  }
  return bank;
}

}  // namespace

absl::StatusOr<PcrBanks> ParsePcrJson(absl::string_view text, std::optional<uint16_t> bank) {
  constexpr size_t kMaxPcrJson = 256 * 1024;
  if (text.size() > kMaxPcrJson)
    return absl::InvalidArgumentError("PCR file is larger than 256 KiB");
  nlohmann::json j =
      nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("PCR file is not valid JSON");
  PcrBanks out;
  if (bank) {
    ASSIGN_OR_RETURN(out[*bank], ParseBank(j, *bank));
    return out;
  }
  if (j.is_object() && j.contains("banks")) j = j["banks"];
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        "PCR file: expected {\"sha256\": {\"0\": hex, ...}} (or --pcr-bank with a flat map/list)");
  }
  for (const auto& [name, values] : j.items()) {
    auto alg = HashAlgFromName(name);
    if (!alg.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("PCR file: '", name, "' is not a bank name; a flat map needs --pcr-bank"));
    }
    ASSIGN_OR_RETURN(out[*alg], ParseBank(values, *alg));
  }
  return out;
}

}  // namespace attest::tpm
