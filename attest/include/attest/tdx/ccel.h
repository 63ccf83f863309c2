// The TDX confidential-computing event log: the ACPI CCEL table (where the log area is) and the
// log itself, a TCG2 crypto-agile log whose "PCR" field is the CC measurement register index
// (0 = MRTD, 1-4 = RTMR0-3), parsed and replayed with the TCG2 code of attest/tpm.
#ifndef ATTEST_TDX_CCEL_H_
#define ATTEST_TDX_CCEL_H_

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "attest/check.h"
#include "attest/tdx/quote.h"
#include "attest/tpm/eventlog.h"

namespace attest::tdx {

struct CcelTable {
  uint8_t cc_type = 0;  // 2 = TDX
  uint8_t cc_subtype = 0;
  uint64_t log_area_min_length = 0;
  uint64_t log_area_start = 0;
};

// The 56-byte ACPI table: signature "CCEL", length, checksum (all bytes sum to zero).
absl::StatusOr<CcelTable> ParseCcelTable(std::span<const uint8_t> bytes);

struct CcelReplay {
  tpm::EventLog log;
  std::array<std::array<uint8_t, 48>, 4> rtmr{};  // replayed SHA-384 RTMR0-3
  std::array<bool, 4> touched{};                  // an event extends it
};

// Parses the log (at most the table's log area, 0xFF padding allowed) and replays it.
absl::StatusOr<CcelReplay> ReplayCcel(const CcelTable& table, std::span<const uint8_t> log);

// Compares the replay with the quote's RTMRs: check "tdx.ccel.rtmr" names the first RTMR that
// differs. RTMRs no event touches must be zero in the quote, or are reported as unexplained.
absl::Status CheckCcelAgainstQuote(const CcelReplay& replay, const TdReport& body, CheckLog& log);

}  // namespace attest::tdx

#endif  // ATTEST_TDX_CCEL_H_
