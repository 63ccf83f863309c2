// The supervisor's vTPM (ESYS) against a real swtpm: AK, PCR 15 extend, quotes over every bank
// that our own verifier accepts, bounded handles, clear errors when the TPM goes away; the release
// anti-rollback counter (issue 8 item 5a) in a vTPM NV counter index.
#include <gtest/gtest.h>

#include "appliance_fixture.h"
#include "attest/tpm/ak.h"
#include "attest/tpm/quote.h"
#include "supervisor/release_counter.h"
#include "supervisor/runtime_log.h"
#include "supervisor/tpm.h"
#include "test_support.h"

namespace appliance::supervisor {
namespace {

using attest::testing::ScopedTempDir;
using attest::testing::Swtpm;

TEST(TpmEsysTest, QuotesVerifyAndPcr15ReplaysTheLog) {
  ScopedTempDir dir;
  Swtpm swtpm(dir.path());
  auto tpm_or = Tpm::Open(swtpm.tcti());
  ASSERT_TRUE(tpm_or.ok()) << tpm_or.status();
  std::shared_ptr<Tpm> tpm = std::move(*tpm_or);
  ASSERT_FALSE(tpm->banks().empty());

  RuntimeLog log(tpm->banks(), {std::make_shared<TpmRegister>(tpm, 15)});
  ASSERT_TRUE(log.Append("launch-config", std::vector<uint8_t>(32, 1)).ok());
  ASSERT_TRUE(log.Append("container-manifest", std::vector<uint8_t>(32, 2)).ok());

  auto ak = attest::tpm::ParseAkTpmtPublic(tpm->ak_public());
  ASSERT_TRUE(ak.ok()) << ak.status();
  auto verifier = attest::tpm::QuoteVerifier::Create(*ak);
  ASSERT_TRUE(verifier.ok());
  // More quotes than swtpm has transient slots: handles must not pile up.
  for (int i = 0; i < 10; ++i) {
    std::vector<uint8_t> nonce(32, static_cast<uint8_t>(i));
    auto q = tpm->Quote(nonce);
    ASSERT_TRUE(q.ok()) << q.status();
    attest::tpm::QuoteVerifyOptions opts;
    opts.nonce = nonce;
    opts.pcrs = q->pcrs;
    attest::CheckLog checks;
    auto v = (*verifier)->Verify(q->attest, q->signature, attest::tpm::SignatureFormat::kTpmt, opts,
                                 &checks);
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(v->quoted_pcrs.size(), tpm->banks().size());
  }
  auto cel = attest::tpm::ParseCelJson(log.SerializeJson());
  ASSERT_TRUE(cel.ok());
  auto replay = attest::tpm::ReplayCel(*cel);
  ASSERT_TRUE(replay.ok());
  auto pcr15 = tpm->ReadPcr(15);
  ASSERT_TRUE(pcr15.ok());
  for (uint16_t bank : tpm->banks()) EXPECT_EQ(pcr15->at(bank), replay->at(bank).at(15)) << bank;

  // A restarted supervisor continues the saved log; a wrong log is refused.
  RuntimeLog again(tpm->banks(), {});
  EXPECT_TRUE(again.Restore(log.SerializeJson(), *pcr15).ok());
  RuntimeLog wrong(tpm->banks(), {});
  auto other = *pcr15;
  other.begin()->second[0] ^= 1;
  EXPECT_EQ(wrong.Restore(log.SerializeJson(), other).code(),
            absl::StatusCode::kFailedPrecondition);

  swtpm.Stop();
  auto gone = tpm->Quote(std::vector<uint8_t>(32, 9));
  ASSERT_FALSE(gone.ok());
  EXPECT_NE(gone.status().message().find("vTPM unreachable"), std::string::npos) << gone.status();
}

TEST(TpmEsysTest, ReleaseCounterRefusesRollbackWhileTheVtpmStatePersists) {
  ScopedTempDir dir;
  {
    Swtpm swtpm(dir.path());
    auto tpm = Tpm::Open(swtpm.tcti());
    ASSERT_TRUE(tpm.ok()) << tpm.status();
    ReleaseCounter counter(**tpm);
    EXPECT_EQ(*counter.Committed(), 0u);  // nothing committed yet: any release installs
    EXPECT_TRUE(counter.CheckInstallable(1).ok());
    ASSERT_TRUE(counter.Commit(3).ok());
    EXPECT_EQ(*counter.Committed(), 3u);
    ASSERT_TRUE(counter.Commit(3).ok());  // idempotent
    ASSERT_TRUE(counter.Commit(5).ok());
    auto st = counter.CheckInstallable(4);
    EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
    EXPECT_NE(st.message().find("rollback.tpm_counter: release 4 is below release 5"),
              std::string::npos)
        << st;
    EXPECT_EQ(counter.Commit(4).code(), absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(counter.Commit(5 + 5000).code(), absl::StatusCode::kInvalidArgument);  // bounded
    // An index with other attributes (someone else's, or planted) is not taken for ours.
    ReleaseCounter planted(**tpm, kReleaseCounterIndex + 1);
    ASSERT_TRUE((*tpm)->NvCounterDefine(kReleaseCounterIndex + 1).ok());
    EXPECT_EQ(*planted.Committed(), 0u);  // defined, never incremented
    EXPECT_EQ((*tpm)->NvCounterDefine(kReleaseCounterIndex).code(),
              absl::StatusCode::kAlreadyExists);
    swtpm.Stop();
  }
  // The disk is reset (the supervisor keeps nothing), the vTPM's state persists: still refused.
  Swtpm again(dir.path());
  auto tpm = Tpm::Open(again.tcti());
  ASSERT_TRUE(tpm.ok()) << tpm.status();
  ReleaseCounter counter(**tpm);
  EXPECT_EQ(*counter.Committed(), 5u);
  EXPECT_EQ(counter.CheckInstallable(4).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(counter.CheckInstallable(5).ok());
  EXPECT_TRUE(counter.CheckInstallable(6).ok());
}

// platform "auto" probes with a vTPM opened without an AK, then opens it for real.
TEST(TpmEsysTest, OpenWithoutAkMakesNoKeyAndCannotQuote) {
  ScopedTempDir dir;
  Swtpm swtpm(dir.path());
  {
    auto probe = Tpm::OpenWithoutAk(swtpm.tcti());
    ASSERT_TRUE(probe.ok()) << probe.status();
    EXPECT_FALSE((*probe)->banks().empty());
    EXPECT_TRUE((*probe)->ak_public().empty());
    const std::vector<uint8_t> nonce(32, 1);
    auto q = (*probe)->Quote(nonce);
    ASSERT_FALSE(q.ok());
    EXPECT_EQ(q.status().code(), absl::StatusCode::kFailedPrecondition) << q.status();
  }
  auto tpm = Tpm::Open(swtpm.tcti());
  ASSERT_TRUE(tpm.ok()) << tpm.status();
  EXPECT_FALSE((*tpm)->ak_public().empty());
  EXPECT_TRUE((*tpm)->Quote(std::vector<uint8_t>(32, 2)).ok());
}

TEST(TpmEsysTest, AbsentTpmIsAClearError) {
  auto tpm =
      Tpm::Open("swtpm:host=127.0.0.1,port=" + std::to_string(attest::testing::PickFreePort()));
  ASSERT_FALSE(tpm.ok());
  EXPECT_EQ(tpm.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(tpm.status().message().find("vTPM unreachable"), std::string::npos) << tpm.status();
}

}  // namespace
}  // namespace appliance::supervisor
