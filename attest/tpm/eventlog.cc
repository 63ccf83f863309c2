#include "attest/tpm/eventlog.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "attest/byte_reader.h"
#include "attest/encoding.h"
#include "attest/status.h"

namespace attest::tpm {
namespace {

// Event types (TCG PC Client Platform Firmware Profile, "Events" table).
constexpr uint32_t kEvPostCode = 0x00000001;
constexpr uint32_t kEvAction = 0x00000005;
constexpr uint32_t kEvSCrtmVersion = 0x00000008;
constexpr uint32_t kEvEfiBase = 0x80000000;
constexpr uint32_t kEvEfiVariableBoot = kEvEfiBase + 2;
constexpr uint32_t kEvEfiBootServicesDriver = kEvEfiBase + 4;
constexpr uint32_t kEvEfiRuntimeServicesDriver = kEvEfiBase + 5;
constexpr uint32_t kEvEfiGptEvent = kEvEfiBase + 6;
constexpr uint32_t kEvEfiPlatformFirmwareBlob = kEvEfiBase + 8;
constexpr uint32_t kEvEfiHandoffTables = kEvEfiBase + 9;
constexpr uint32_t kEvEfiPlatformFirmwareBlob2 = kEvEfiBase + 0xA;
constexpr uint32_t kEvEfiHandoffTables2 = kEvEfiBase + 0xB;
constexpr uint32_t kEvEfiVariableBoot2 = kEvEfiBase + 0xC;
constexpr uint32_t kEvEfiVariableAuthority = kEvEfiBase + 0xE0;

constexpr char kSpecId03[] = "Spec ID Event03";  // followed by a NUL: 16 bytes
constexpr char kSpecId00[] = "Spec ID Event00";
constexpr char kStartupLocality[] = "StartupLocality";  // followed by a NUL: 16 bytes
constexpr char kSp800155[] = "SP800-155 Event";

bool DataStartsWith(std::span<const uint8_t> data, const char* sig) {
  size_t n = std::strlen(sig) + 1;  // including the NUL
  return data.size() >= n && std::memcmp(data.data(), sig, n) == 0;
}

std::string Printable(std::span<const uint8_t> data, size_t max = 120) {
  std::string out;
  for (size_t i = 0; i < data.size() && out.size() < max; ++i) {
    char c = static_cast<char>(data[i]);
    if (c == '\0') continue;
    out.push_back(c >= 0x20 && c < 0x7f ? c : '.');
  }
  return out;
}

// UTF-16LE to ASCII (non-ASCII shown as '?'), for variable names and CRTM versions.
std::string Utf16(std::span<const uint8_t> data) {
  std::string out;
  for (size_t i = 0; i + 1 < data.size(); i += 2) {
    uint16_t c = static_cast<uint16_t>(data[i] | data[i + 1] << 8);
    if (c == 0) break;
    out.push_back(c < 0x80 && c >= 0x20 ? static_cast<char>(c) : '?');
  }
  return out;
}

absl::Status ParseSpecId(std::span<const uint8_t> data, EventLog& log) {
  ByteReader r(data, "event log Spec ID event");
  RETURN_IF_ERROR(r.Skip(16));              // signature
  RETURN_IF_ERROR(r.ReadU32Le().status());  // platformClass
  RETURN_IF_ERROR(r.Skip(4));               // specVersionMinor, Major, specErrata, uintnSize
  ASSIGN_OR_RETURN(uint32_t count, r.ReadU32Le());
  if (count == 0 || count > 16) {
    return absl::InvalidArgumentError(
        absl::StrFormat("event log: Spec ID declares %u algorithms (1-16)", count));
  }
  for (uint32_t i = 0; i < count; ++i) {
    ASSIGN_OR_RETURN(uint16_t alg, r.ReadU16Le());
    ASSIGN_OR_RETURN(uint16_t size, r.ReadU16Le());
    size_t known = HashAlgSize(alg);
    if (known != 0 && known != size) {
      return absl::InvalidArgumentError(
          absl::StrFormat("event log: Spec ID says %s digests are %u bytes, they are %u",
                          HashAlgName(alg), size, known));
    }
    if (size == 0 || size > 64) {
      return absl::InvalidArgumentError(
          absl::StrFormat("event log: digest size %u for 0x%04x", size, alg));
    }
    log.algorithms.push_back(alg);
  }
  ASSIGN_OR_RETURN(uint8_t vendor_size, r.ReadU8());
  RETURN_IF_ERROR(r.Skip(vendor_size));
  return absl::OkStatus();
}

// eventSize and event, the tail of both event formats; bounded before anything is copied.
absl::Status ReadEventData(ByteReader& r, UntrustedEvent& e) {
  ASSIGN_OR_RETURN(uint32_t size, r.ReadU32Le());
  if (size > kMaxEventDataSize) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "event log: event at offset %u has %u bytes of data, over the %u-byte limit", e.offset,
        size, kMaxEventDataSize));
  }
  ASSIGN_OR_RETURN(auto data, r.ReadBytes(size));
  e.data.assign(data.begin(), data.end());
  return absl::OkStatus();
}

// TCG_PCR_EVENT: pcrIndex, eventType, SHA-1 digest, eventSize, event.
absl::StatusOr<UntrustedEvent> ReadLegacyEvent(ByteReader& r) {
  UntrustedEvent e;
  e.offset = r.offset();
  ASSIGN_OR_RETURN(e.pcr, r.ReadU32Le());
  ASSIGN_OR_RETURN(e.type, r.ReadU32Le());
  ASSIGN_OR_RETURN(auto digest, r.ReadBytes(20));
  e.digests[kAlgSha1].assign(digest.begin(), digest.end());
  RETURN_IF_ERROR(ReadEventData(r, e));
  return e;
}

// TCG_PCR_EVENT2: pcrIndex, eventType, TPML_DIGEST_VALUES, eventSize, event.
absl::StatusOr<UntrustedEvent> ReadEvent2(ByteReader& r, const EventLog& log) {
  UntrustedEvent e;
  e.offset = r.offset();
  ASSIGN_OR_RETURN(e.pcr, r.ReadU32Le());
  ASSIGN_OR_RETURN(e.type, r.ReadU32Le());
  ASSIGN_OR_RETURN(uint32_t count, r.ReadU32Le());
  if (count != log.algorithms.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "event log: event at offset %u has %u digests, the header declares %u banks", e.offset,
        count, log.algorithms.size()));
  }
  for (uint32_t i = 0; i < count; ++i) {
    ASSIGN_OR_RETURN(uint16_t alg, r.ReadU16Le());
    if (std::find(log.algorithms.begin(), log.algorithms.end(), alg) == log.algorithms.end() ||
        e.digests.count(alg)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("event log: event at offset %u has an unexpected or repeated %s digest",
                          e.offset, HashAlgName(alg)));
    }
    size_t size = HashAlgSize(alg);
    if (size == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("event log: bank ", HashAlgName(alg), " is not supported"));
    }
    ASSIGN_OR_RETURN(auto digest, r.ReadBytes(size));
    e.digests[alg].assign(digest.begin(), digest.end());
  }
  RETURN_IF_ERROR(ReadEventData(r, e));
  return e;
}

void NoteStartupLocality(const UntrustedEvent& e, EventLog& log) {
  if (e.type == kEvNoAction && e.pcr == 0 && DataStartsWith(e.data, kStartupLocality) &&
      e.data.size() >= 17) {
    log.startup_locality = e.data[16];
  }
}

}  // namespace

absl::StatusOr<EventLog> ParseEventLog(std::span<const uint8_t> bytes, LogPadding padding) {
  if (bytes.size() > kMaxEventLogSize) {
    return absl::InvalidArgumentError(absl::StrFormat("event log: %u bytes, over the %u-byte limit",
                                                      bytes.size(), kMaxEventLogSize));
  }
  if (bytes.empty()) return absl::InvalidArgumentError("event log: empty");
  ByteReader r(bytes, "event log");
  EventLog log;
  ASSIGN_OR_RETURN(UntrustedEvent first, ReadLegacyEvent(r));
  size_t index = 0;
  if (first.type == kEvNoAction && DataStartsWith(first.data, kSpecId03)) {
    log.format = EventLogFormat::kTcg2;
    RETURN_IF_ERROR(ParseSpecId(first.data, log));
    index = 1;
  } else {
    log.format = EventLogFormat::kTcg1;
    log.algorithms = {kAlgSha1};
    // The TCG 1.2 Spec ID header (Spec ID Event00) is informational; other first events are events.
    if (first.type == kEvNoAction && DataStartsWith(first.data, kSpecId00)) {
      index = 1;
    } else {
      first.index = index++;
      NoteStartupLocality(first, log);
      log.events.push_back(std::move(first));
    }
  }
  while (r.remaining() > 0) {
    if (padding == LogPadding::kAllowFfPadding && r.remaining() >= 8) {
      std::span<const uint8_t> rest = bytes.subspan(r.offset());
      if (std::all_of(rest.begin(), rest.begin() + 8, [](uint8_t b) { return b == 0xff; })) {
        if (!std::all_of(rest.begin(), rest.end(), [](uint8_t b) { return b == 0xff; })) {
          return absl::InvalidArgumentError(absl::StrFormat(
              "event log: data after the 0xFF padding that starts at offset 0x%x", r.offset()));
        }
        break;
      }
    }
    if (log.events.size() >= kMaxEvents) {
      return absl::InvalidArgumentError(
          absl::StrFormat("event log: more than %u events", kMaxEvents));
    }
    absl::StatusOr<UntrustedEvent> e =
        log.format == EventLogFormat::kTcg2 ? ReadEvent2(r, log) : ReadLegacyEvent(r);
    if (!e.ok()) return e.status();
    e->index = index++;
    NoteStartupLocality(*e, log);
    log.events.push_back(*std::move(e));
  }
  return log;
}

std::string EventTypeName(uint32_t type) {
  switch (type) {
    case 0x00000000:
      return "EV_PREBOOT_CERT";
    case kEvPostCode:
      return "EV_POST_CODE";
    case 0x00000002:
      return "EV_UNUSED";
    case kEvNoAction:
      return "EV_NO_ACTION";
    case kEvSeparator:
      return "EV_SEPARATOR";
    case kEvAction:
      return "EV_ACTION";
    case kEvEventTag:
      return "EV_EVENT_TAG";
    case 0x00000007:
      return "EV_S_CRTM_CONTENTS";
    case kEvSCrtmVersion:
      return "EV_S_CRTM_VERSION";
    case 0x00000009:
      return "EV_CPU_MICROCODE";
    case 0x0000000A:
      return "EV_PLATFORM_CONFIG_FLAGS";
    case 0x0000000B:
      return "EV_TABLE_OF_DEVICES";
    case 0x0000000C:
      return "EV_COMPACT_HASH";
    case kEvIpl:
      return "EV_IPL";
    case 0x0000000E:
      return "EV_IPL_PARTITION_DATA";
    case 0x0000000F:
      return "EV_NONHOST_CODE";
    case 0x00000010:
      return "EV_NONHOST_CONFIG";
    case 0x00000011:
      return "EV_NONHOST_INFO";
    case 0x00000012:
      return "EV_OMIT_BOOT_DEVICE_EVENTS";
    case kEvEfiVariableDriverConfig:
      return "EV_EFI_VARIABLE_DRIVER_CONFIG";
    case kEvEfiVariableBoot:
      return "EV_EFI_VARIABLE_BOOT";
    case kEvEfiBootServicesApplication:
      return "EV_EFI_BOOT_SERVICES_APPLICATION";
    case kEvEfiBootServicesDriver:
      return "EV_EFI_BOOT_SERVICES_DRIVER";
    case kEvEfiRuntimeServicesDriver:
      return "EV_EFI_RUNTIME_SERVICES_DRIVER";
    case kEvEfiGptEvent:
      return "EV_EFI_GPT_EVENT";
    case kEvEfiAction:
      return "EV_EFI_ACTION";
    case kEvEfiPlatformFirmwareBlob:
      return "EV_EFI_PLATFORM_FIRMWARE_BLOB";
    case kEvEfiHandoffTables:
      return "EV_EFI_HANDOFF_TABLES";
    case kEvEfiPlatformFirmwareBlob2:
      return "EV_EFI_PLATFORM_FIRMWARE_BLOB2";
    case kEvEfiHandoffTables2:
      return "EV_EFI_HANDOFF_TABLES2";
    case kEvEfiVariableBoot2:
      return "EV_EFI_VARIABLE_BOOT2";
    case kEvEfiVariableAuthority:
      return "EV_EFI_VARIABLE_AUTHORITY";
    default:
      return absl::StrFormat("0x%08x", type);
  }
}

std::string DescribeEvent(const UntrustedEvent& e) {
  std::span<const uint8_t> d(e.data);
  ByteReader r(d, "event");
  switch (e.type) {
    case kEvNoAction:
      if (DataStartsWith(d, kStartupLocality) && d.size() >= 17)
        return absl::StrCat("StartupLocality ", d[16]);
      if (DataStartsWith(d, kSp800155)) return "SP800-155 reference manifest";
      return absl::StrCat("no action: ", Printable(d, 40));
    case kEvSeparator:
      return absl::StrCat("separator ", HexEncode(d.first(std::min<size_t>(d.size(), 8))));
    case kEvAction:
    case kEvEfiAction:
    case kEvIpl:
    case kEvPostCode:
      return absl::StrCat("\"", Printable(d), "\"");
    case kEvSCrtmVersion:
      return absl::StrCat("CRTM version \"", Utf16(d), "\"");
    case kEvEfiVariableDriverConfig:
    case kEvEfiVariableBoot:
    case kEvEfiVariableBoot2:
    case kEvEfiVariableAuthority: {
      // UEFI_VARIABLE_DATA: VariableName GUID, UnicodeNameLength, VariableDataLength, name, data.
      auto guid = r.ReadBytes(16);
      auto name_len = r.ReadU64Le();
      auto data_len = r.ReadU64Le();
      if (!guid.ok() || !name_len.ok() || !data_len.ok() || *name_len > r.remaining() / 2) {
        return "variable (malformed UEFI_VARIABLE_DATA)";
      }
      auto name = r.ReadBytes(static_cast<size_t>(*name_len) * 2);
      return absl::StrFormat("variable %s (%u bytes of data)", name.ok() ? Utf16(*name) : "?",
                             *data_len);
    }
    case kEvEfiBootServicesApplication:
    case kEvEfiBootServicesDriver:
    case kEvEfiRuntimeServicesDriver: {
      // UEFI_IMAGE_LOAD_EVENT: ImageLocationInMemory, ImageLengthInMemory, ImageLinkTimeAddress,
      // LengthOfDevicePath, DevicePath.
      auto addr = r.ReadU64Le();
      auto len = r.ReadU64Le();
      if (!addr.ok() || !len.ok()) return "image (malformed UEFI_IMAGE_LOAD_EVENT)";
      return absl::StrFormat("image at 0x%x, %u bytes", *addr, *len);
    }
    case kEvEfiPlatformFirmwareBlob: {
      auto base = r.ReadU64Le();
      auto len = r.ReadU64Le();
      if (!base.ok() || !len.ok()) return "firmware blob (malformed)";
      return absl::StrFormat("firmware blob at 0x%x, %u bytes", *base, *len);
    }
    case kEvEfiPlatformFirmwareBlob2: {
      auto desc_size = r.ReadU8();
      if (!desc_size.ok()) return "firmware blob (malformed)";
      auto desc = r.ReadBytes(*desc_size);
      auto base = r.ReadU64Le();
      auto len = r.ReadU64Le();
      if (!desc.ok() || !base.ok() || !len.ok()) return "firmware blob (malformed)";
      return absl::StrFormat("firmware blob \"%s\" at 0x%x, %u bytes", Printable(*desc), *base,
                             *len);
    }
    case kEvEfiGptEvent:
      return absl::StrFormat("GPT (%u bytes)", d.size());
    default:
      return absl::StrFormat("%u bytes", d.size());
  }
}

namespace {

// Types whose digest the spec defines as the hash of the event data itself. EV_IPL is not among
// them: GRUB logs a path or a NUL-terminated string and extends the digest of the file or of the
// string without its NUL, so every GRUB log would be reported (tpm2_eventlog flags an EV_IPL only
// when systemd-boot logs UTF-16 it did not hash).
bool DigestIsHashOfData(uint32_t type) {
  switch (type) {
    case kEvSeparator:
    case kEvAction:
    case kEvEfiAction:
    case kEvSCrtmVersion:
    case kEvEfiVariableDriverConfig:
    case kEvEfiGptEvent:
      return true;
    default:
      return false;
  }
}

}  // namespace

absl::StatusOr<Replay> ReplayEventLog(const EventLog& log) {
  Replay out;
  PcrBanks current;
  std::set<uint32_t> touched;
  for (uint16_t alg : log.algorithms) {
    if (HashAlgSize(alg) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("event log: bank ", HashAlgName(alg), " is not supported"));
    }
  }
  auto initial = [&](uint16_t alg, uint32_t pcr) {
    std::vector<uint8_t> v(HashAlgSize(alg), 0);
    // A StartupLocality event with locality 3 (or 4, H-CRTM) starts PCR0 at 00..0L.
    if (pcr == 0 && log.startup_locality &&
        (*log.startup_locality == 3 || *log.startup_locality == 4)) {
      v.back() = *log.startup_locality;
    }
    return v;
  };
  for (const UntrustedEvent& e : log.events) {
    if (e.type == kEvNoAction) continue;  // never extended
    if (e.pcr > 31) {
      return absl::InvalidArgumentError(
          absl::StrFormat("event log: event %u extends PCR %u", e.index, e.pcr));
    }
    bool mismatch = false;
    for (uint16_t alg : log.algorithms) {
      auto digest = e.digests.find(alg);
      if (digest == e.digests.end()) {
        return absl::InvalidArgumentError(
            absl::StrFormat("event log: event %u has no %s digest", e.index, HashAlgName(alg)));
      }
      auto& bank = current[alg];
      auto it = bank.find(e.pcr);
      if (it == bank.end()) it = bank.emplace(e.pcr, initial(alg, e.pcr)).first;
      ASSIGN_OR_RETURN(it->second, Extend(alg, it->second, digest->second));
      if (DigestIsHashOfData(e.type)) {
        ASSIGN_OR_RETURN(auto h, Hash(alg, e.data));
        if (h != digest->second) mismatch = true;
      }
    }
    if (mismatch) out.digest_mismatches.push_back(e.index);
    out.events_by_pcr[e.pcr].push_back(e.index);
  }
  out.pcrs = std::move(current);
  return out;
}

namespace {

std::string PcrRanges(const std::set<uint32_t>& pcrs) {
  std::vector<std::string> parts;
  for (auto it = pcrs.begin(); it != pcrs.end();) {
    uint32_t start = *it, end = *it;
    auto next = std::next(it);
    while (next != pcrs.end() && *next == end + 1) end = *next++;
    parts.push_back(start == end ? absl::StrCat(start) : absl::StrCat(start, "-", end));
    it = next;
  }
  return absl::StrJoin(parts, ",");
}

}  // namespace

absl::StatusOr<LogQuoteMatch> CheckLogAgainstQuote(const EventLog& log, const Replay& replay,
                                                   const PcrBanks& quoted, CheckLog& check_log) {
  LogQuoteMatch match;
  size_t compared = 0;
  for (const auto& [alg, bank] : quoted) {
    auto replayed = replay.pcrs.find(alg);
    for (const auto& [pcr, value] : bank) {
      if (replayed == replay.pcrs.end() || !replayed->second.count(pcr)) {
        match.unexplained[alg].insert(pcr);
        continue;
      }
      const auto& expect = replayed->second.at(pcr);
      if (expect != value) {
        std::vector<std::string> events;
        auto touching = replay.events_by_pcr.find(pcr);
        if (touching != replay.events_by_pcr.end()) {
          for (size_t index : touching->second) {
            for (const UntrustedEvent& e : log.events) {
              if (e.index == index)
                events.push_back(absl::StrCat("#", index, " ", EventTypeName(e.type)));
            }
            if (events.size() >= 12) {
              events.push_back("...");
              break;
            }
          }
        }
        return check_log.Fail(
            "tpm.eventlog.replay",
            absl::StrFormat(
                "%s PCR %u: the log replays to %s but the quote has %s; events touching PCR %u: %s",
                HashAlgName(alg), pcr, HexEncode(expect), HexEncode(value), pcr,
                absl::StrJoin(events, ", ")));
      }
      match.explained[alg].insert(pcr);
      ++compared;
    }
  }
  if (compared == 0) {
    return check_log.Fail("tpm.eventlog.replay",
                          "the log explains none of the quoted PCRs (no bank or PCR in common)");
  }
  std::vector<std::string> explained, unexplained;
  for (const auto& [alg, pcrs] : match.explained)
    explained.push_back(absl::StrCat(HashAlgName(alg), " ", PcrRanges(pcrs)));
  for (const auto& [alg, pcrs] : match.unexplained)
    unexplained.push_back(absl::StrCat(HashAlgName(alg), " ", PcrRanges(pcrs)));
  check_log.Pass("tpm.eventlog.replay", absl::StrCat("the log reproduces the quoted PCRs ",
                                                     absl::StrJoin(explained, "; ")));
  if (!unexplained.empty()) {
    check_log.Pass(
        "tpm.eventlog.unexplained",
        absl::StrCat("quoted PCRs the log does not explain (not verified by the log; pin them with "
                     "expected values): ",
                     absl::StrJoin(unexplained, "; ")));
  }
  return match;
}

std::vector<const UntrustedEvent*> VouchedEvents(const EventLog& log, const LogQuoteMatch& match) {
  std::vector<const UntrustedEvent*> out;
  for (const UntrustedEvent& e : log.events) {
    if (e.type == kEvNoAction || match.explained.empty()) continue;
    bool all = true;
    for (const auto& [alg, pcrs] : match.explained) {
      if (!pcrs.count(e.pcr)) all = false;
    }
    for (const auto& [alg, pcrs] : match.unexplained) {
      if (pcrs.count(e.pcr)) all = false;
    }
    if (all) out.push_back(&e);
  }
  return out;
}

absl::Status CheckExpectedPcrs(const PcrBanks& quoted, const PcrBanks& expected, CheckLog& log) {
  size_t n = 0;
  for (const auto& [alg, bank] : expected) {
    auto q = quoted.find(alg);
    for (const auto& [pcr, value] : bank) {
      if (q == quoted.end() || !q->second.count(pcr)) {
        return log.Fail("tpm.pcrs.expected",
                        absl::StrFormat("expected %s PCR %u is not covered by the quote",
                                        HashAlgName(alg), pcr));
      }
      const auto& have = q->second.at(pcr);
      if (have != value) {
        return log.Fail("tpm.pcrs.expected",
                        absl::StrFormat("%s PCR %u is %s but expected %s", HashAlgName(alg), pcr,
                                        HexEncode(have), HexEncode(value)));
      }
      ++n;
    }
  }
  log.Pass("tpm.pcrs.expected",
           absl::StrFormat("%u quoted PCR values equal the expected values", n));
  return absl::OkStatus();
}

}  // namespace attest::tpm
