// Flip every signed byte: verification must fail, with a message that names what failed.
#include <gtest/gtest.h>

#include <functional>
#include <map>

#include "attest/snp/verify.h"
#include "snp_signer.h"
#include "snp_test_util.h"

namespace attest::snp {
namespace {

struct TamperTarget {
  const char* report;
  const char* cert;
  const char* now;
};

const TamperTarget kTargets[] = {
    {"milan-virtee/report.bin", "milan-virtee/vcek.der", nullptr},
    {"milan-go-sev-guest/report.bin", "milan-go-sev-guest/vcek.der", nullptr},
    {"milan-aws-vlek/report.bin", "milan-aws-vlek/vlek.der", "2025-06-01T00:00:00Z"},
    {"milan-azure-hcl/snp_report.bin", "milan-azure-hcl/vcek_chain.pem", nullptr},
    {"genoa-azure-vtpm/snp_report.bin", "genoa-azure-vtpm/vcek.pem", nullptr},
};

// Returns the name of what rejected the input: a check name, or "parse" for malformed input.
std::string Rejection(const absl::Status& status, const CheckLog& log) {
  if (IsVerificationFailure(status)) {
    return log.first_failure() ? log.first_failure()->name : "?";
  }
  return "parse";
}

TEST(SnpTamper, EveryByteOfTheSignedRegionAndSignatureOfRealReports) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto verifier = Verifier::Create({});
  ASSERT_TRUE(verifier.ok());
  for (const TamperTarget& t : kTargets) {
    SCOPED_TRACE(t.report);
    auto report = testing::ReadFileOrDie(vectors / "snp" / t.report);
    Certificates certs = CertsFromFile(vectors / "snp" / t.cert);
    Options o;
    o.policy.allow_debug = true;  // so that only the tampering can fail
    if (t.now) o.now = *ParseRfc3339(t.now);
    ASSERT_TRUE((*verifier)->Verify(report, certs, o).ok());
    std::map<std::string, int> by_check;
    // Signed region [0, 0x2A0) and R, S [0x2A0, 0x330).
    for (size_t i = 0; i < 0x330; ++i) {
      auto tampered = report;
      tampered[i] ^= 0x01;
      CheckLog log;
      auto r = (*verifier)->Verify(tampered, certs, o, &log);
      ASSERT_FALSE(r.ok()) << "flip at 0x" << std::hex << i << " was accepted";
      EXPECT_FALSE(r.status().message().empty());
      ++by_check[Rejection(r.status(), log)];
    }
    // Flips in must-be-zero fields are rejected by the parser; all others by the signature.
    EXPECT_GT(by_check["snp.signature"], 400);
    for (const auto& [check, n] : by_check) ::testing::Test::RecordProperty(check, n);
  }
}

// Flips every byte of each certificate that `select` returns (pointers into a copy of `certs`)
// and expects each flip to be rejected.
void ExpectEveryCertificateFlipRejected(
    const std::function<std::vector<std::vector<uint8_t>*>(Certificates&)>& select,
    bool with_kds_chain) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto verifier = Verifier::Create({});
  ASSERT_TRUE(verifier.ok());
  auto report = testing::ReadFileOrDie(vectors / "snp/milan-virtee/report.bin");
  Certificates certs = CertsFromFile(vectors / "snp/milan-virtee/vcek.der");
  if (with_kds_chain) certs.chain_der = ChainFromFile(vectors / "snp/certs/kds_ask_ark_milan.pem");
  ASSERT_TRUE((*verifier)->Verify(report, certs, Options{}).ok());
  Certificates probe = certs;
  size_t targets = select(probe).size();
  for (size_t t = 0; t < targets; ++t) {
    for (size_t i = 0; i < select(probe)[t]->size(); ++i) {
      Certificates tampered = certs;
      (*select(tampered)[t])[i] ^= 0x01;
      ASSERT_FALSE((*verifier)->Verify(report, tampered, Options{}).ok())
          << "certificate " << t << ": flip at " << i << " was accepted";
    }
  }
}

TEST(SnpTamper, EveryByteOfARealVcek) {
  ExpectEveryCertificateFlipRejected(
      [](Certificates& c) { return std::vector<std::vector<uint8_t>*>{&c.vek_der}; }, false);
}

TEST(SnpTamper, EveryByteOfTheChainGivenWithEvidence) {
  ExpectEveryCertificateFlipRejected(
      [](Certificates& c) {
        return std::vector<std::vector<uint8_t>*>{&c.chain_der[0], &c.chain_der[1]};
      },
      true);
}

TEST(SnpTamper, EverySignedByteOfASoftwareV5TurinReport) {
  const auto& signer = testing::SharedSnpSigner(Product::kTurin);
  testing::VekOptions vo;
  vo.tcb = {4, 0, 22, 213, 1};
  vo.chip_id.fill(3);
  auto evidence = signer.MakeEvidence(5, vo);
  ASSERT_TRUE(evidence.ok()) << evidence.status();
  const auto& report = evidence->report;
  VerifierConfig config;
  config.trust_anchors_der = {signer.ark_der()};
  auto verifier = Verifier::Create(config);
  ASSERT_TRUE(verifier.ok());
  Certificates certs{evidence->vek.cert_der, evidence->chain};
  ASSERT_TRUE((*verifier)->Verify(report, certs, Options{}).ok());
  for (size_t i = 0; i < 0x330; ++i) {
    auto tampered = report;
    tampered[i] ^= 0x80;
    ASSERT_FALSE((*verifier)->Verify(tampered, certs, Options{}).ok()) << std::hex << i;
  }
}

}  // namespace
}  // namespace attest::snp
