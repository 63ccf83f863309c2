// The evidence binding (DESIGN §3): encoding (known answer computed independently with Python's
// hashlib from the layout in attest/binding.h), entry validation, and the verifier's check.
#include "attest/binding.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "attest/encoding.h"

namespace attest {
namespace {

std::vector<uint8_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }

std::map<std::string, std::vector<uint8_t>> Values() {
  std::vector<uint8_t> nonce(32);
  for (size_t i = 0; i < nonce.size(); ++i) nonce[i] = static_cast<uint8_t>(i);
  return {{"nonce", nonce}, {"tls-spki", Bytes("spki-der")}, {"runtime-log", Bytes("[]")}};
}

TEST(Binding, KnownAnswer) {
  auto b = Binding::FromValues(Values());
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(HexEncode(b->ReportData()),
            "3393a4902818629e938816c2a021a8066a427e2db5ea1de00645dd2fa07acd0354981fc4c0c7edf110912"
            "883f35f80731fe1ad79662a376add55cd9a773dfa9c");
  EXPECT_EQ(HexEncode(b->QualifyingData()),
            "5f3edada94d7fe3de41f26bb4d7f4a13da91cad07fb33b0ab21c3bc23032ceaf");
  auto encoded = b->Encode();
  std::string prefix(encoded.begin(), encoded.begin() + 20);
  EXPECT_EQ(prefix, kBindingPrefixV1);
  EXPECT_EQ(encoded[20], 3);
  EXPECT_EQ(encoded.size(), 21u + 3 * 33 + std::string("noncetls-spkiruntime-log").size());
}

TEST(Binding, EntriesInAnyOrderGiveTheSameBinding) {
  auto from_values = *Binding::FromValues(Values());
  std::vector<std::pair<std::string, std::vector<uint8_t>>> entries;
  for (const auto& [label, digest] : from_values.entries())
    entries.emplace_back(label, std::vector<uint8_t>(digest.begin(), digest.end()));
  std::reverse(entries.begin(), entries.end());
  auto from_entries = Binding::FromEntries(entries);
  ASSERT_TRUE(from_entries.ok()) << from_entries.status();
  EXPECT_EQ(from_entries->Encode(), from_values.Encode());
  // Every digest byte is covered.
  for (size_t e = 0; e < entries.size(); ++e) {
    for (size_t i = 0; i < 32; ++i) {
      auto t = entries;
      t[e].second[i] ^= 1;
      EXPECT_NE(Binding::FromEntries(t)->ReportData(), from_values.ReportData()) << e << " " << i;
    }
  }
}

TEST(Binding, MalformedEntriesAreRejected) {
  std::vector<uint8_t> d(32, 7);
  using Entries = std::vector<std::pair<std::string, std::vector<uint8_t>>>;
  for (const auto& [entries, expected] : std::vector<std::pair<Entries, std::string>>{
           {{{"nonce", d}}, "'tls-spki' entry is missing"},
           {{{"tls-spki", d}}, "'nonce' entry is missing"},
           {{{"nonce", d}, {"tls-spki", d}, {"nonce", d}}, "appears twice"},
           {{{"nonce", d}, {"tls-spki", d}, {"host-data", d}}, "unknown label"},
           {{{"nonce", std::vector<uint8_t>(31)}, {"tls-spki", d}}, "31 bytes"},
       }) {
    auto b = Binding::FromEntries(entries);
    ASSERT_FALSE(b.ok());
    EXPECT_NE(b.status().message().find(expected), std::string::npos) << b.status();
  }
  EXPECT_FALSE(Binding::FromValues({{"nonce", d}, {"tls-spki", d}, {"NONCE", d}}).ok());
}

TEST(Binding, CheckNamesTheEntryAndBothDigests) {
  auto claimed = *Binding::FromValues(Values());
  CheckLog ok_log;
  EXPECT_TRUE(CheckBinding(claimed, Values(), ok_log).ok());
  EXPECT_TRUE(ok_log.all_ok());

  auto other_nonce = Values();
  other_nonce["nonce"][0] ^= 1;
  CheckLog log;
  auto s = CheckBinding(claimed, other_nonce, log);
  ASSERT_FALSE(s.ok());
  ASSERT_NE(log.first_failure(), nullptr);
  EXPECT_EQ(log.first_failure()->name, "binding.nonce");
  EXPECT_NE(log.first_failure()->detail.find("hashes to"), std::string::npos);

  auto with_ak = Values();
  with_ak["ak"] = Bytes("tpmt-public");
  CheckLog log2;
  EXPECT_FALSE(CheckBinding(claimed, with_ak, log2).ok());
  EXPECT_EQ(log2.first_failure()->name, "binding.ak");

  auto without_log = Values();
  without_log.erase("runtime-log");
  CheckLog log3;
  EXPECT_FALSE(CheckBinding(claimed, without_log, log3).ok());
  EXPECT_EQ(log3.first_failure()->name, "binding.runtime-log");
}

}  // namespace
}  // namespace attest
