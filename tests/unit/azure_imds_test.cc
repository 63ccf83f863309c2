// Issue 11: the supervisor's parsers of Azure IMDS responses (THIM's VCEK chain, the TD quote):
// valid input, every truncation, and malformed fields fail with a message, never a crash.
#include "supervisor/azure_imds.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "attest/encoding.h"
#include "snp_signer.h"

namespace appliance::supervisor {
namespace {

std::string ThimJson() {
  auto signer =
      attest::testing::SoftwareSnpSigner::Create(attest::snp::Product::kGenoa, /*rsa_bits=*/2048);
  EXPECT_TRUE(signer.ok());
  auto vek = (*signer)->IssueVek({});
  EXPECT_TRUE(vek.ok());
  auto vcek = attest::CertificatesToPem({vek->cert_der});
  auto chain = attest::CertificatesToPem((*signer)->Chain(attest::snp::SigningKey::kVcek));
  return nlohmann::json{{"vcekCert", *vcek}, {"certificateChain", *chain}, {"tcbm", "00"}}.dump();
}

TEST(AzureImdsParsers, ThimChainParsesAndEveryTruncationFails) {
  const std::string json = ThimJson();
  auto certs = ParseThimResponse(json);
  ASSERT_TRUE(certs.ok()) << certs.status();
  EXPECT_EQ(certs->size(), 3u) << "VCEK, ASK, ARK";
  for (size_t n = 0; n < json.size(); n += 7) {
    EXPECT_FALSE(ParseThimResponse(json.substr(0, n)).ok()) << n;
  }
  EXPECT_FALSE(ParseThimResponse(R"({"vcekCert": 5})").ok());
  EXPECT_FALSE(ParseThimResponse(R"({"certificateChain": ""})").ok());
  auto bad = ParseThimResponse(
      R"({"vcekCert":"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("Azure THIM"), std::string::npos) << bad.status();
  EXPECT_FALSE(ParseThimResponse(std::string(70 * 1024, ' ')).ok()) << "bounded";
}

TEST(AzureImdsParsers, TdQuoteResponse) {
  auto q = ParseTdQuoteResponse(R"({"quote":"AQIDBA"})");
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(*q, (std::vector<uint8_t>{1, 2, 3, 4}));
  auto url = ParseTdQuoteResponse(R"({"quote":"-_8"})");  // base64url alphabet
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(*url, (std::vector<uint8_t>{0xfb, 0xff}));
  EXPECT_FALSE(ParseTdQuoteResponse(R"({"quote":"!!"})").ok());
  EXPECT_FALSE(ParseTdQuoteResponse(R"({"quote":""})").ok());
  EXPECT_FALSE(ParseTdQuoteResponse(R"({"report":"AQID"})").ok());
  EXPECT_FALSE(ParseTdQuoteResponse(R"({"quote":"AQID)").ok());
  EXPECT_FALSE(ParseTdQuoteResponse("").ok());
}

}  // namespace
}  // namespace appliance::supervisor
