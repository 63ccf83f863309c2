#include <gtest/gtest.h>

#include <cstring>

#include "attest/status.h"
#include "attest/tpm/eventlog.h"
#include "snp_test_util.h"
#include "tpm_signer.h"
#include "tpm_test_util.h"

namespace attest::tpm {
namespace {

struct LogCase {
  const char* file;
  EventLogFormat format;
  size_t events;  // excluding the Spec ID header
  int startup_locality;
};

const LogCase kLogs[] = {
    {"eventlogs/arch-linux-workstation.bin", EventLogFormat::kTcg2, 24, -1},
    {"eventlogs/confidential-gke-debug-251000_eventlog.bin", EventLogFormat::kTcg2, 54, -1},
    {"eventlogs/cos-101-amd-sev.bin", EventLogFormat::kTcg2, 48, -1},
    {"eventlogs/cos-85-amd-sev.bin", EventLogFormat::kTcg2, 45, -1},
    {"eventlogs/cos-93-amd-sev.bin", EventLogFormat::kTcg2, 45, -1},
    {"eventlogs/debian-10.bin", EventLogFormat::kTcg1, 25, -1},
    {"eventlogs/eventlogwithsp800155.bin", EventLogFormat::kTcg2, 53, -1},
    {"eventlogs/glinux-alex.bin", EventLogFormat::kTcg2, 28, 3},
    {"eventlogs/rhel8-uefi.bin", EventLogFormat::kTcg2, 82, -1},
    {"eventlogs/ubuntu-1804-amd-sev.bin", EventLogFormat::kTcg2, 87, -1},
    {"eventlogs/ubuntu-2104-no-secure-boot.bin", EventLogFormat::kTcg2, 105, -1},
    {"eventlogs/ubuntu-2404-amd-sevsnp.bin", EventLogFormat::kTcg2, 116, -1},
    {"eventlogs-go-attestation/coreos_36_shielded_vm_no_secure_boot_eventlog",
     EventLogFormat::kTcg2, 75, -1},
    {"eventlogs-go-attestation/crypto_agile_eventlog", EventLogFormat::kTcg2, 26, -1},
    {"eventlogs-go-attestation/ebs_event_missing_eventlog", EventLogFormat::kTcg1, 38, -1},
    // The collection counts 60; the file holds 61 well-formed events covering every byte.
    {"eventlogs-go-attestation/option_rom_eventlog", EventLogFormat::kTcg1, 61, -1},
    {"eventlogs-go-attestation/short_no_action_eventlog", EventLogFormat::kTcg1, 1, 3},
    {"eventlogs-go-attestation/sb_cert_eventlog", EventLogFormat::kTcg2, 14, -1},
};

// The ground truth: source-stated PCRs where the source states them, else the collection's replay
// (a cross-check only, as the MANIFEST says).
PcrBanks Expected(const nlohmann::json& facts) {
  nlohmann::json banks = facts.contains("expected_pcrs_from_source")
                             ? facts["expected_pcrs_from_source"]["banks"]
                             : facts["replayed_by_this_collection"];
  return *ParsePcrJson(banks.dump(), std::nullopt);
}

TEST(EventLogGolden, EveryRealLogReplaysToItsStatedPcrs) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  for (const LogCase& c : kLogs) {
    SCOPED_TRACE(c.file);
    auto bytes = testing::ReadFileOrDie(vectors / "tpm" / c.file);
    auto log = ParseEventLog(bytes);
    ASSERT_TRUE(log.ok()) << log.status();
    EXPECT_EQ(log->format, c.format);
    EXPECT_EQ(log->events.size(), c.events);
    EXPECT_EQ(log->startup_locality ? int(*log->startup_locality) : -1, c.startup_locality);
    auto replay = ReplayEventLog(*log);
    ASSERT_TRUE(replay.ok()) << replay.status();
    auto facts =
        nlohmann::json::parse(ReadText(vectors / "tpm" / (std::string(c.file) + ".pcrs.json")));
    PcrBanks expected = Expected(facts);
    size_t compared = 0;
    for (const auto& [alg, bank] : expected) {
      for (const auto& [pcr, value] : bank) {
        ASSERT_TRUE(replay->pcrs[alg].count(pcr)) << HashAlgName(alg) << " PCR " << pcr;
        EXPECT_EQ(HexEncode(replay->pcrs[alg][pcr]), HexEncode(value))
            << HashAlgName(alg) << " PCR " << pcr;
        ++compared;
      }
    }
    if (std::string(c.file).find("short_no_action") == std::string::npos) {
      EXPECT_GT(compared, 0u);
    }
    EXPECT_TRUE(replay->digest_mismatches.empty())
        << "no spec-defined digest mismatch in real logs";
    for (const auto& e : log->events) EXPECT_FALSE(DescribeEvent(e).empty());
  }
}

// tpm2_eventlog (tpm2-tools 5.4) computes a different PCR0 for logs with SP800-155 EV_NO_ACTION
// events or a StartupLocality-3 event. The source's stated values agree with ours: EV_NO_ACTION
// is never extended and locality 3 starts PCR0 at 00..03.
TEST(EventLogGolden, WhereTpm2EventlogGetsPcr0WrongOursMatchesTheSource) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  int documented = 0;
  for (const char* file : {"eventlogs/confidential-gke-debug-251000_eventlog.bin",
                           "eventlogs/eventlogwithsp800155.bin", "eventlogs/glinux-alex.bin"}) {
    SCOPED_TRACE(file);
    auto facts =
        nlohmann::json::parse(ReadText(vectors / "tpm" / (std::string(file) + ".pcrs.json")));
    ASSERT_TRUE(facts.contains("tpm2_eventlog_5.4_pcrs"));
    auto theirs = *ParsePcrJson(facts["tpm2_eventlog_5.4_pcrs"].dump(), std::nullopt);
    PcrBanks source = Expected(facts);
    auto replay = ReplayEventLog(*ParseEventLog(testing::ReadFileOrDie(vectors / "tpm" / file)));
    ASSERT_TRUE(replay.ok());
    for (const auto& [alg, bank] : source) {
      if (!bank.count(0) || !theirs[alg].count(0)) continue;
      EXPECT_EQ(replay->pcrs[alg][0], bank.at(0)) << "ours equals the source";
      EXPECT_NE(theirs[alg][0], bank.at(0)) << "tpm2_eventlog's PCR0 differs";
      ++documented;
    }
  }
  EXPECT_GE(documented, 3);
}

TEST(EventLogGolden, LogsTpm2EventlogCannotReadParseHere) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  // tpm2_eventlog 5.4 crashes on the first and rejects the second.
  for (const char* file : {"eventlogs-go-attestation/option_rom_eventlog",
                           "eventlogs-go-attestation/short_no_action_eventlog"}) {
    auto log = ParseEventLog(testing::ReadFileOrDie(vectors / "tpm" / file));
    ASSERT_TRUE(log.ok()) << file << ": " << log.status();
    EXPECT_TRUE(ReplayEventLog(*log).ok());
  }
}

TEST(EventLogEdits, AnEditedEventNamesThePcrThatDiffers) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto dir = vectors / "tpm/quote-gce-cos85-nonce9009";
  auto bytes = testing::ReadFileOrDie(dir / "event_log.bin");
  auto log = ParseEventLog(bytes);
  PcrBanks quoted;
  auto facts = nlohmann::json::parse(ReadText(dir / "quote_facts.json"));
  quoted = *ParsePcrJson(nlohmann::json{{"sha256", facts["quotes"]["sha256"]["pcrs"]}}.dump(),
                         std::nullopt);
  // Change one byte of the sha256 digest of the first PCR 4 event.
  const UntrustedEvent* target = nullptr;
  for (const auto& e : log->events) {
    if (e.pcr == 4 && target == nullptr) target = &e;
  }
  ASSERT_NE(target, nullptr);
  auto edited = *log;
  for (auto& e : edited.events) {
    if (e.index == target->index) e.digests[kAlgSha256][0] ^= 1;
  }
  CheckLog checks;
  auto match = CheckLogAgainstQuote(edited, *ReplayEventLog(edited), quoted, checks);
  ASSERT_FALSE(match.ok());
  EXPECT_NE(match.status().message().find("sha256 PCR 4"), absl::string_view::npos)
      << match.status();
  EXPECT_NE(match.status().message().find(absl::StrCat("#", target->index, " ")),
            absl::string_view::npos)
      << match.status();
}

TEST(EventLogEdits, DigestNotHashOfDataIsReportedNotRejected) {
  std::vector<testing::TestEvent> events = {
      {0, 0x8, {'v', 0, '1', 0}},  // EV_S_CRTM_VERSION
      {4, 0x80000003, {1, 2, 3}},  // EV_EFI_BOOT_SERVICES_APPLICATION
      {7, kEvSeparator, {0, 0, 0, 0}},
  };
  auto bytes = testing::BuildTcg2Log({kAlgSha256, kAlgSha384}, events);
  auto log = ParseEventLog(bytes);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_TRUE(ReplayEventLog(*log)->digest_mismatches.empty());
  log->events[2].data[0] = 1;  // the separator's data no longer hashes to its digest
  auto replay = ReplayEventLog(*log);
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->digest_mismatches, std::vector<size_t>{3});
  EXPECT_EQ(replay->pcrs[kAlgSha256].size(), 3u);
}

TEST(EventLogRules, NoActionIsNeverExtendedAndLocalityThreeStartsPcr0) {
  std::vector<uint8_t> locality(17, 0);
  std::memcpy(locality.data(), "StartupLocality", 16);
  locality[16] = 3;
  auto with = testing::BuildTcg2Log({kAlgSha256}, {{0, kEvNoAction, locality}, {0, 0x8, {1}}});
  auto without = testing::BuildTcg2Log({kAlgSha256}, {{0, 0x8, {1}}});
  auto a = ReplayEventLog(*ParseEventLog(with));
  auto b = ReplayEventLog(*ParseEventLog(without));
  std::vector<uint8_t> start(32, 0);
  start.back() = 3;
  auto h = *Hash(kAlgSha256, std::vector<uint8_t>{1});
  EXPECT_EQ(a->pcrs[kAlgSha256][0], *Extend(kAlgSha256, start, h));
  EXPECT_EQ(b->pcrs[kAlgSha256][0], *Extend(kAlgSha256, std::vector<uint8_t>(32, 0), h));
  auto only_no_action = ReplayEventLog(
      *ParseEventLog(testing::BuildTcg2Log({kAlgSha256}, {{5, kEvNoAction, {1, 2}}})));
  EXPECT_TRUE(only_no_action->pcrs.empty()) << "EV_NO_ACTION touches no PCR";
}

TEST(EventLogTruncation, EveryPrefixIsAnErrorOrFewerEvents) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  for (const char* file : {"eventlogs/glinux-alex.bin", "eventlogs/debian-10.bin"}) {
    auto bytes = testing::ReadFileOrDie(vectors / "tpm" / file);
    auto full = ParseEventLog(bytes);
    for (size_t n = 0; n < bytes.size(); ++n) {
      auto log = ParseEventLog(std::span<const uint8_t>(bytes.data(), n));
      if (log.ok()) {
        ASSERT_LT(log->events.size(), full->events.size()) << file << " prefix " << n;
      }
    }
  }
}

TEST(EventLogLimits, HugeEventsAndMillionsOfTinyEventsAreBounded) {
  // An event that claims 1 GiB of data: rejected from its header, nothing allocated.
  auto bytes = testing::BuildTcg2Log({kAlgSha256}, {{0, 0x8, {1}}});
  bytes[bytes.size() - 5] = 0x00;
  bytes[bytes.size() - 2] = 0x40;  // eventSize = 0x40000000
  auto log = ParseEventLog(bytes);
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.status().message().find("limit"), absl::string_view::npos) << log.status();
  // Too many events: refused once the count passes the bound.
  std::vector<testing::TestEvent> many(kMaxEvents + 1, {1, kEvNoAction, {}});
  auto big = ParseEventLog(testing::BuildTcg2Log({kAlgSha1}, many));
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("more than"), absl::string_view::npos);
  EXPECT_FALSE(ParseEventLog(std::vector<uint8_t>(kMaxEventLogSize + 1)).ok());
}

}  // namespace
}  // namespace attest::tpm
