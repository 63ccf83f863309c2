// appliance-verify tdx QUOTE [options]
#include "tdx_command.h"

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/status.h"
#include "attest/tdx/collateral.h"
#include "attest/tdx/verify.h"
#include "attest/tpm/eventlog.h"
#include "output.h"

namespace attest::cli {
namespace {

struct TdxArgs {
  std::string quote, collateral, tcb_signing_chain, pck_crl, root_crl, accept_tcb_status,
      trust_anchor, now;
  std::string expect_mrtd, expect_mrconfigid, expect_mrowner, expect_report_data, ccel_table, ccel;
  std::vector<std::string> expect_rtmr;
  bool require_crl = false, skip_tcb = false, allow_debug = false, json = false;
};

absl::Status HexOption(const std::string& value, const char* flag,
                       std::optional<std::vector<uint8_t>>& out) {
  if (value.empty()) return absl::OkStatus();
  auto bytes = HexDecode(value);
  if (!bytes.ok())
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", bytes.status().message()));
  out = *bytes;
  return absl::OkStatus();
}

absl::StatusOr<tdx::Options> BuildOptions(const TdxArgs& a) {
  tdx::Options o;
  o.policy.allow_debug = a.allow_debug;
  o.policy.skip_tcb = a.skip_tcb;
  o.require_crl = a.require_crl;
  if (!a.now.empty()) {
    ASSIGN_OR_RETURN(o.now, ParseRfc3339(a.now));
  }
  RETURN_IF_ERROR(HexOption(a.expect_mrtd, "--expect-mrtd", o.policy.mrtd));
  RETURN_IF_ERROR(HexOption(a.expect_mrconfigid, "--expect-mrconfigid", o.policy.mrconfigid));
  RETURN_IF_ERROR(HexOption(a.expect_mrowner, "--expect-mrowner", o.policy.mrowner));
  RETURN_IF_ERROR(HexOption(a.expect_report_data, "--expect-report-data", o.policy.report_data));
  for (const auto& spec : a.expect_rtmr) {
    size_t eq = spec.find('=');
    int index = -1;
    if (eq == std::string::npos || !absl::SimpleAtoi(spec.substr(0, eq), &index) || index < 0 ||
        index > 3) {
      return absl::InvalidArgumentError(
          absl::StrCat("--expect-rtmr '", spec, "': expected N=HEX with N 0-3"));
    }
    ASSIGN_OR_RETURN(o.policy.rtmr[index], HexDecode(spec.substr(eq + 1)));
  }
  if (!a.accept_tcb_status.empty()) {
    o.accepted_tcb_statuses = absl::StrSplit(a.accept_tcb_status, ',', absl::SkipEmpty());
  }
  if (!a.tcb_signing_chain.empty() && a.collateral.empty()) {
    return absl::InvalidArgumentError("--tcb-signing-chain goes with --collateral");
  }
  if (!a.collateral.empty()) {
    ASSIGN_OR_RETURN(o.collateral, tdx::LoadCollateralDir(a.collateral, a.tcb_signing_chain));
  }
  for (const auto* path : {&a.root_crl, &a.pck_crl}) {
    if (path->empty()) continue;
    ASSIGN_OR_RETURN(auto bytes, ReadFileBounded(*path, kMaxCertificateFileSize));
    ASSIGN_OR_RETURN(auto crl, ParseCrl(bytes, *path));
    o.crls_der.push_back(std::move(crl));
  }
  if (a.ccel.empty() != a.ccel_table.empty()) {
    return absl::InvalidArgumentError("--ccel-table and --ccel go together");
  }
  if (!a.ccel.empty()) {
    ASSIGN_OR_RETURN(o.ccel_table, ReadFileBounded(a.ccel_table, 4096));
    ASSIGN_OR_RETURN(o.ccel_log, ReadFileBounded(a.ccel, tpm::kMaxEventLogSize));
  }
  if (!a.trust_anchor.empty()) {
    ASSIGN_OR_RETURN(auto bytes, ReadFileBounded(a.trust_anchor, kMaxCertificateFileSize));
    ASSIGN_OR_RETURN(o.trust_anchors_der, ParseCertificates(bytes, a.trust_anchor));
  }
  return o;
}

nlohmann::json QuoteToJson(const tdx::Quote& q) {
  nlohmann::json rtmr = nlohmann::json::array();
  for (const auto& r : q.body.rtmr) rtmr.push_back(HexEncode(r));
  tdx::TdAttributes a = tdx::DecodeTdAttributes(q.body.td_attributes);
  nlohmann::json j = {{"version", q.version},
                      {"tee_tcb_svn", HexEncode(q.body.tee_tcb_svn)},
                      {"mrtd", HexEncode(q.body.mrtd)},
                      {"rtmr", rtmr},
                      {"mrconfigid", HexEncode(q.body.mrconfigid)},
                      {"mrowner", HexEncode(q.body.mrowner)},
                      {"mrownerconfig", HexEncode(q.body.mrownerconfig)},
                      {"mrseam", HexEncode(q.body.mrseam)},
                      {"report_data", HexEncode(q.body.report_data)},
                      {"td_attributes",
                       {{"raw", absl::StrFormat("0x%016x", q.body.td_attributes)},
                        {"debug", a.debug},
                        {"sept_ve_disable", a.sept_ve_disable},
                        {"pks", a.pks},
                        {"kl", a.kl},
                        {"perfmon", a.perfmon}}},
                      {"tdx15", q.body.tdx15},
                      {"trailing_bytes", q.trailing_bytes}};
  if (q.body.tdx15) {
    j["tee_tcb_svn2"] = HexEncode(q.body.tee_tcb_svn2);
    j["mrservicetd"] = HexEncode(q.body.mrservicetd);
  }
  return j;
}

int RunTdx(const TdxArgs& a) {
  auto fail = [](const absl::Status& s) { return ReportFailure("tdx", s); };
  auto options = BuildOptions(a);
  if (!options.ok()) return fail(options.status());
  auto bytes = ReadFileBounded(a.quote, tdx::kMaxQuoteSize);
  if (!bytes.ok()) return fail(bytes.status());
  auto parsed = tdx::ParseQuote(*bytes);
  if (!parsed.ok()) return fail(parsed.status());
  CheckLog log;
  auto verified = tdx::VerifyQuote(*bytes, *options, &log);
  if (!verified.ok() && !IsVerificationFailure(verified.status())) return fail(verified.status());
  if (a.json) {
    nlohmann::json j = QuoteToJson(*parsed);
    if (verified.ok()) {
      j["fmspc"] = HexEncode(verified->pck.fmspc);
      j["pce_id"] = HexEncode(verified->pck.pce_id);
      j["pcesvn"] = verified->pck.pcesvn;
    }
    j["tcb_status"] = verified.ok() ? verified->tcb_status : "NotEvaluated";
    j["qe_tcb_status"] = verified.ok() ? verified->qe_tcb_status : "NotEvaluated";
    j["advisory_ids"] =
        verified.ok() ? nlohmann::json(verified->advisory_ids) : nlohmann::json::array();
    if (verified.ok() && verified->ccel_events) j["ccel_events"] = *verified->ccel_events;
    if (verified.ok() && verified->tdx_module_status)
      j["tdx_module_status"] = *verified->tdx_module_status;
    j["verified"] = verified.ok();
    j["checks"] = ChecksToJson(log);
    if (!verified.ok()) j["error"] = std::string(verified.status().message());
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("%s: TDX quote v%u (%s body)%s\n", verified.ok() ? "verified" : "NOT verified",
                parsed->version, parsed->body.tdx15 ? "TDX 1.5" : "TDX 1.0",
                parsed->trailing_bytes
                    ? absl::StrFormat(", %u trailing bytes ignored", parsed->trailing_bytes).c_str()
                    : "");
    PrintChecks(log);
  }
  return verified.ok() ? 0 : fail(verified.status());
}

}  // namespace

void AddTdxCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<TdxArgs>();
  CLI::App* cmd = app.add_subcommand("tdx", "Verify an Intel TDX quote (v4/v5)");
  cmd->add_option("QUOTE", a->quote, "TD quote")->required();
  cmd->add_option("--collateral", a->collateral, "TCB info / QE identity directory");
  cmd->add_option("--tcb-signing-chain", a->tcb_signing_chain, "TCB signing chain PEM");
  cmd->add_option("--pck-crl", a->pck_crl, "PCK CRL (DER or PEM)");
  cmd->add_option("--root-crl", a->root_crl, "Intel SGX Root CA CRL (DER or PEM)");
  cmd->add_flag("--require-crl", a->require_crl, "require both CRLs");
  cmd->add_flag("--skip-tcb", a->skip_tcb,
                "accept without TCB evaluation (tcb_status NotEvaluated)");
  cmd->add_option("--accept-tcb-status", a->accept_tcb_status, "accepted TCB statuses");
  cmd->add_option("--trust-anchor", a->trust_anchor,
                  "trust this root instead of the built-in Intel SGX Root CA");
  cmd->add_option("--now", a->now, "verification time, RFC 3339");
  cmd->add_flag("--allow-debug", a->allow_debug, "accept debug TDs");
  cmd->add_option("--expect-mrtd", a->expect_mrtd, "expected MRTD (hex)");
  cmd->add_option("--expect-rtmr", a->expect_rtmr, "expected RTMR, N=HEX (repeatable)");
  cmd->add_option("--expect-mrconfigid", a->expect_mrconfigid, "expected MRCONFIGID (hex)");
  cmd->add_option("--expect-mrowner", a->expect_mrowner, "expected MROWNER (hex)");
  cmd->add_option("--expect-report-data", a->expect_report_data, "expected REPORTDATA (hex)");
  cmd->add_option("--ccel-table", a->ccel_table, "ACPI CCEL table (with --ccel)");
  cmd->add_option("--ccel", a->ccel,
                  "CC event log, replayed into RTMR0-3 and compared with the quote");
  cmd->add_flag("--json", a->json, "print the claims and every check as JSON");
  cmd->callback([a, exit_code] { *exit_code = RunTdx(*a); });
}

}  // namespace attest::cli
