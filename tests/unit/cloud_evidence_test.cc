// Issue 11: `appliance-verify evidence` on bundles made at test time from the real cloud vectors
// (Azure HCL + vTPM quote, Google Cloud vTPM quote with its AK certificate, AWS VLEK report):
// with `--unbound` their formats and chains verify and the output says they are bound to no
// channel; tampered and swapped variants fail naming the check. Nothing from the vectors is
// copied into the project: every bundle is assembled from ../shared/vectors when the test runs.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <tss2/tss2_mu.h>

#include <nlohmann/json.hpp>

#include "appliance/v1/evidence.pb.h"
#include "attest/encoding.h"
#include "attest/evidence.h"
#include "attest/files.h"
#include "attest/tpm/ak.h"
#include "cloud_vectors.h"
#include "test_support.h"
#include "tpm_signer.h"
#include "tpm_test_util.h"

namespace attest {
namespace {

using testing::AwsVectorBundle;
using testing::AzureVectorBundle;
using testing::GceVectorBundle;
using testing::Str;

namespace fs = std::filesystem;
using nlohmann::json;

class CloudEvidenceCli : public ::testing::Test {
 protected:
  testing::ProcessResult Verify(const appliance::v1::Evidence& ev, std::vector<std::string> args,
                                bool as_json_mapping = false) {
    const fs::path bundle = dir_.path() / ("bundle-" + std::to_string(n_++));
    if (as_json_mapping) {
      std::string text;
      EXPECT_TRUE(google::protobuf::util::MessageToJsonString(ev, &text).ok());
      testing::WriteFileOrDie(bundle, text);
    } else {
      testing::WriteFileOrDie(bundle, ev.SerializeAsString());
    }
    std::vector<std::string> argv = {APPLIANCE_VERIFY_BIN, "evidence", bundle.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunProcess(argv);
  }
  static void ExpectFails(const testing::ProcessResult& r, const std::string& check) {
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.err.find(check), std::string::npos) << "expected " << check << " in: " << r.err;
  }
  testing::ScopedTempDir dir_;
  int n_ = 0;
};

TEST_F(CloudEvidenceCli, AzureHclVectorVerifiesUnboundAndTamperedPartsFail) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  const auto ev = AzureVectorBundle(vectors);
  auto ok = Verify(ev, {"--unbound", "--json"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  auto j = json::parse(ok.out);
  EXPECT_EQ(j["platform"], "azure-snp");
  EXPECT_EQ(j["bound"], false);
  EXPECT_EQ(j["tpm_trust"], "in_tcb");
  EXPECT_EQ(j["snp_signer"], "vcek (Genoa)");
  EXPECT_EQ(j["measurement"],
            "f57dc09a507c6ecd82369bffb600f0003792f4d99bc26e985ec0c266fc34faf3706faf814c9e61065768a6"
            "ff917c89ae");
  for (const char* check : {"binding", "snp.signature", "azure.runtime_data.binding", "azure.ak",
                            "azure.ak.quote", "tpm.signature", "tpm.pcrs.digest"}) {
    EXPECT_NE(std::find(j["checks"].begin(), j["checks"].end(), check), j["checks"].end()) << check;
  }
  // The human form says it is unbound; the JSON mapping of the bundle is accepted too.
  auto human = Verify(ev, {"--unbound"}, /*as_json_mapping=*/true);
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("UNBOUND"), std::string::npos) << human.out;
  // Without --unbound a bundle with no binding is a usage error, never a pass.
  EXPECT_EQ(Verify(ev, {}).exit_code, 2);

  // Another AK than HCLAkPub signs the quote.
  auto other = testing::SoftwareTpmQuoter::Create(testing::SoftwareTpmQuoter::Scheme::kRsassa);
  ASSERT_TRUE(other.ok());
  auto swapped = ev;
  swapped.mutable_tpm()->set_ak_public(Str((*other)->ak_tpmt_public()));
  ExpectFails(Verify(swapped, {"--unbound"}), "azure.ak.quote");
  // The runtime data (HCLAkPub, user data) is not what the report binds.
  auto runtime = ev;
  (*runtime.mutable_azure()->mutable_hcl_report())[0x4D4 + 40] ^= 1;
  ExpectFails(Verify(runtime, {"--unbound"}), "azure.runtime_data.binding");
  // A signed byte of the SNP report (MEASUREMENT[0] at 0x90, inside the HCL report at 0x20).
  auto report = ev;
  (*report.mutable_azure()->mutable_hcl_report())[0x20 + 0x90] ^= 1;
  ExpectFails(Verify(report, {"--unbound"}), "snp.signature");
  // The quote (its pcrDigest, the last byte) and a PCR value the quote covers.
  auto quote = ev;
  quote.mutable_tpm()->mutable_attest()->back() ^= 1;
  ExpectFails(Verify(quote, {"--unbound"}), "tpm.signature");
  auto pcr = ev;
  (*pcr.mutable_tpm()->mutable_pcrs(0)->mutable_values())[4][0] ^= 1;
  ExpectFails(Verify(pcr, {"--unbound"}), "tpm.pcrs.digest");
  // The vTPM must be labelled in the trust boundary: it is the paravisor's.
  auto host = ev;
  host.mutable_tpm()->set_trust(appliance::v1::TPM_TRUST_HOST);
  ExpectFails(Verify(host, {"--unbound"}), "tpm.trust");
  // Truncated HCL reports are malformed input.
  for (size_t n : {size_t{0}, size_t{0x20}, size_t{0x4C0}, size_t{0x4D4 + 100}}) {
    auto cut = ev;
    cut.mutable_azure()->mutable_hcl_report()->resize(n);
    EXPECT_EQ(Verify(cut, {"--unbound"}).exit_code, 2) << n;
  }
}

TEST_F(CloudEvidenceCli, AwsVlekVectorVerifiesInsideItsCertificateWindow) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  const auto ev = AwsVectorBundle(vectors);
  auto ok = Verify(ev, {"--unbound", "--now", "2025-06-01T00:00:00Z", "--json"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  auto j = json::parse(ok.out);
  EXPECT_EQ(j["platform"], "snp");
  EXPECT_EQ(j["bound"], false);
  EXPECT_EQ(j["snp_signer"], "vlek (Milan)");
  EXPECT_EQ(j["measurement"],
            "8922ebbdd00ec2c541f36a6e7a82a8773a7accb451ed67bc94e740dbe92c93c4e8c9af857f5ceeb5a493df"
            "2a570d7bf0");
  // The VLEK expired on 2025-12-10: the real clock rejects it, naming the expiry.
  auto expired = Verify(ev, {"--unbound"});
  EXPECT_EQ(expired.exit_code, 1) << expired.err;
  EXPECT_NE(expired.err.find("expired"), std::string::npos) << expired.err;
  // Signed bytes: MEASUREMENT[0], REPORT_DATA[0], the reported TCB.
  for (size_t offset : {size_t{0x90}, size_t{0x50}, size_t{0x180}}) {
    auto tampered = ev;
    (*tampered.mutable_snp()->mutable_report())[offset] ^= 1;
    auto r = Verify(tampered, {"--unbound", "--now", "2025-06-01T00:00:00Z"});
    EXPECT_EQ(r.exit_code, 1) << offset << ": " << r.err;
    EXPECT_NE(r.err.find("snp."), std::string::npos) << r.err;
  }
  // A VCEK-style chain (ASK instead of ASVK) does not sign a VLEK.
  auto wrong_chain = ev;
  wrong_chain.mutable_snp()->clear_chain_der();
  auto vcek_chain = ParseCertificates(
      testing::ReadFileOrDie(vectors / "snp/certs/kds_ask_ark_milan.pem"), "kds chain");
  ASSERT_TRUE(vcek_chain.ok());
  for (const auto& c : *vcek_chain) wrong_chain.mutable_snp()->add_chain_der(Str(c));
  auto r = Verify(wrong_chain, {"--unbound", "--now", "2025-06-01T00:00:00Z"});
  EXPECT_NE(r.exit_code, 0) << r.out;
}

TEST_F(CloudEvidenceCli, GceAkCertificateChainVerifiesAndASwappedOneFails) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  const auto ev = GceVectorBundle(vectors);
  const fs::path ca = vectors / "tpm/gce-ek-ak-ca";
  const std::vector<std::string> google = {"--ak-ca", (ca / "tpm_ek_root_1.cer").string(),
                                           "--ak-ca", (ca / "tpm_ek_intermediate_2.crt").string()};
  auto args = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = {"--unbound", "--allow-vtpm-only"};
    a.insert(a.end(), google.begin(), google.end());
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  auto ok = Verify(ev, args({"--json"}));
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  auto j = json::parse(ok.out);
  EXPECT_EQ(j["platform"], "vtpm-only");
  EXPECT_EQ(j["tpm_trust"], "host");
  EXPECT_EQ(j["ak_certificate"], "chains to a given AK CA");
  EXPECT_NE(std::find(j["checks"].begin(), j["checks"].end(), "tpm.ak.certificate"),
            j["checks"].end());
  // Without Google's CA the certificate is carried, not vouched for.
  auto no_ca = Verify(ev, {"--unbound", "--allow-vtpm-only", "--json"});
  ASSERT_EQ(no_ca.exit_code, 0) << no_ca.err;
  EXPECT_FALSE(json::parse(no_ca.out).contains("ak_certificate"));

  // Swapped AK certificate: Google's intermediate in place of the AK certificate (another key,
  // and not an AK certificate) is rejected.
  auto swapped = ev;
  swapped.mutable_tpm()->set_ak_cert_chain_der(
      0, Str(testing::ReadFileOrDie(ca / "tpm_ek_intermediate_3.crt")));
  ExpectFails(Verify(swapped, args({})), "tpm.ak.certificate");
  // The certificate is for the real AK; another AK's quote does not match it.
  auto other = testing::SoftwareTpmQuoter::Create(testing::SoftwareTpmQuoter::Scheme::kRsassa);
  ASSERT_TRUE(other.ok());
  auto other_ak = ev;
  other_ak.mutable_tpm()->set_ak_public(Str((*other)->ak_tpmt_public()));
  ExpectFails(Verify(other_ak, args({})), "tpm.ak.certificate");
  // A CA that did not issue it.
  auto wrong_ca = Verify(
      ev, {"--unbound", "--allow-vtpm-only", "--ak-ca", (ca / "gcp_ek_ak_ca_root.crt").string()});
  ExpectFails(wrong_ca, "tpm.ak.certificate");
  // vtpm-only evidence still needs the explicit policy.
  ExpectFails(Verify(ev, {"--unbound"}), "platform.vtpm-only");
}

}  // namespace
}  // namespace attest
