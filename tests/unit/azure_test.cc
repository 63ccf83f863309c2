#include "attest/azure/azure.h"

#include <gtest/gtest.h>

#include "attest/status.h"
#include "snp_test_util.h"
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
  EXPECT_EQ(v->snp.product, snp::Product::kGenoa);
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

TEST(AzureGolden, TdxFormIsNotYetVerifiable) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  // A TDX-form evidence built from the SNP example's structure (report type 4).
  auto j = nlohmann::json::parse(tpm::ReadText(vectors / "snp/genoa-azure-vtpm/evidence.json"));
  std::vector<int> hcl = j["report"].get<std::vector<int>>();
  hcl[0x4C0 + 8] = 4;
  nlohmann::json tdx = {
      {"hcl_report", hcl}, {"td_quote", std::vector<int>(100, 0)}, {"tpm_quote", j["quote"]}};
  auto e = ParseEvidenceJson(tdx.dump());
  ASSERT_TRUE(e.ok()) << e.status();
  CheckLog log;
  ExpectFailedCheck(VerifyEvidence(*e, DefaultOptions(), &log), log, "azure.tdx", "TDX");
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
