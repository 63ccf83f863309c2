#include "attest/tpm/cel.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "attest/byte_reader.h"
#include "attest/encoding.h"
#include "attest/status.h"

namespace attest::tpm {
namespace {

constexpr uint8_t kTlvRecnum = 0;
constexpr uint8_t kTlvPcr = 1;
constexpr uint8_t kTlvNvIndex = 2;
constexpr uint8_t kTlvDigests = 3;
// Nested fields of the appliance content.
constexpr uint8_t kApplianceEvent = 0;
constexpr uint8_t kApplianceData = 1;

std::string ContentTypeName(uint8_t type) {
  switch (type) {
    case kCelContentMgt:
      return "cel";
    case kCelContentPcClientStd:
      return "pcclient_std";
    case kCelContentImaTemplate:
      return "ima_template";
    case kCelContentImaTlv:
      return "ima_tlv";
    case kCelContentAppliance:
      return "appliance";
    default:
      return absl::StrCat(type);
  }
}

absl::StatusOr<uint8_t> ContentTypeFromName(const std::string& name) {
  for (uint8_t t : {kCelContentMgt, kCelContentPcClientStd, kCelContentImaTemplate,
                    kCelContentImaTlv, kCelContentAppliance}) {
    if (ContentTypeName(t) == name) return t;
  }
  return absl::InvalidArgumentError(absl::StrCat("CEL: unknown content_type '", name, "'"));
}

struct Tlv {
  uint8_t type;
  std::span<const uint8_t> value;
};

absl::StatusOr<Tlv> ReadTlv(ByteReader& r) {
  ASSIGN_OR_RETURN(uint8_t type, r.ReadU8());
  ASSIGN_OR_RETURN(uint32_t length, r.ReadU32Be());
  ASSIGN_OR_RETURN(auto value, r.ReadBytes(length));
  return Tlv{type, value};
}

absl::StatusOr<uint64_t> TlvInteger(const Tlv& t, absl::string_view what) {
  if (t.value.empty() || t.value.size() > 8) {
    return absl::InvalidArgumentError(
        absl::StrFormat("CEL-TLV: %s is %u bytes (1-8)", what, t.value.size()));
  }
  uint64_t v = 0;
  for (uint8_t b : t.value) v = v << 8 | b;
  return v;
}

void PutTlv(std::vector<uint8_t>& out, uint8_t type, std::span<const uint8_t> value) {
  out.push_back(type);
  uint32_t n = static_cast<uint32_t>(value.size());
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<uint8_t>(n >> (8 * i)));
  out.insert(out.end(), value.begin(), value.end());
}

// The appliance content as TLVs (event name, then data): what the record's digests cover, so
// that neither the name nor the data can change without the digest changing.
std::vector<uint8_t> ApplianceContent(const CelRecord& rec) {
  std::vector<uint8_t> content;
  PutTlv(content, kApplianceEvent,
         std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(rec.event.data()),
                                  rec.event.size()));
  PutTlv(content, kApplianceData, rec.data);
  return content;
}

// Appliance event names are identifiers: [A-Za-z0-9._:-], 1-128 bytes (so logs print and
// serialize safely everywhere).
absl::Status CheckEventName(absl::string_view name) {
  bool ok = !name.empty() && name.size() <= 128;
  for (char c : name) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == ':' || c == '-');
  }
  return ok ? absl::OkStatus()
            : absl::InvalidArgumentError(
                  "CEL: an event name is 1-128 characters of [A-Za-z0-9._:-]");
}

bool KnownContentType(uint8_t t) {
  return t == kCelContentMgt || t == kCelContentPcClientStd || t == kCelContentImaTemplate ||
         t == kCelContentImaTlv || t == kCelContentAppliance;
}

std::vector<uint8_t> BigEndian(uint64_t v, size_t bytes) {
  std::vector<uint8_t> out(bytes);
  for (size_t i = 0; i < bytes; ++i) out[bytes - 1 - i] = static_cast<uint8_t>(v >> (8 * i));
  return out;
}

absl::Status CheckDigestSize(uint16_t alg, size_t size) {
  size_t want = HashAlgSize(alg);
  if (want == 0)
    return absl::InvalidArgumentError(
        absl::StrCat("CEL: digest algorithm ", HashAlgName(alg), " is not supported"));
  if (size != want) {
    return absl::InvalidArgumentError(
        absl::StrFormat("CEL: %s digest of %u bytes (expected %u)", HashAlgName(alg), size, want));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Cel> ParseCelTlv(std::span<const uint8_t> bytes) {
  if (bytes.size() > kMaxCelSize) return absl::InvalidArgumentError("CEL: larger than 4 MiB");
  ByteReader r(bytes, "CEL-TLV");
  Cel cel;
  while (r.remaining() > 0) {
    if (cel.size() >= kMaxCelRecords) return absl::InvalidArgumentError("CEL: too many records");
    CelRecord rec;
    ASSIGN_OR_RETURN(Tlv recnum, ReadTlv(r));
    if (recnum.type != kTlvRecnum)
      return absl::InvalidArgumentError("CEL-TLV: a record must start with recnum");
    ASSIGN_OR_RETURN(rec.recnum, TlvInteger(recnum, "recnum"));
    ASSIGN_OR_RETURN(Tlv index, ReadTlv(r));
    if (index.type != kTlvPcr && index.type != kTlvNvIndex) {
      return absl::InvalidArgumentError("CEL-TLV: recnum must be followed by pcr or nv_index");
    }
    rec.nv_index = index.type == kTlvNvIndex;
    ASSIGN_OR_RETURN(uint64_t idx, TlvInteger(index, "index"));
    if (idx > 0xffffffffu || (!rec.nv_index && idx > 31)) {
      return absl::InvalidArgumentError(absl::StrFormat("CEL-TLV: index %u is out of range", idx));
    }
    rec.index = static_cast<uint32_t>(idx);
    ASSIGN_OR_RETURN(Tlv digests, ReadTlv(r));
    if (digests.type != kTlvDigests) return absl::InvalidArgumentError("CEL-TLV: expected digests");
    ByteReader dr(digests.value, "CEL-TLV digests");
    while (dr.remaining() > 0) {
      ASSIGN_OR_RETURN(Tlv d, ReadTlv(dr));
      RETURN_IF_ERROR(CheckDigestSize(d.type, d.value.size()));
      if (!rec.digests.emplace(d.type, std::vector<uint8_t>(d.value.begin(), d.value.end()))
               .second) {
        return absl::InvalidArgumentError("CEL-TLV: repeated digest algorithm");
      }
    }
    if (rec.digests.empty()) return absl::InvalidArgumentError("CEL-TLV: record without digests");
    ASSIGN_OR_RETURN(Tlv content, ReadTlv(r));
    if (!KnownContentType(content.type)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("CEL-TLV: unknown content type %u", content.type));
    }
    rec.content_type = content.type;
    if (content.type == kCelContentAppliance) {
      ByteReader cr(content.value, "CEL-TLV appliance content");
      bool have_event = false, have_data = false;
      while (cr.remaining() > 0) {
        ASSIGN_OR_RETURN(Tlv f, ReadTlv(cr));
        if (f.type == kApplianceEvent && !have_event) {
          rec.event.assign(f.value.begin(), f.value.end());
          have_event = true;
        } else if (f.type == kApplianceData && !have_data) {
          rec.data.assign(f.value.begin(), f.value.end());
          have_data = true;
        } else {
          return absl::InvalidArgumentError("CEL-TLV: unexpected field in appliance content");
        }
      }
      if (!have_event)
        return absl::InvalidArgumentError("CEL-TLV: appliance content without an event name");
      RETURN_IF_ERROR(CheckEventName(rec.event));
    } else {
      rec.raw_content.assign(content.value.begin(), content.value.end());
    }
    cel.push_back(std::move(rec));
  }
  return cel;
}

std::vector<uint8_t> SerializeCelTlv(const Cel& cel) {
  std::vector<uint8_t> out;
  for (const CelRecord& rec : cel) {
    PutTlv(out, kTlvRecnum, BigEndian(rec.recnum, 8));
    PutTlv(out, rec.nv_index ? kTlvNvIndex : kTlvPcr, BigEndian(rec.index, 4));
    std::vector<uint8_t> digests;
    for (const auto& [alg, d] : rec.digests) PutTlv(digests, static_cast<uint8_t>(alg), d);
    PutTlv(out, kTlvDigests, digests);
    if (rec.content_type == kCelContentAppliance) {
      std::vector<uint8_t> content;
      PutTlv(content, kApplianceEvent,
             std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(rec.event.data()),
                                      rec.event.size()));
      PutTlv(content, kApplianceData, rec.data);
      PutTlv(out, kCelContentAppliance, content);
    } else {
      PutTlv(out, rec.content_type, rec.raw_content);
    }
  }
  return out;
}

namespace {

absl::StatusOr<CelRecord> RecordFromJson(const nlohmann::json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("CEL-JSON: a record must be an object");
  CelRecord rec;
  auto uint_field = [&](const char* name, uint64_t max) -> absl::StatusOr<uint64_t> {
    const auto& v = j.at(name);
    if (!v.is_number_unsigned() || v.get<uint64_t>() > max) {
      return absl::InvalidArgumentError(
          absl::StrCat("CEL-JSON: '", name, "' must be an integer 0-", max));
    }
    return v.get<uint64_t>();
  };
  if (!j.contains("recnum")) return absl::InvalidArgumentError("CEL-JSON: record without recnum");
  ASSIGN_OR_RETURN(rec.recnum, uint_field("recnum", UINT64_MAX));
  if (j.contains("pcr") == j.contains("nv_index")) {
    return absl::InvalidArgumentError("CEL-JSON: a record has exactly one of 'pcr' and 'nv_index'");
  }
  rec.nv_index = j.contains("nv_index");
  ASSIGN_OR_RETURN(uint64_t index,
                   rec.nv_index ? uint_field("nv_index", 0xffffffffu) : uint_field("pcr", 31));
  rec.index = static_cast<uint32_t>(index);
  if (!j.contains("digests") || !j["digests"].is_array() || j["digests"].empty()) {
    return absl::InvalidArgumentError("CEL-JSON: record without digests");
  }
  for (const auto& d : j["digests"]) {
    if (!d.is_object() || !d.contains("hashAlg") || !d.contains("digest") ||
        !d["hashAlg"].is_string() || !d["digest"].is_string()) {
      return absl::InvalidArgumentError(
          "CEL-JSON: a digest is {\"hashAlg\": name, \"digest\": hex}");
    }
    ASSIGN_OR_RETURN(uint16_t alg, HashAlgFromName(d["hashAlg"].get<std::string>()));
    ASSIGN_OR_RETURN(auto digest, HexDecode(d["digest"].get<std::string>()));
    RETURN_IF_ERROR(CheckDigestSize(alg, digest.size()));
    if (!rec.digests.emplace(alg, std::move(digest)).second) {
      return absl::InvalidArgumentError("CEL-JSON: repeated digest algorithm");
    }
  }
  if (!j.contains("content_type") || !j["content_type"].is_string()) {
    return absl::InvalidArgumentError("CEL-JSON: record without content_type");
  }
  ASSIGN_OR_RETURN(rec.content_type, ContentTypeFromName(j["content_type"].get<std::string>()));
  const nlohmann::json content = j.value("content", nlohmann::json());
  if (rec.content_type == kCelContentAppliance) {
    if (!content.is_object() || !content.contains("event") || !content["event"].is_string() ||
        (content.contains("data") && !content["data"].is_string())) {
      return absl::InvalidArgumentError(
          "CEL-JSON: appliance content is {\"event\": name, \"data\": hex}");
    }
    rec.event = content["event"].get<std::string>();
    RETURN_IF_ERROR(CheckEventName(rec.event));
    if (content.contains("data")) {
      ASSIGN_OR_RETURN(rec.data, HexDecode(content["data"].get<std::string>()));
    }
  } else {
    std::string text = content.dump();
    rec.raw_content.assign(text.begin(), text.end());
  }
  return rec;
}

}  // namespace

absl::StatusOr<Cel> ParseCelJson(absl::string_view text) {
  if (text.size() > kMaxCelSize) return absl::InvalidArgumentError("CEL: larger than 4 MiB");
  Cel cel;
  size_t start = text.find_first_not_of(" \t\r\n");
  if (start != absl::string_view::npos && text[start] == '[') {
    nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded() || !j.is_array())
      return absl::InvalidArgumentError("CEL-JSON: not a JSON array");
    if (j.size() > kMaxCelRecords) return absl::InvalidArgumentError("CEL: too many records");
    for (const auto& r : j) {
      ASSIGN_OR_RETURN(CelRecord rec, RecordFromJson(r));
      cel.push_back(std::move(rec));
    }
    return cel;
  }
  // One record per line, optionally introduced by RS (0x1E), as systemd writes its log.
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == absl::string_view::npos) end = text.size();
    absl::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    size_t first = line.find_first_not_of(" \t\r\x1e");
    if (first == absl::string_view::npos) continue;
    line = line.substr(first);
    if (cel.size() >= kMaxCelRecords) return absl::InvalidArgumentError("CEL: too many records");
    nlohmann::json j = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
    if (j.is_discarded()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("CEL-JSON: record %u is not valid JSON", cel.size()));
    }
    ASSIGN_OR_RETURN(CelRecord rec, RecordFromJson(j));
    cel.push_back(std::move(rec));
  }
  if (cel.empty()) return absl::InvalidArgumentError("CEL-JSON: no records");
  return cel;
}

absl::StatusOr<Cel> ParseCel(std::span<const uint8_t> bytes) {
  size_t i = 0;
  while (i < bytes.size() &&
         (bytes[i] == ' ' || bytes[i] == '\n' || bytes[i] == '\r' || bytes[i] == '\t'))
    ++i;
  if (i < bytes.size() && (bytes[i] == '[' || bytes[i] == '{' || bytes[i] == 0x1e)) {
    return ParseCelJson(
        absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  }
  return ParseCelTlv(bytes);
}

std::string SerializeCelJson(const Cel& cel) {
  nlohmann::json out = nlohmann::json::array();
  for (const CelRecord& rec : cel) {
    nlohmann::json j;
    j["recnum"] = rec.recnum;
    j[rec.nv_index ? "nv_index" : "pcr"] = rec.index;
    nlohmann::json digests = nlohmann::json::array();
    for (const auto& [alg, d] : rec.digests)
      digests.push_back({{"hashAlg", HashAlgName(alg)}, {"digest", HexEncode(d)}});
    j["digests"] = digests;
    j["content_type"] = ContentTypeName(rec.content_type);
    if (rec.content_type == kCelContentAppliance) {
      j["content"] = {{"event", rec.event}, {"data", HexEncode(rec.data)}};
    } else {
      nlohmann::json content =
          nlohmann::json::parse(rec.raw_content.begin(), rec.raw_content.end(), nullptr, false);
      j["content"] = content.is_discarded() ? nlohmann::json(HexEncode(rec.raw_content)) : content;
    }
    out.push_back(std::move(j));
  }
  // Replace invalid UTF-8 rather than throw: raw content from other producers is not ours to trust.
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<CelRecord> MakeApplianceRecord(uint64_t recnum, uint32_t pcr,
                                              absl::string_view event,
                                              std::span<const uint8_t> data,
                                              const std::vector<uint16_t>& algs) {
  RETURN_IF_ERROR(CheckEventName(event));
  CelRecord rec;
  rec.recnum = recnum;
  rec.index = pcr;
  rec.content_type = kCelContentAppliance;
  rec.event = std::string(event);
  rec.data.assign(data.begin(), data.end());
  std::vector<uint8_t> content = ApplianceContent(rec);
  for (uint16_t alg : algs) {
    ASSIGN_OR_RETURN(rec.digests[alg], Hash(alg, content));
  }
  return rec;
}

absl::Status CheckCelRecords(const Cel& cel, CheckLog& log) {
  for (size_t i = 0; i < cel.size(); ++i) {
    const CelRecord& rec = cel[i];
    if (i > 0 && rec.recnum != cel[i - 1].recnum + 1) {
      return log.Fail(
          "cel.records",
          absl::StrFormat("record %u has recnum %u after %u: records are missing or reordered", i,
                          rec.recnum, cel[i - 1].recnum));
    }
    if (rec.content_type != kCelContentAppliance) continue;
    std::vector<uint8_t> content = ApplianceContent(rec);
    for (const auto& [alg, digest] : rec.digests) {
      ASSIGN_OR_RETURN(auto h, Hash(alg, content));
      if (h != digest) {
        return log.Fail("cel.records",
                        absl::StrFormat("record %u (%s): %s digest is not the hash of its content",
                                        rec.recnum, rec.event, HashAlgName(alg)));
      }
    }
  }
  log.Pass(
      "cel.records",
      absl::StrFormat("%u records, numbered in sequence; appliance digests match their content",
                      cel.size()));
  return absl::OkStatus();
}

absl::StatusOr<PcrBanks> ReplayCel(const Cel& cel) {
  PcrBanks out;
  for (const CelRecord& rec : cel) {
    if (rec.nv_index) continue;
    for (const auto& [alg, digest] : rec.digests) {
      auto& value = out[alg][rec.index];
      if (value.empty()) value.assign(HashAlgSize(alg), 0);
      ASSIGN_OR_RETURN(value, Extend(alg, value, digest));
    }
  }
  return out;
}

absl::StatusOr<std::vector<uint8_t>> ReplayCelToRtmr(const Cel& cel, uint32_t pcr) {
  std::vector<uint8_t> rtmr(48, 0);
  for (const CelRecord& rec : cel) {
    if (rec.nv_index || rec.index != pcr) continue;
    auto digest = rec.digests.find(kAlgSha384);
    if (digest == rec.digests.end()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("CEL: record %u has no sha384 digest for the RTMR", rec.recnum));
    }
    ASSIGN_OR_RETURN(rtmr, Extend(kAlgSha384, rtmr, digest->second));
  }
  return rtmr;
}

}  // namespace attest::tpm
