// The release channel's transparency log (issue 8): the operator's appliance-release log-init /
// log-append / log-prove and the coordinator's appliance-verify log, end to end through their
// command lines: encrypted log key, signed checkpoints, inclusion of every entry, consistency
// between every pair of checkpoints kept; a wrong entry, a tampered checkpoint, another log's
// key, a rewritten history and a wrong passphrase are refused with the check named.
#include "attest/tlog.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using attest::testing::ProcessResult;
using attest::testing::RunProcess;

class TlogCliTest : public ::testing::Test {
 protected:
  fs::path P(const std::string& name) const { return tmp_.path() / name; }
  ProcessResult Release(std::vector<std::string> args, const std::string& pass = "correct horse") {
    std::vector<std::string> argv = {"/usr/bin/env", "APPLIANCE_RELEASE_PASSPHRASE=" + pass,
                                     APPLIANCE_RELEASE_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv);
  }
  ProcessResult Verify(std::vector<std::string> args) {
    std::vector<std::string> argv = {APPLIANCE_VERIFY_BIN, "log", "--log-key",
                                     P("log/log.json").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv);
  }
  void Entry(int i) {
    attest::testing::WriteFileOrDie(P(absl::StrCat("e", i, ".json")),
                                    absl::StrCat(R"({"targets_version": )", i, "}\n"));
  }
  attest::testing::ScopedTempDir tmp_;
};

TEST_F(TlogCliTest, AppendProveVerifyAndRefuse) {
  auto r = Release({"log-init", "--log", P("log").string(), "--name", "releases", "--key-out",
                    P("keys/log.pem").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto pem = attest::testing::ReadFileOrDie(P("keys/log.pem"));
  EXPECT_TRUE(absl::StrContains(std::string(pem.begin(), pem.end()), "ENCRYPTED PRIVATE KEY"));
  const int kEntries = 9;
  for (int i = 0; i < kEntries; ++i) {
    Entry(i);
    r = Release({"log-append", "--log", P("log").string(), "--key", P("keys/log.pem").string(),
                 "--entry", P(absl::StrCat("e", i, ".json")).string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, absl::StrCat(i, "\n"));
    fs::copy_file(P("log/checkpoint.json"), P(absl::StrCat("cp", i + 1, ".json")));
  }
  // Every entry is in the final tree; every kept checkpoint is extended by the final one.
  for (int i = 0; i < kEntries; ++i) {
    r = Release({"log-prove", "--log", P("log").string(), "--index", std::to_string(i)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    attest::testing::WriteFileOrDie(P("proof.json"), r.out);
    r = Verify({"--checkpoint", P("log/checkpoint.json").string(), "--entry",
                P(absl::StrCat("e", i, ".json")).string(), "--inclusion-proof",
                P("proof.json").string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    if (i + 1 < kEntries) {
      r = Release({"log-prove", "--log", P("log").string(), "--from", std::to_string(i + 1)});
      ASSERT_EQ(r.exit_code, 0) << r.err;
      attest::testing::WriteFileOrDie(P("cons.json"), r.out);
      r = Verify({"--checkpoint", P("log/checkpoint.json").string(), "--old-checkpoint",
                  P(absl::StrCat("cp", i + 1, ".json")).string(), "--consistency-proof",
                  P("cons.json").string(), "--json"});
      EXPECT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(nlohmann::json::parse(r.out)["extends_size"], i + 1);
    }
  }
  // Another entry with entry 3's proof.
  r = Release({"log-prove", "--log", P("log").string(), "--index", "3"});
  attest::testing::WriteFileOrDie(P("proof3.json"), r.out);
  r = Verify({"--checkpoint", P("log/checkpoint.json").string(), "--entry", P("e4.json").string(),
              "--inclusion-proof", P("proof3.json").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "tlog.inclusion")) << r.err;
  // A checkpoint whose size was edited: the signature fails.
  auto cp = nlohmann::json::parse(attest::testing::ReadFileOrDie(P("log/checkpoint.json")));
  cp["signed"]["size"] = 100;
  attest::testing::WriteFileOrDie(P("forged.json"), cp.dump());
  r = Verify({"--checkpoint", P("forged.json").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "tlog.checkpoint.signature")) << r.err;
  // A rewritten history: entry 2 replaced, the log re-signed from there on; the checkpoint kept
  // from before no longer has a consistency proof to the new head.
  attest::testing::WriteFileOrDie(P("log/entries/2.json"),
                                  std::string(R"({"targets_version": 99})"));
  Entry(kEntries);
  r = Release({"log-append", "--log", P("log").string(), "--key", P("keys/log.pem").string(),
               "--entry", P(absl::StrCat("e", kEntries, ".json")).string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Release({"log-prove", "--log", P("log").string(), "--from", "5"});
  attest::testing::WriteFileOrDie(P("cons5.json"), r.out);
  r = Verify({"--checkpoint", P("log/checkpoint.json").string(), "--old-checkpoint",
              P("cp5.json").string(), "--consistency-proof", P("cons5.json").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "tlog.consistency")) << r.err;
  // A wrong passphrase; malformed input; another log's key.
  r = Release({"log-append", "--log", P("log").string(), "--key", P("keys/log.pem").string(),
               "--entry", P("e1.json").string()},
              "wrong passphrase");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "cannot decrypt")) << r.err;
  EXPECT_FALSE(absl::StrContains(r.err, "correct horse"));
  attest::testing::WriteFileOrDie(P("junk.json"), std::string("{not json"));
  r = Verify({"--checkpoint", P("junk.json").string()});
  EXPECT_EQ(r.exit_code, 2);
  r = Release({"log-init", "--log", P("log2").string(), "--name", "other", "--key-out",
               P("keys/log2.pem").string()});
  ASSERT_EQ(r.exit_code, 0);
  r = RunProcess({APPLIANCE_VERIFY_BIN, "log", "--log-key", P("log2/log.json").string(),
                  "--checkpoint", P("log/checkpoint.json").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "tlog.checkpoint.signature")) << r.err;
}

// The log's files from outside (checkpoint, proofs): every truncation is refused cleanly as
// malformed input, never as a valid file, and every byte of the signed part matters.
TEST_F(TlogCliTest, TruncatedAndTamperedFilesAreRefused) {
  ASSERT_EQ(Release({"log-init", "--log", P("log").string(), "--name", "releases", "--key-out",
                     P("keys/log.pem").string()})
                .exit_code,
            0);
  for (int i = 0; i < 3; ++i) {
    Entry(i);
    ASSERT_EQ(
        Release({"log-append", "--log", P("log").string(), "--key", P("keys/log.pem").string(),
                 "--entry", P(absl::StrCat("e", i, ".json")).string()})
            .exit_code,
        0);
  }
  auto meta = nlohmann::json::parse(attest::testing::ReadFileOrDie(P("log/log.json")));
  auto key = attest::tuf::ParseKey(meta["key"]);
  ASSERT_TRUE(key.ok());
  const auto cp = attest::testing::ReadFileOrDie(P("log/checkpoint.json"));
  ASSERT_TRUE(attest::tlog::VerifyCheckpoint(cp, *key).ok());
  ASSERT_EQ(cp.back(), '\n');
  for (size_t n = 0; n + 1 < cp.size(); ++n) {  // the last byte is the newline
    auto c = attest::tlog::VerifyCheckpoint(std::span(cp).first(n), *key);
    ASSERT_FALSE(c.ok()) << n;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << n << ": " << c.status();
  }
  auto proof = Release({"log-prove", "--log", P("log").string(), "--index", "1"}).out;
  const std::vector<uint8_t> pb(proof.begin(), proof.end());
  ASSERT_TRUE(attest::tlog::ParseInclusionProof(pb).ok());
  for (size_t n = 0; n + 1 < pb.size(); ++n) {  // the last byte is the newline
    EXPECT_FALSE(attest::tlog::ParseInclusionProof(std::span(pb).first(n)).ok()) << n;
  }
  // Flip each byte of "signed": the file no longer parses, or its signature fails.
  const std::string text(cp.begin(), cp.end());
  const size_t from = text.find("\"signed\"") + 9, to = text.rfind('}');
  for (size_t i = from; i < to; ++i) {
    if (std::isspace(static_cast<unsigned char>(cp[i]))) continue;
    auto t = cp;
    t[i] ^= 0x01;
    EXPECT_FALSE(attest::tlog::VerifyCheckpoint(t, *key).ok()) << "byte " << i;
  }
}

}  // namespace
