#include <openssl/evp.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "appliance/v1/evidence.pb.h"
#include "attest/azure/azure.h"
#include "attest/binding.h"
#include "attest/encoding.h"
#include "attest/evidence.h"
#include "attest/snp/trust_roots.h"
#include "attest/snp/verify.h"
#include "attest/status.h"
#include "attest/tpm/ak.h"
#include "attest/tpm/cel.h"
#include "attest/tpm/eventlog.h"
#include "attest/tpm/quote.h"
#include "common/openssl_util.h"

namespace attest {
namespace {

constexpr uint32_t kRuntimePcr = 15;

std::vector<uint8_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }

template <size_t N>
bool InList(const std::vector<std::array<uint8_t, N>>& list, std::span<const uint8_t> v) {
  if (v.size() != N) return false;
  for (const auto& a : list) {
    if (std::equal(a.begin(), a.end(), v.begin())) return true;
  }
  return false;
}

// One SNP verifier per set of trust anchors for the whole process: building one checks every
// root's signature, and its chain cache (certificates → verified path, within their validity)
// makes repeated connections to the same appliance skip the RSA chain work.
absl::StatusOr<std::shared_ptr<const snp::Verifier>> SnpVerifierFor(const EvidenceExpectations& e) {
  static std::mutex mu;
  static std::map<std::vector<std::vector<uint8_t>>, std::shared_ptr<const snp::Verifier>>* cache =
      new std::map<std::vector<std::vector<uint8_t>>, std::shared_ptr<const snp::Verifier>>();
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = cache->find(e.extra_snp_roots_der); it != cache->end()) return it->second;
  snp::VerifierConfig config;
  for (auto product : {snp::Product::kMilan, snp::Product::kGenoa, snp::Product::kTurin}) {
    ASSIGN_OR_RETURN(auto roots, snp::BuiltinAmdRoots(product));
    config.trust_anchors_der.push_back(roots.ark_der);
    config.intermediates_der.push_back(roots.ask_der);
    config.intermediates_der.push_back(roots.asvk_der);
  }
  for (const auto& r : e.extra_snp_roots_der) config.trust_anchors_der.push_back(r);
  ASSIGN_OR_RETURN(auto verifier, snp::Verifier::Create(config));
  std::shared_ptr<const snp::Verifier> shared(std::move(verifier));
  if (cache->size() >= 16) cache->clear();  // bounded: a process talks to a few trust sets
  cache->emplace(e.extra_snp_roots_der, shared);
  return shared;
}

// The runtime log: well-formed records, the launch configuration first, every container event
// naming an accepted digest, no event outside the reference set.
absl::Status CheckRuntimeLog(const tpm::Cel& cel, const EvidenceExpectations& e,
                             const std::array<uint8_t, 32>& config_sha256, VerifiedEvidence& out,
                             CheckLog& log) {
  RETURN_IF_ERROR(tpm::CheckCelRecords(cel, log));
  if (cel.empty() || cel[0].event != kEventLaunchConfig) {
    return log.Fail("runtime.launch-config", "the first runtime event must be launch-config");
  }
  bool container = false;
  for (const auto& rec : cel) {
    out.events.push_back(rec.event);
    if (rec.index != kRuntimePcr || rec.nv_index) {
      return log.Fail("runtime.event", absl::StrCat("record ", rec.recnum, " targets index ",
                                                    rec.index, ", not PCR 15"));
    }
    if (!e.reference->runtime_events.count(rec.event)) {
      return log.Fail("runtime.event", absl::StrCat("record ", rec.recnum, ": event '", rec.event,
                                                    "' is not in the reference values"));
    }
    if (rec.event == kEventLaunchConfig) {
      if (&rec != &cel[0]) return log.Fail("runtime.launch-config", "launch-config logged twice");
      if (rec.data.size() != 32 ||
          !std::equal(rec.data.begin(), rec.data.end(), config_sha256.begin())) {
        return log.Fail("runtime.launch-config", absl::StrCat("logged ", HexEncode(rec.data),
                                                              ", expected launch "
                                                              "configuration has SHA-256 ",
                                                              HexEncode(config_sha256)));
      }
    } else if (rec.event == kEventSupervisorRestart) {
      if (rec.data.size() != 32 ||
          !std::equal(rec.data.begin(), rec.data.end(), config_sha256.begin())) {
        return log.Fail("runtime.launch-config",
                        absl::StrCat("record ", rec.recnum, ": supervisor restarted with ",
                                     HexEncode(rec.data), ", expected ", HexEncode(config_sha256)));
      }
    } else if (rec.event == kEventContainerManifest || rec.event == kEventContainerRestart) {
      if (!InList(e.reference->container_digests, rec.data)) {
        return log.Fail("runtime.container",
                        absl::StrCat("record ", rec.recnum, " (", rec.event, "): container sha256:",
                                     HexEncode(rec.data), " is not in the reference values"));
      }
      std::copy(rec.data.begin(), rec.data.end(), out.container_digest.begin());
      container = true;
      if (rec.event == kEventContainerRestart) ++out.container_restarts;
    }
  }
  log.Pass("runtime.launch-config", HexEncode(config_sha256));
  if (!container && e.before_container) {
    log.Pass("runtime.container", "none measured yet (evidence for a key release)");
    return absl::OkStatus();
  }
  if (!container) {
    return log.Fail("runtime.container", "no model container has been measured yet");
  }
  log.Pass("runtime.container", absl::StrCat("sha256:", HexEncode(out.container_digest)));
  return absl::OkStatus();
}

// Evidence.release: the running release as the runtime log records it (the field alone is not
// authenticated), then the channel's policy: not below the minimum release, not revoked.
absl::Status CheckRelease(const appliance::v1::Evidence& ev, const tpm::Cel& cel,
                          const EvidenceExpectations& e, VerifiedEvidence& out, CheckLog& log) {
  const tpm::CelRecord* logged = nullptr;
  for (const auto& rec : cel) {
    if (rec.event != kEventRelease) continue;
    if (logged != nullptr) return log.Fail("runtime.release", "the release is logged twice");
    logged = &rec;
  }
  const bool policy = e.min_release_version.has_value() || !e.revoked_releases.empty();
  if (!ev.has_release()) {
    if (logged != nullptr) {
      return log.Fail("runtime.release", "the runtime log records a release, the evidence none");
    }
    if (policy) {
      return log.Fail("release.version",
                      "the appliance reports no release; the channel's policy needs one");
    }
    return absl::OkStatus();
  }
  const std::string& text = ev.release().version();
  uint64_t version = 0;
  if (text.empty() || text.size() > 19 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      ev.release().target_sha256().size() != 32) {
    return absl::InvalidArgumentError(
        "evidence: release.version must be a decimal number and release.target_sha256 32 bytes");
  }
  for (char c : text) version = version * 10 + static_cast<uint64_t>(c - '0');
  const auto target = Bytes(ev.release().target_sha256());
  const auto want = ReleaseEventData(version, target);
  if (logged == nullptr || logged->data.size() != 32 ||
      !std::equal(want.begin(), want.end(), logged->data.begin())) {
    return log.Fail(
        "runtime.release",
        absl::StrCat("the evidence names release ", version, " (target ", HexEncode(target),
                     "), the runtime log ",
                     logged == nullptr ? std::string("records no release")
                                       : "records another (" + HexEncode(logged->data) + ")"));
  }
  log.Pass("runtime.release", absl::StrCat("release ", version, " target ", HexEncode(target)));
  out.release_version = version;
  std::copy(target.begin(), target.end(), out.release_target_sha256.begin());
  if (e.min_release_version && version < *e.min_release_version) {
    return log.Fail("release.min_version",
                    absl::StrCat("release ", version, " is below the channel's minimum release ",
                                 *e.min_release_version));
  }
  if (e.revoked_releases.count(version)) {
    return log.Fail("release.revoked", absl::StrCat("release ", version, " is revoked"));
  }
  if (policy) log.Pass("release.policy", absl::StrCat("release ", version));
  return absl::OkStatus();
}

// The client-revocation list the appliance applies (its last "client-revocations" event) is the
// channel's current one.
absl::Status CheckClientRevocations(const tpm::Cel& cel, const EvidenceExpectations& e,
                                    CheckLog& log) {
  if (!e.client_revocations_sha256) return absl::OkStatus();
  const tpm::CelRecord* applied = nullptr;
  for (const auto& rec : cel) {
    if (rec.event == kEventClientRevocations) applied = &rec;
  }
  const auto& want = *e.client_revocations_sha256;
  if (applied == nullptr || applied->data.size() != 32 ||
      !std::equal(want.begin(), want.end(), applied->data.begin())) {
    return log.Fail(
        "release.client_revocations",
        absl::StrCat("the channel's client-revocation list is ", HexEncode(want),
                     ", the appliance applies ",
                     applied == nullptr ? std::string("none") : HexEncode(applied->data)));
  }
  log.Pass("release.client_revocations", HexEncode(want));
  return absl::OkStatus();
}

// The firmware event log of the boot: parsed, replayed with the reference's PCR 11 boot phases
// (systemd-pcrphase extends them after systemd-stub's logged events, and logs them nowhere), and
// compared with the quote: every PCR the log touches must equal the replay ("tpm.eventlog.replay").
// A PCR 11 that differs only by missing phases is named as such.
absl::StatusOr<tpm::EventLog> CheckFirmwareLog(const std::string& bytes, const ReferenceValues& ref,
                                               const tpm::PcrBanks& quoted, CheckLog& log) {
  auto parsed =
      tpm::ParseEventLog(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("firmware_event_log: ", parsed.status().message()));
  }
  ASSIGN_OR_RETURN(auto replay, tpm::ReplayEventLog(*parsed));
  for (auto& [alg, pcrs] : replay.pcrs) {
    auto pcr11 = pcrs.find(11);
    if (pcr11 == pcrs.end()) continue;
    const std::vector<uint8_t> firmware_only = pcr11->second;
    ASSIGN_OR_RETURN(pcr11->second,
                     boot::ExtendPcr11Phases(alg, firmware_only, ref.tpm_pcr11_phases));
    auto bank = quoted.find(alg);
    if (bank == quoted.end() || !bank->second.count(11)) continue;
    const auto& have = bank->second.at(11);
    if (have == pcr11->second) continue;
    ASSIGN_OR_RETURN(auto subset,
                     boot::Pcr11PhasesThatExplain(alg, firmware_only, have, ref.tpm_pcr11_phases));
    if (!subset) continue;  // the generic replay message below names the events
    std::vector<std::string> missing;
    for (const auto& p : ref.tpm_pcr11_phases) {
      if (std::find(subset->begin(), subset->end(), p) == subset->end()) missing.push_back(p);
    }
    return log.Fail(
        "tpm.eventlog.replay",
        absl::StrFormat("%s PCR 11 is %s: the firmware log's events and the boot phases (%s) "
                        "replay to %s; the quote equals the replay with only (%s): boot phase "
                        "%s was not measured (systemd-pcrphase)",
                        tpm::HashAlgName(alg), HexEncode(have),
                        absl::StrJoin(ref.tpm_pcr11_phases, ", "), HexEncode(pcr11->second),
                        absl::StrJoin(*subset, ", "), absl::StrJoin(missing, ", ")));
  }
  RETURN_IF_ERROR(tpm::CheckLogAgainstQuote(*parsed, replay, quoted, log).status());
  return *std::move(parsed);
}

// The boot PCRs the reference pins ("tpm.pcr.reference"): every differing PCR is named, with the
// first event of the firmware log that differs from the reference's expected events.
absl::Status CheckBootPcrs(const ReferenceValues& ref, const tpm::PcrBanks& quoted,
                           const tpm::EventLog* fw_log, CheckLog& log) {
  std::vector<std::string> diffs;
  size_t n = 0;
  for (const auto& [alg, pcrs] : ref.tpm_pcrs) {
    auto bank = quoted.find(alg);
    for (const auto& [pcr, accepted] : pcrs) {
      if (bank == quoted.end() || !bank->second.count(pcr)) {
        return log.Fail("tpm.pcr.reference",
                        absl::StrFormat("%s PCR %u is not quoted", tpm::HashAlgName(alg), pcr));
      }
      const auto& have = bank->second.at(pcr);
      ++n;
      if (std::find(accepted.begin(), accepted.end(), have) != accepted.end()) continue;
      diffs.push_back(
          absl::StrFormat("PCR %u (%s) is %s, the reference expects %s: %s", pcr,
                          tpm::HashAlgName(alg), HexEncode(have), HexEncode(accepted.front()),
                          boot::ExplainPcrMismatch(fw_log, pcr, alg, ref.tpm_boot_events)));
    }
  }
  if (!diffs.empty()) return log.Fail("tpm.pcr.reference", absl::StrJoin(diffs, "; "));
  log.Pass("tpm.pcr.reference",
           absl::StrFormat("%u quoted boot PCR values equal the reference", n));
  return absl::OkStatus();
}

std::span<const uint8_t> Span(const std::string& s) {
  return std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// An SNP report (own host, AWS, GCE, or inside Azure's HCL report) through the chain to AMD's
// roots (or the extra ones), the guest policy, and the launch digest against the reference.
absl::StatusOr<snp::VerifiedReport> VerifySnp(std::span<const uint8_t> report,
                                              snp::Certificates certs,
                                              std::optional<std::vector<uint8_t>> report_data,
                                              std::optional<std::vector<uint8_t>> host_data,
                                              const EvidenceExpectations& e, VerifiedEvidence& out,
                                              CheckLog& log) {
  ASSIGN_OR_RETURN(auto verifier, SnpVerifierFor(e));
  snp::Options opts;
  opts.now = e.now;
  if (e.reference) {
    opts.policy.allow_debug = e.reference->allow_debug;
    opts.policy.min_tcb = e.reference->snp_min_tcb;
  }
  opts.policy.report_data = std::move(report_data);
  opts.policy.host_data = std::move(host_data);
  if (certs.vek_der.empty()) {
    return log.Fail("snp.vek", "the evidence carries no VCEK/VLEK certificate");
  }
  ASSIGN_OR_RETURN(auto verified, verifier->Verify(report, certs, opts, &log));
  out.measurement.assign(verified.report.measurement.begin(), verified.report.measurement.end());
  out.snp_signer = absl::StrCat(snp::SigningKeyName(verified.signer), " (",
                                snp::ProductName(verified.product), ")");
  if (e.reference) {
    RETURN_IF_ERROR(log.Expect(InList(e.reference->snp_measurements, out.measurement),
                               "snp.measurement.reference",
                               absl::StrCat("launch digest ", HexEncode(out.measurement),
                                            " is not in the reference values")));
  }
  return verified;
}

// A TD quote through the PCK chain to Intel's root (or the extra ones) with the collateral, the
// TD policy, and MRTD/RTMR0-2 against the reference.
absl::StatusOr<tdx::VerifiedQuote> VerifyTdx(std::span<const uint8_t> quote,
                                             std::optional<std::vector<uint8_t>> report_data,
                                             std::optional<std::vector<uint8_t>> mrconfigid,
                                             const EvidenceExpectations& e, VerifiedEvidence& out,
                                             CheckLog& log) {
  if (!e.tdx_collateral) {
    return log.Fail("tdx.collateral", "TDX evidence needs TCB info and QE identity collateral");
  }
  tdx::Options opts;
  opts.now = e.now;
  opts.collateral = e.tdx_collateral;
  if (e.reference) {
    opts.accepted_tcb_statuses = e.reference->tdx_accepted_tcb_statuses;
    opts.policy.allow_debug = e.reference->tdx_allow_debug;
  }
  ASSIGN_OR_RETURN(auto intel, tdx::BuiltinIntelSgxRootDer());
  opts.trust_anchors_der.push_back(intel);
  for (const auto& r : e.extra_tdx_roots_der) opts.trust_anchors_der.push_back(r);
  opts.policy.report_data = std::move(report_data);
  opts.policy.mrconfigid = std::move(mrconfigid);
  ASSIGN_OR_RETURN(auto verified, tdx::VerifyQuote(quote, opts, &log));
  const auto& body = verified.quote.body;
  out.measurement.assign(body.mrtd.begin(), body.mrtd.end());
  out.tcb_status = verified.tcb_status;
  if (e.reference) {
    RETURN_IF_ERROR(log.Expect(
        InList(e.reference->tdx_mrtd, out.measurement), "tdx.mrtd.reference",
        absl::StrCat("MRTD ", HexEncode(out.measurement), " is not in the reference values")));
    for (const auto& [index, accepted] : e.reference->tdx_rtmr) {
      RETURN_IF_ERROR(log.Expect(InList(accepted, body.rtmr[index]),
                                 absl::StrCat("tdx.rtmr", index, ".reference"),
                                 absl::StrCat("RTMR", index, " ", HexEncode(body.rtmr[index]),
                                              " is not in the reference values")));
    }
  }
  return verified;
}

}  // namespace

std::array<uint8_t, 32> ReleaseEventData(uint64_t release_version,
                                         std::span<const uint8_t> target_sha256) {
  const std::string canonical =
      absl::StrCat(R"({"release_version":)", release_version, R"(,"target_sha256":")",
                   HexEncode(target_sha256), R"("})");
  std::array<uint8_t, 32> out{};
  auto d = tpm::Hash(tpm::kAlgSha256, std::span(reinterpret_cast<const uint8_t*>(canonical.data()),
                                                canonical.size()));
  std::copy(d->begin(), d->end(), out.begin());
  return out;
}

absl::StatusOr<VerifiedEvidence> VerifyEvidence(std::span<const uint8_t> bytes,
                                                const EvidenceExpectations& e, CheckLog& log) {
  const bool bound = !e.unbound;
  if (bound && e.reference == nullptr) return absl::InvalidArgumentError("no reference values");
  if (bytes.size() > kMaxEvidenceSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("evidence: ", bytes.size(), " bytes, more than ", kMaxEvidenceSize));
  }
  appliance::v1::Evidence ev;
  if (!ev.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError("evidence: not an appliance.v1.Evidence message");
  }
  VerifiedEvidence out;
  out.bound = bound;
  out.supervisor_version = ev.supervisor_version();

  // 1. The binding: every value we know must hash to its entry, and no entry may be missing or
  //    extra (CheckBinding compares the label sets). Unbound: not compared, and said so.
  std::vector<std::pair<std::string, std::vector<uint8_t>>> entries;
  for (const auto& b : ev.binding()) entries.emplace_back(b.label(), Bytes(b.sha256()));
  Binding binding;
  std::map<std::string, std::vector<uint8_t>> expected = {{"nonce", e.nonce},
                                                          {"tls-spki", e.tls_spki_der}};
  if (!ev.runtime_event_log().empty()) expected["runtime-log"] = Bytes(ev.runtime_event_log());
  if (ev.has_tpm()) expected["ak"] = Bytes(ev.tpm().ak_public());
  if (!e.key_request_spki_der.empty()) expected["key-request"] = e.key_request_spki_der;
  if (bound) {
    RETURN_IF_ERROR(log.Expect(ev.binding_version() == kBindingVersion, "binding.version",
                               absl::StrCat("evidence binding version ", ev.binding_version(),
                                            ", supported ", kBindingVersion)));
    ASSIGN_OR_RETURN(binding, Binding::FromEntries(entries));
    RETURN_IF_ERROR(CheckBinding(binding, expected, log));
  } else {
    log.Pass("binding", "NOT CHECKED (--unbound): this evidence is bound to no channel");
  }
  std::optional<std::vector<uint8_t>> report_data;
  if (bound) {
    const auto rd = binding.ReportData();
    report_data = std::vector<uint8_t>(rd.begin(), rd.end());
  }

  // 2. The launch configuration we expect.
  const auto config_sha = ossl::Sha256(e.launch_config);
  std::copy(config_sha.begin(), config_sha.end(), out.launch_config_sha256.begin());
  if (bound && !e.reference->launch_config_sha256.empty()) {
    RETURN_IF_ERROR(log.Expect(InList(e.reference->launch_config_sha256, config_sha),
                               "reference.launch-config",
                               absl::StrCat("expected configuration ", HexEncode(config_sha),
                                            " is not one the reference values accept")));
  }
  std::optional<std::vector<uint8_t>> host_data, mrconfigid;
  if (bound) {
    host_data = std::vector<uint8_t>(config_sha.begin(), config_sha.end());
    const auto sha384 = ossl::Sha384(e.launch_config);
    mrconfigid = std::vector<uint8_t>(sha384.begin(), sha384.end());
  }

  // 3. The platform's hardware report.
  bool runtime_log_signed = false;  // the hardware signature covers the runtime log's digest
  std::optional<std::vector<uint8_t>> tdx_rtmr3;
  std::optional<tpm::AkPublicKey> hcl_ak;  // Azure: the AK the paravisor's runtime data names
  switch (ev.platform_case()) {
    case appliance::v1::Evidence::kSnp: {
      out.platform = "snp";
      snp::Certificates certs;
      certs.vek_der = Bytes(ev.snp().vek_der());
      for (const auto& c : ev.snp().chain_der()) certs.chain_der.push_back(Bytes(c));
      RETURN_IF_ERROR(
          VerifySnp(Span(ev.snp().report()), std::move(certs), report_data, host_data, e, out, log)
              .status());
      runtime_log_signed = expected.count("runtime-log") > 0;
      break;
    }
    case appliance::v1::Evidence::kVtpmOnly:
      out.platform = "vtpm-only";
      if (!e.allow_vtpm_only) {
        return log.Fail("platform.vtpm-only",
                        "no hardware report: the only runtime proof is a vTPM the host controls; "
                        "accept it explicitly (--allow-vtpm-only)");
      }
      log.Pass("platform.vtpm-only", "accepted by policy");
      break;
    case appliance::v1::Evidence::kTdx: {
      out.platform = "tdx";
      ASSIGN_OR_RETURN(auto verified,
                       VerifyTdx(Span(ev.tdx().quote()), report_data, mrconfigid, e, out, log));
      const auto& rtmr3 = verified.quote.body.rtmr[3];
      tdx_rtmr3 = std::vector<uint8_t>(rtmr3.begin(), rtmr3.end());
      runtime_log_signed = expected.count("runtime-log") > 0;
      break;
    }
    case appliance::v1::Evidence::kAzure: {
      // Azure's paravisor (DESIGN §3): the guest cannot choose the report data. The hardware
      // report binds the HCL runtime data (HCLAkPub and the user data the supervisor wrote, which
      // must be SHA-512(binding): a fresh report), and the binding travels in the quote's
      // qualifying data, signed by HCLAkPub (step 5).
      auto hcl = azure::ParseHclReport(Span(ev.azure().hcl_report()));
      if (!hcl.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("azure: ", hcl.status().message()));
      }
      std::vector<uint8_t> hw_report_data;
      if (hcl->report_type == azure::kReportTypeSnp) {
        out.platform = "azure-snp";
        snp::Certificates certs;
        certs.vek_der = Bytes(ev.azure().vek_der());
        for (const auto& c : ev.azure().chain_der()) certs.chain_der.push_back(Bytes(c));
        ASSIGN_OR_RETURN(auto verified, VerifySnp(hcl->hardware_report, std::move(certs),
                                                  std::nullopt, std::nullopt, e, out, log));
        hw_report_data.assign(verified.report.report_data.begin(),
                              verified.report.report_data.end());
      } else {
        out.platform = "azure-tdx";
        ASSIGN_OR_RETURN(auto verified, VerifyTdx(Span(ev.azure().td_quote()), std::nullopt,
                                                  std::nullopt, e, out, log));
        const auto& quoted = verified.quote.body.report_data;
        hw_report_data.assign(quoted.begin(), quoted.end());
        RETURN_IF_ERROR(azure::CheckTdReport(*hcl, hw_report_data, log));
      }
      ASSIGN_OR_RETURN(auto claims, azure::CheckRuntimeData(*hcl, hw_report_data, log));
      if (bound) {
        RETURN_IF_ERROR(log.Expect(
            claims.user_data == *report_data, "azure.user_data",
            absl::StrCat(
                "the HCL report's user data is ",
                claims.user_data.empty() ? std::string("absent") : HexEncode(claims.user_data),
                ", SHA-512 of this evidence's binding is ", HexEncode(*report_data),
                ": the HCL report is stale (made for another request)")));
      } else {
        log.Pass("azure.user_data",
                 absl::StrCat("not compared (unbound): ", HexEncode(claims.user_data)));
      }
      hcl_ak = std::move(claims.ak);
      break;
    }
    default:
      return log.Fail("platform", "the evidence names no platform");
  }

  // 4. The runtime log, parsed once; its authenticity comes from step 3 or step 5.
  std::optional<tpm::Cel> cel;
  if (!ev.runtime_event_log().empty()) {
    ASSIGN_OR_RETURN(cel, tpm::ParseCel(Span(ev.runtime_event_log())));
  } else if (bound) {
    return log.Fail("runtime.log", "no runtime event log");
  }

  // TDX: RTMR3 holds the runtime events where the kernel lets the supervisor extend it; an
  // untouched (zero) RTMR3 means this kernel offers no RTMR extend and the binding carries the log.
  if (tdx_rtmr3 && cel) {
    ASSIGN_OR_RETURN(auto replayed, tpm::ReplayCelToRtmr(*cel, kRuntimePcr));
    if (std::all_of(tdx_rtmr3->begin(), tdx_rtmr3->end(), [](uint8_t b) { return b == 0; })) {
      log.Pass("tdx.rtmr3", "not extended by this kernel; the runtime log is bound by REPORTDATA");
    } else {
      RETURN_IF_ERROR(log.Expect(*tdx_rtmr3 == replayed, "tdx.rtmr3.replay",
                                 absl::StrCat("log replays to ", HexEncode(replayed), ", RTMR3 is ",
                                              HexEncode(*tdx_rtmr3))));
    }
  }

  // 5. The vTPM quote: always checked when present, counted as runtime proof only when the vTPM
  //    is in the trust boundary, or on a vtpm-only platform the policy accepted.
  static const ReferenceValues kNoReference;
  const ReferenceValues& ref = e.reference ? *e.reference : kNoReference;
  out.tpm_trust = "none";
  bool runtime_log_quoted = false;
  if (ev.has_tpm()) {
    const auto& t = ev.tpm();
    out.tpm_trust = t.trust() == appliance::v1::TPM_TRUST_IN_TCB ? "in_tcb"
                    : t.trust() == appliance::v1::TPM_TRUST_HOST ? "host"
                                                                 : "unspecified";
    ASSIGN_OR_RETURN(auto ak, tpm::ParseAkTpmtPublic(Span(t.ak_public())));
    if (hcl_ak) {
      // The quote's AK is the one the hardware report vouches for, and that vTPM is the
      // paravisor's (inside the trust boundary).
      // Compared as decoded keys (OpenSSL); encoded only to name them when they differ.
      if (!ak.key || !hcl_ak->key || EVP_PKEY_eq(ak.key.get(), hcl_ak->key.get()) != 1) {
        ASSIGN_OR_RETURN(auto have, tpm::AkSpkiDer(ak));
        ASSIGN_OR_RETURN(auto want, tpm::AkSpkiDer(*hcl_ak));
        return log.Fail("azure.ak.quote",
                        absl::StrCat("the quote's AK (", ak.Describe(), ", SPKI SHA-256 ",
                                     HexEncode(ossl::Sha256(have)),
                                     ") is not HCLAkPub from the HCL report (", hcl_ak->Describe(),
                                     ", SPKI SHA-256 ", HexEncode(ossl::Sha256(want)), ")"));
      }
      log.Pass("azure.ak.quote", absl::StrCat("the quote's AK is HCLAkPub (", ak.Describe(), ")"));
      RETURN_IF_ERROR(log.Expect(t.trust() == appliance::v1::TPM_TRUST_IN_TCB, "tpm.trust",
                                 "Azure's paravisor vTPM is inside the trust boundary; the "
                                 "evidence labels it " +
                                     out.tpm_trust));
      out.ak_source = "HCLAkPub in the runtime data the hardware report binds";
    } else if (ev.platform_case() != appliance::v1::Evidence::kVtpmOnly) {
      out.ak_source = bound ? "the binding's ak entry, signed by the hardware report"
                            : "not established (unbound)";
    } else {
      out.ak_source = "none (vtpm-only)";
    }
    if (t.ak_cert_chain_der_size() > 0) {
      if (e.tpm_ak_roots_der.empty()) {
        log.Pass("tpm.ak.certificate", "carried but not checked: no AK CA given");
      } else {
        std::vector<std::vector<uint8_t>> cas = e.tpm_ak_roots_der;
        for (int i = 1; i < t.ak_cert_chain_der_size(); ++i) {
          cas.push_back(Bytes(t.ak_cert_chain_der(i)));
        }
        RETURN_IF_ERROR(
            tpm::VerifyAkCertificate(ak, Span(t.ak_cert_chain_der(0)), cas, e.now, log));
        out.ak_certificate = "chains to a given AK CA";
        if (out.ak_source.rfind("none", 0) == 0 || out.ak_source.rfind("not", 0) == 0) {
          out.ak_source = "AK certificate from the cloud's AK CA (host vTPM)";
        }
      }
    }
    ASSIGN_OR_RETURN(auto qv, tpm::QuoteVerifier::Create(ak));
    tpm::QuoteVerifyOptions qopts;
    if (bound) {
      const auto qd = binding.QualifyingData();
      qopts.nonce.assign(qd.begin(), qd.end());
    } else {
      qopts.skip_nonce = true;
    }
    tpm::PcrBanks banks;
    for (const auto& bank : t.pcrs()) {
      if (bank.hash_alg() > 0xffff) return absl::InvalidArgumentError("tpm.pcrs: hash algorithm");
      for (const auto& [index, value] : bank.values()) {
        banks[static_cast<uint16_t>(bank.hash_alg())][index] = Bytes(value);
      }
    }
    qopts.pcrs = banks;
    ASSIGN_OR_RETURN(auto quoted, qv->Verify(Span(t.attest()), Span(t.signature()),
                                             tpm::SignatureFormat::kTpmt, qopts, &log));
    // The boot: the firmware event log replays to the quote, and the boot PCRs are the reference's.
    std::optional<tpm::EventLog> fw_log;
    if (!ev.firmware_event_log().empty()) {
      ASSIGN_OR_RETURN(fw_log,
                       CheckFirmwareLog(ev.firmware_event_log(), ref, quoted.quoted_pcrs, log));
    }
    if (!ref.tpm_pcrs.empty()) {
      RETURN_IF_ERROR(CheckBootPcrs(ref, quoted.quoted_pcrs, fw_log ? &*fw_log : nullptr, log));
    }
    // PCR 15 must be explained by the runtime log in every bank the log covers.
    std::map<uint16_t, std::map<uint32_t, std::vector<uint8_t>>> replay;
    if (cel) {
      ASSIGN_OR_RETURN(replay, tpm::ReplayCel(*cel));
    }
    for (const auto& [alg, pcrs] : replay) {
      auto bank = quoted.quoted_pcrs.find(alg);
      auto pcr = bank == quoted.quoted_pcrs.end() ? nullptr : &bank->second;
      auto value = pcr ? pcr->find(kRuntimePcr) : decltype(pcr->find(0)){};
      if (!pcr || value == pcr->end()) {
        return log.Fail("tpm.pcr15.replay",
                        absl::StrCat("PCR 15 (", tpm::HashAlgName(alg), ") is not quoted"));
      }
      RETURN_IF_ERROR(log.Expect(
          value->second == pcrs.at(kRuntimePcr), "tpm.pcr15.replay",
          absl::StrCat(tpm::HashAlgName(alg), ": log replays to ", HexEncode(pcrs.at(kRuntimePcr)),
                       ", quoted ", HexEncode(value->second))));
    }
    const bool counts = t.trust() == appliance::v1::TPM_TRUST_IN_TCB ||
                        ev.platform_case() == appliance::v1::Evidence::kVtpmOnly;
    runtime_log_quoted = counts && !replay.empty();
    if (!counts) {
      log.Pass("tpm.trust", "host vTPM: quote consistent but not counted as runtime proof");
    }
  } else if (ev.platform_case() == appliance::v1::Evidence::kVtpmOnly) {
    return log.Fail("tpm", "vtpm-only evidence without a vTPM quote");
  } else if (hcl_ak) {
    return log.Fail("tpm", "Azure evidence without the vTPM quote that carries its binding");
  } else if (!ref.tpm_pcrs.empty()) {
    return log.Fail("tpm.pcr.reference",
                    "the reference pins boot PCRs but the evidence has no vTPM quote");
  }

  if (!bound) {
    out.runtime_proof = "none: unbound evidence (formats, signatures and chains only)";
    if (cel) {
      for (const auto& rec : *cel) out.events.push_back(rec.event);
    }
    return out;
  }
  if (runtime_log_signed) {
    out.runtime_proof = "runtime log digest in the binding signed by the hardware report";
  } else if (runtime_log_quoted) {
    out.runtime_proof = out.tpm_trust == "in_tcb" ? "PCR 15 of an in-TCB vTPM"
                                                  : "PCR 15 of a host vTPM (vtpm-only, by policy)";
  } else {
    return log.Fail("runtime.proof", "nothing in the evidence authenticates the runtime log");
  }
  log.Pass("runtime.proof", out.runtime_proof);
  RETURN_IF_ERROR(CheckRuntimeLog(*cel, e, out.launch_config_sha256, out, log));
  RETURN_IF_ERROR(CheckRelease(ev, *cel, e, out, log));
  RETURN_IF_ERROR(CheckClientRevocations(*cel, e, log));
  return out;
}

}  // namespace attest
