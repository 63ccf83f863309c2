#include "attest/tdx/collateral.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/status.h"
#include "attest/tdx/verify.h"
#include "attest/verify_options.h"

namespace attest::tdx {
namespace {

// The index just past the JSON value that starts at `start` (an object or a string), found by
// bracket matching that skips string contents and escapes. Returns npos if unbalanced.
size_t ValueEnd(absl::string_view text, size_t start) {
  if (start >= text.size()) return absl::string_view::npos;
  int depth = 0;
  bool in_string = false;
  for (size_t i = start; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
        if (depth == 0) return i + 1;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
      if (depth < 0) return absl::string_view::npos;
    }
  }
  return absl::string_view::npos;
}

// The raw value of a top-level member `"key":` (whitespace allowed before the value).
absl::StatusOr<absl::string_view> TopLevelValue(absl::string_view text, absl::string_view key) {
  std::string needle = absl::StrCat("\"", key, "\"");
  // Walk the top-level object so that a nested member of the same name is never taken.
  size_t i = text.find_first_not_of(" \t\r\n");
  if (i == absl::string_view::npos || text[i] != '{') {
    return absl::InvalidArgumentError("collateral: not a JSON object");
  }
  ++i;
  while (i < text.size()) {
    i = text.find_first_not_of(" \t\r\n,", i);
    if (i == absl::string_view::npos || text[i] == '}') break;
    size_t name_end = ValueEnd(text, i);
    if (name_end == absl::string_view::npos || text[i] != '"') break;
    absl::string_view name = text.substr(i, name_end - i);
    size_t colon = text.find_first_not_of(" \t\r\n", name_end);
    if (colon == absl::string_view::npos || text[colon] != ':') break;
    size_t value = text.find_first_not_of(" \t\r\n", colon + 1);
    size_t end = ValueEnd(text, value);
    if (end == absl::string_view::npos) break;
    if (name == needle) return text.substr(value, end - value);
    i = end;
  }
  return absl::InvalidArgumentError(absl::StrCat("collateral: no top-level '", key, "' member"));
}

absl::StatusOr<absl::Time> TimeMember(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat("collateral: '", key, "' missing"));
  }
  return ParseRfc3339(it->get<std::string>());
}

absl::StatusOr<std::vector<uint8_t>> HexMember(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat("collateral: '", key, "' missing"));
  }
  return HexDecode(it->get<std::string>());
}

absl::StatusOr<uint64_t> UintMember(const nlohmann::json& j, const char* key, uint64_t max) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned() || it->get<uint64_t>() > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("collateral: '", key, "' missing or out of range"));
  }
  return it->get<uint64_t>();
}

std::string StringMember(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

absl::Status Components(const nlohmann::json& j, const char* key, std::array<uint8_t, 16>& out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array() || it->size() != 16) {
    return absl::InvalidArgumentError(absl::StrCat("collateral: '", key, "' is not 16 components"));
  }
  for (size_t i = 0; i < 16; ++i) {
    ASSIGN_OR_RETURN(uint64_t svn, UintMember((*it)[i], "svn", 255));
    out[i] = static_cast<uint8_t>(svn);
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Le64FromHex(const nlohmann::json& j, const char* key) {
  ASSIGN_OR_RETURN(auto bytes, HexMember(j, key));
  if (bytes.size() != 8)
    return absl::InvalidArgumentError(absl::StrCat("collateral: '", key, "' is not 8 bytes"));
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | bytes[static_cast<size_t>(i)];
  return v;
}

absl::StatusOr<std::vector<std::pair<uint32_t, std::string>>> IsvLevels(const nlohmann::json& j) {
  auto it = j.find("tcbLevels");
  if (it == j.end() || !it->is_array())
    return absl::InvalidArgumentError("collateral: 'tcbLevels' missing");
  std::vector<std::pair<uint32_t, std::string>> out;
  for (const auto& level : *it) {
    auto tcb = level.find("tcb");
    if (tcb == level.end() || !tcb->is_object())
      return absl::InvalidArgumentError("collateral: level without tcb");
    ASSIGN_OR_RETURN(uint64_t isvsvn, UintMember(*tcb, "isvsvn", 65535));
    out.emplace_back(static_cast<uint32_t>(isvsvn), StringMember(level, "tcbStatus"));
  }
  return out;
}

// The members every collateral document starts with.
struct Header {
  std::string id;
  int version = 0;
  absl::Time issue_date, next_update;
};

absl::StatusOr<Header> ParseHeader(const nlohmann::json& j, absl::string_view what,
                                   absl::string_view id, int version) {
  Header h;
  h.id = StringMember(j, "id");
  ASSIGN_OR_RETURN(uint64_t v, UintMember(j, "version", 100));
  h.version = static_cast<int>(v);
  if (h.id != id || h.version != version) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: id '%s' version %d (%s, %d expected)",
                                                      what, h.id, h.version, id, version));
  }
  ASSIGN_OR_RETURN(h.issue_date, TimeMember(j, "issueDate"));
  ASSIGN_OR_RETURN(h.next_update, TimeMember(j, "nextUpdate"));
  return h;
}

nlohmann::json ParseObject(absl::string_view raw, absl::Status& status) {
  nlohmann::json j = nlohmann::json::parse(raw.begin(), raw.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    status = absl::InvalidArgumentError("collateral: invalid JSON object");
  return j;
}

}  // namespace

absl::StatusOr<SignedObject> ExtractSignedObject(absl::string_view text, absl::string_view key) {
  if (text.size() > kMaxCollateralSize)
    return absl::InvalidArgumentError("collateral: larger than 1 MiB");
  ASSIGN_OR_RETURN(absl::string_view object, TopLevelValue(text, key));
  if (object.empty() || object.front() != '{') {
    return absl::InvalidArgumentError(absl::StrCat("collateral: '", key, "' is not an object"));
  }
  ASSIGN_OR_RETURN(absl::string_view sig, TopLevelValue(text, "signature"));
  if (sig.size() < 2 || sig.front() != '"')
    return absl::InvalidArgumentError("collateral: 'signature' is not a string");
  SignedObject out;
  out.raw = std::string(object);
  ASSIGN_OR_RETURN(out.signature, HexDecode(sig.substr(1, sig.size() - 2)));
  if (out.signature.size() != 64)
    return absl::InvalidArgumentError("collateral: signature is not 64 bytes (r || s)");
  return out;
}

absl::StatusOr<TcbInfo> ParseTcbInfo(absl::string_view raw) {
  absl::Status status;
  nlohmann::json j = ParseObject(raw, status);
  RETURN_IF_ERROR(status);
  TcbInfo info;
  ASSIGN_OR_RETURN(Header h, ParseHeader(j, "TCB info", "TDX", 3));
  info.id = h.id;
  info.version = h.version;
  info.issue_date = h.issue_date;
  info.next_update = h.next_update;
  ASSIGN_OR_RETURN(info.fmspc, HexMember(j, "fmspc"));
  ASSIGN_OR_RETURN(info.pce_id, HexMember(j, "pceId"));
  if (auto mods = j.find("tdxModuleIdentities"); mods != j.end()) {
    if (!mods->is_array())
      return absl::InvalidArgumentError("TCB info: tdxModuleIdentities is not a list");
    for (const auto& m : *mods) {
      ModuleIdentity id;
      id.id = StringMember(m, "id");
      ASSIGN_OR_RETURN(id.mrsigner, HexMember(m, "mrsigner"));
      ASSIGN_OR_RETURN(id.attributes, Le64FromHex(m, "attributes"));
      ASSIGN_OR_RETURN(id.attributes_mask, Le64FromHex(m, "attributesMask"));
      ASSIGN_OR_RETURN(id.levels, IsvLevels(m));
      info.modules.push_back(std::move(id));
    }
  }
  auto levels = j.find("tcbLevels");
  if (levels == j.end() || !levels->is_array() || levels->empty()) {
    return absl::InvalidArgumentError("TCB info: no tcbLevels");
  }
  for (const auto& l : *levels) {
    auto tcb = l.find("tcb");
    if (tcb == l.end() || !tcb->is_object())
      return absl::InvalidArgumentError("TCB info: level without tcb");
    TcbLevel level;
    RETURN_IF_ERROR(Components(*tcb, "sgxtcbcomponents", level.sgx));
    RETURN_IF_ERROR(Components(*tcb, "tdxtcbcomponents", level.tdx));
    ASSIGN_OR_RETURN(uint64_t pcesvn, UintMember(*tcb, "pcesvn", 65535));
    level.pcesvn = static_cast<uint32_t>(pcesvn);
    level.status = StringMember(l, "tcbStatus");
    if (auto adv = l.find("advisoryIDs"); adv != l.end() && adv->is_array()) {
      for (const auto& a : *adv) {
        if (a.is_string()) level.advisories.push_back(a.get<std::string>());
      }
    }
    info.levels.push_back(std::move(level));
  }
  return info;
}

absl::StatusOr<QeIdentity> ParseQeIdentity(absl::string_view raw) {
  absl::Status status;
  nlohmann::json j = ParseObject(raw, status);
  RETURN_IF_ERROR(status);
  QeIdentity q;
  ASSIGN_OR_RETURN(Header h, ParseHeader(j, "QE identity", "TD_QE", 2));
  q.id = h.id;
  q.version = h.version;
  q.issue_date = h.issue_date;
  q.next_update = h.next_update;
  ASSIGN_OR_RETURN(auto misc, HexMember(j, "miscselect"));
  ASSIGN_OR_RETURN(auto misc_mask, HexMember(j, "miscselectMask"));
  if (misc.size() != 4 || misc_mask.size() != 4)
    return absl::InvalidArgumentError("QE identity: miscselect is not 4 bytes");
  // Hex strings are written big-endian; the QE report holds MISCSELECT little-endian as a number.
  for (uint8_t b : misc) q.miscselect = q.miscselect << 8 | b;
  for (uint8_t b : misc_mask) q.miscselect_mask = q.miscselect_mask << 8 | b;
  ASSIGN_OR_RETURN(q.attributes, HexMember(j, "attributes"));
  ASSIGN_OR_RETURN(q.attributes_mask, HexMember(j, "attributesMask"));
  ASSIGN_OR_RETURN(q.mrsigner, HexMember(j, "mrsigner"));
  if (q.attributes.size() != 16 || q.attributes_mask.size() != 16 || q.mrsigner.size() != 32) {
    return absl::InvalidArgumentError(
        "QE identity: attributes (16), attributesMask (16) or mrsigner (32) malformed");
  }
  ASSIGN_OR_RETURN(uint64_t prod, UintMember(j, "isvprodid", 65535));
  q.isv_prod_id = static_cast<uint16_t>(prod);
  ASSIGN_OR_RETURN(q.levels, IsvLevels(j));
  return q;
}

TcbResult EvaluateTcb(const TcbInfo& info, const std::array<uint8_t, 16>& pck_tcb, uint32_t pcesvn,
                      const std::array<uint8_t, 16>& tee_tcb_svn) {
  TcbResult out;
  // TDX module 1.5+: TEE_TCB_SVN[1] names the module version, whose identity carries its own
  // levels; the TCB levels then compare TEE_TCB_SVN from index 2.
  size_t first_tdx = 0;
  if (tee_tcb_svn[1] > 0 && !info.modules.empty()) {
    first_tdx = 2;
    std::string id = absl::StrFormat("TDX_%02X", tee_tcb_svn[1]);
    out.module_id = id;
    out.module_status = "NoMatch";
    for (const ModuleIdentity& m : info.modules) {
      if (m.id != id) continue;
      for (const auto& [isvsvn, status] : m.levels) {
        if (tee_tcb_svn[0] >= isvsvn) {
          out.module_status = status;
          break;
        }
      }
    }
  }
  for (const TcbLevel& level : info.levels) {
    bool ok = pcesvn >= level.pcesvn;
    for (size_t i = 0; i < 16 && ok; ++i) ok = pck_tcb[i] >= level.sgx[i];
    for (size_t i = first_tdx; i < 16 && ok; ++i) ok = tee_tcb_svn[i] >= level.tdx[i];
    if (ok) {
      out.status = level.status;
      out.advisories = level.advisories;
      break;
    }
  }
  return out;
}

absl::StatusOr<std::string> EvaluateQeIdentity(const QeIdentity& id, const QeReport& qe,
                                               CheckLog& log) {
  bool mrsigner =
      std::equal(id.mrsigner.begin(), id.mrsigner.end(), qe.mrsigner.begin(), qe.mrsigner.end());
  bool prod = id.isv_prod_id == qe.isv_prod_id;
  bool misc = (qe.miscselect & id.miscselect_mask) == (id.miscselect & id.miscselect_mask);
  bool attrs = true;
  for (size_t i = 0; i < 16; ++i)
    attrs = attrs && (qe.attributes[i] & id.attributes_mask[i]) ==
                         (id.attributes[i] & id.attributes_mask[i]);
  RETURN_IF_ERROR(log.Expect(
      mrsigner && prod && misc && attrs, "tdx.qe.identity",
      absl::StrFormat("QE MRSIGNER %s, ISVPRODID %u, MISCSELECT and ATTRIBUTES under mask: %s",
                      mrsigner ? "matches" : absl::StrCat(HexEncode(qe.mrsigner), " differs"),
                      qe.isv_prod_id, prod && misc && attrs ? "match" : "DIFFER")));
  for (const auto& [isvsvn, status] : id.levels) {
    if (qe.isv_svn >= isvsvn) return status;
  }
  return std::string("NoMatch");
}

absl::StatusOr<Collateral> LoadCollateralDir(const std::string& dir_name,
                                             const std::string& chain_pem) {
  const std::filesystem::path dir = dir_name;
  Collateral c;
  ASSIGN_OR_RETURN(auto tcb, ReadFileBounded(dir / "tcb_info.json", kMaxCollateralSize));
  c.tcb_info_json.assign(tcb.begin(), tcb.end());
  if (std::filesystem::exists(dir / "qe_identity.json")) {
    ASSIGN_OR_RETURN(auto qe, ReadFileBounded(dir / "qe_identity.json", kMaxCollateralSize));
    c.qe_identity_json = std::string(qe.begin(), qe.end());
  }
  std::filesystem::path chain =
      chain_pem.empty() ? dir / "tcb_info_issuer_chain.pem" : std::filesystem::path(chain_pem);
  if (!std::filesystem::exists(chain)) {
    return absl::InvalidArgumentError(
        "collateral: no tcb_info_issuer_chain.pem in the directory; give --tcb-signing-chain");
  }
  ASSIGN_OR_RETURN(auto chain_bytes, ReadFileBounded(chain, kMaxCertificateFileSize));
  ASSIGN_OR_RETURN(c.tcb_signing_chain_der, ParseCertificates(chain_bytes, chain.string()));
  return c;
}

}  // namespace attest::tdx
