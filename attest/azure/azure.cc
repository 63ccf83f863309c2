#include "attest/azure/azure.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "attest/byte_reader.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/status.h"
#include "attest/tpm/ak.h"
#include "attest/tpm/eventlog.h"

namespace attest::azure {
namespace {

constexpr size_t kHclHeaderSize = 0x20;
constexpr size_t kRuntimeHeaderOffset = 0x4C0;  // runtime data follows its 20-byte header
constexpr size_t kMaxHclReportSize = 64 * 1024;
constexpr size_t kTdReportSize = 1024;

absl::StatusOr<std::vector<uint8_t>> ByteArray(const nlohmann::json& j, const char* what,
                                               size_t max) {
  if (!j.is_array())
    return absl::InvalidArgumentError(
        absl::StrCat("azure evidence: '", what, "' is not a byte array"));
  if (j.size() > max)
    return absl::InvalidArgumentError(absl::StrCat("azure evidence: '", what, "' is too long"));
  std::vector<uint8_t> out;
  out.reserve(j.size());
  for (const auto& v : j) {
    if (!v.is_number_unsigned() || v.get<uint64_t>() > 255) {
      return absl::InvalidArgumentError(
          absl::StrCat("azure evidence: '", what, "' holds a value that is not a byte"));
    }
    out.push_back(static_cast<uint8_t>(v.get<uint64_t>()));
  }
  return out;
}

const nlohmann::json* Member(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

}  // namespace

absl::StatusOr<HclReport> ParseHclReport(std::span<const uint8_t> bytes) {
  if (bytes.size() > kMaxHclReportSize) return absl::InvalidArgumentError("HCL report: too large");
  ByteReader r(bytes, "HCL report");
  ASSIGN_OR_RETURN(auto magic, r.ReadBytes(4));
  if (std::string(magic.begin(), magic.end()) != "HCLA") {
    return absl::InvalidArgumentError("HCL report: missing the 'HCLA' signature");
  }
  HclReport out;
  ASSIGN_OR_RETURN(out.version, r.ReadU32Le());
  RETURN_IF_ERROR(r.Skip(kRuntimeHeaderOffset - 8));
  ASSIGN_OR_RETURN(uint32_t data_size, r.ReadU32Le());
  ASSIGN_OR_RETURN(uint32_t rt_version, r.ReadU32Le());
  ASSIGN_OR_RETURN(out.report_type, r.ReadU32Le());
  ASSIGN_OR_RETURN(out.hash_type, r.ReadU32Le());
  ASSIGN_OR_RETURN(uint32_t variable_size, r.ReadU32Le());
  (void)rt_version;
  if (data_size != variable_size + 20) {
    return absl::InvalidArgumentError(
        absl::StrFormat("HCL report: runtime data size %u does not match its variable size %u + 20",
                        data_size, variable_size));
  }
  ASSIGN_OR_RETURN(auto runtime, r.ReadBytes(variable_size));
  out.runtime_data.assign(runtime.begin(), runtime.end());
  size_t hw_size;
  if (out.report_type == kReportTypeSnp) {
    hw_size = snp::kReportSize;
  } else if (out.report_type == kReportTypeTdx) {
    hw_size = kTdReportSize;
  } else {
    return absl::InvalidArgumentError(
        absl::StrFormat("HCL report: report type %u (2 = SNP, 4 = TDX)", out.report_type));
  }
  out.hardware_report.assign(bytes.begin() + kHclHeaderSize,
                             bytes.begin() + kHclHeaderSize + hw_size);
  return out;
}

absl::StatusOr<Evidence> ParseEvidenceJson(absl::string_view text) {
  if (text.size() > kMaxEvidenceJsonSize)
    return absl::InvalidArgumentError("azure evidence: larger than 1 MiB");
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return absl::InvalidArgumentError("azure evidence: not a JSON object");
  Evidence e;
  const nlohmann::json* report = Member(j, "report");
  const nlohmann::json* hcl = Member(j, "hcl_report");
  const nlohmann::json* quote = Member(j, report ? "quote" : "tpm_quote");
  if ((report == nullptr) == (hcl == nullptr) || quote == nullptr || !quote->is_object()) {
    return absl::InvalidArgumentError(
        "azure evidence: expected {report, vcek, quote} (SNP) or {hcl_report, td_quote, tpm_quote} "
        "(TDX)");
  }
  ASSIGN_OR_RETURN(auto hcl_bytes, ByteArray(report ? *report : *hcl,
                                             report ? "report" : "hcl_report", kMaxHclReportSize));
  ASSIGN_OR_RETURN(e.hcl, ParseHclReport(hcl_bytes));
  if (report) {
    const nlohmann::json* vcek = Member(j, "vcek");
    if (vcek == nullptr || !vcek->is_string())
      return absl::InvalidArgumentError("azure evidence: 'vcek' PEM missing");
    std::string pem = vcek->get<std::string>();
    ASSIGN_OR_RETURN(
        auto certs, ParseCertificates(std::span<const uint8_t>(
                                          reinterpret_cast<const uint8_t*>(pem.data()), pem.size()),
                                      "azure evidence vcek"));
    e.vcek_der = certs.front();
  } else {
    const nlohmann::json* td = Member(j, "td_quote");
    if (td == nullptr) return absl::InvalidArgumentError("azure evidence: 'td_quote' missing");
    ASSIGN_OR_RETURN(e.td_quote, ByteArray(*td, "td_quote", 64 * 1024));
  }
  const nlohmann::json* message = Member(*quote, "message");
  const nlohmann::json* signature = Member(*quote, "signature");
  const nlohmann::json* pcrs = Member(*quote, "pcrs");
  if (!message || !signature || !pcrs || !pcrs->is_array() || pcrs->size() > 32) {
    return absl::InvalidArgumentError(
        "azure evidence: quote needs message, signature and up to 32 pcrs");
  }
  ASSIGN_OR_RETURN(e.quote, ByteArray(*message, "quote.message", tpm::kMaxQuoteSize));
  ASSIGN_OR_RETURN(e.signature, ByteArray(*signature, "quote.signature", tpm::kMaxSignatureSize));
  for (size_t i = 0; i < pcrs->size(); ++i) {
    ASSIGN_OR_RETURN(auto value, ByteArray((*pcrs)[i], "quote.pcrs", 64));
    if (value.size() != 32)
      return absl::InvalidArgumentError(
          "azure evidence: quote.pcrs values must be 32-byte SHA-256");
    e.pcrs[tpm::kAlgSha256][static_cast<uint32_t>(i)] = std::move(value);
  }
  return e;
}

absl::Status CheckTdReport(const HclReport& hcl, std::span<const uint8_t> quoted, CheckLog& L) {
  // The HCL report carries the TDREPORT the TD quote was made from; its REPORTDATA sits at
  // offset 128 (after report type, reserved, CPUSVN, TEE_TCB_INFO and TEE_INFO hashes).
  constexpr size_t kTdReportDataOffset = 128;
  std::span<const uint8_t> tdreport(hcl.hardware_report);
  if (tdreport.size() < kTdReportDataOffset + 64 || quoted.size() != 64) {
    return L.Fail("azure.tdreport", "the HCL report holds no TDREPORT");
  }
  bool same = std::equal(quoted.begin(), quoted.end(), tdreport.begin() + kTdReportDataOffset);
  return L.Expect(same, "azure.tdreport",
                  same ? "the HCL report's TDREPORT carries the quoted REPORTDATA"
                       : absl::StrCat("TDREPORT REPORTDATA ",
                                      HexEncode(tdreport.subspan(kTdReportDataOffset, 64)),
                                      " but the TD quote has ", HexEncode(quoted)));
}

absl::StatusOr<std::vector<uint8_t>> RuntimeUserData(const HclReport& hcl) {
  const absl::string_view text(reinterpret_cast<const char*>(hcl.runtime_data.data()),
                               hcl.runtime_data.size());
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (!j.is_object()) return std::vector<uint8_t>();
  auto user = j.find("user-data");
  if (user == j.end()) return std::vector<uint8_t>();
  if (!user->is_string()) {
    return absl::InvalidArgumentError("runtime data: \"user-data\" is not a string");
  }
  auto decoded = HexDecode(user->get<std::string>());
  if (!decoded.ok() || decoded->size() != kUserDataSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("runtime data: \"user-data\" is not ", kUserDataSize, " bytes of hex"));
  }
  return *std::move(decoded);
}

absl::StatusOr<RuntimeClaims> CheckRuntimeData(const HclReport& hcl, std::span<const uint8_t> rd,
                                               CheckLog& L) {
  // The report data binds the runtime data: H(runtime data) then zeros.
  uint16_t alg;
  switch (hcl.hash_type) {
    case 1:
      alg = tpm::kAlgSha256;
      break;
    case 2:
      alg = tpm::kAlgSha384;
      break;
    case 3:
      alg = tpm::kAlgSha512;
      break;
    default:
      return L.Fail("azure.runtime_data.binding",
                    absl::StrFormat("unknown runtime-data hash type %u", hcl.hash_type));
  }
  ASSIGN_OR_RETURN(auto digest, tpm::Hash(alg, hcl.runtime_data));
  bool head = rd.size() >= digest.size() && std::equal(digest.begin(), digest.end(), rd.begin());
  bool tail = head && std::all_of(rd.begin() + static_cast<std::ptrdiff_t>(digest.size()), rd.end(),
                                  [](uint8_t b) { return b == 0; });
  RETURN_IF_ERROR(L.Expect(
      head && tail, "azure.runtime_data.binding",
      head && tail
          ? absl::StrCat("report_data = ", tpm::HashAlgName(alg), "(runtime data) || zeros")
          : absl::StrCat("report_data ", HexEncode(rd), " but ", tpm::HashAlgName(alg),
                         "(runtime data) is ", HexEncode(digest), " followed by zeros")));
  const absl::string_view text(reinterpret_cast<const char*>(hcl.runtime_data.data()),
                               hcl.runtime_data.size());
  RuntimeClaims out;
  auto ak = tpm::ParseAkJwk(text, "HCLAkPub");
  if (!ak.ok()) return L.Fail("azure.ak", std::string(ak.status().message()));
  out.ak = *ak;
  L.Pass("azure.ak", absl::StrCat("HCLAkPub from the bound runtime data: ", out.ak.Describe()));
  auto user_data = RuntimeUserData(hcl);
  if (!user_data.ok()) return L.Fail("azure.user_data", std::string(user_data.status().message()));
  out.user_data = *std::move(user_data);
  return out;
}

absl::StatusOr<Verified> VerifyEvidence(const Evidence& e, const Options& options, CheckLog* log) {
  CheckLog local;
  CheckLog& L = log ? *log : local;
  Verified out;
  std::span<const uint8_t> rd;
  if (e.hcl.report_type == kReportTypeTdx) {
    ASSIGN_OR_RETURN(out.tdx, tdx::VerifyQuote(e.td_quote, options.tdx, &L));
    rd = out.tdx->quote.body.report_data;
    RETURN_IF_ERROR(CheckTdReport(e.hcl, rd, L));
  } else {
    ASSIGN_OR_RETURN(auto verifier, snp::Verifier::Create(options.roots));
    snp::Certificates certs{e.vcek_der, options.snp_chain};
    ASSIGN_OR_RETURN(out.snp, verifier->Verify(e.hcl.hardware_report, certs, options.snp, &L));
    rd = out.snp->report.report_data;
  }
  ASSIGN_OR_RETURN(auto claims, CheckRuntimeData(e.hcl, rd, L));
  out.ak = claims.ak;

  ASSIGN_OR_RETURN(auto qv, tpm::QuoteVerifier::Create(out.ak));
  tpm::QuoteVerifyOptions qo;
  qo.nonce = options.nonce;
  qo.pcrs = e.pcrs;
  ASSIGN_OR_RETURN(out.quote,
                   qv->Verify(e.quote, e.signature, tpm::SignatureFormat::kAuto, qo, &L));
  if (options.expected_pcrs) {
    RETURN_IF_ERROR(tpm::CheckExpectedPcrs(out.quote.quoted_pcrs, *options.expected_pcrs, L));
  }
  return out;
}

}  // namespace attest::azure
