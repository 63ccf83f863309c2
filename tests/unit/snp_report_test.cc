#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "attest/encoding.h"
#include "attest/snp/report.h"
#include "snp_signer.h"
#include "test_support.h"

namespace attest::snp {
namespace {

// Facts stated in each vector folder's MANIFEST.md.
struct GoldenReport {
  const char* file;
  uint32_t version;
  uint32_t vmpl;
  uint64_t policy;
  SigningKey signer;
  const char* measurement;
  const char* chip_id_prefix;
  uint64_t reported_tcb;
  uint64_t current_tcb;
  Product cpuid_product;
};

const GoldenReport kGolden[] = {
    {"milan-go-sev-guest/report.bin", 2, 0, 0xb0000, SigningKey::kVcek,
     "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872"
     "b01",
     "3ac3fe21e13fb099", 0x4405000000000002, 0x4405000000000002, Product::kUnknown},
    {"milan-virtee/report.bin", 2, 0, 0x30000, SigningKey::kVcek,
     "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd818"
     "41f",
     "d49554ec717f4e5b", 0x7308000000000003, 0x7308000000000003, Product::kUnknown},
    {"milan-aws-vlek/report.bin", 3, 1, 0x30000, SigningKey::kVlek,
     "8922ebbdd00ec2c541f36a6e7a82a8773a7accb451ed67bc94e740dbe92c93c4e8c9af857f5ceeb5a493df2a570d7"
     "bf0",
     "0000000000000000", 0xd918000000000004, 0xdc18000000000004, Product::kMilan},
    {"milan-azure-hcl/snp_report.bin", 2, 0, 0x3001f, SigningKey::kVcek,
     "9ac48fcac8a2d88aeeff8d427ad4f2be0e3917c748a18bdf52cc317e7fe20308b459d5ef1a12e0c22944eb386d17c"
     "315",
     "19752a447db501a3", 0x7308000000000003, 0xd208000000000003, Product::kUnknown},
    {"genoa-azure-vtpm/snp_report.bin", 3, 0, 0x3001f, SigningKey::kVcek,
     "f57dc09a507c6ecd82369bffb600f0003792f4d99bc26e985ec0c266fc34faf3706faf814c9e61065768a6ff917c8"
     "9ae",
     "0506ffba875e939c", 0x541700000000000a, 0x541700000000000a, Product::kGenoa},
};

TEST(SnpReportGolden, ParsesEveryRealReportWithManifestFacts) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  for (const GoldenReport& g : kGolden) {
    SCOPED_TRACE(g.file);
    auto bytes = testing::ReadFileOrDie(vectors / "snp" / g.file);
    auto r = ParseReport(bytes);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->version, g.version);
    EXPECT_EQ(r->vmpl, g.vmpl);
    EXPECT_EQ(r->policy.raw, g.policy);
    EXPECT_EQ(r->signing_key, g.signer);
    EXPECT_EQ(HexEncode(r->measurement), g.measurement);
    EXPECT_EQ(HexEncode(r->chip_id).substr(0, 16), g.chip_id_prefix);
    EXPECT_EQ(r->reported_tcb, g.reported_tcb);
    EXPECT_EQ(r->current_tcb, g.current_tcb);
    EXPECT_EQ(r->cpuid_product(), g.cpuid_product);
    EXPECT_EQ(r->signature_algo, 1u);
    EXPECT_FALSE(r->launch_mit_vector.has_value());
  }
}

TEST(SnpReportGolden, DecodesPolicyAndTcbOfDebugGuest) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto r = ParseReport(testing::ReadFileOrDie(vectors / "snp/milan-go-sev-guest/report.bin"));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->policy.debug);
  EXPECT_TRUE(r->policy.smt);
  EXPECT_FALSE(r->policy.migrate_ma);
  EXPECT_FALSE(r->policy.single_socket);
  auto tcb = DecodeTcb(r->reported_tcb, Product::kMilan);
  ASSERT_TRUE(tcb.ok());
  EXPECT_EQ(*tcb, (TcbVersion{2, 0, 5, 68, std::nullopt}));
  EXPECT_EQ(r->current_fw.major, 1);
  EXPECT_EQ(r->current_fw.minor, 49);
  EXPECT_EQ(r->current_fw.build, 3);
}

TEST(SnpReportTruncation, EveryPrefixOfARealReportIsAParseError) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  for (const GoldenReport& g : kGolden) {
    auto bytes = testing::ReadFileOrDie(vectors / "snp" / g.file);
    for (size_t n = 0; n < bytes.size(); ++n) {
      auto r = ParseReport(std::span<const uint8_t>(bytes.data(), n));
      ASSERT_FALSE(r.ok()) << g.file << " prefix " << n;
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    }
    bytes.push_back(0);
    EXPECT_FALSE(ParseReport(bytes).ok()) << "one byte too many";
  }
}

std::vector<uint8_t> SyntheticReport(Product product, uint32_t version) {
  std::array<uint8_t, 64> chip{};
  chip.fill(0x5a);
  return testing::EncodeReport(
      testing::MakeReportFields(product, version, TcbVersion{3, 0, 8, 115, std::nullopt}, chip));
}

TEST(SnpReportTruncation, EveryPrefixOfASyntheticV5ReportIsAParseError) {
  auto bytes = SyntheticReport(Product::kGenoa, 5);
  ASSERT_TRUE(ParseReport(bytes).ok());
  for (size_t n = 0; n < bytes.size(); ++n) {
    ASSERT_FALSE(ParseReport(std::span<const uint8_t>(bytes.data(), n)).ok()) << n;
  }
}

TEST(SnpReportLayout, Version5CarriesMitigationVectors) {
  auto r = ParseReport(SyntheticReport(Product::kTurin, 5));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->launch_mit_vector, 0x3u);
  EXPECT_EQ(r->current_mit_vector, 0x7u);
  EXPECT_EQ(r->cpuid_product(), Product::kTurin);
}

TEST(SnpReportLayout, MustBeZeroFieldsAreEnforced) {
  struct Case {
    size_t offset;
    uint32_t version;
    const char* field;
  };
  const Case cases[] = {
      {0x04C, 3, "reserved field 0x04C"},
      {0x188, 2, "reserved field 0x188"},  // CPUID bytes are reserved in v2
      {0x18B, 3, "reserved field 0x18B"},
      {0x19F, 3, "reserved field 0x18B"},
      {0x1EB, 3, "reserved field 0x1EB"},
      {0x1EF, 3, "reserved field 0x1EF"},
      {0x1F8, 3, "reserved field 0x1F8"},  // mitigation vectors exist from v5
      {0x29F, 3, "reserved field 0x1F8"},
      {0x208, 5, "reserved field 0x208"},
      {0x330, 3, "reserved signature field 0x330"},
      {0x49F, 3, "reserved signature field 0x330"},
  };
  for (const Case& c : cases) {
    auto bytes = SyntheticReport(Product::kMilan, c.version);
    bytes[c.offset] = 0x01;
    auto r = ParseReport(bytes);
    ASSERT_FALSE(r.ok()) << std::hex << c.offset;
    EXPECT_NE(r.status().message().find(c.field), absl::string_view::npos) << r.status();
  }
  // The high 24 bytes of R and S: P-384 scalars are 48 bytes.
  for (size_t offset : {0x2A0 + 48, 0x2A0 + 71, 0x2E8 + 48, 0x2E8 + 71}) {
    auto bytes = SyntheticReport(Product::kMilan, 3);
    bytes[offset] = 0x80;
    EXPECT_FALSE(ParseReport(bytes).ok()) << std::hex << offset;
  }
}

TEST(SnpReportLayout, RejectsUnsupportedVersionsAlgorithmsAndKeys) {
  auto with = [](size_t offset, uint8_t value) {
    auto b = SyntheticReport(Product::kMilan, 3);
    b[offset] = value;
    return ParseReport(b).status();
  };
  for (uint8_t v : {0, 1, 4, 6}) EXPECT_FALSE(with(0x000, v).ok()) << "version " << int(v);
  EXPECT_FALSE(with(0x034, 2).ok()) << "signature algorithm 2";
  EXPECT_FALSE(with(0x030, 4).ok()) << "VMPL 4";
  EXPECT_FALSE(with(0x00A, 0x00).ok()) << "policy bit 17 must be one";
  EXPECT_FALSE(with(0x048, 2 << 2).ok()) << "SIGNING_KEY 2 is reserved";
  EXPECT_FALSE(with(0x048, 0x20).ok()) << "key field bit 5 is reserved";
  EXPECT_TRUE(with(0x048, 7 << 2).ok()) << "SIGNING_KEY 7 (none) parses; verification rejects it";
}

TEST(SnpTcb, MilanAndTurinLayouts) {
  TcbVersion t{3, 1, 8, 115, std::nullopt};
  EXPECT_EQ(EncodeTcb(t, Product::kMilan), 0x7308000000000103u);
  EXPECT_EQ(*DecodeTcb(0x7308000000000103u, Product::kGenoa), t);
  TcbVersion turin{3, 1, 8, 115, 2};
  uint64_t raw = EncodeTcb(turin, Product::kTurin);
  EXPECT_EQ(raw, 0x7300000008010302u);
  EXPECT_EQ(*DecodeTcb(raw, Product::kTurin), turin);
  EXPECT_FALSE(DecodeTcb(0x0000000100000000u, Product::kMilan).ok()) << "reserved byte 4";
  EXPECT_FALSE(DecodeTcb(0x0000000100000000u, Product::kTurin).ok()) << "reserved byte 4";
  EXPECT_EQ(TcbToString(turin), "bl=3 tee=1 snp=8 ucode=115 fmc=2");
}

TEST(SnpTcb, ParseListAndCompare) {
  EXPECT_EQ(*ParseTcbList("3,0,8,115"), (TcbVersion{3, 0, 8, 115, std::nullopt}));
  EXPECT_EQ(ParseTcbList("3,0,8,115,1")->fmc, 1);
  EXPECT_FALSE(ParseTcbList("3,0,8").ok());
  EXPECT_FALSE(ParseTcbList("3,0,8,256").ok());
  EXPECT_FALSE(ParseTcbList("3,0,x,1").ok());
  EXPECT_EQ(FirstTcbComponentBelow({3, 0, 8, 115, std::nullopt}, {3, 0, 9, 100, std::nullopt}),
            "snp 8 < 9");
  EXPECT_EQ(FirstTcbComponentBelow({3, 0, 8, 115, std::nullopt}, {3, 0, 8, 115, std::nullopt}), "");
}

TEST(SnpProduct, FromCpuidAndName) {
  EXPECT_EQ(ProductFromCpuid(0x19, 0x01), Product::kMilan);
  EXPECT_EQ(ProductFromCpuid(0x19, 0x11), Product::kGenoa);
  EXPECT_EQ(ProductFromCpuid(0x19, 0xA0), Product::kGenoa);
  EXPECT_EQ(ProductFromCpuid(0x1A, 0x02), Product::kTurin);
  EXPECT_EQ(ProductFromCpuid(0x17, 0x31), Product::kUnknown);
  EXPECT_EQ(ProductFromName("Milan-B0"), Product::kMilan);
  EXPECT_EQ(ProductFromName("Genoa"), Product::kGenoa);
  EXPECT_EQ(ProductFromName("Rome"), Product::kUnknown);
}

}  // namespace
}  // namespace attest::snp
