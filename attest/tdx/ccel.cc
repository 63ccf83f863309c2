#include "attest/tdx/ccel.h"

#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "attest/byte_reader.h"
#include "attest/encoding.h"
#include "attest/status.h"

namespace attest::tdx {

absl::StatusOr<CcelTable> ParseCcelTable(std::span<const uint8_t> bytes) {
  constexpr size_t kTableSize = 56;
  if (bytes.size() != kTableSize) {
    return absl::InvalidArgumentError(
        absl::StrFormat("CCEL table: %u bytes (56 expected)", bytes.size()));
  }
  ByteReader r(bytes, "CCEL table");
  ASSIGN_OR_RETURN(auto signature, r.ReadBytes(4));
  if (std::string(signature.begin(), signature.end()) != "CCEL") {
    return absl::InvalidArgumentError("CCEL table: signature is not 'CCEL'");
  }
  ASSIGN_OR_RETURN(uint32_t length, r.ReadU32Le());
  if (length != kTableSize) return absl::InvalidArgumentError("CCEL table: length field is not 56");
  uint8_t sum = std::accumulate(bytes.begin(), bytes.end(), uint8_t{0});
  if (sum != 0) return absl::InvalidArgumentError("CCEL table: ACPI checksum does not sum to zero");
  RETURN_IF_ERROR(r.Skip(36 - 8));  // rest of the ACPI header
  CcelTable t;
  ASSIGN_OR_RETURN(t.cc_type, r.ReadU8());
  ASSIGN_OR_RETURN(t.cc_subtype, r.ReadU8());
  RETURN_IF_ERROR(r.Skip(2));
  ASSIGN_OR_RETURN(t.log_area_min_length, r.ReadU64Le());
  ASSIGN_OR_RETURN(t.log_area_start, r.ReadU64Le());
  if (t.cc_type != 2)
    return absl::InvalidArgumentError(
        absl::StrFormat("CCEL table: CC type %u (2 = TDX)", t.cc_type));
  return t;
}

absl::StatusOr<CcelReplay> ReplayCcel(const CcelTable& table, std::span<const uint8_t> log) {
  if (log.size() > table.log_area_min_length) {
    return absl::InvalidArgumentError(
        absl::StrFormat("CCEL: log of %u bytes is larger than its %u-byte area", log.size(),
                        table.log_area_min_length));
  }
  CcelReplay out;
  ASSIGN_OR_RETURN(out.log, tpm::ParseEventLog(log, tpm::LogPadding::kAllowFfPadding));
  ASSIGN_OR_RETURN(tpm::Replay replay, tpm::ReplayEventLog(out.log));
  auto bank = replay.pcrs.find(tpm::kAlgSha384);
  if (bank == replay.pcrs.end()) {
    if (!replay.pcrs.empty())
      return absl::InvalidArgumentError("CCEL: the log has no SHA-384 digests");
    return out;
  }
  for (const auto& [index, value] : bank->second) {
    if (index == 0 || index > 4) {
      return absl::InvalidArgumentError(
          absl::StrFormat("CCEL: an event extends MR index %u (RTMRs are 1-4)", index));
    }
    std::copy(value.begin(), value.end(), out.rtmr[index - 1].begin());
    out.touched[index - 1] = true;
  }
  return out;
}

absl::Status CheckCcelAgainstQuote(const CcelReplay& replay, const TdReport& body, CheckLog& log) {
  std::string unexplained;
  for (size_t i = 0; i < 4; ++i) {
    const auto& quoted = body.rtmr[i];
    if (!replay.touched[i]) {
      bool zero = std::all_of(quoted.begin(), quoted.end(), [](uint8_t b) { return b == 0; });
      if (!zero) absl::StrAppend(&unexplained, unexplained.empty() ? "" : ", ", "RTMR", i);
      continue;
    }
    if (replay.rtmr[i] != quoted) {
      return log.Fail("tdx.ccel.rtmr",
                      absl::StrFormat("RTMR%u: the CCEL replays to %s but the quote has %s", i,
                                      HexEncode(replay.rtmr[i]), HexEncode(quoted)));
    }
  }
  log.Pass(
      "tdx.ccel.rtmr",
      absl::StrCat(
          "the CCEL (", replay.log.events.size(), " events) reproduces the quoted RTMRs it touches",
          unexplained.empty() ? "" : absl::StrCat("; not explained by it: ", unexplained)));
  return absl::OkStatus();
}

}  // namespace attest::tdx
