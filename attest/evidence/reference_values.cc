#include <map>

#include "absl/strings/str_cat.h"
#include "attest/encoding.h"
#include "attest/evidence.h"
#include "attest/status.h"
#include "nlohmann/json.hpp"

namespace attest {
namespace {

using json = nlohmann::json;

absl::Status Bad(absl::string_view where, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("reference values: ", where, ": ", why));
}

absl::Status OnlyKeys(const json& obj, absl::string_view where,
                      std::initializer_list<const char*> allowed) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool known = false;
    for (const char* k : allowed) known = known || it.key() == k;
    if (!known) return Bad(where, absl::StrCat("unknown key '", it.key(), "'"));
  }
  return absl::OkStatus();
}

template <size_t N>
absl::StatusOr<std::vector<std::array<uint8_t, N>>> HexList(const json& obj, const char* key,
                                                            absl::string_view where,
                                                            absl::string_view prefix = "") {
  std::vector<std::array<uint8_t, N>> out;
  auto it = obj.find(key);
  if (it == obj.end()) return out;
  const std::string w = absl::StrCat(where, key);
  if (!it->is_array() || it->size() > 4096) return Bad(w, "a list of at most 4096 values expected");
  for (const auto& v : *it) {
    if (!v.is_string()) return Bad(w, "values are strings");
    std::string s = v.get<std::string>();
    if (!prefix.empty()) {
      if (s.rfind(std::string(prefix), 0) != 0)
        return Bad(w, absl::StrCat("'", s, "' does not start with ", prefix));
      s = s.substr(prefix.size());
    }
    auto bytes = HexDecode(s);
    if (!bytes.ok() || bytes->size() != N) {
      return Bad(w, absl::StrCat("'", v.get<std::string>(), "' is not ", N, " bytes of hex"));
    }
    std::array<uint8_t, N> a{};
    std::copy(bytes->begin(), bytes->end(), a.begin());
    out.push_back(a);
  }
  return out;
}

}  // namespace

absl::StatusOr<ReferenceValues> ParseReferenceValues(std::span<const uint8_t> bytes) {
  if (bytes.size() > kMaxReferenceValuesSize) {
    return Bad("file", absl::StrCat(bytes.size(), " bytes, more than ", kMaxReferenceValuesSize));
  }
  json j = json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Bad("file", "not a JSON object");
  RETURN_IF_ERROR(OnlyKeys(j, "top level",
                           {"version", "snp", "tdx", "container_digests", "launch_config_sha256",
                            "runtime_events", "comment"}));
  ReferenceValues r;
  if (!j.contains("version") || !j["version"].is_number_unsigned() || j["version"] != 1) {
    return Bad("version", "must be 1");
  }
  if (auto snp = j.find("snp"); snp != j.end()) {
    if (!snp->is_object()) return Bad("snp", "an object expected");
    RETURN_IF_ERROR(OnlyKeys(*snp, "snp", {"measurements", "min_tcb", "allow_debug"}));
    ASSIGN_OR_RETURN(r.snp_measurements, HexList<48>(*snp, "measurements", "snp."));
    if (auto d = snp->find("allow_debug"); d != snp->end()) {
      if (!d->is_boolean()) return Bad("snp.allow_debug", "a boolean expected");
      r.allow_debug = d->get<bool>();
    }
    if (auto t = snp->find("min_tcb"); t != snp->end()) {
      if (!t->is_object()) return Bad("snp.min_tcb", "an object expected");
      RETURN_IF_ERROR(OnlyKeys(*t, "snp.min_tcb", {"bl", "tee", "snp", "ucode", "fmc"}));
      snp::TcbVersion tcb;
      std::map<std::string, uint8_t*> fields = {
          {"bl", &tcb.bl}, {"tee", &tcb.tee}, {"snp", &tcb.snp}, {"ucode", &tcb.ucode}};
      for (auto& [k, p] : fields) {
        if (!t->contains(k) || !(*t)[k].is_number_unsigned() || (*t)[k].get<uint64_t>() > 255) {
          return Bad(absl::StrCat("snp.min_tcb.", k), "0-255 expected");
        }
        *p = (*t)[k].get<uint8_t>();
      }
      r.snp_min_tcb = tcb;
    }
  }
  if (auto tdx = j.find("tdx"); tdx != j.end()) {
    if (!tdx->is_object()) return Bad("tdx", "an object expected");
    RETURN_IF_ERROR(OnlyKeys(
        *tdx, "tdx", {"mrtd", "rtmr0", "rtmr1", "rtmr2", "allow_debug", "accepted_tcb_statuses"}));
    ASSIGN_OR_RETURN(r.tdx_mrtd, HexList<48>(*tdx, "mrtd", "tdx."));
    for (int i = 0; i < 3; ++i) {
      const std::string key = "rtmr" + std::to_string(i);
      if (tdx->contains(key)) {
        ASSIGN_OR_RETURN(r.tdx_rtmr[i], HexList<48>(*tdx, key.c_str(), "tdx."));
      }
    }
    if (auto d = tdx->find("allow_debug"); d != tdx->end()) {
      if (!d->is_boolean()) return Bad("tdx.allow_debug", "a boolean expected");
      r.tdx_allow_debug = d->get<bool>();
    }
    if (auto st = tdx->find("accepted_tcb_statuses"); st != tdx->end()) {
      if (!st->is_array() || st->empty())
        return Bad("tdx.accepted_tcb_statuses", "a non-empty list expected");
      r.tdx_accepted_tcb_statuses.clear();
      for (const auto& v : *st) {
        if (!v.is_string()) return Bad("tdx.accepted_tcb_statuses", "strings expected");
        r.tdx_accepted_tcb_statuses.push_back(v.get<std::string>());
      }
    }
  }
  ASSIGN_OR_RETURN(r.container_digests, HexList<32>(j, "container_digests", "", "sha256:"));
  ASSIGN_OR_RETURN(r.launch_config_sha256, HexList<32>(j, "launch_config_sha256", ""));
  if (auto ev = j.find("runtime_events"); ev != j.end()) {
    if (!ev->is_array()) return Bad("runtime_events", "a list of event names expected");
    for (const auto& e : *ev) {
      if (!e.is_string()) return Bad("runtime_events", "names are strings");
      r.runtime_events.insert(e.get<std::string>());
    }
  } else {
    r.runtime_events = {kEventLaunchConfig, kEventContainerManifest, kEventContainerRestart,
                        kEventSupervisorRestart};
  }
  if (r.container_digests.empty()) {
    return Bad("container_digests", "at least one accepted model container digest is required");
  }
  return r;
}

}  // namespace attest
