#include "attest/snp/amd_cert.h"

#include <gtest/gtest.h>

#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/snp/report.h"
#include "snp_signer.h"
#include "test_support.h"

namespace attest::snp {
namespace {

TEST(AmdCertGolden, RealVcekExtensions) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto ext = ParseAmdKeyExtensions(testing::ReadFileOrDie(vectors / "snp/milan-virtee/vcek.der"));
  ASSERT_TRUE(ext.ok()) << ext.status();
  EXPECT_EQ(ext->subject_cn, "SEV-VCEK");
  EXPECT_EQ(ext->issuer_cn, "SEV-Milan");
  EXPECT_EQ(ext->product_name, "Milan-B0");
  EXPECT_EQ(ext->bl_spl, 3);
  EXPECT_EQ(ext->tee_spl, 0);
  EXPECT_EQ(ext->snp_spl, 8);
  EXPECT_EQ(ext->ucode_spl, 115);
  EXPECT_FALSE(ext->fmc_spl.has_value());
  ASSERT_TRUE(ext->hwid.has_value());
  EXPECT_EQ(HexEncode(*ext->hwid).substr(0, 16), "d49554ec717f4e5b");
  EXPECT_FALSE(ext->csp_id.has_value());
}

TEST(AmdCertGolden, RealVlekExtensions) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto ext = ParseAmdKeyExtensions(testing::ReadFileOrDie(vectors / "snp/milan-aws-vlek/vlek.der"));
  ASSERT_TRUE(ext.ok()) << ext.status();
  EXPECT_EQ(ext->subject_cn, "SEV-VLEK");
  EXPECT_EQ(ext->issuer_cn, "SEV-VLEK-Milan");
  EXPECT_EQ(ext->product_name, "Milan");
  EXPECT_EQ(ext->snp_spl, 24);
  EXPECT_EQ(ext->ucode_spl, 217);
  EXPECT_FALSE(ext->hwid.has_value());
  EXPECT_EQ(ext->csp_id, "CN=cc-us-east-2.amazonaws.com");
}

TEST(AmdCertTruncation, EveryPrefixOfARealVcekIsAnError) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  for (const char* f : {"snp/milan-virtee/vcek.der", "snp/milan-aws-vlek/vlek.der"}) {
    auto der = testing::ReadFileOrDie(vectors / f);
    for (size_t n = 0; n < der.size(); ++n) {
      ASSERT_FALSE(ParseAmdKeyExtensions(std::span<const uint8_t>(der.data(), n)).ok())
          << f << " " << n;
    }
  }
}

TEST(AmdCertTruncation, EveryPrefixOfAPemBundleIsAnErrorOrFewerCertificates) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto pem = testing::ReadFileOrDie(vectors / "snp/milan-azure-hcl/vcek_chain.pem");
  std::string text(pem.begin(), pem.end());
  const std::string end_marker = "-----END CERTIFICATE-----";
  // (OpenSSL accepts a cut END line once the base64 body is complete: the DER is then intact.)
  size_t last_end = text.rfind(end_marker);
  // Any prefix that cuts the last certificate yields an error or fewer certificates.
  for (size_t n = 0; n < last_end; ++n) {
    auto certs = ParseCertificates(std::span<const uint8_t>(pem.data(), n), "bundle");
    if (certs.ok()) {
      EXPECT_LT(certs->size(), 3u) << n;
    }
  }
}

TEST(AmdCertSigner, TurinVcekHasFmcAndEightByteHwid) {
  const auto& signer = testing::SharedSnpSigner(Product::kTurin);
  testing::VekOptions o;
  o.tcb = {1, 2, 3, 4, 5};
  o.chip_id.fill(0xab);
  auto vek = signer.IssueVek(o);
  ASSERT_TRUE(vek.ok()) << vek.status();
  auto ext = ParseAmdKeyExtensions(vek->cert_der);
  ASSERT_TRUE(ext.ok()) << ext.status();
  EXPECT_EQ(ext->product_name, "Turin");
  EXPECT_EQ(ext->fmc_spl, 5);
  ASSERT_TRUE(ext->hwid.has_value());
  EXPECT_EQ(ext->hwid->size(), 8u);
}

TEST(AmdCertLimits, OversizedCertificateIsRejectedBeforeParsing) {
  std::vector<uint8_t> big(kMaxVekCertificateSize + 1, 0x30);
  auto ext = ParseAmdKeyExtensions(big);
  ASSERT_FALSE(ext.ok());
  EXPECT_NE(ext.status().message().find("limit"), absl::string_view::npos);
}

}  // namespace
}  // namespace attest::snp
