#include "attest/tpm/cel.h"

#include <gtest/gtest.h>

#include "attest/encoding.h"
#include "attest/status.h"
#include "snp_test_util.h"

namespace attest::tpm {
namespace {

Cel SampleCel() {
  Cel cel;
  const std::vector<std::pair<std::string, std::string>> events = {
      {"launch-config", "{\"clients\":[]}"},
      {"container-manifest", "sha256:abcd"},
      {"release", "1.2.3"}};
  for (size_t i = 0; i < events.size(); ++i) {
    const auto& [name, data] = events[i];
    auto rec = MakeApplianceRecord(i, 15, name, std::vector<uint8_t>(data.begin(), data.end()),
                                   {kAlgSha256, kAlgSha384});
    EXPECT_TRUE(rec.ok());
    cel.push_back(*rec);
  }
  return cel;
}

bool SameRecords(const Cel& a, const Cel& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].recnum != b[i].recnum || a[i].index != b[i].index || a[i].nv_index != b[i].nv_index ||
        a[i].digests != b[i].digests || a[i].content_type != b[i].content_type ||
        a[i].event != b[i].event || a[i].data != b[i].data) {
      return false;
    }
  }
  return true;
}

TEST(Cel, JsonAndTlvRoundTrip) {
  Cel cel = SampleCel();
  auto json = SerializeCelJson(cel);
  auto from_json = ParseCelJson(json);
  ASSERT_TRUE(from_json.ok()) << from_json.status();
  EXPECT_TRUE(SameRecords(cel, *from_json));
  auto tlv = SerializeCelTlv(cel);
  auto from_tlv = ParseCelTlv(tlv);
  ASSERT_TRUE(from_tlv.ok()) << from_tlv.status();
  EXPECT_TRUE(SameRecords(cel, *from_tlv));
  EXPECT_TRUE(SameRecords(cel, *ParseCel(tlv)));
  EXPECT_TRUE(SameRecords(cel, *ParseCel(std::vector<uint8_t>(json.begin(), json.end()))));
  EXPECT_EQ(SerializeCelTlv(*from_json), tlv) << "TLV is canonical";
}

TEST(Cel, ReplaysIntoPcrAndRtmr) {
  Cel cel = SampleCel();
  auto pcrs = ReplayCel(cel);
  ASSERT_TRUE(pcrs.ok());
  std::vector<uint8_t> pcr(32, 0), rtmr(48, 0);
  for (const auto& rec : cel) {
    pcr = *Extend(kAlgSha256, pcr, rec.digests.at(kAlgSha256));
    rtmr = *Extend(kAlgSha384, rtmr, rec.digests.at(kAlgSha384));
  }
  EXPECT_EQ(pcrs->at(kAlgSha256).at(15), pcr);
  EXPECT_EQ(pcrs->at(kAlgSha384).at(15), rtmr);
  EXPECT_EQ(*ReplayCelToRtmr(cel, 15), rtmr);
  Cel sha256_only = cel;
  for (auto& r : sha256_only) r.digests.erase(kAlgSha384);
  EXPECT_FALSE(ReplayCelToRtmr(sha256_only, 15).ok()) << "an RTMR needs sha384 digests";
}

TEST(Cel, RecordChecksCatchEditsAndGaps) {
  Cel cel = SampleCel();
  CheckLog ok_log;
  EXPECT_TRUE(CheckCelRecords(cel, ok_log).ok());
  Cel edited = cel;
  edited[1].data.push_back('!');
  CheckLog log;
  auto s = CheckCelRecords(edited, log);
  EXPECT_TRUE(IsVerificationFailure(s));
  EXPECT_NE(s.message().find("container-manifest"), absl::string_view::npos) << s;
  Cel gap = cel;
  gap.erase(gap.begin() + 1);
  CheckLog log2;
  EXPECT_NE(CheckCelRecords(gap, log2).message().find("missing or reordered"),
            absl::string_view::npos);
}

TEST(Cel, SystemdStyleJsonSeqAndOtherContentTypes) {
  std::string seq =
      "\x1e{\"recnum\":0,\"pcr\":11,\"digests\":[{\"hashAlg\":\"sha256\",\"digest\":\"" +
      std::string(64, 'a') +
      "\"}],\"content_type\":\"pcclient_std\",\"content\":{\"event_type\":13}}\n"
      "\x1e{\"recnum\":1,\"nv_index\":4096,\"digests\":[{\"hashAlg\":\"sha256\",\"digest\":\"" +
      std::string(64, 'b') + "\"}],\"content_type\":\"appliance\",\"content\":{\"event\":\"x\"}}\n";
  auto cel = ParseCelJson(seq);
  ASSERT_TRUE(cel.ok()) << cel.status();
  ASSERT_EQ(cel->size(), 2u);
  EXPECT_EQ((*cel)[0].content_type, kCelContentPcClientStd);
  EXPECT_TRUE((*cel)[1].nv_index);
  EXPECT_EQ(ReplayCel(*cel)->at(kAlgSha256).size(), 1u) << "NV-index records are not PCR events";
  EXPECT_TRUE(ParseCelTlv(SerializeCelTlv(*cel)).ok());
}

TEST(Cel, MalformedInputsAreErrors) {
  const std::vector<std::string> bad = {
      "[{}]",
      "[{\"recnum\":0,\"pcr\":15,\"nv_index\":1,\"digests\":[],\"content_type\":\"appliance\"}]",
      "[{\"recnum\":0,\"pcr\":32,\"digests\":[{\"hashAlg\":\"sha256\",\"digest\":\"00\"}],"
      "\"content_type\":\"appliance\"}]",
      "[{\"recnum\":0,\"pcr\":1,\"digests\":[{\"hashAlg\":\"sha256\",\"digest\":\"00\"}],\"content_"
      "type\":\"appliance\"}]",
      "[{\"recnum\":-1,\"pcr\":1,\"digests\":[],\"content_type\":\"appliance\"}]",
      "[{\"recnum\":0,\"pcr\":1,\"digests\":[{\"hashAlg\":\"md5\",\"digest\":\"00\"}],\"content_"
      "type\":\"x\"}]",
      "[{\"recnum\":0,\"pcr\":1,\"digests\":[{\"hashAlg\":7,\"digest\":\"00\"}],\"content_type\":"
      "\"appliance\"}]",
      "[1,2,3]",
      "not json",
      "",
  };
  for (const auto& text : bad) EXPECT_FALSE(ParseCelJson(text).ok()) << text;
}

TEST(Cel, EveryPrefixOfTlvIsAnErrorOrFewerRecords) {
  auto tlv = SerializeCelTlv(SampleCel());
  for (size_t n = 0; n < tlv.size(); ++n) {
    auto cel = ParseCelTlv(std::span<const uint8_t>(tlv.data(), n));
    if (cel.ok()) {
      EXPECT_LT(cel->size(), 3u) << n;
    }
  }
  auto json = SerializeCelJson(SampleCel());
  for (size_t n = 1; n < json.size(); ++n) {
    EXPECT_FALSE(ParseCelJson(json.substr(0, n)).ok()) << n;
  }
}

TEST(Cel, EveryByteOfTlvFlippedIsRejectedOrChangesTheReplay) {
  Cel cel = SampleCel();
  auto tlv = SerializeCelTlv(cel);
  auto good = *ReplayCel(cel);
  for (size_t i = 0; i < tlv.size(); ++i) {
    auto t = tlv;
    t[i] ^= 0x01;
    auto parsed = ParseCelTlv(t);
    if (!parsed.ok()) continue;
    CheckLog log;
    bool records_ok = CheckCelRecords(*parsed, log).ok();
    auto replay = ReplayCel(*parsed);
    EXPECT_TRUE(!records_ok || !replay.ok() || *replay != good)
        << "flip at " << i << " went unnoticed";
  }
}

}  // namespace
}  // namespace attest::tpm
