// Intel TDX quotes (Intel TDX DCAP Quote Generation Library and Quote Verification Library specs):
// versions 4 and 5, TD report bodies TDX 1.0 (584 bytes) and TDX 1.5 (648 bytes), ECDSA P-256
// signature data with QE report certification data (type 6) wrapping the PCK chain (type 5).
// Lengths come from the quote's own length fields, never from the input size.
#ifndef ATTEST_TDX_QUOTE_H_
#define ATTEST_TDX_QUOTE_H_

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace attest::tdx {

inline constexpr size_t kHeaderSize = 48;
inline constexpr size_t kTdReport10Size = 584;
inline constexpr size_t kTdReport15Size = 648;
inline constexpr size_t kQeReportSize = 384;
inline constexpr size_t kMaxQuoteSize = 64 * 1024;
inline constexpr uint16_t kAttestationKeyEcdsaP256 = 2;
inline constexpr uint32_t kTeeTypeTdx = 0x81;
inline constexpr uint16_t kBodyTdx10 = 2;  // v5 body types
inline constexpr uint16_t kBodyTdx15 = 3;

struct TdReport {
  bool tdx15 = false;
  std::array<uint8_t, 16> tee_tcb_svn{};
  std::array<uint8_t, 48> mrseam{};
  std::array<uint8_t, 48> mrsignerseam{};
  uint64_t seam_attributes = 0;
  uint64_t td_attributes = 0;
  uint64_t xfam = 0;
  std::array<uint8_t, 48> mrtd{};
  std::array<uint8_t, 48> mrconfigid{};
  std::array<uint8_t, 48> mrowner{};
  std::array<uint8_t, 48> mrownerconfig{};
  std::array<std::array<uint8_t, 48>, 4> rtmr{};
  std::array<uint8_t, 64> report_data{};
  // TDX 1.5 only.
  std::array<uint8_t, 16> tee_tcb_svn2{};
  std::array<uint8_t, 48> mrservicetd{};
};

// TD attributes (TDX module ABI, TDATTRIBUTES).
struct TdAttributes {
  bool debug = false;            // bit 0
  bool sept_ve_disable = false;  // bit 28
  bool pks = false;              // bit 30
  bool kl = false;               // bit 31
  bool perfmon = false;          // bit 63
};
TdAttributes DecodeTdAttributes(uint64_t raw);

// SGX enclave report body of the Quoting Enclave (384 bytes).
struct QeReport {
  std::array<uint8_t, 16> cpusvn{};
  uint32_t miscselect = 0;
  std::array<uint8_t, 16> attributes{};
  std::array<uint8_t, 32> mrenclave{};
  std::array<uint8_t, 32> mrsigner{};
  uint16_t isv_prod_id = 0;
  uint16_t isv_svn = 0;
  std::array<uint8_t, 64> report_data{};
  std::vector<uint8_t> raw;  // the signed 384 bytes
};

struct Quote {
  uint16_t version = 0;
  uint16_t attestation_key_type = 0;
  uint32_t tee_type = 0;
  std::array<uint8_t, 16> qe_vendor_id{};
  std::array<uint8_t, 20> user_data{};
  TdReport body;
  std::vector<uint8_t> signed_region;         // header + (v5: body type and size +) body
  std::array<uint8_t, 64> signature{};        // r || s, big-endian
  std::array<uint8_t, 64> attestation_key{};  // x || y
  QeReport qe_report;
  std::array<uint8_t, 64> qe_report_signature{};
  std::vector<uint8_t> qe_auth_data;
  std::string pck_chain_pem;  // leaf first
  size_t trailing_bytes = 0;  // after the declared end (ignored, reported)
};

absl::StatusOr<Quote> ParseQuote(std::span<const uint8_t> bytes);

}  // namespace attest::tdx

#endif  // ATTEST_TDX_QUOTE_H_
