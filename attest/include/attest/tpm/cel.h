// TCG Canonical Event Log (CEL) records, in the CEL-JSON and CEL-TLV encodings, for the
// appliance's own runtime events (log first, then extend: DESIGN §3). Replays into PCRs (TPM) and
// into an RTMR (TDX, SHA-384).
//
// CEL-TLV: each field is type (1 byte), length (4 bytes, big-endian), value. A record is recnum
// (type 0, big-endian integer), pcr (1) or nv_index (2), digests (3: nested TLVs whose type is the
// TPM_ALG_ID and whose value is the digest), then one content field whose type names the content.
// CEL-JSON: {"recnum", "pcr"|"nv_index", "digests": [{"hashAlg", "digest"}], "content_type",
// "content"}; a log is a JSON array, or records separated by newlines or RS (systemd's JSON-SEQ).
#ifndef ATTEST_TPM_CEL_H_
#define ATTEST_TPM_CEL_H_

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "attest/check.h"
#include "attest/tpm/hash_alg.h"

namespace attest::tpm {

// Content types (TLV type numbers). 4-8 are the CEL specification's; the appliance's runtime
// events use a vendor value outside the specification's range.
inline constexpr uint8_t kCelContentMgt = 4;
inline constexpr uint8_t kCelContentPcClientStd = 5;
inline constexpr uint8_t kCelContentImaTemplate = 7;
inline constexpr uint8_t kCelContentImaTlv = 8;
inline constexpr uint8_t kCelContentAppliance = 0xA0;

inline constexpr size_t kMaxCelSize = 4 * 1024 * 1024;
inline constexpr size_t kMaxCelRecords = 100000;

struct CelRecord {
  uint64_t recnum = 0;
  bool nv_index = false;  // index is an NV index instead of a PCR
  uint32_t index = 0;
  std::map<uint16_t, std::vector<uint8_t>> digests;  // hash algorithm → digest
  uint8_t content_type = kCelContentAppliance;
  // Appliance events: the event name and its data. The digests are H(content), the content being
  // the TLVs event (type 0) and data (type 1), so the name is bound as well as the data.
  std::string event;
  std::vector<uint8_t> data;
  // Any other content type, kept as received (TLV value bytes, or the JSON text of "content").
  std::vector<uint8_t> raw_content;
};

using Cel = std::vector<CelRecord>;

absl::StatusOr<Cel> ParseCelJson(absl::string_view text);
absl::StatusOr<Cel> ParseCelTlv(std::span<const uint8_t> bytes);
// Detects the encoding: JSON starts with '[', '{' or RS; anything else is TLV. Unknown content
// types are rejected (their digests could not be checked).
absl::StatusOr<Cel> ParseCel(std::span<const uint8_t> bytes);
std::string SerializeCelJson(const Cel& cel);
std::vector<uint8_t> SerializeCelTlv(const Cel& cel);

// An appliance runtime event for `pcr`, with one digest per algorithm in `algs`.
absl::StatusOr<CelRecord> MakeApplianceRecord(uint64_t recnum, uint32_t pcr,
                                              absl::string_view event,
                                              std::span<const uint8_t> data,
                                              const std::vector<uint16_t>& algs);

// Record numbers must count up from the first; appliance records' digests must equal H(content).
// Check "cel.records".
absl::Status CheckCelRecords(const Cel& cel, CheckLog& log);

// PCR records replayed into every bank they carry digests for (NV-index records are skipped).
absl::StatusOr<PcrBanks> ReplayCel(const Cel& cel);
// The records of `pcr` replayed as a TDX RTMR: SHA-384, starting from 48 zero bytes.
absl::StatusOr<std::vector<uint8_t>> ReplayCelToRtmr(const Cel& cel, uint32_t pcr);

}  // namespace attest::tpm

#endif  // ATTEST_TPM_CEL_H_
