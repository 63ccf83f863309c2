#include <gtest/gtest.h>

#include <vector>

#include "attest/byte_reader.h"
#include "attest/check.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/status.h"
#include "attest/verify_options.h"
#include "test_support.h"

namespace attest {
namespace {

TEST(ByteReader, ReadsLittleAndBigEndian) {
  std::vector<uint8_t> b = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
  ByteReader r(b, "test");
  EXPECT_EQ(*r.ReadU8(), 1);
  EXPECT_EQ(*r.ReadU16Le(), 0x0302);
  EXPECT_EQ(*r.ReadU32Le(), 0x07060504u);
  EXPECT_EQ(*r.ReadU64Le(), 0x0f0e0d0c0b0a0908ull);
  EXPECT_EQ(*r.ReadU16Be(), 0x1011);
  EXPECT_EQ(r.remaining(), 2u);
  EXPECT_FALSE(r.ReadU32Be().ok());
  EXPECT_EQ(r.offset(), 17u) << "a failed read consumes nothing";
  EXPECT_FALSE(r.ExpectEnd().ok());
  EXPECT_TRUE(r.Skip(2).ok());
  EXPECT_TRUE(r.ExpectEnd().ok());
}

TEST(ByteReader, TruncationNamesStructureAndOffset) {
  std::vector<uint8_t> b(3);
  ByteReader r(b, "widget");
  ASSERT_TRUE(r.Skip(2).ok());
  auto v = r.ReadU16Le();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(v.status().message().find("widget: truncated"), absl::string_view::npos);
  EXPECT_NE(v.status().message().find("offset 0x2"), absl::string_view::npos);
}

TEST(ByteReader, ReadZerosNamesFieldAndByte) {
  std::vector<uint8_t> b = {0, 0, 7, 0};
  ByteReader r(b, "thing");
  auto s = r.ReadZeros(4, "reserved field 0x10");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("reserved field 0x10 must be zero"), absl::string_view::npos);
  EXPECT_NE(s.message().find("offset 0x2 is 0x07"), absl::string_view::npos);
}

TEST(Encoding, HexRoundTripAndErrors) {
  std::vector<uint8_t> b = {0x00, 0xab, 0xff, 0x10};
  EXPECT_EQ(HexEncode(b), "00abff10");
  EXPECT_EQ(*HexDecode("00ABff10"), b);
  EXPECT_FALSE(HexDecode("abc").ok());
  EXPECT_FALSE(HexDecode("zz").ok());
  EXPECT_TRUE(HexDecode("")->empty());
}

TEST(Encoding, Base64RoundTripAndErrors) {
  for (size_t n = 0; n < 10; ++n) {
    std::vector<uint8_t> b(n);
    for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 37 + 1);
    std::string text = Base64Encode(b);
    auto back = Base64Decode(text);
    ASSERT_TRUE(back.ok()) << text;
    EXPECT_EQ(*back, b) << text;
  }
  EXPECT_EQ(Base64Encode(std::vector<uint8_t>{'h', 'i'}), "aGk=");
  EXPECT_FALSE(Base64Decode("aGk").ok());
  EXPECT_FALSE(Base64Decode("a=Gk").ok());
  EXPECT_FALSE(Base64Decode("a*Gk").ok());
}

TEST(Time, ParsesRfc3339AndDates) {
  auto t = ParseRfc3339("2025-06-01T00:00:00Z");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(absl::ToUnixSeconds(*t), 1748736000);
  EXPECT_EQ(absl::ToUnixSeconds(*ParseRfc3339("2025-06-01")), 1748736000);
  EXPECT_EQ(FormatRfc3339(*t), "2025-06-01T00:00:00Z");
  EXPECT_FALSE(ParseRfc3339("yesterday").ok());
}

TEST(Status, ExitCodes) {
  EXPECT_EQ(ExitCodeFor(absl::OkStatus()), 0);
  EXPECT_EQ(ExitCodeFor(VerificationFailed("snp.signature", "bad")), 1);
  EXPECT_EQ(ExitCodeFor(absl::InvalidArgumentError("malformed")), 2);
  EXPECT_EQ(ExitCodeFor(absl::NotFoundError("missing")), 2);
  EXPECT_EQ(VerificationFailed("a.b", "x 1 but y 2").message(), "a.b: x 1 but y 2");
}

TEST(CheckLog, RecordsEveryCheck) {
  CheckLog log;
  log.Pass("one", "fine");
  EXPECT_TRUE(log.Expect(true, "two", "fine").ok());
  auto s = log.Expect(false, "three", "a 1 but b 2");
  EXPECT_TRUE(IsVerificationFailure(s));
  ASSERT_EQ(log.checks().size(), 3u);
  EXPECT_FALSE(log.all_ok());
  ASSERT_NE(log.first_failure(), nullptr);
  EXPECT_EQ(log.first_failure()->name, "three");
}

TEST(Files, ReadFileBoundedRejectsOversizedAndMissing) {
  testing::ScopedTempDir dir;
  auto path = dir.path() / "f";
  testing::WriteFileOrDie(path, std::string(100, 'x'));
  EXPECT_TRUE(ReadFileBounded(path, 100).ok());
  auto big = ReadFileBounded(path, 99);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("limit"), absl::string_view::npos);
  EXPECT_EQ(ReadFileBounded(dir.path() / "missing", 10).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_FALSE(ReadFileBounded(dir.path(), 10).ok()) << "a directory is not a regular file";
}

TEST(Files, ParseCertificatesPemBundleDerAndGarbage) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto bundle = testing::ReadFileOrDie(vectors / "snp/milan-azure-hcl/vcek_chain.pem");
  auto certs = ParseCertificates(bundle, "bundle");
  ASSERT_TRUE(certs.ok()) << certs.status();
  EXPECT_EQ(certs->size(), 3u);
  auto der = testing::ReadFileOrDie(vectors / "snp/milan-virtee/vcek.der");
  auto one = ParseCertificates(der, "vcek");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->front(), der);
  auto trailing = der;
  trailing.push_back(0);
  EXPECT_FALSE(ParseCertificates(trailing, "vcek").ok()) << "trailing bytes after DER";
  std::string broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  EXPECT_FALSE(ParseCertificates(std::vector<uint8_t>(broken.begin(), broken.end()), "x").ok());
  EXPECT_FALSE(ParseCertificates(std::vector<uint8_t>{}, "empty").ok());
}

}  // namespace
}  // namespace attest
