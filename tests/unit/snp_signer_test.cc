// The full verification path on evidence from the software signer: products and report versions
// the real vectors do not cover, every policy check, CRLs, the chain cache, cost before trust.
#include "snp_signer.h"

#include <gtest/gtest.h>

#include "attest/snp/amd_cert.h"
#include "attest/snp/verify.h"
#include "snp_test_util.h"

namespace attest::snp {
namespace {

using testing::SharedSnpSigner;
using testing::SoftwareVek;
using testing::VekOptions;

std::array<uint8_t, 64> Chip(uint8_t seed) {
  std::array<uint8_t, 64> c;
  for (size_t i = 0; i < c.size(); ++i) c[i] = static_cast<uint8_t>(seed + i);
  return c;
}

TcbVersion DefaultTcb(Product p) {
  TcbVersion t{4, 0, 22, 213, std::nullopt};
  if (p == Product::kTurin) t.fmc = 1;
  return t;
}

struct Evidence {
  std::vector<uint8_t> report;
  Certificates certs;
  VerifierConfig config;  // trusts the signer's root
};

Evidence MakeEvidence(Product product, uint32_t version, SigningKey kind,
                      const std::function<void(Report&)>& edit = nullptr,
                      const std::function<void(VekOptions&)>& edit_vek = nullptr) {
  const auto& signer = SharedSnpSigner(product);
  VekOptions vo;
  vo.kind = kind;
  vo.tcb = DefaultTcb(product);
  vo.chip_id = Chip(7);
  if (edit_vek) edit_vek(vo);
  // The report always describes the default machine; edit_vek may issue a mismatched VEK.
  auto report_edit = [&](Report& r) {
    uint64_t raw = EncodeTcb(DefaultTcb(product), product);
    r.current_tcb = r.reported_tcb = r.committed_tcb = r.launch_tcb = raw;
    if (kind == SigningKey::kVcek) r.chip_id = Chip(7);
    if (edit) edit(r);
  };
  auto signed_evidence = signer.MakeEvidence(version, vo, report_edit);
  EXPECT_TRUE(signed_evidence.ok()) << signed_evidence.status();
  Evidence e;
  e.report = signed_evidence->report;
  e.certs.vek_der = signed_evidence->vek.cert_der;
  e.certs.chain_der = signed_evidence->chain;
  e.config.trust_anchors_der = {signer.ark_der()};
  return e;
}

absl::StatusOr<VerifiedReport> VerifyEvidence(const Evidence& e, const Options& o, CheckLog* log) {
  return VerifyReport(e.report, e.certs, o, e.config, log);
}

TEST(SnpSigner, EveryProductVersionAndSignerVerifies) {
  for (Product product : {Product::kMilan, Product::kGenoa, Product::kTurin}) {
    for (uint32_t version : {2u, 3u, 5u}) {
      for (SigningKey kind : {SigningKey::kVcek, SigningKey::kVlek}) {
        SCOPED_TRACE(absl::StrCat(ProductName(product), " v", version, " ", SigningKeyName(kind)));
        Evidence e = MakeEvidence(product, version, kind);
        CheckLog log;
        auto r = VerifyEvidence(e, Options{}, &log);
        ASSERT_TRUE(r.ok()) << r.status();
        EXPECT_EQ(r->product, product);
        EXPECT_EQ(r->signer, kind);
        EXPECT_EQ(r->reported_tcb, DefaultTcb(product));
        EXPECT_EQ(r->report.launch_mit_vector.has_value(), version >= 5);
      }
    }
  }
}

TEST(SnpSigner, SoftwareRootIsNotTrustedByDefault) {
  Evidence e = MakeEvidence(Product::kMilan, 3, SigningKey::kVcek);
  CheckLog log;
  ExpectFailedCheck(VerifyReport(e.report, e.certs, Options{}, {}, &log), log, "snp.chain.anchor",
                    "not a trusted root");
  // Without its chain, the built-in AMD intermediates cannot have issued it.
  Certificates bare{e.certs.vek_der, {}};
  CheckLog log2;
  ExpectFailedCheck(VerifyReport(e.report, bare, Options{}, {}, &log2), log2, "snp.chain",
                    "unable to get local issuer certificate");
}

TEST(SnpSigner, CustomAnchorWithoutChainIsAUsageError) {
  Evidence e = MakeEvidence(Product::kGenoa, 3, SigningKey::kVcek);
  e.certs.chain_der.clear();
  auto r = VerifyEvidence(e, Options{}, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(ExitCodeFor(r.status()), 2) << r.status();
}

TEST(SnpSigner, VcekOfTheSameChipAtAnotherTcbFailsTheTcbCheckNotTheSignature) {
  Evidence e = MakeEvidence(Product::kMilan, 3, SigningKey::kVcek);
  const auto& signer = SharedSnpSigner(Product::kMilan);
  VekOptions other;
  other.tcb = DefaultTcb(Product::kMilan);
  other.tcb.snp -= 1;
  other.chip_id = Chip(7);
  auto vek = signer.IssueVek(other);
  ASSERT_TRUE(vek.ok());
  e.certs.vek_der = vek->cert_der;
  CheckLog log;
  ExpectFailedCheck(VerifyEvidence(e, Options{}, &log), log, "snp.tcb",
                    "reported_tcb.snp=22 but VCEK snpSPL=21");
  EXPECT_FALSE(Ran(log, "snp.signature")) << "the TCB check runs before any cryptography";
  EXPECT_FALSE(Ran(log, "snp.chain"));
}

TEST(SnpSigner, TurinComparesFmcAndEightByteHwid) {
  Evidence e = MakeEvidence(Product::kTurin, 5, SigningKey::kVcek, nullptr,
                            [](VekOptions& v) { v.tcb.fmc = 9; });
  CheckLog log;
  ExpectFailedCheck(VerifyEvidence(e, Options{}, &log), log, "snp.tcb",
                    "reported_tcb.fmc=1 but VCEK fmcSPL=9");

  Evidence other_chip = MakeEvidence(Product::kTurin, 5, SigningKey::kVcek, nullptr,
                                     [](VekOptions& v) { v.chip_id = Chip(99); });
  CheckLog log2;
  ExpectFailedCheck(VerifyEvidence(other_chip, Options{}, &log2), log2, "snp.hwid", "chip_id");

  Options min;
  min.policy.min_tcb = TcbVersion{4, 0, 22, 213, 2};
  Evidence good = MakeEvidence(Product::kTurin, 5, SigningKey::kVcek);
  CheckLog log3;
  ExpectFailedCheck(VerifyEvidence(good, min, &log3), log3, "snp.policy.min_tcb", "fmc 1 < 2");
  min.policy.min_tcb->fmc = 1;
  EXPECT_TRUE(VerifyEvidence(good, min, nullptr).ok());

  // An FMC minimum makes no sense for Milan.
  Options milan_min;
  milan_min.policy.min_tcb = TcbVersion{0, 0, 0, 0, 1};
  CheckLog log4;
  ExpectFailedCheck(
      VerifyEvidence(MakeEvidence(Product::kMilan, 3, SigningKey::kVcek), milan_min, &log4), log4,
      "snp.policy.min_tcb", "FMC");
}

TEST(SnpSigner, SigningKeyFieldMustMatchCertificate) {
  Evidence e = MakeEvidence(Product::kGenoa, 3, SigningKey::kVcek,
                            [](Report& r) { r.signing_key = SigningKey::kVlek; });
  CheckLog log;
  ExpectFailedCheck(VerifyEvidence(e, Options{}, &log), log, "snp.signing_key", "SIGNING_KEY=vlek");
  Evidence unsigned_report = MakeEvidence(Product::kGenoa, 3, SigningKey::kVcek,
                                          [](Report& r) { r.signing_key = SigningKey::kNone; });
  CheckLog log2;
  ExpectFailedCheck(VerifyEvidence(unsigned_report, Options{}, &log2), log2, "snp.signing_key",
                    "unsigned");
}

TEST(SnpSigner, ProductMustAgreeAcrossCpuidCertificateAndChain) {
  Evidence e = MakeEvidence(Product::kGenoa, 3, SigningKey::kVcek, [](Report& r) {
    r.cpuid_family = 0x19;
    r.cpuid_model = 0x01;  // Milan
  });
  CheckLog log;
  ExpectFailedCheck(VerifyEvidence(e, Options{}, &log), log, "snp.product", "report CPUID Milan");
}

TEST(SnpSigner, MaskedChipIdSkipsHwidComparison) {
  Evidence e = MakeEvidence(Product::kMilan, 3, SigningKey::kVcek, [](Report& r) {
    r.mask_chip_key = true;
    r.chip_id.fill(0);
  });
  CheckLog log;
  ASSERT_TRUE(VerifyEvidence(e, Options{}, &log).ok());
  bool noted = false;
  for (const Check& c : log.checks()) {
    if (c.name == "snp.hwid") noted = c.detail.find("MASK_CHIP_KEY") != std::string::npos;
  }
  EXPECT_TRUE(noted);
}

TEST(SnpSigner, PolicyChecks) {
  struct Case {
    const char* name;
    std::function<void(Report&)> edit;
    std::function<void(Policy&)> policy;
    const char* check;  // nullptr: passes
    const char* detail;
  };
  const Case cases[] = {
      {"vmpl above max", [](Report& r) { r.vmpl = 2; }, [](Policy& p) { p.max_vmpl = 1; },
       "snp.policy.vmpl", "VMPL 2, maximum allowed 1"},
      {"vmpl at max", [](Report& r) { r.vmpl = 1; }, [](Policy& p) { p.max_vmpl = 1; }, nullptr,
       ""},
      {"smt enabled", nullptr, [](Policy& p) { p.require_no_smt = true; }, "snp.policy.smt",
       "SMT_EN=1"},
      {"smt disabled",
       [](Report& r) {
         r.platform_info = {0, false, false};
       },
       [](Policy& p) { p.require_no_smt = true; }, nullptr, ""},
      {"migration agent", [](Report& r) { r.policy = DecodeGuestPolicy(0x30000 | 1 << 18); },
       [](Policy& p) { p.require_no_migration_agent = true; }, "snp.policy.migration_agent",
       "MIGRATE_MA=1"},
      {"single socket missing", nullptr, [](Policy& p) { p.require_single_socket = true; },
       "snp.policy.single_socket", "SINGLE_SOCKET=0"},
      {"single socket", [](Report& r) { r.policy = DecodeGuestPolicy(0x30000 | 1 << 20); },
       [](Policy& p) { p.require_single_socket = true; }, nullptr, ""},
      {"debug", [](Report& r) { r.policy = DecodeGuestPolicy(0x30000 | 1 << 19); }, nullptr,
       "snp.policy.debug", "DEBUG=1"},
      {"committed tcb below",
       [](Report& r) {
         r.committed_tcb = EncodeTcb({4, 0, 20, 213, std::nullopt}, Product::kMilan);
       },
       [](Policy& p) {
         p.min_committed_tcb = TcbVersion{4, 0, 21, 0, std::nullopt};
       },
       "snp.policy.min_tcb_committed", "snp 20 < 21"},
      {"launch tcb below",
       [](Report& r) {
         r.launch_tcb = EncodeTcb({3, 0, 22, 213, std::nullopt}, Product::kMilan);
       },
       [](Policy& p) {
         p.min_launch_tcb = TcbVersion{4, 0, 0, 0, std::nullopt};
       },
       "snp.policy.min_tcb_launch", "bl 3 < 4"},
      {"host data", [](Report& r) { r.host_data.fill(0x11); },
       [](Policy& p) { p.host_data = std::vector<uint8_t>(32, 0x22); }, "snp.expect.host_data",
       "but expected"},
      {"id key digest", [](Report& r) { r.id_key_digest.fill(0x11); },
       [](Policy& p) { p.id_key_digest = std::vector<uint8_t>(48, 0x11); }, nullptr, ""},
      {"family id", nullptr, [](Policy& p) { p.family_id = std::vector<uint8_t>(16, 1); },
       "snp.expect.family_id", "but expected"},
      {"image id", nullptr, [](Policy& p) { p.image_id = std::vector<uint8_t>(16, 0); }, nullptr,
       ""},
      {"report data", nullptr, [](Policy& p) { p.report_data = std::vector<uint8_t>(64, 9); },
       "snp.expect.report_data", "but expected"},
      {"chip id (relay)", nullptr, [](Policy& p) { p.chip_id = std::vector<uint8_t>(64, 1); },
       "snp.expect.chip_id", "but expected"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Evidence e = MakeEvidence(Product::kMilan, 3, SigningKey::kVcek, c.edit);
    Options o;
    if (c.policy) c.policy(o.policy);
    CheckLog log;
    auto r = VerifyEvidence(e, o, &log);
    if (c.check == nullptr) {
      EXPECT_TRUE(r.ok()) << r.status();
    } else {
      ExpectFailedCheck(r, log, c.check, c.detail);
      EXPECT_TRUE(Ran(log, "snp.signature")) << "policy runs only on authentic reports";
    }
  }
}

TEST(SnpSigner, CrlRevokesTheIntermediate) {
  const auto& signer = SharedSnpSigner(Product::kMilan);
  absl::Time now = absl::Now();
  Evidence e = MakeEvidence(Product::kMilan, 3, SigningKey::kVcek);

  auto good = signer.MakeCrl({12345}, now - absl::Hours(24), now + absl::Hours(24));
  ASSERT_TRUE(good.ok()) << good.status();
  e.config.crls_der = {*good};
  CheckLog log;
  ASSERT_TRUE(VerifyEvidence(e, Options{}, &log).ok());
  EXPECT_TRUE(Ran(log, "snp.crl"));

  auto revoked = signer.MakeCrl({testing::SoftwareSnpSigner::kAskSerial}, now - absl::Hours(24),
                                now + absl::Hours(24));
  e.config.crls_der = {*revoked};
  CheckLog log2;
  ExpectFailedCheck(VerifyEvidence(e, Options{}, &log2), log2, "snp.crl", "is revoked");

  auto expired = signer.MakeCrl({}, now - absl::Hours(48), now - absl::Hours(24));
  e.config.crls_der = {*expired};
  CheckLog log3;
  ExpectFailedCheck(VerifyEvidence(e, Options{}, &log3), log3, "snp.crl", "expired");

  // A CRL by another root (another product's ARK) does not cover this chain: fail closed.
  auto foreign =
      SharedSnpSigner(Product::kGenoa).MakeCrl({}, now - absl::Hours(1), now + absl::Hours(1));
  e.config.crls_der = {*foreign};
  CheckLog log4;
  ExpectFailedCheck(VerifyEvidence(e, Options{}, &log4), log4, "snp.crl",
                    "none of the 1 given CRLs");

  // A CRL with a forged signature (the Genoa ARK's CRL relabelled is not enough: tamper bytes).
  auto forged = *good;
  forged[forged.size() - 10] ^= 1;
  e.config.crls_der = {forged};
  CheckLog log5;
  ExpectFailedCheck(VerifyEvidence(e, Options{}, &log5), log5, "snp.crl",
                    "signature does not verify");
}

TEST(SnpSigner, VerifiedChainsAreCachedWithinTheirWindow) {
  Evidence e = MakeEvidence(Product::kGenoa, 3, SigningKey::kVcek, nullptr, [](VekOptions& v) {
    v.not_before = *ParseRfc3339("2024-01-01T00:00:00Z");
    v.not_after = *ParseRfc3339("2025-01-01T00:00:00Z");
  });
  auto verifier = Verifier::Create(e.config);
  ASSERT_TRUE(verifier.ok());
  Options inside;
  inside.now = *ParseRfc3339("2024-06-01T00:00:00Z");
  ASSERT_TRUE((*verifier)->Verify(e.report, e.certs, inside).ok());
  EXPECT_EQ((*verifier)->cached_chains(), 1u);
  CheckLog log;
  ASSERT_TRUE((*verifier)->Verify(e.report, e.certs, inside, &log).ok());
  bool reused = false;
  for (const Check& c : log.checks()) {
    if (c.name == "snp.chain") reused = c.detail.find("verified before") != std::string::npos;
  }
  EXPECT_TRUE(reused);
  // Outside the window the cache is not used and the chain check fails on expiry.
  Options after;
  after.now = *ParseRfc3339("2025-06-01T00:00:00Z");
  CheckLog log2;
  ExpectFailedCheck((*verifier)->Verify(e.report, e.certs, after, &log2), log2, "snp.chain",
                    "expired");
}

TEST(SnpSigner, CostBeforeTrust) {
  Evidence e = MakeEvidence(Product::kMilan, 3, SigningKey::kVcek);
  // A malformed report never reaches the certificates.
  auto bad = e.report;
  bad[0] = 9;
  CheckLog log;
  auto r = VerifyReport(bad, e.certs, Options{}, e.config, &log);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(ExitCodeFor(r.status()), 2);
  EXPECT_TRUE(log.checks().empty());
  // Oversized certificates and chains are rejected before parsing.
  Certificates huge = e.certs;
  huge.vek_der.resize(attest::snp::kMaxVekCertificateSize + 1);
  CheckLog log2;
  EXPECT_EQ(ExitCodeFor(VerifyReport(e.report, huge, Options{}, e.config, &log2).status()), 2);
  EXPECT_TRUE(log2.checks().empty());
  Certificates long_chain = e.certs;
  long_chain.chain_der.resize(10, e.certs.chain_der.front());
  EXPECT_EQ(ExitCodeFor(VerifyReport(e.report, long_chain, Options{}, e.config).status()), 2);
  // A certificate that does not match the report fails before any signature is checked.
  Evidence other = MakeEvidence(Product::kMilan, 3, SigningKey::kVcek, nullptr,
                                [](VekOptions& v) { v.tcb.ucode = 1; });
  Certificates mismatched = e.certs;
  mismatched.vek_der = other.certs.vek_der;
  CheckLog log3;
  EXPECT_FALSE(VerifyReport(e.report, mismatched, Options{}, e.config, &log3).ok());
  EXPECT_FALSE(Ran(log3, "snp.chain"));
  EXPECT_FALSE(Ran(log3, "snp.signature"));
}

}  // namespace
}  // namespace attest::snp
