#include "attest/snp/cert_table.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "attest/byte_reader.h"
#include "attest/status.h"

namespace attest::snp {
namespace {

// GUID text from its EFI byte order (first three fields little endian).
std::string GuidText(std::span<const uint8_t> g) {
  return absl::StrFormat("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                         g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11],
                         g[12], g[13], g[14], g[15]);
}

constexpr char kVcek[] = "63da758d-e664-4564-adc5-f4b93be8accd";
constexpr char kVlek[] = "a8074bc2-a25a-483e-aae6-39c045a0b8a1";
constexpr char kAsk[] = "4ab7b379-bbac-4fe4-a02f-05aef327c782";
constexpr char kArk[] = "c0b406a4-a803-4952-9743-3fb6014cd0ae";

}  // namespace

absl::StatusOr<CertTable> ParseCertTable(std::span<const uint8_t> bytes) {
  if (bytes.size() > kMaxCertTableSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate table: ", bytes.size(), " bytes, more than ", kMaxCertTableSize));
  }
  CertTable table;
  ByteReader r(bytes, "snp certificate table");
  std::set<std::string> seen;
  size_t header_end = 0;
  struct Entry {
    std::string guid;
    uint32_t offset, length;
  };
  std::vector<Entry> entries;
  for (;;) {
    ASSIGN_OR_RETURN(auto guid, r.ReadBytes(16));
    ASSIGN_OR_RETURN(uint32_t offset, r.ReadU32Le());
    ASSIGN_OR_RETURN(uint32_t length, r.ReadU32Le());
    bool zero = offset == 0 && length == 0;
    for (uint8_t b : guid) zero = zero && b == 0;
    if (zero) break;
    std::string text = GuidText(guid);
    if (!seen.insert(text).second) {
      return absl::InvalidArgumentError(absl::StrCat("certificate table: GUID ", text, " twice"));
    }
    entries.push_back({text, offset, length});
  }
  header_end = r.offset();
  for (const auto& e : entries) {
    if (e.offset < header_end || e.length == 0 || e.offset > bytes.size() ||
        e.length > bytes.size() - e.offset) {
      return absl::InvalidArgumentError(
          absl::StrCat("certificate table: entry ", e.guid, " [", e.offset, ", +", e.length,
                       ") outside the table's ", bytes.size(), " bytes"));
    }
    std::vector<uint8_t> der(bytes.begin() + e.offset, bytes.begin() + e.offset + e.length);
    if (e.guid == kVcek) {
      table.vcek_der = std::move(der);
    } else if (e.guid == kVlek) {
      table.vlek_der = std::move(der);
    } else if (e.guid == kAsk) {
      table.ask_der = std::move(der);
    } else if (e.guid == kArk) {
      table.ark_der = std::move(der);
    } else {
      table.other_guids.push_back(e.guid);
    }
  }
  return table;
}

}  // namespace attest::snp
