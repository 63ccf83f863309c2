// The verifier on the real hardware vectors in ../shared/vectors/snp, with the facts from their
// MANIFEST.md files.
#include <gtest/gtest.h>

#include "attest/encoding.h"
#include "attest/snp/cert_store.h"
#include "attest/snp/trust_roots.h"
#include "attest/snp/verify.h"
#include "snp_test_util.h"

namespace attest::snp {
namespace {

absl::Time At(const char* rfc3339) { return *ParseRfc3339(rfc3339); }

struct GoldenCase {
  const char* name;
  const char* report;
  const char* cert;
  const char* chain;  // optional
  bool allow_debug;
  const char* now;         // optional
  const char* fail_check;  // nullptr: must verify
  const char* fail_detail;
  Product product;
  SigningKey signer;
};

const GoldenCase kCases[] = {
    {"virtee", "milan-virtee/report.bin", "milan-virtee/vcek.der", nullptr, false, nullptr, nullptr,
     "", Product::kMilan, SigningKey::kVcek},
    {"virtee with KDS chain", "milan-virtee/report.bin", "milan-virtee/vcek.der",
     "certs/kds_ask_ark_milan.pem", false, nullptr, nullptr, "", Product::kMilan,
     SigningKey::kVcek},
    {"azure bundle", "milan-azure-hcl/snp_report.bin", "milan-azure-hcl/vcek_chain.pem", nullptr,
     false, nullptr, nullptr, "", Product::kMilan, SigningKey::kVcek},
    {"genoa", "genoa-azure-vtpm/snp_report.bin", "genoa-azure-vtpm/vcek.pem", nullptr, false,
     nullptr, nullptr, "", Product::kGenoa, SigningKey::kVcek},
    {"genoa with KDS chain", "genoa-azure-vtpm/snp_report.bin", "genoa-azure-vtpm/vcek.pem",
     "certs/kds_ask_ark_genoa.pem", false, nullptr, nullptr, "", Product::kGenoa,
     SigningKey::kVcek},
    {"debug guest rejected", "milan-go-sev-guest/report.bin", "milan-go-sev-guest/vcek.der",
     nullptr, false, nullptr, "snp.policy.debug", "DEBUG=1", Product::kMilan, SigningKey::kVcek},
    {"debug guest allowed", "milan-go-sev-guest/report.bin", "milan-go-sev-guest/vcek.der", nullptr,
     true, nullptr, nullptr, "", Product::kMilan, SigningKey::kVcek},
    {"vlek expired at the real clock", "milan-aws-vlek/report.bin", "milan-aws-vlek/vlek.der",
     nullptr, false, nullptr, "snp.chain", "certificate has expired", Product::kMilan,
     SigningKey::kVlek},
    {"vlek inside its window", "milan-aws-vlek/report.bin", "milan-aws-vlek/vlek.der", nullptr,
     false, "2025-06-01T00:00:00Z", nullptr, "", Product::kMilan, SigningKey::kVlek},
    {"vlek with KDS VLEK chain", "milan-aws-vlek/report.bin", "milan-aws-vlek/vlek.der",
     "certs/kds_ask_ark_milan_vlek.pem", false, "2025-06-01T00:00:00Z", nullptr, "",
     Product::kMilan, SigningKey::kVlek},
    {"vlek before its window", "milan-aws-vlek/report.bin", "milan-aws-vlek/vlek.der", nullptr,
     false, "2024-01-01T00:00:00Z", "snp.chain", "not yet valid", Product::kMilan,
     SigningKey::kVlek},
    {"vlek with the VCEK chain", "milan-aws-vlek/report.bin", "milan-aws-vlek/vlek.der",
     "certs/kds_ask_ark_milan.pem", false, "2025-06-01T00:00:00Z", "snp.chain",
     "issued by SEV-VLEK-Milan", Product::kMilan, SigningKey::kVlek},
    {"milan vcek against the genoa chain", "milan-virtee/report.bin", "milan-virtee/vcek.der",
     "certs/kds_ask_ark_genoa.pem", false, nullptr, "snp.product", "products disagree",
     Product::kMilan, SigningKey::kVcek},
    {"milan report with another chip's vcek", "milan-virtee/report.bin",
     "milan-go-sev-guest/vcek.der", nullptr, false, nullptr, "snp.tcb", "reported_tcb.bl=3",
     Product::kMilan, SigningKey::kVcek},
    {"same tcb, other chip's vcek", "milan-azure-hcl/snp_report.bin", "milan-virtee/vcek.der",
     nullptr, false, nullptr, "snp.hwid", "chip_id", Product::kMilan, SigningKey::kVcek},
    {"genoa report with a milan vcek", "genoa-azure-vtpm/snp_report.bin", "milan-virtee/vcek.der",
     nullptr, false, nullptr, "snp.product", "disagree", Product::kGenoa, SigningKey::kVcek},
};

TEST(SnpVerifyGolden, RealReports) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto verifier = Verifier::Create({});
  ASSERT_TRUE(verifier.ok()) << verifier.status();
  for (const GoldenCase& c : kCases) {
    SCOPED_TRACE(c.name);
    auto report = testing::ReadFileOrDie(vectors / "snp" / c.report);
    Certificates certs = CertsFromFile(vectors / "snp" / c.cert);
    if (c.chain) certs.chain_der = ChainFromFile(vectors / "snp" / c.chain);
    Options o;
    o.policy.allow_debug = c.allow_debug;
    if (c.now) o.now = At(c.now);
    CheckLog log;
    auto result = (*verifier)->Verify(report, certs, o, &log);
    if (c.fail_check == nullptr) {
      ASSERT_TRUE(result.ok()) << result.status();
      EXPECT_TRUE(log.all_ok());
      EXPECT_EQ(result->product, c.product);
      EXPECT_EQ(result->signer, c.signer);
      EXPECT_TRUE(Ran(log, "snp.chain"));
      EXPECT_TRUE(Ran(log, "snp.signature"));
    } else {
      ExpectFailedCheck(result, log, c.fail_check, c.fail_detail);
    }
  }
}

TEST(SnpVerifyGolden, DebugGuestFailsOnPolicyAfterCryptoSucceeded) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  CheckLog log;
  auto r =
      VerifyReport(testing::ReadFileOrDie(vectors / "snp/milan-go-sev-guest/report.bin"),
                   CertsFromFile(vectors / "snp/milan-go-sev-guest/vcek.der"), Options{}, {}, &log);
  ExpectFailedCheck(r, log, "snp.policy.debug", "--allow-debug");
  for (const Check& c : log.checks()) {
    if (c.name != "snp.policy.debug") {
      EXPECT_TRUE(c.ok) << c.name;
    }
  }
  EXPECT_TRUE(Ran(log, "snp.signature"));
}

TEST(SnpVerifyGolden, ExpectedValuesFromTheManifest) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto report = testing::ReadFileOrDie(vectors / "snp/milan-virtee/report.bin");
  auto certs = CertsFromFile(vectors / "snp/milan-virtee/vcek.der");
  Options o;
  o.policy.measurement = *HexDecode(
      "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81"
      "841f");
  o.policy.report_data = *HexDecode(
      "d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c645810b0f2cdfca0040433be063fc1a82"
      "93f0f3f8dae7b79fecb3d1cd82bd6a93ebfd");
  o.policy.host_data = std::vector<uint8_t>(32, 0);
  o.policy.chip_id = *HexDecode(
      "d49554ec717f4e5b0fe6b143bcf0405bd7ae304727edf46603f2a76aef6a3abc15d7af38db757039029f0efacfd0"
      "8e244324884738c72b082e2f87a44d541eb6");
  o.policy.min_tcb = TcbVersion{3, 0, 8, 115, std::nullopt};
  o.policy.max_vmpl = 0;
  CheckLog log;
  auto r = VerifyReport(report, certs, o, {}, &log);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(Ran(log, "snp.expect.measurement"));
  EXPECT_TRUE(Ran(log, "snp.expect.chip_id"));

  o.policy.measurement->back() ^= 1;
  CheckLog log2;
  ExpectFailedCheck(VerifyReport(report, certs, o, {}, &log2), log2, "snp.expect.measurement",
                    "but expected");

  Options o3;
  o3.policy.min_tcb = TcbVersion{3, 0, 9, 0, std::nullopt};
  CheckLog log3;
  ExpectFailedCheck(VerifyReport(report, certs, o3, {}, &log3), log3, "snp.policy.min_tcb",
                    "snp 8 < 9");
}

TEST(SnpVerifyGolden, MalformedExpectationIsAUsageError) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  Options o;
  o.policy.measurement = std::vector<uint8_t>(47);
  auto r = VerifyReport(testing::ReadFileOrDie(vectors / "snp/milan-virtee/report.bin"),
                        CertsFromFile(vectors / "snp/milan-virtee/vcek.der"), o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(ExitCodeFor(r.status()), 2);
}

TEST(SnpTrustRoots, BuiltinRootsAreTheVectorsCertificatesAndMatchTheManifestPins) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  struct P {
    Product product;
    const char* name;
    const char* ark_fingerprint;  // from vectors/snp/certs/MANIFEST.md
  };
  for (const P& p : {P{Product::kMilan, "milan",
                       "69D063B45344D26A2E94E1F4210DE49EF555308287D4C174445C95639A540BCD"},
                     P{Product::kGenoa, "genoa",
                       "4C6598D19C18719C5DFD4A7D335F674E5BFE1D8F800CEA2CF270C10D103DB2F1"},
                     P{Product::kTurin, "turin",
                       "1F084161A44BB6D93778A904877D4819CAFA5D05EF4193B2DED9DD9C73DD3F6A"}}) {
    auto roots = BuiltinAmdRoots(p.product);
    ASSERT_TRUE(roots.ok()) << roots.status();
    EXPECT_EQ(
        roots->ark_der,
        ChainFromFile(vectors / "snp/certs" / (std::string("ark_") + p.name + ".pem")).front());
    EXPECT_EQ(
        roots->ask_der,
        ChainFromFile(vectors / "snp/certs" / (std::string("ask_") + p.name + ".pem")).front());
    std::string vlek_bundle = std::string("kds_ask_ark_") + p.name + "_vlek.pem";
    EXPECT_EQ(roots->asvk_der, ChainFromFile(vectors / "snp/certs" / vlek_bundle).front());
    std::string pin(BuiltinFingerprints(p.product).ark);
    std::transform(pin.begin(), pin.end(), pin.begin(), ::toupper);
    EXPECT_EQ(pin, p.ark_fingerprint);
  }
}

TEST(SnpCertStore, FindsVcekAndChainInKdsLayout) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  testing::ScopedTempDir dir;
  auto report_bytes = testing::ReadFileOrDie(vectors / "snp/milan-virtee/report.bin");
  auto report = ParseReport(report_bytes);
  ASSERT_TRUE(report.ok());
  auto vcek = testing::ReadFileOrDie(vectors / "snp/milan-virtee/vcek.der");
  auto rel = CertStore::VcekPath(Product::kMilan, *report);
  EXPECT_EQ(rel.string(), "Milan/" + HexEncode(report->chip_id) + "/7308000000000003.der");
  testing::WriteFileOrDie(dir.path() / rel, vcek);
  testing::WriteFileOrDie(dir.path() / "Milan/cert_chain.pem",
                          testing::ReadFileOrDie(vectors / "snp/certs/kds_ask_ark_milan.pem"));
  auto certs = CertStore(dir.path()).Find(*report);
  ASSERT_TRUE(certs.ok()) << certs.status();
  EXPECT_EQ(certs->vek_der, vcek);
  EXPECT_EQ(certs->chain_der.size(), 2u);
  CheckLog log;
  EXPECT_TRUE(VerifyReport(report_bytes, *certs, Options{}, {}, &log).ok());
  EXPECT_TRUE(Ran(log, "snp.chain.anchor"));

  // Another report (other chip) is not in the store: the error names the paths tried.
  auto other = ParseReport(testing::ReadFileOrDie(vectors / "snp/milan-go-sev-guest/report.bin"));
  auto missing = CertStore(dir.path()).Find(*other);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("4405000000000002.der"), absl::string_view::npos);

  // VLEKs come with the evidence.
  auto vlek_report = ParseReport(testing::ReadFileOrDie(vectors / "snp/milan-aws-vlek/report.bin"));
  EXPECT_EQ(CertStore(dir.path()).Find(*vlek_report).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace attest::snp
