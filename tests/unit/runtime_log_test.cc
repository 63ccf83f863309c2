// The supervisor's runtime event log: what it writes, libattest's CEL parser reads and replays to
// the registers it extended (PCR 15 in SHA-256, RTMR3 in SHA-384), also under concurrent appends;
// log-first-then-extend when a register fails.
#include "supervisor/runtime_log.h"

#include <gtest/gtest.h>

#include <thread>

#include "attest/check.h"
#include "attest/tpm/cel.h"

namespace appliance::supervisor {
namespace {

using attest::tpm::kAlgSha256;
using attest::tpm::kAlgSha384;

std::vector<uint8_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }

void ExpectReplayMatches(const RuntimeLog& log, const SoftwareRegister& reg) {
  auto cel = attest::tpm::ParseCelJson(log.SerializeJson());
  ASSERT_TRUE(cel.ok()) << cel.status();
  attest::CheckLog checks;
  ASSERT_TRUE(attest::tpm::CheckCelRecords(*cel, checks).ok());
  auto banks = attest::tpm::ReplayCel(*cel);
  ASSERT_TRUE(banks.ok()) << banks.status();
  auto values = reg.values();
  EXPECT_EQ(banks->at(kAlgSha256).at(RuntimeLog::kRuntimePcr),
            values.at(RuntimeLog::kRuntimePcr).at(kAlgSha256));
  auto rtmr = attest::tpm::ReplayCelToRtmr(*cel, RuntimeLog::kRuntimePcr);
  ASSERT_TRUE(rtmr.ok()) << rtmr.status();
  EXPECT_EQ(*rtmr, values.at(RuntimeLog::kRuntimePcr).at(kAlgSha384));
}

TEST(RuntimeLog, WhatItWritesReplaysToTheRegisters) {
  auto reg = std::make_shared<SoftwareRegister>(std::vector<uint16_t>{kAlgSha256, kAlgSha384});
  RuntimeLog log({kAlgSha256, kAlgSha384}, {reg});
  EXPECT_EQ(*log.Append("launch-config", Bytes("digest-of-config")), 0u);
  EXPECT_EQ(*log.Append("container-manifest", Bytes("sha256:abcd")), 1u);
  EXPECT_EQ(*log.Append("container-restart", Bytes("1")), 2u);
  EXPECT_EQ(log.size(), 3u);
  ExpectReplayMatches(log, *reg);

  // An edited record no longer replays to the register.
  std::string json = log.SerializeJson();
  auto pos = json.find("container-restart");
  ASSERT_NE(pos, std::string::npos);
  json[pos] = 'C';
  auto edited = attest::tpm::ParseCelJson(json);
  ASSERT_TRUE(edited.ok()) << edited.status();
  attest::CheckLog checks;
  EXPECT_FALSE(attest::tpm::CheckCelRecords(*edited, checks).ok())
      << "the record's digest no longer matches its content";
}

TEST(RuntimeLog, ConcurrentAppendsStayOrderedAndReplay) {
  auto reg = std::make_shared<SoftwareRegister>(std::vector<uint16_t>{kAlgSha256, kAlgSha384});
  RuntimeLog log({kAlgSha256, kAlgSha384}, {reg});
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&log, t] {
      for (int i = 0; i < 50; ++i) {
        auto r = log.Append("event", Bytes(std::to_string(t * 1000 + i)));
        EXPECT_TRUE(r.ok()) << r.status();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(log.size(), 400u);
  ExpectReplayMatches(log, *reg);
}

TEST(RuntimeLog, LogFirstThenExtend) {
  // A register wanting a bank the log does not carry fails; the event is logged regardless.
  auto good = std::make_shared<SoftwareRegister>(std::vector<uint16_t>{kAlgSha256});
  auto bad = std::make_shared<SoftwareRegister>(std::vector<uint16_t>{attest::tpm::kAlgSha512});
  RuntimeLog log({kAlgSha256}, {good, bad});
  auto r = log.Append("launch-config", Bytes("x"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("is logged but extending software failed"), std::string::npos)
      << r.status();
  EXPECT_EQ(log.size(), 1u);
  // Bad event names are refused before anything is logged.
  EXPECT_FALSE(log.Append("has space", Bytes("x")).ok());
  EXPECT_FALSE(log.Append("", Bytes("x")).ok());
  EXPECT_EQ(log.size(), 1u);
}

}  // namespace
}  // namespace appliance::supervisor
