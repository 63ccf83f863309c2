// Reference values and the SNP certificate table: strict parsing, truncation, tampering.
#include "attest/evidence.h"

#include <gtest/gtest.h>

#include <cstring>

#include "attest/snp/cert_table.h"

namespace attest {
namespace {

std::vector<uint8_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }

const std::string kDigest = "sha256:" + std::string(64, 'a');

TEST(ReferenceValuesTest, ParsesTheDocumentedShape) {
  auto r = ParseReferenceValues(
      Bytes(R"({"version":1,"snp":{"measurements":[")" + std::string(96, 'b') +
            R"("],"min_tcb":{"bl":3,"tee":0,"snp":8,"ucode":115},"allow_debug":false},
      "container_digests":[")" +
            kDigest + R"("],"launch_config_sha256":[")" + std::string(64, 'c') + R"("]})"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->snp_measurements.size(), 1u);
  EXPECT_EQ(r->snp_measurements[0][0], 0xbb);
  ASSERT_TRUE(r->snp_min_tcb.has_value());
  EXPECT_EQ(r->snp_min_tcb->ucode, 115);
  EXPECT_EQ(r->container_digests[0][31], 0xaa);
  EXPECT_EQ(r->launch_config_sha256.size(), 1u);
  EXPECT_EQ(r->runtime_events.count(kEventContainerRestart), 1u);
}

TEST(ReferenceValuesTest, ParsesTdxSection) {
  auto r = ParseReferenceValues(Bytes(
      R"({"version":1,"tdx":{"mrtd":[")" + std::string(96, 'd') + R"("],"rtmr1":[")" +
      std::string(96, 'e') +
      R"("],"accepted_tcb_statuses":["UpToDate","SWHardeningNeeded"]},"container_digests":[")" +
      kDigest + R"("]})"));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->tdx_mrtd.size(), 1u);
  EXPECT_EQ(r->tdx_mrtd[0][47], 0xdd);
  ASSERT_EQ(r->tdx_rtmr.count(1), 1u);
  EXPECT_EQ(r->tdx_rtmr.count(0), 0u);
  EXPECT_EQ(r->tdx_accepted_tcb_statuses.size(), 2u);
  auto bad = ParseReferenceValues(
      Bytes(R"({"version":1,"tdx":{"rtmr3":[]},"container_digests":[")" + kDigest + R"("]})"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("rtmr3"), std::string::npos);
}

TEST(ReferenceValuesTest, RejectsMalformedInputNamingTheKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "file"},
      {R"({"version":2,"container_digests":[")" + kDigest + R"("]})", "version"},
      {R"({"version":1})", "container_digests"},
      {R"({"version":1,"container_digests":["sha256:zz"]})", "container_digests"},
      {R"({"version":1,"container_digests":[")" + std::string(71, 'a') + R"("]})",
       "container_digests"},
      {R"({"version":1,"container_digests":[")" + kDigest + R"("],"extra":1})", "extra"},
      {R"({"version":1,"container_digests":[")" + kDigest + R"("],"snp":{"measurements":["00"]}})",
       "snp.measurements"},
      {R"({"version":1,"container_digests":[")" + kDigest +
           R"("],"snp":{"min_tcb":{"bl":300,"tee":0,"snp":0,"ucode":0}}})",
       "snp.min_tcb.bl"},
      {R"({"version":1,"container_digests":[")" + kDigest + R"("],"snp":{"allow_debug":"yes"}})",
       "snp.allow_debug"},
  };
  for (const auto& [text, key] : cases) {
    auto r = ParseReferenceValues(Bytes(text));
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.status().message().find(key), std::string::npos) << r.status();
  }
  EXPECT_FALSE(ParseReferenceValues(std::vector<uint8_t>(kMaxReferenceValuesSize + 1, ' ')).ok());
}

// GUIDs in the table's EFI byte order.
std::vector<uint8_t> Guid(const char* text) {
  unsigned v[16];
  sscanf(text, "%2x%2x%2x%2x-%2x%2x-%2x%2x-%2x%2x-%2x%2x%2x%2x%2x%2x", &v[0], &v[1], &v[2], &v[3],
         &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11], &v[12], &v[13], &v[14], &v[15]);
  const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
  std::vector<uint8_t> out(16);
  for (int i = 0; i < 16; ++i) out[i] = static_cast<uint8_t>(v[order[i]]);
  return out;
}

void PutU32(std::vector<uint8_t>& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

std::vector<uint8_t> Table(const std::vector<std::pair<const char*, std::string>>& certs) {
  std::vector<uint8_t> out;
  uint32_t offset = static_cast<uint32_t>(24 * (certs.size() + 1));
  for (const auto& [guid, data] : certs) {
    auto g = Guid(guid);
    out.insert(out.end(), g.begin(), g.end());
    PutU32(out, offset);
    PutU32(out, static_cast<uint32_t>(data.size()));
    offset += static_cast<uint32_t>(data.size());
  }
  out.resize(out.size() + 24, 0);
  for (const auto& [guid, data] : certs) out.insert(out.end(), data.begin(), data.end());
  return out;
}

constexpr char kVcek[] = "63da758d-e664-4564-adc5-f4b93be8accd";
constexpr char kAsk[] = "4ab7b379-bbac-4fe4-a02f-05aef327c782";
constexpr char kArk[] = "c0b406a4-a803-4952-9743-3fb6014cd0ae";

TEST(CertTableTest, ParsesVcekAskArk) {
  auto t = snp::ParseCertTable(Table({{kVcek, "VCEK"}, {kAsk, "ASK!"}, {kArk, "ARK!!"}}));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(std::string(t->vcek_der.begin(), t->vcek_der.end()), "VCEK");
  EXPECT_EQ(std::string(t->ark_der.begin(), t->ark_der.end()), "ARK!!");
  EXPECT_TRUE(t->vlek_der.empty());
}

// AWS (issue 11): the extended report's table carries the VLEK (and the ASVK as "ASK").
TEST(CertTableTest, ParsesAwsVlekTable) {
  constexpr char kVlek[] = "a8074bc2-a25a-483e-aae6-39c045a0b8a1";
  auto t = snp::ParseCertTable(Table({{kVlek, "VLEK"}, {kAsk, "ASVK"}, {kArk, "ARK"}}));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(std::string(t->vlek_der.begin(), t->vlek_der.end()), "VLEK");
  EXPECT_TRUE(t->vcek_der.empty());
  EXPECT_EQ(std::string(t->ask_der.begin(), t->ask_der.end()), "ASVK");
}

TEST(CertTableTest, TruncationAndBadEntriesFail) {
  const auto good = Table({{kVcek, "VCEK-CERT"}, {kAsk, "ASK"}});
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(snp::ParseCertTable(std::span(good.data(), n)).ok()) << n;
  }
  auto dup = Table({{kVcek, "A"}, {kVcek, "B"}});
  EXPECT_FALSE(snp::ParseCertTable(dup).ok());
  auto out_of_range = good;
  out_of_range[16] = 0xff;  // first entry's offset
  auto s = snp::ParseCertTable(out_of_range);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("outside"), std::string::npos);
  EXPECT_FALSE(snp::ParseCertTable(std::vector<uint8_t>(snp::kMaxCertTableSize + 1)).ok());
}

}  // namespace
}  // namespace attest
