#include <filesystem>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "attest/encoding.h"
#include "attest/evidence.h"
#include "attest/files.h"
#include "attest/status.h"
#include "attest/tdx/collateral.h"
#include "attest/tpm/hash_alg.h"
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

template <size_t N>
absl::StatusOr<std::array<uint8_t, N>> HexOne(const json& v, const std::string& where) {
  auto bytes = v.is_string() ? HexDecode(v.get<std::string>())
                             : absl::StatusOr<std::vector<uint8_t>>(absl::InvalidArgumentError(""));
  if (!bytes.ok() || bytes->size() != N)
    return Bad(where, absl::StrCat(N, " bytes of hex expected"));
  std::array<uint8_t, N> a{};
  std::copy(bytes->begin(), bytes->end(), a.begin());
  return a;
}

// A digest of the bank's size.
absl::StatusOr<std::vector<uint8_t>> Digest(const json& v, uint16_t alg, const std::string& where) {
  auto bytes = v.is_string() ? HexDecode(v.get<std::string>())
                             : absl::StatusOr<std::vector<uint8_t>>(absl::InvalidArgumentError(""));
  if (!bytes.ok() || bytes->size() != tpm::HashAlgSize(alg)) {
    return Bad(where, absl::StrCat("a ", tpm::HashAlgName(alg), " digest in hex expected"));
  }
  return *std::move(bytes);
}

absl::StatusOr<uint32_t> PcrIndex(const std::string& key, const std::string& where) {
  uint32_t pcr = 0;
  if (!absl::SimpleAtoi(key, &pcr) || pcr > 23) return Bad(where, "PCR index 0-23 expected");
  return pcr;
}

absl::Status ParseTpm(const json& t, ReferenceValues& r) {
  if (!t.is_object()) return Bad("tpm", "an object expected");
  RETURN_IF_ERROR(OnlyKeys(t, "tpm", {"pcrs", "boot_events", "pcr11_phases"}));
  if (auto pcrs = t.find("pcrs"); pcrs != t.end()) {
    if (!pcrs->is_object() || pcrs->size() > 8)
      return Bad("tpm.pcrs", "an object of banks expected");
    for (auto bank = pcrs->begin(); bank != pcrs->end(); ++bank) {
      const std::string w = absl::StrCat("tpm.pcrs.", bank.key());
      auto alg = tpm::HashAlgFromName(bank.key());
      if (!alg.ok() || tpm::HashAlgSize(*alg) == 0) return Bad(w, "unknown hash algorithm");
      if (!bank->is_object() || bank->empty()) return Bad(w, "an object of PCRs expected");
      for (auto pcr = bank->begin(); pcr != bank->end(); ++pcr) {
        const std::string wp = absl::StrCat(w, ".", pcr.key());
        ASSIGN_OR_RETURN(uint32_t index, PcrIndex(pcr.key(), wp));
        if (!pcr->is_array() || pcr->empty() || pcr->size() > 64)
          return Bad(wp, "a list of 1 to 64 values expected");
        auto& accepted = r.tpm_pcrs[*alg][index];
        for (const auto& v : *pcr) {
          ASSIGN_OR_RETURN(auto d, Digest(v, *alg, wp));
          accepted.push_back(std::move(d));
        }
      }
    }
  }
  if (auto phases = t.find("pcr11_phases"); phases != t.end()) {
    if (!phases->is_array() || phases->size() > 16)
      return Bad("tpm.pcr11_phases", "a list expected");
    r.tpm_pcr11_phases.clear();
    for (const auto& p : *phases) {
      if (!p.is_string() || p.get<std::string>().empty() || p.get<std::string>().size() > 64)
        return Bad("tpm.pcr11_phases", "phase words (1-64 characters) expected");
      r.tpm_pcr11_phases.push_back(p.get<std::string>());
    }
  }
  if (auto events = t.find("boot_events"); events != t.end()) {
    if (!events->is_array() || events->size() > 1024)
      return Bad("tpm.boot_events", "a list of at most 1024 events expected");
    for (size_t i = 0; i < events->size(); ++i) {
      const json& e = (*events)[i];
      const std::string w = absl::StrCat("tpm.boot_events[", i, "]");
      if (!e.is_object()) return Bad(w, "an object expected");
      RETURN_IF_ERROR(OnlyKeys(e, w, {"pcr", "type", "what", "digests"}));
      boot::ExpectedEvent ev;
      if (!e.contains("pcr") || !e["pcr"].is_number_unsigned() || e["pcr"].get<uint64_t>() > 23)
        return Bad(w + ".pcr", "PCR index 0-23 expected");
      ev.pcr = e["pcr"].get<uint32_t>();
      if (!e.contains("type") || !e["type"].is_string()) return Bad(w + ".type", "a name expected");
      auto type = boot::ExpectedEventTypeFromName(e["type"].get<std::string>());
      if (!type.ok()) return Bad(w + ".type", type.status().message());
      ev.type = *type;
      if (auto what = e.find("what"); what != e.end()) {
        if (!what->is_string() || what->get<std::string>().size() > 256)
          return Bad(w + ".what", "a description of at most 256 characters expected");
        ev.what = what->get<std::string>();
      }
      if (!e.contains("digests") || !e["digests"].is_object() || e["digests"].empty() ||
          e["digests"].size() > 8)
        return Bad(w + ".digests", "an object of bank digests expected");
      for (auto d = e["digests"].begin(); d != e["digests"].end(); ++d) {
        auto alg = tpm::HashAlgFromName(d.key());
        if (!alg.ok() || tpm::HashAlgSize(*alg) == 0)
          return Bad(w + ".digests", absl::StrCat("unknown hash algorithm '", d.key(), "'"));
        ASSIGN_OR_RETURN(ev.digests[*alg], Digest(*d, *alg, absl::StrCat(w, ".digests.", d.key())));
      }
      r.tpm_boot_events.push_back(std::move(ev));
    }
  }
  return absl::OkStatus();
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
                            "runtime_events", "image", "tpm", "comment"}));
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
    r.runtime_events = {kEventLaunchConfig,      kEventContainerManifest, kEventContainerRestart,
                        kEventSupervisorRestart, kEventRelease,           kEventClientRevocations};
  }
  if (auto img = j.find("image"); img != j.end()) {
    if (!img->is_object()) return Bad("image", "an object expected");
    RETURN_IF_ERROR(OnlyKeys(*img, "image", {"disk_sha256", "uki_sha256", "verity_root_hash"}));
    for (auto [key, field] : {std::pair{"disk_sha256", &r.image_disk_sha256},
                              std::pair{"uki_sha256", &r.image_uki_sha256},
                              std::pair{"verity_root_hash", &r.image_verity_root}}) {
      if (!img->contains(key)) continue;
      ASSIGN_OR_RETURN(auto one, HexOne<32>((*img)[key], absl::StrCat("image.", key)));
      *field = one;
    }
  }
  if (auto t = j.find("tpm"); t != j.end()) {
    RETURN_IF_ERROR(ParseTpm(*t, r));
  }
  if (r.container_digests.empty()) {
    return Bad("container_digests", "at least one accepted model container digest is required");
  }
  return r;
}

absl::StatusOr<RootsDir> LoadRootsDir(const std::string& dir) {
  RootsDir out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() != ".pem") continue;
    ASSIGN_OR_RETURN(auto bytes, ReadFileBounded(entry.path(), 1 << 20));
    ASSIGN_OR_RETURN(auto certs, ParseCertificates(bytes, entry.path().string()));
    auto& list = entry.path().filename().string().rfind("tdx_", 0) == 0 ? out.tdx : out.snp;
    for (auto& c : certs) list.push_back(std::move(c));
  }
  if (ec) return absl::InvalidArgumentError(absl::StrCat("--roots ", dir, ": ", ec.message()));
  const auto collateral = std::filesystem::path(dir) / "tdx-collateral";
  if (std::filesystem::is_directory(collateral, ec)) {
    ASSIGN_OR_RETURN(out.tdx_collateral, tdx::LoadCollateralDir(collateral.string(), ""));
  }
  return out;
}

}  // namespace attest
