#include "attest/tuf/client_revocations.h"

#include <openssl/pem.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "attest/encoding.h"
#include "attest/status.h"
#include "common/openssl_util.h"
#include "nlohmann/json.hpp"

namespace attest::tuf {

using json = nlohmann::json;

bool ClientRevocations::Revoked(const std::string& spki_hex, std::string* reason) const {
  auto it = revoked.find(absl::AsciiStrToLower(spki_hex));
  if (it == revoked.end()) return false;
  if (reason != nullptr) *reason = it->second;
  return true;
}

absl::StatusOr<ClientRevocations> ParseClientRevocations(std::span<const uint8_t> bytes) {
  auto bad = [](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("client revocations: ", what));
  };
  if (bytes.size() > kMaxClientRevocationsFile) {
    return bad(absl::StrCat(bytes.size(), " bytes, at most ", kMaxClientRevocationsFile));
  }
  const json j = json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (!j.is_object()) return bad("a JSON object expected");
  for (const auto& [key, value] : j.items()) {
    if (key != "_type" && key != "revoked") return bad(absl::StrCat("unknown key '", key, "'"));
  }
  auto type = j.find("_type");
  if (type == j.end() || !type->is_string() || *type != kClientRevocationsKind) {
    return bad("_type must be \"client-revocations\"");
  }
  auto list = j.find("revoked");
  if (list == j.end() || !list->is_array()) return bad("revoked must be a list");
  if (list->size() > kMaxClientRevocations) {
    return bad(absl::StrCat(list->size(), " entries, at most ", kMaxClientRevocations));
  }
  ClientRevocations out;
  for (size_t i = 0; i < list->size(); ++i) {
    const json& e = (*list)[i];
    const std::string at = absl::StrCat("revoked[", i, "]");
    if (!e.is_object()) return bad(absl::StrCat(at, ": an object expected"));
    for (const auto& [key, value] : e.items()) {
      if (key != "spki_sha256" && key != "reason") {
        return bad(absl::StrCat(at, ": unknown key '", key, "'"));
      }
    }
    auto spki = e.find("spki_sha256");
    if (spki == e.end() || !spki->is_string() || spki->get_ref<const std::string&>().size() != 64 ||
        !HexDecode(spki->get<std::string>()).ok()) {
      return bad(absl::StrCat(at, ".spki_sha256: 64 hex digits expected"));
    }
    std::string reason;
    if (auto r = e.find("reason"); r != e.end()) {
      if (!r->is_string() || r->get_ref<const std::string&>().size() > kMaxRevocationReason) {
        return bad(absl::StrCat(at, ".reason: text of at most ", kMaxRevocationReason, " bytes"));
      }
      reason = r->get<std::string>();
    }
    if (!out.revoked.emplace(absl::AsciiStrToLower(spki->get<std::string>()), reason).second) {
      return bad(absl::StrCat(at, ": ", spki->get<std::string>(), " is listed twice"));
    }
  }
  return out;
}

absl::StatusOr<std::string> SpkiSha256OfPemCertificate(std::string_view pem) {
  ossl::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  ossl::X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return absl::InvalidArgumentError("not a PEM certificate: " + ossl::LastError());
  ASSIGN_OR_RETURN(auto spki, ossl::SpkiDer(cert.get()));
  return HexEncode(ossl::Sha256(spki));
}

std::string SerializeClientRevocations(const ClientRevocations& r) {
  json list = json::array();
  for (const auto& [spki, reason] : r.revoked) {
    list.push_back({{"reason", reason}, {"spki_sha256", spki}});
  }
  return json{{"_type", kClientRevocationsKind}, {"revoked", list}}.dump() + "\n";
}

}  // namespace attest::tuf
