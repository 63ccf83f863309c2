// appliance-verify tpm-quote | eventlog | azure
#include "tpm_command.h"

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "attest/azure/azure.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/status.h"
#include "attest/tdx/collateral.h"
#include "attest/tpm/ak.h"
#include "attest/tpm/eventlog.h"
#include "attest/tpm/hash_alg.h"
#include "attest/tpm/quote.h"
#include "attest/verify_options.h"
#include "output.h"

namespace attest::cli {
namespace {

constexpr size_t kMaxSmallFile = 256 * 1024;

absl::StatusOr<std::string> ReadText(const std::string& path, size_t max) {
  ASSIGN_OR_RETURN(auto bytes, ReadFileBounded(path, max));
  return std::string(bytes.begin(), bytes.end());
}

absl::StatusOr<tpm::PcrBanks> ReadPcrs(const std::string& path, const std::string& bank) {
  ASSIGN_OR_RETURN(std::string text, ReadText(path, kMaxSmallFile));
  std::optional<uint16_t> alg;
  if (!bank.empty()) {
    ASSIGN_OR_RETURN(alg, tpm::HashAlgFromName(bank));
  }
  auto pcrs = tpm::ParsePcrJson(text, alg);
  if (!pcrs.ok())
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", pcrs.status().message()));
  return pcrs;
}

nlohmann::json BanksToJson(const tpm::PcrBanks& banks) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [alg, bank] : banks) {
    nlohmann::json b = nlohmann::json::object();
    for (const auto& [pcr, value] : bank) b[std::to_string(pcr)] = HexEncode(value);
    out[tpm::HashAlgName(alg)] = b;
  }
  return out;
}

nlohmann::json QuoteToJson(const tpm::Quote& q) {
  nlohmann::json sel = nlohmann::json::array();
  for (const auto& s : q.selections)
    sel.push_back({{"bank", tpm::HashAlgName(s.hash_alg)}, {"pcrs", s.pcrs}});
  return {{"magic", absl::StrFormat("0x%08x", q.magic)},
          {"type", absl::StrFormat("0x%04x", q.type)},
          {"qualified_signer", HexEncode(q.qualified_signer)},
          {"extra_data", HexEncode(q.extra_data)},
          {"clock", q.clock},
          {"reset_count", q.reset_count},
          {"restart_count", q.restart_count},
          {"safe", q.safe},
          {"firmware_version", absl::StrFormat("0x%016x", q.firmware_version)},
          {"pcr_select", sel},
          {"pcr_digest", HexEncode(q.pcr_digest)}};
}

// Prints the result in the project's conventions and returns the exit code.
int Finish(absl::string_view command, const absl::Status& status, const CheckLog& log, bool json,
           nlohmann::json claims) {
  if (!status.ok() && !IsVerificationFailure(status)) return ReportFailure(command, status);
  if (json) {
    claims["verified"] = status.ok();
    claims["checks"] = ChecksToJson(log);
    if (!status.ok()) claims["error"] = std::string(status.message());
    std::printf("%s\n",
                claims.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("%s\n", status.ok() ? "verified" : "NOT verified");
    if (claims.contains("quote")) {
      std::printf("  pcr_digest %s\n", claims["quote"]["pcr_digest"].get<std::string>().c_str());
    }
    PrintChecks(log);
  }
  return status.ok() ? 0 : ReportFailure(command, status);
}

// ---- tpm-quote ----

struct QuoteArgs {
  std::string attest, signature, signature_format, ak, ak_format, ak_kid = "HCLAkPub", ak_cert;
  std::vector<std::string> ak_ca;
  std::string nonce;
  bool nonce_given = false;
  bool allow_sha1 = false;
  std::string pcrs, pcr_bank, eventlog, expect_pcrs, now, expect_ak_name;
  bool json = false;
};

absl::StatusOr<tpm::AkPublicKey> LoadAk(const QuoteArgs& a) {
  ASSIGN_OR_RETURN(auto bytes, ReadFileBounded(a.ak, tpm::kMaxAkInputSize));
  if (a.ak_format.empty()) return tpm::ParseAkAuto(bytes, a.ak_kid);
  if (a.ak_format == "tpmt") return tpm::ParseAkTpmtPublic(bytes);
  if (a.ak_format == "pem") return tpm::ParseAkPem(bytes);
  return tpm::ParseAkJwk(
      absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), a.ak_kid);
}

int RunQuote(const QuoteArgs& a) {
  constexpr absl::string_view kCmd = "tpm-quote";
  auto fail = [&](const absl::Status& s) { return ReportFailure(kCmd, s); };
  if (!a.nonce_given)
    return fail(
        absl::InvalidArgumentError("--nonce is required (--nonce '' for empty qualifying data)"));
  auto nonce = HexDecode(a.nonce);
  if (!nonce.ok())
    return fail(absl::InvalidArgumentError(absl::StrCat("--nonce: ", nonce.status().message())));
  if (!a.ak_ca.empty() && a.ak_cert.empty())
    return fail(absl::InvalidArgumentError("--ak-ca needs --ak-cert"));
  if (!a.ak_cert.empty() && a.ak_ca.empty())
    return fail(absl::InvalidArgumentError("--ak-cert needs --ak-ca"));
  VerifyOptions clock;
  if (!a.now.empty()) {
    auto t = ParseRfc3339(a.now);
    if (!t.ok()) return fail(t.status());
    clock.now = *t;
  }
  auto attest = ReadFileBounded(a.attest, tpm::kMaxQuoteSize);
  if (!attest.ok()) return fail(attest.status());
  auto sig = ReadFileBounded(a.signature, tpm::kMaxSignatureSize);
  if (!sig.ok()) return fail(sig.status());
  auto ak = LoadAk(a);
  if (!ak.ok()) return fail(ak.status());
  tpm::QuoteVerifyOptions qo;
  qo.nonce = *nonce;
  qo.allow_sha1 = a.allow_sha1;
  if (!a.expect_ak_name.empty()) {
    auto name = HexDecode(a.expect_ak_name);
    if (!name.ok())
      return fail(
          absl::InvalidArgumentError(absl::StrCat("--expect-ak-name: ", name.status().message())));
    qo.expected_ak_name = *name;
  }
  if (!a.pcrs.empty()) {
    auto pcrs = ReadPcrs(a.pcrs, a.pcr_bank);
    if (!pcrs.ok()) return fail(pcrs.status());
    qo.pcrs = *pcrs;
  } else if (!a.eventlog.empty() || !a.expect_pcrs.empty()) {
    return fail(
        absl::InvalidArgumentError("--eventlog and --expect-pcrs need the quoted values (--pcrs)"));
  }
  std::optional<tpm::PcrBanks> expected;
  if (!a.expect_pcrs.empty()) {
    auto e = ReadPcrs(a.expect_pcrs, a.pcr_bank);
    if (!e.ok()) return fail(e.status());
    expected = *e;
  }
  std::optional<tpm::EventLog> event_log;
  if (!a.eventlog.empty()) {
    auto bytes = ReadFileBounded(a.eventlog, tpm::kMaxEventLogSize);
    if (!bytes.ok()) return fail(bytes.status());
    auto log = tpm::ParseEventLog(*bytes);
    if (!log.ok()) return fail(log.status());
    event_log = *std::move(log);
  }
  tpm::SignatureFormat format = a.signature_format == "tpmt"  ? tpm::SignatureFormat::kTpmt
                                : a.signature_format == "raw" ? tpm::SignatureFormat::kRaw
                                                              : tpm::SignatureFormat::kAuto;
  CheckLog log;
  nlohmann::json claims;
  claims["ak"] = {{"key", ak->Describe()}};
  if (ak->name) claims["ak"]["name"] = HexEncode(*ak->name);
  absl::Status status = [&]() -> absl::Status {
    if (!a.ak_cert.empty()) {
      ASSIGN_OR_RETURN(auto cert, ReadFileBounded(a.ak_cert, kMaxCertificateFileSize));
      std::vector<std::vector<uint8_t>> cas;
      for (const auto& path : a.ak_ca) {
        ASSIGN_OR_RETURN(auto bytes, ReadFileBounded(path, kMaxCertificateFileSize));
        ASSIGN_OR_RETURN(auto certs, ParseCertificates(bytes, path));
        cas.insert(cas.end(), certs.begin(), certs.end());
      }
      RETURN_IF_ERROR(tpm::VerifyAkCertificate(*ak, cert, cas, clock.Now(), log));
    }
    ASSIGN_OR_RETURN(auto verifier, tpm::QuoteVerifier::Create(*ak));
    ASSIGN_OR_RETURN(auto verified, verifier->Verify(*attest, *sig, format, qo, &log));
    claims["quote"] = QuoteToJson(verified.quote);
    claims["signature"] = {{"scheme", verified.signature.sig_alg == tpm::kAlgEcdsa    ? "ecdsa"
                                      : verified.signature.sig_alg == tpm::kAlgRsapss ? "rsapss"
                                                                                      : "rsassa"},
                           {"hash", tpm::HashAlgName(verified.signature.hash_alg)},
                           {"format", verified.signature.raw ? "raw" : "tpmt"}};
    if (qo.pcrs) claims["pcrs"] = BanksToJson(verified.quoted_pcrs);
    if (event_log) {
      ASSIGN_OR_RETURN(auto replay, tpm::ReplayEventLog(*event_log));
      ASSIGN_OR_RETURN(auto match,
                       tpm::CheckLogAgainstQuote(*event_log, replay, verified.quoted_pcrs, log));
      nlohmann::json explained = nlohmann::json::object(), unexplained = nlohmann::json::object();
      for (const auto& [alg, pcrs] : match.explained) explained[tpm::HashAlgName(alg)] = pcrs;
      for (const auto& [alg, pcrs] : match.unexplained) unexplained[tpm::HashAlgName(alg)] = pcrs;
      claims["eventlog"] = {{"explained_pcrs", explained},
                            {"unexplained_pcrs", unexplained},
                            {"vouched_events", tpm::VouchedEvents(*event_log, match).size()}};
    }
    if (expected) RETURN_IF_ERROR(tpm::CheckExpectedPcrs(verified.quoted_pcrs, *expected, log));
    return absl::OkStatus();
  }();
  return Finish(kCmd, status, log, a.json, claims);
}

// ---- eventlog ----

struct LogArgs {
  std::string path, expect_pcrs, pcr_bank;
  bool json = false;
};

int RunEventLog(const LogArgs& a) {
  constexpr absl::string_view kCmd = "eventlog";
  auto fail = [&](const absl::Status& s) { return ReportFailure(kCmd, s); };
  auto bytes = ReadFileBounded(a.path, tpm::kMaxEventLogSize);
  if (!bytes.ok()) return fail(bytes.status());
  auto log = tpm::ParseEventLog(*bytes);
  if (!log.ok()) return fail(log.status());
  auto replay = tpm::ReplayEventLog(*log);
  if (!replay.ok()) return fail(replay.status());
  std::optional<tpm::PcrBanks> expected;
  if (!a.expect_pcrs.empty()) {
    auto e = ReadPcrs(a.expect_pcrs, a.pcr_bank);
    if (!e.ok()) return fail(e.status());
    expected = *e;
  }
  CheckLog checks;
  absl::Status status;
  if (expected) {
    // Every expected PCR must be one the log explains and equal its replay.
    status = tpm::CheckExpectedPcrs(replay->pcrs, *expected, checks);
  }
  if (a.json) {
    nlohmann::json j;
    j["format"] = log->format == tpm::EventLogFormat::kTcg2 ? "tcg2" : "tcg1";
    j["events"] = log->events.size();
    j["banks"] = BanksToJson(replay->pcrs);
    j["startup_locality"] =
        log->startup_locality ? nlohmann::json(*log->startup_locality) : nlohmann::json();
    j["digest_mismatches"] = replay->digest_mismatches;
    if (expected) {
      j["verified"] = status.ok();
      j["checks"] = ChecksToJson(checks);
    }
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("%s event log, %zu events, banks:",
                log->format == tpm::EventLogFormat::kTcg2 ? "TCG2 crypto-agile" : "TCG1 SHA-1",
                log->events.size());
    for (uint16_t alg : log->algorithms) std::printf(" %s", tpm::HashAlgName(alg).c_str());
    if (log->startup_locality) std::printf(", StartupLocality %d", *log->startup_locality);
    std::printf("\n\n");
    std::set<size_t> mismatched(replay->digest_mismatches.begin(), replay->digest_mismatches.end());
    for (const auto& e : log->events) {
      std::printf("%4zu  PCR%-2u %-34s %s%s\n", e.index, e.pcr, tpm::EventTypeName(e.type).c_str(),
                  tpm::DescribeEvent(e).c_str(),
                  mismatched.count(e.index) ? "  [digest is not the hash of the data]" : "");
    }
    std::printf("\nreplayed PCRs:\n");
    for (const auto& [alg, bank] : replay->pcrs) {
      for (const auto& [pcr, value] : bank) {
        std::printf("  %-7s %2u  %s\n", tpm::HashAlgName(alg).c_str(), pcr,
                    HexEncode(value).c_str());
      }
    }
    if (expected) PrintChecks(checks);
  }
  return status.ok() ? 0 : fail(status);
}

// ---- azure ----

struct AzureArgs {
  std::string evidence, nonce, chain, now, expect_pcrs, pcr_bank;
  std::string collateral, tcb_signing_chain, accept_tcb_status, trust_anchor;  // TDX form
  bool nonce_given = false, allow_debug = false, skip_tcb = false, json = false;
};

// The TDX form's flags, as the tdx command takes them.
absl::Status LoadTdxCollateral(const std::string& dir, const std::string& chain,
                               const std::string& accept, const std::string& anchor,
                               tdx::Options& o) {
  if (!accept.empty()) o.accepted_tcb_statuses = absl::StrSplit(accept, ',', absl::SkipEmpty());
  if (!anchor.empty()) {
    ASSIGN_OR_RETURN(auto bytes, ReadFileBounded(anchor, kMaxCertificateFileSize));
    ASSIGN_OR_RETURN(o.trust_anchors_der, ParseCertificates(bytes, anchor));
  }
  if (dir.empty()) {
    if (!chain.empty())
      return absl::InvalidArgumentError("--tcb-signing-chain goes with --collateral");
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(o.collateral, tdx::LoadCollateralDir(dir, chain));
  return absl::OkStatus();
}

int RunAzure(const AzureArgs& a) {
  constexpr absl::string_view kCmd = "azure";
  auto fail = [&](const absl::Status& s) { return ReportFailure(kCmd, s); };
  if (!a.nonce_given) return fail(absl::InvalidArgumentError("--nonce is required"));
  azure::Options o;
  auto nonce = HexDecode(a.nonce);
  if (!nonce.ok())
    return fail(absl::InvalidArgumentError(absl::StrCat("--nonce: ", nonce.status().message())));
  o.nonce = *nonce;
  o.snp.policy.allow_debug = a.allow_debug;
  o.tdx.policy.allow_debug = a.allow_debug;
  o.tdx.policy.skip_tcb = a.skip_tcb;
  if (!a.now.empty()) {
    auto t = ParseRfc3339(a.now);
    if (!t.ok()) return fail(t.status());
    o.snp.now = *t;
    o.tdx.now = *t;
  }
  if (auto s = LoadTdxCollateral(a.collateral, a.tcb_signing_chain, a.accept_tcb_status,
                                 a.trust_anchor, o.tdx);
      !s.ok()) {
    return fail(s);
  }
  if (!a.chain.empty()) {
    auto bytes = ReadFileBounded(a.chain, kMaxCertificateFileSize);
    if (!bytes.ok()) return fail(bytes.status());
    auto certs = ParseCertificates(*bytes, a.chain);
    if (!certs.ok()) return fail(certs.status());
    o.snp_chain = *certs;
  }
  if (!a.expect_pcrs.empty()) {
    auto e = ReadPcrs(a.expect_pcrs, a.pcr_bank);
    if (!e.ok()) return fail(e.status());
    o.expected_pcrs = *e;
  }
  auto text = ReadText(a.evidence, azure::kMaxEvidenceJsonSize);
  if (!text.ok()) return fail(text.status());
  auto evidence = azure::ParseEvidenceJson(*text);
  if (!evidence.ok()) return fail(evidence.status());
  CheckLog log;
  auto verified = azure::VerifyEvidence(*evidence, o, &log);
  nlohmann::json claims;
  claims["platform"] =
      evidence->hcl.report_type == azure::kReportTypeTdx ? "azure-tdx" : "azure-snp";
  if (verified.ok() && verified->snp) {
    const auto& r = verified->snp->report;
    claims["snp"] = {{"product", std::string(snp::ProductName(verified->snp->product))},
                     {"measurement", HexEncode(r.measurement)},
                     {"report_data", HexEncode(r.report_data)},
                     {"chip_id", HexEncode(r.chip_id)},
                     {"vmpl", r.vmpl}};
  }
  if (verified.ok() && verified->tdx) {
    const auto& b = verified->tdx->quote.body;
    nlohmann::json rtmr = nlohmann::json::array();
    for (const auto& v : b.rtmr) rtmr.push_back(HexEncode(v));
    claims["tdx"] = {{"mrtd", HexEncode(b.mrtd)},
                     {"rtmr", rtmr},
                     {"report_data", HexEncode(b.report_data)},
                     {"tcb_status", verified->tdx->tcb_status},
                     {"qe_tcb_status", verified->tdx->qe_tcb_status}};
  }
  if (verified.ok()) {
    claims["ak"] = verified->ak.Describe();
    claims["quote"] = QuoteToJson(verified->quote.quote);
    claims["pcrs"] = BanksToJson(verified->quote.quoted_pcrs);
  }
  return Finish(kCmd, verified.status(), log, a.json, claims);
}

}  // namespace

void AddTpmQuoteCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<QuoteArgs>();
  CLI::App* cmd =
      app.add_subcommand("tpm-quote", "Verify a TPM 2.0 quote (and PCRs, and an event log)");
  cmd->add_option("--attest", a->attest, "TPMS_ATTEST (marshalled)")->required();
  cmd->add_option("--signature", a->signature, "TPMT_SIGNATURE or a bare RSASSA signature")
      ->required();
  cmd->add_option("--signature-format", a->signature_format, "tpmt|raw (default: detected)")
      ->check(CLI::IsMember({"tpmt", "raw"}));
  cmd->add_option("--ak", a->ak, "AK public key")->required();
  cmd->add_option("--ak-format", a->ak_format, "tpmt|pem|jwk (default: detected)")
      ->check(CLI::IsMember({"tpmt", "pem", "jwk"}));
  cmd->add_option("--ak-kid", a->ak_kid, "key id in a JWK set (default HCLAkPub)");
  cmd->add_option("--ak-cert", a->ak_cert, "AK certificate (PEM or DER)");
  cmd->add_option("--ak-ca", a->ak_ca,
                  "CA certificates for the AK certificate: roots and intermediates");
  cmd->add_option("--nonce", a->nonce, "expected qualifying data, hex ('' for none)")
      ->each([a](const std::string&) { a->nonce_given = true; });
  cmd->add_flag("--allow-sha1", a->allow_sha1, "accept quotes signed with SHA-1");
  cmd->add_option("--pcrs", a->pcrs, "quoted PCR values (JSON)");
  cmd->add_option("--pcr-bank", a->pcr_bank, "bank of a flat --pcrs/--expect-pcrs map or list");
  cmd->add_option("--eventlog", a->eventlog,
                  "TCG2/TCG1 event log to replay against the quoted PCRs");
  cmd->add_option("--expect-pcrs", a->expect_pcrs, "expected values for quoted PCRs (JSON)");
  cmd->add_option("--now", a->now, "verification time for the AK certificate, RFC 3339");
  cmd->add_option("--expect-ak-name", a->expect_ak_name,
                  "pin the AK's TPM Name (hex nameAlg || digest)");
  cmd->add_flag("--json", a->json, "print the claims and every check as JSON");
  cmd->callback([a, exit_code] { *exit_code = RunQuote(*a); });
}

void AddEventLogCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<LogArgs>();
  CLI::App* cmd = app.add_subcommand("eventlog", "Parse and replay a TCG firmware event log");
  cmd->add_option("LOG", a->path, "binary event log")->required();
  cmd->add_option("--expect-pcrs", a->expect_pcrs, "PCR values the replay must reproduce (JSON)");
  cmd->add_option("--pcr-bank", a->pcr_bank, "bank of a flat --expect-pcrs map or list");
  cmd->add_flag("--json", a->json, "print the replay as JSON");
  cmd->callback([a, exit_code] { *exit_code = RunEventLog(*a); });
}

void AddAzureCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<AzureArgs>();
  CLI::App* cmd = app.add_subcommand(
      "azure", "Verify Azure confidential-VM evidence (HCL report + vTPM quote)");
  cmd->add_option("EVIDENCE_JSON", a->evidence, "evidence JSON")->required();
  cmd->add_option("--nonce", a->nonce, "expected quote qualifying data, hex")
      ->each([a](const std::string&) { a->nonce_given = true; });
  cmd->add_option("--chain", a->chain, "ASK then ARK (PEM); default: built-in AMD roots");
  cmd->add_option("--now", a->now, "verification time, RFC 3339");
  cmd->add_flag("--allow-debug", a->allow_debug, "accept debug guests");
  cmd->add_option("--collateral", a->collateral,
                  "TDX form: TCB info / QE identity directory (as for tdx)");
  cmd->add_option("--tcb-signing-chain", a->tcb_signing_chain, "TDX form: TCB Signing chain (PEM)");
  cmd->add_option("--accept-tcb-status", a->accept_tcb_status, "TDX form: accepted TCB statuses");
  cmd->add_option("--trust-anchor", a->trust_anchor,
                  "TDX form: trust this root instead of Intel's");
  cmd->add_flag("--skip-tcb", a->skip_tcb, "TDX form: accept without TCB evaluation");
  cmd->add_option("--expect-pcrs", a->expect_pcrs, "expected PCR values (JSON)");
  cmd->add_option("--pcr-bank", a->pcr_bank, "bank of a flat --expect-pcrs map or list");
  cmd->add_flag("--json", a->json, "print the claims and every check as JSON");
  cmd->callback([a, exit_code] { *exit_code = RunAzure(*a); });
}

}  // namespace attest::cli
