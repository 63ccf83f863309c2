// appliance-verify snp REPORT (--cert VCEK_OR_VLEK | --cert-store DIR) [options]
#include "snp_command.h"

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/snp/amd_cert.h"
#include "attest/snp/cert_store.h"
#include "attest/snp/report.h"
#include "attest/snp/verify.h"
#include "attest/status.h"
#include "output.h"

namespace attest::cli {
namespace {

constexpr size_t kMaxReportFileSize = 64 * 1024;

struct SnpArgs {
  std::string report;
  std::string cert;
  std::string cert_store;
  std::string chain;
  std::vector<std::string> trust_anchors;
  std::vector<std::string> crls;
  std::string now;
  bool allow_debug = false;
  std::optional<uint32_t> max_vmpl;
  bool require_no_smt = false;
  bool require_no_migration_agent = false;
  bool require_single_socket = false;
  std::string min_tcb, min_tcb_committed, min_tcb_launch;
  std::string expect_measurement, expect_report_data, expect_host_data, expect_chip_id,
      expect_id_key_digest, expect_family_id, expect_image_id;
  bool json = false;
};

// A report file is the raw 1184 bytes, or the same as hex text (as some tools store it).
absl::StatusOr<std::vector<uint8_t>> ReadReport(const std::string& path) {
  ASSIGN_OR_RETURN(auto bytes, ReadFileBounded(path, kMaxReportFileSize));
  if (bytes.size() == snp::kReportSize) return bytes;
  std::string text(bytes.begin(), bytes.end());
  std::string hex;
  for (char c : text) {
    if (!absl::ascii_isspace(static_cast<unsigned char>(c))) hex.push_back(c);
  }
  if (hex.size() == 2 * snp::kReportSize) {
    auto decoded = HexDecode(hex);
    if (decoded.ok()) return decoded;
  }
  return bytes;  // ParseReport names the size problem
}

absl::StatusOr<std::vector<std::vector<uint8_t>>> ReadCertFile(const std::string& path) {
  ASSIGN_OR_RETURN(auto bytes, ReadFileBounded(path, kMaxCertificateFileSize));
  return ParseCertificates(bytes, path);
}

absl::Status ParseHexOption(const std::string& value, absl::string_view flag,
                            std::optional<std::vector<uint8_t>>& out) {
  if (value.empty()) return absl::OkStatus();
  auto bytes = HexDecode(value);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", bytes.status().message()));
  }
  out = *std::move(bytes);
  return absl::OkStatus();
}

absl::Status ParseTcbOption(const std::string& value, absl::string_view flag,
                            std::optional<snp::TcbVersion>& out) {
  if (value.empty()) return absl::OkStatus();
  auto tcb = snp::ParseTcbList(value);
  if (!tcb.ok())
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", tcb.status().message()));
  out = *tcb;
  return absl::OkStatus();
}

absl::StatusOr<snp::Options> BuildOptions(const SnpArgs& a) {
  snp::Options o;
  if (!a.now.empty()) {
    ASSIGN_OR_RETURN(o.now, ParseRfc3339(a.now));
  }
  snp::Policy& p = o.policy;
  p.allow_debug = a.allow_debug;
  p.max_vmpl = a.max_vmpl;
  p.require_no_smt = a.require_no_smt;
  p.require_no_migration_agent = a.require_no_migration_agent;
  p.require_single_socket = a.require_single_socket;
  RETURN_IF_ERROR(ParseTcbOption(a.min_tcb, "--min-tcb", p.min_tcb));
  RETURN_IF_ERROR(ParseTcbOption(a.min_tcb_committed, "--min-tcb-committed", p.min_committed_tcb));
  RETURN_IF_ERROR(ParseTcbOption(a.min_tcb_launch, "--min-tcb-launch", p.min_launch_tcb));
  RETURN_IF_ERROR(ParseHexOption(a.expect_measurement, "--expect-measurement", p.measurement));
  RETURN_IF_ERROR(ParseHexOption(a.expect_report_data, "--expect-report-data", p.report_data));
  RETURN_IF_ERROR(ParseHexOption(a.expect_host_data, "--expect-host-data", p.host_data));
  RETURN_IF_ERROR(ParseHexOption(a.expect_chip_id, "--expect-chip-id", p.chip_id));
  RETURN_IF_ERROR(
      ParseHexOption(a.expect_id_key_digest, "--expect-id-key-digest", p.id_key_digest));
  RETURN_IF_ERROR(ParseHexOption(a.expect_family_id, "--expect-family-id", p.family_id));
  RETURN_IF_ERROR(ParseHexOption(a.expect_image_id, "--expect-image-id", p.image_id));
  return o;
}

nlohmann::json TcbToJson(uint64_t raw, snp::Product product) {
  auto tcb = snp::DecodeTcb(raw, product);
  if (!tcb.ok()) return absl::StrFormat("0x%016x", raw);
  nlohmann::json j = {{"bl", tcb->bl}, {"tee", tcb->tee}, {"snp", tcb->snp}, {"ucode", tcb->ucode}};
  if (tcb->fmc) j["fmc"] = *tcb->fmc;
  j["raw"] = absl::StrFormat("0x%016x", raw);
  return j;
}

nlohmann::json ReportToJson(const snp::Report& r, snp::Product product, absl::string_view signer) {
  nlohmann::json j;
  j["version"] = r.version;
  j["product"] = std::string(snp::ProductName(product));
  j["signer"] = std::string(signer);
  j["vmpl"] = r.vmpl;
  j["guest_svn"] = r.guest_svn;
  j["measurement"] = HexEncode(r.measurement);
  j["report_data"] = HexEncode(r.report_data);
  j["host_data"] = HexEncode(r.host_data);
  j["chip_id"] = HexEncode(r.chip_id);
  j["id_key_digest"] = HexEncode(r.id_key_digest);
  j["author_key_digest"] = HexEncode(r.author_key_digest);
  j["family_id"] = HexEncode(r.family_id);
  j["image_id"] = HexEncode(r.image_id);
  j["report_id"] = HexEncode(r.report_id);
  j["policy"] = {{"raw", absl::StrFormat("0x%x", r.policy.raw)},
                 {"debug", r.policy.debug},
                 {"smt", r.policy.smt},
                 {"migrate_ma", r.policy.migrate_ma},
                 {"single_socket", r.policy.single_socket},
                 {"abi_major", r.policy.abi_major},
                 {"abi_minor", r.policy.abi_minor}};
  j["platform_info"] = {{"raw", absl::StrFormat("0x%x", r.platform_info.raw)},
                        {"smt_enabled", r.platform_info.smt_enabled},
                        {"tsme_enabled", r.platform_info.tsme_enabled}};
  j["current_tcb"] = TcbToJson(r.current_tcb, product);
  j["reported_tcb"] = TcbToJson(r.reported_tcb, product);
  j["committed_tcb"] = TcbToJson(r.committed_tcb, product);
  j["launch_tcb"] = TcbToJson(r.launch_tcb, product);
  j["firmware"] =
      absl::StrFormat("%d.%d build %d", r.current_fw.major, r.current_fw.minor, r.current_fw.build);
  if (r.cpuid_family) {
    j["cpuid"] = {
        {"family", *r.cpuid_family}, {"model", *r.cpuid_model}, {"stepping", *r.cpuid_stepping}};
  }
  if (r.launch_mit_vector) {
    j["launch_mit_vector"] = absl::StrFormat("0x%x", *r.launch_mit_vector);
    j["current_mit_vector"] = absl::StrFormat("0x%x", *r.current_mit_vector);
  }
  return j;
}

// Runs the command; returns the exit code.
int RunSnp(const SnpArgs& a) {
  auto fail = [](const absl::Status& s) { return ReportFailure("snp", s); };
  if (a.cert.empty() == a.cert_store.empty()) {
    return fail(absl::InvalidArgumentError("exactly one of --cert and --cert-store is required"));
  }
  auto options = BuildOptions(a);
  if (!options.ok()) return fail(options.status());
  auto report_bytes = ReadReport(a.report);
  if (!report_bytes.ok()) return fail(report_bytes.status());
  auto report = snp::ParseReport(*report_bytes);
  if (!report.ok()) return fail(report.status());

  snp::Certificates certs;
  if (!a.cert.empty()) {
    auto bundle = ReadCertFile(a.cert);
    if (!bundle.ok()) return fail(bundle.status());
    certs.vek_der = std::move(bundle->front());
    certs.chain_der.assign(std::make_move_iterator(bundle->begin() + 1),
                           std::make_move_iterator(bundle->end()));
  } else {
    auto found = snp::CertStore(a.cert_store).Find(*report);
    if (!found.ok()) return fail(found.status());
    certs = *std::move(found);
  }
  if (!a.chain.empty()) {
    auto chain = ReadCertFile(a.chain);
    if (!chain.ok()) return fail(chain.status());
    certs.chain_der = *std::move(chain);
  }

  snp::VerifierConfig config;
  for (const auto& path : a.trust_anchors) {
    auto anchors = ReadCertFile(path);
    if (!anchors.ok()) return fail(anchors.status());
    for (auto& der : *anchors) config.trust_anchors_der.push_back(std::move(der));
  }
  for (const auto& path : a.crls) {
    auto bytes = ReadFileBounded(path, kMaxCertificateFileSize);
    if (!bytes.ok()) return fail(bytes.status());
    auto crl = ParseCrl(*bytes, path);
    if (!crl.ok()) return fail(crl.status());
    config.crls_der.push_back(*std::move(crl));
  }
  auto verifier = snp::Verifier::Create(config);
  if (!verifier.ok()) return fail(verifier.status());

  CheckLog log;
  auto verified = (*verifier)->Verify(*report, certs, *options, &log);
  if (!verified.ok() && !IsVerificationFailure(verified.status())) return fail(verified.status());

  // The product and signer as far as they are known, for the output on failure too.
  snp::Product product = verified.ok() ? verified->product : report->cpuid_product();
  std::string signer(snp::SigningKeyName(report->signing_key));
  if (product == snp::Product::kUnknown) {
    auto ext = snp::ParseAmdKeyExtensions(certs.vek_der);
    if (ext.ok()) product = snp::ProductFromName(ext->product_name.value_or(""));
  }
  if (a.json) {
    nlohmann::json j = ReportToJson(*report, product, signer);
    j["verified"] = verified.ok();
    j["checks"] = ChecksToJson(log);
    if (!verified.ok()) j["error"] = std::string(verified.status().message());
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("%s: SEV-SNP report v%u, %s, signed by %s\n",
                verified.ok() ? "verified" : "NOT verified", report->version,
                std::string(snp::ProductName(product)).c_str(), signer.c_str());
    PrintChecks(log);
  }
  return verified.ok() ? 0 : fail(verified.status());
}

}  // namespace

void AddSnpCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<SnpArgs>();
  CLI::App* cmd = app.add_subcommand("snp", "Verify an AMD SEV-SNP attestation report");
  cmd->add_option("REPORT", args->report, "ATTESTATION_REPORT (1184 bytes, binary or hex)")
      ->required();
  auto* cert = cmd->add_option("--cert", args->cert,
                               "VCEK or VLEK (DER or PEM); further PEM certificates are its chain");
  auto* store = cmd->add_option("--cert-store", args->cert_store,
                                "offline store laid out like AMD KDS paths (see docs)");
  cert->excludes(store);
  cmd->add_option("--chain", args->chain, "ASK/ASVK then ARK (PEM); default: built-in AMD roots");
  cmd->add_option("--trust-anchor", args->trust_anchors,
                  "trust this root (PEM/DER) instead of the built-in AMD ARKs");
  cmd->add_option("--crl", args->crls, "CRL from AMD KDS (DER or PEM), signed by the ARK");
  cmd->add_option("--now", args->now, "verification time, RFC 3339 (default: the real clock)");
  cmd->add_flag("--allow-debug", args->allow_debug, "accept guests whose policy allows debugging");
  cmd->add_option("--max-vmpl", args->max_vmpl, "highest acceptable VMPL")->check(CLI::Range(0, 3));
  cmd->add_flag("--require-no-smt", args->require_no_smt, "require SMT disabled on the platform");
  cmd->add_flag("--require-no-migration-agent", args->require_no_migration_agent,
                "require a guest policy without a migration agent");
  cmd->add_flag("--require-single-socket", args->require_single_socket,
                "require a single-socket guest policy");
  cmd->add_option("--min-tcb", args->min_tcb, "minimum reported TCB: BL,TEE,SNP,UCODE[,FMC]");
  cmd->add_option("--min-tcb-committed", args->min_tcb_committed, "minimum committed TCB");
  cmd->add_option("--min-tcb-launch", args->min_tcb_launch, "minimum launch TCB");
  cmd->add_option("--expect-measurement", args->expect_measurement, "expected MEASUREMENT (hex)");
  cmd->add_option("--expect-report-data", args->expect_report_data, "expected REPORT_DATA (hex)");
  cmd->add_option("--expect-host-data", args->expect_host_data, "expected HOST_DATA (hex)");
  cmd->add_option("--expect-chip-id", args->expect_chip_id, "expected CHIP_ID (hex)");
  cmd->add_option("--expect-id-key-digest", args->expect_id_key_digest,
                  "expected ID_KEY_DIGEST (hex)");
  cmd->add_option("--expect-family-id", args->expect_family_id, "expected FAMILY_ID (hex)");
  cmd->add_option("--expect-image-id", args->expect_image_id, "expected IMAGE_ID (hex)");
  cmd->add_flag("--json", args->json, "print the claims and every check as JSON");
  cmd->callback([args, exit_code] { *exit_code = RunSnp(*args); });
}

}  // namespace attest::cli
