// appliance.v1.Evidence (DESIGN §4): the generated library links, and the canonical binary form
// round-trips every platform's fields.
#include <gtest/gtest.h>

#include <string>

#include "appliance/v1/evidence.pb.h"

namespace {

TEST(EvidenceProto, SnpBundleRoundTrips) {
  appliance::v1::Evidence e;
  e.set_binding_version(1);
  auto* nonce = e.add_binding();
  nonce->set_label("nonce");
  nonce->set_sha256(std::string(32, '\x11'));
  e.mutable_snp()->set_report(std::string(1184, '\x02'));
  e.mutable_snp()->set_vek_der("vcek");
  e.mutable_snp()->add_chain_der("ask");
  e.mutable_snp()->add_chain_der("ark");
  auto* tpm = e.mutable_tpm();
  tpm->set_trust(appliance::v1::TPM_TRUST_HOST);
  auto* bank = tpm->add_pcrs();
  bank->set_hash_alg(0x000b);
  (*bank->mutable_values())[15] = std::string(32, '\0');
  e.set_runtime_event_log("[]");
  e.mutable_release()->set_version("1.2.3");

  std::string wire;
  ASSERT_TRUE(e.SerializeToString(&wire));
  appliance::v1::Evidence back;
  ASSERT_TRUE(back.ParseFromString(wire));
  EXPECT_EQ(back.platform_case(), appliance::v1::Evidence::kSnp);
  EXPECT_EQ(back.snp().report().size(), 1184u);
  EXPECT_EQ(back.snp().chain_der_size(), 2);
  EXPECT_EQ(back.binding(0).label(), "nonce");
  EXPECT_EQ(back.tpm().trust(), appliance::v1::TPM_TRUST_HOST);
  EXPECT_EQ(back.tpm().pcrs(0).values().at(15).size(), 32u);
  EXPECT_EQ(back.release().version(), "1.2.3");
}

TEST(EvidenceProto, OneofHoldsOnePlatform) {
  appliance::v1::Evidence e;
  e.mutable_snp()->set_report("r");
  e.mutable_tdx()->set_quote("q");
  EXPECT_EQ(e.platform_case(), appliance::v1::Evidence::kTdx);
  EXPECT_FALSE(e.has_snp());
}

}  // namespace
