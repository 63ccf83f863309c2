#include "attest/azure/azure.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "attest/status.h"
#include "attest/tpm/ak.h"
#include "snp_test_util.h"
#include "tdx_signer.h"
#include "test_support.h"
#include "tpm_signer.h"
#include "tpm_test_util.h"

namespace attest::azure {
namespace {

using snp::ExpectFailedCheck;

Options DefaultOptions() {
  Options o;
  o.nonce = *HexDecode(tpm::kAzureNonce);
  return o;
}

TEST(AzureGolden, GenoaEvidenceVerifiesEndToEnd) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto e = ParseEvidenceJson(tpm::ReadText(vectors / "snp/genoa-azure-vtpm/evidence.json"));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->hcl.report_type, kReportTypeSnp);
  EXPECT_EQ(e->hcl.hash_type, 1u);
  EXPECT_EQ(e->hcl.runtime_data,
            testing::ReadFileOrDie(vectors / "snp/genoa-azure-vtpm/runtime_data.json"));
  EXPECT_EQ(e->hcl.hardware_report,
            testing::ReadFileOrDie(vectors / "snp/genoa-azure-vtpm/snp_report.bin"));
  CheckLog log;
  auto v = VerifyEvidence(*e, DefaultOptions(), &log);
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_TRUE(v->snp.has_value());
  EXPECT_EQ(v->snp->product, snp::Product::kGenoa);
  for (const char* check : {"snp.signature", "azure.runtime_data.binding", "azure.ak",
                            "tpm.signature", "tpm.pcrs.digest"}) {
    EXPECT_TRUE(snp::Ran(log, check)) << check;
  }
  // Expected PCRs: the real PCR 0, then a wrong one.
  Options o = DefaultOptions();
  o.expected_pcrs = tpm::PcrBanks{{tpm::kAlgSha256, {{0, e->pcrs[tpm::kAlgSha256][0]}}}};
  EXPECT_TRUE(VerifyEvidence(*e, o).ok());
  o.expected_pcrs->at(tpm::kAlgSha256)[0][5] ^= 1;
  CheckLog log2;
  ExpectFailedCheck(VerifyEvidence(*e, o, &log2), log2, "tpm.pcrs.expected", "PCR 0 is");
}

TEST(AzureGolden, WrongNonceAndTamperedParts) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto e = *ParseEvidenceJson(tpm::ReadText(vectors / "snp/genoa-azure-vtpm/evidence.json"));
  Options o = DefaultOptions();
  o.nonce[0] ^= 1;
  CheckLog log;
  ExpectFailedCheck(VerifyEvidence(e, o, &log), log, "tpm.quote.nonce");

  // Every byte of the runtime data: the binding (or, for the key, the quote) fails.
  for (size_t i = 0; i < e.hcl.runtime_data.size(); ++i) {
    Evidence t = e;
    t.hcl.runtime_data[i] ^= 0x01;
    CheckLog l;
    auto r = VerifyEvidence(t, DefaultOptions(), &l);
    ASSERT_FALSE(r.ok()) << "runtime data flip at " << i;
    ASSERT_NE(l.first_failure(), nullptr);
    EXPECT_EQ(l.first_failure()->name, "azure.runtime_data.binding");
  }
  for (size_t i = 0; i < e.quote.size(); ++i) {
    Evidence t = e;
    t.quote[i] ^= 0x01;
    ASSERT_FALSE(VerifyEvidence(t, DefaultOptions()).ok()) << "quote flip at " << i;
  }
  for (size_t i = 0; i < e.signature.size(); ++i) {
    Evidence t = e;
    t.signature[i] ^= 0x01;
    ASSERT_FALSE(VerifyEvidence(t, DefaultOptions()).ok()) << "signature flip at " << i;
  }
  Evidence pcr = e;
  pcr.pcrs[tpm::kAlgSha256][10][0] ^= 1;
  CheckLog l;
  ExpectFailedCheck(VerifyEvidence(pcr, DefaultOptions(), &l), l, "tpm.pcrs.digest");
}

// A TDX-form bundle built like the SNP example (the collection has no real one): a software TD
// quote whose REPORTDATA is SHA-256(runtime data), an HCL report of type 4 carrying the TDREPORT
// with that REPORTDATA at offset 128, runtime data holding the AK as a JWK, and a software vTPM
// quote.
struct TdxBundle {
  std::unique_ptr<testing::SoftwareTdxSigner> tdx_signer;
  std::vector<uint8_t> nonce = {1, 2, 3, 4};
  nlohmann::json json;
};

TdxBundle MakeTdxBundle(uint64_t td_attributes) {
  TdxBundle b;
  b.tdx_signer = std::move(*testing::SoftwareTdxSigner::Create());
  auto quoter = testing::SoftwareTpmQuoter::Create(testing::SoftwareTpmQuoter::Scheme::kRsassa);
  EXPECT_TRUE(quoter.ok());
  // HCLAkPub: the quoter's RSA key as a JWK.
  std::string pem = (*quoter)->ak_pem();
  auto ak_pem = tpm::ParseAkPem(std::vector<uint8_t>(pem.begin(), pem.end()));
  EXPECT_TRUE(ak_pem.ok());
  std::string runtime = testing::RsaJwkSet("HCLAkPub", *ak_pem);
  std::vector<uint8_t> runtime_bytes(runtime.begin(), runtime.end());
  auto digest = *tpm::Hash(tpm::kAlgSha256, runtime_bytes);

  testing::SoftwareTdxSigner::QuoteSpec spec;
  std::copy(digest.begin(), digest.end(), spec.body.report_data.begin());
  spec.body.td_attributes = td_attributes;
  auto td_quote = b.tdx_signer->SignQuote(spec);
  EXPECT_TRUE(td_quote.ok());

  std::vector<uint8_t> hcl(2600, 0);
  std::memcpy(hcl.data(), "HCLA", 4);
  hcl[4] = 2;
  std::copy(digest.begin(), digest.end(), hcl.begin() + 0x20 + 128);  // TDREPORT REPORTDATA
  auto put32 = [&](size_t off, uint32_t v) {
    for (int i = 0; i < 4; ++i)
      hcl[off + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (8 * i));
  };
  put32(0x4C0, static_cast<uint32_t>(runtime.size() + 20));
  put32(0x4C4, 1);
  put32(0x4C8, kReportTypeTdx);
  put32(0x4CC, 1);  // SHA-256
  put32(0x4D0, static_cast<uint32_t>(runtime.size()));
  std::copy(runtime.begin(), runtime.end(), hcl.begin() + 0x4D4);

  tpm::PcrBanks pcrs;
  for (uint32_t i = 0; i < 24; ++i)
    pcrs[tpm::kAlgSha256][i] = std::vector<uint8_t>(32, static_cast<uint8_t>(i));
  auto q = (*quoter)->Quote(pcrs, b.nonce);
  EXPECT_TRUE(q.ok());
  nlohmann::json pcr_list = nlohmann::json::array();
  for (const auto& [i, v] : pcrs[tpm::kAlgSha256]) pcr_list.push_back(v);
  b.json = {
      {"hcl_report", hcl},
      {"td_quote", *td_quote},
      {"tpm_quote", {{"message", q->attest}, {"signature", q->signature}, {"pcrs", pcr_list}}}};
  return b;
}

TEST(AzureTdx, SoftwareSignedTdxBundleVerifiesEndToEnd) {
  TdxBundle b = MakeTdxBundle(1ull << 28);  // SEPT_VE_DISABLE
  const auto& tdx_signer = b.tdx_signer;
  const auto& nonce = b.nonce;
  const auto& j = b.json;
  auto e = ParseEvidenceJson(j.dump());
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->hcl.report_type, kReportTypeTdx);

  Options o;
  o.nonce = nonce;
  o.tdx.policy.skip_tcb = true;
  o.tdx.trust_anchors_der = {tdx_signer->root_der()};
  CheckLog log;
  auto v = VerifyEvidence(*e, o, &log);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->tdx.has_value());
  EXPECT_FALSE(v->snp.has_value());
  for (const char* check : {"tdx.quote.signature", "azure.tdreport", "azure.runtime_data.binding",
                            "azure.ak", "tpm.signature", "tpm.pcrs.digest"}) {
    EXPECT_TRUE(snp::Ran(log, check)) << check;
  }
  // Not trusted without the test root; a TDREPORT that is not the quoted one; other runtime data.
  Options untrusted = o;
  untrusted.tdx.trust_anchors_der.clear();
  CheckLog l1;
  ExpectFailedCheck(VerifyEvidence(*e, untrusted, &l1), l1, "tdx.pck.anchor");
  Evidence other_report = *e;
  other_report.hcl.hardware_report[128] ^= 1;
  CheckLog l2;
  ExpectFailedCheck(VerifyEvidence(other_report, o, &l2), l2, "azure.tdreport");
  Evidence other_runtime = *e;
  other_runtime.hcl.runtime_data.back() ^= 1;
  CheckLog l3;
  ExpectFailedCheck(VerifyEvidence(other_runtime, o, &l3), l3, "azure.runtime_data.binding");
}

// `appliance-verify azure` on TDX evidence that is not in the repository; a debug TD is rejected.
TEST(AzureTdx, CommandLineVerifiesSoftwareEvidenceAndRejectsADebugTd) {
  testing::ScopedTempDir dir;
  auto run = [&](const TdxBundle& b, const std::string& name, std::vector<std::string> extra) {
    auto evidence = dir.path() / (name + ".json");
    auto root = dir.path() / (name + "-root.pem");
    testing::WriteFileOrDie(evidence, b.json.dump());
    testing::WriteFileOrDie(root, testing::CertificatesToPem({b.tdx_signer->root_der()}));
    std::vector<std::string> argv = {
        APPLIANCE_VERIFY_BIN, "azure",          evidence.string(), "--nonce",
        HexEncode(b.nonce),   "--trust-anchor", root.string(),     "--skip-tcb"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return testing::RunProcess(argv);
  };
  TdxBundle good = MakeTdxBundle(1ull << 28);
  auto ok = run(good, "good", {"--json"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  auto j = nlohmann::json::parse(ok.out);
  EXPECT_EQ(j["platform"], "azure-tdx");
  EXPECT_EQ(j["tdx"]["tcb_status"], "NotEvaluated");

  TdxBundle debug = MakeTdxBundle((1ull << 28) | 1);  // DEBUG
  auto rejected = run(debug, "debug", {});
  EXPECT_EQ(rejected.exit_code, 1);
  EXPECT_NE(rejected.err.find("tdx.td.debug"), std::string::npos) << rejected.err;
  EXPECT_EQ(run(debug, "debug", {"--allow-debug"}).exit_code, 0);
}

TEST(AzureHcl, TruncationAndMalformedEvidence) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto hcl = testing::ReadFileOrDie(vectors / "snp/genoa-azure-vtpm/hcl_report.bin");
  ASSERT_TRUE(ParseHclReport(hcl).ok());
  for (size_t n = 0; n < 0x4D4 + 1200; ++n) {
    EXPECT_FALSE(ParseHclReport(std::span<const uint8_t>(hcl.data(), n)).ok()) << n;
  }
  auto bad_magic = hcl;
  bad_magic[0] = 'X';
  EXPECT_FALSE(ParseHclReport(bad_magic).ok());
  auto bad_type = hcl;
  bad_type[0x4C8] = 9;
  EXPECT_FALSE(ParseHclReport(bad_type).ok());
  for (const char* text : {"{}", "[]", "{\"report\": [256], \"vcek\": \"x\", \"quote\": {}}",
                           "{\"report\": \"abc\", \"quote\": {}}",
                           "{\"hcl_report\": [1], \"report\": [1], \"quote\": {}}"}) {
    EXPECT_FALSE(ParseEvidenceJson(text).ok()) << text;
  }
}

}  // namespace
}  // namespace attest::azure
