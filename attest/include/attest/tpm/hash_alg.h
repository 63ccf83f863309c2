// TPM hash algorithm identifiers (TPM 2.0 Part 2, TPM_ALG_ID) and PCR value sets.
#ifndef ATTEST_TPM_HASH_ALG_H_
#define ATTEST_TPM_HASH_ALG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace attest::tpm {

inline constexpr uint16_t kAlgSha1 = 0x0004;
inline constexpr uint16_t kAlgSha256 = 0x000B;
inline constexpr uint16_t kAlgSha384 = 0x000C;
inline constexpr uint16_t kAlgSha512 = 0x000D;
inline constexpr uint16_t kAlgSm3 = 0x0012;
inline constexpr uint16_t kAlgNull = 0x0010;

// "sha1", "sha256", "sha384", "sha512", "sm3_256"; "0x00XX" for others.
std::string HashAlgName(uint16_t alg);
// Accepts the names above (case-insensitive, "sha-256" too) and "0x000b" style ids.
absl::StatusOr<uint16_t> HashAlgFromName(absl::string_view name);
// Digest size in bytes; 0 for an algorithm this library cannot compute.
size_t HashAlgSize(uint16_t alg);
absl::StatusOr<std::vector<uint8_t>> Hash(uint16_t alg, std::span<const uint8_t> data);
// TPM extend: H(old || digest).
absl::StatusOr<std::vector<uint8_t>> Extend(uint16_t alg, std::span<const uint8_t> old,
                                            std::span<const uint8_t> digest);

// PCR values: bank (hash algorithm) → PCR index → value.
using PcrBank = std::map<uint32_t, std::vector<uint8_t>>;
using PcrBanks = std::map<uint16_t, PcrBank>;

// Parses PCR values from JSON: the `banks` shape that `appliance-verify eventlog --json` prints
// ({"sha256": {"0": "hex", ...}, ...}), or — with `bank` given — a flat {"0": "hex", ...} map or a
// ["hex", ...] list indexed from 0. Every value must have the bank's digest size.
absl::StatusOr<PcrBanks> ParsePcrJson(absl::string_view json, std::optional<uint16_t> bank);

}  // namespace attest::tpm

#endif  // ATTEST_TPM_HASH_ALG_H_
