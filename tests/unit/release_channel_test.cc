// The release channel end to end through its command lines (issue 8): the operator's
// appliance-release init / add-target / sign / publish / rotate-root / status, the appliance's
// TUF client (appliance-tuf-client) and the coordinator's appliance-verify release.
// Covers: keys encrypted at rest and never printed; a client following every publish; thresholds
// of several people's keys (multi-party signing; publish refuses below threshold and writes
// nothing); root rotation signed by a threshold of the old and the new root keys; the minimum
// release version and revocations; renewals; every targets version in the transparency log, with
// a forked log (a split view) refused by a coordinator who kept a checkpoint.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "software_tsa.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using attest::testing::ProcessResult;
using attest::testing::ReadFileOrDie;
using attest::testing::RunProcess;
using attest::testing::WriteFileOrDie;
using json = nlohmann::json;

constexpr char kPass[] = "correct horse battery";

std::string Text(const fs::path& p) {
  auto b = ReadFileOrDie(p);
  return std::string(b.begin(), b.end());
}

class ReleaseChannelTest : public ::testing::Test {
 protected:
  fs::path P(const std::string& name) const { return tmp_.path() / name; }
  std::string S(const std::string& name) const { return P(name).string(); }

  // Nothing secret is ever printed (RunReleaseTool checks).
  ProcessResult Release(std::vector<std::string> args, const std::string& pass = kPass) {
    return attest::testing::RunReleaseTool(APPLIANCE_RELEASE_BIN, args, pass);
  }
  ProcessResult Client(std::vector<std::string> args, const std::string& dir = "client") {
    std::vector<std::string> argv = {APPLIANCE_TUF_CLIENT_BIN, "--metadata-dir", S(dir)};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv);
  }
  ProcessResult VerifyRelease(std::vector<std::string> args, const std::string& dir = "coord",
                              const std::string& repo = "repo") {
    std::vector<std::string> argv = {
        APPLIANCE_VERIFY_BIN, "release", "--metadata-dir", S(dir),
        "--metadata-url",     S(repo),   "--trusted-root", S(repo + "/1.root.json")};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv);
  }
  // init + one release (a UKI and its reference values) + publish.
  void InitAndPublish(std::vector<std::string> init_args = {}) {
    std::vector<std::string> args = {"init", "--workdir", S("w"), "--name", "test-channel"};
    args.insert(args.end(), init_args.begin(), init_args.end());
    auto r = Release(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    AddRelease(1);
    r = Release({"sign", "--workdir", S("w")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    Publish();
  }
  void AddRelease(int version) {
    WriteFileOrDie(P("uki.efi"), absl::StrCat("UKI of release ", version));
    WriteFileOrDie(P(absl::StrCat("rv", version, ".json")), ReferenceValues(version));
    const std::string v = std::to_string(version);
    auto r = Release({"add-target", "--workdir", S("w"), S("uki.efi"), "--kind", "uki",
                      "--release-version", v, "--hardware", "qemu-x86_64"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = Release({"add-target", "--workdir", S("w"), S(absl::StrCat("rv", version, ".json")),
                 "--name", "reference-values.json", "--kind", "reference-values",
                 "--release-version", v});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  // Reference values accepting one model container, a different one per release.
  static std::string ModelOf(int version) {
    return "sha256:" + std::string(63, 'a') + std::to_string(version % 10);
  }
  static std::string ReferenceValues(int version) {
    return json{{"version", 1}, {"container_digests", {ModelOf(version)}}}.dump() + "\n";
  }
  static std::string Sbom(int version, const std::string& model) {
    return json{{"_type", "appliance-sbom"},
                {"source_commit", std::string(40, 'c')},
                {"source_date_epoch", 1795000000},
                {"release_version", version},
                {"model_container", model},
                {"packages",
                 {{{"name", "libc6"},
                   {"version", "2.36-9+deb12u10"},
                   {"architecture", "amd64"},
                   {"deb_sha256", std::string(64, 'd')}}}}}
        .dump();
  }
  void PublishSbom(const std::string& text) {
    WriteFileOrDie(P("sbom2.json"), text);
    auto r = Release({"add-target", "--workdir", S("w"), S("sbom2.json"), "--kind", "sbom",
                      "--release-version", "2"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = Release({"sign", "--workdir", S("w")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    Publish();
  }
  void Publish() {
    auto r = Release({"publish", "--workdir", S("w"), "--repo", S("repo")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  json Status() {
    auto r = Release({"status", "--workdir", S("w"), "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out);
  }
  void ClientFollows(const std::string& expect_uki) {
    if (!fs::exists(P("client/root.json"))) {
      auto r = Client({"init", S("repo/1.root.json")});
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    auto r = Client({"--metadata-url", S("repo"), "--target-name", "uki.efi", "--target-base-url",
                     S("repo/targets"), "--target-dir", S("out"), "download"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(Text(P("out/uki.efi")), expect_uki);
  }
  attest::testing::ScopedTempDir tmp_;
};

TEST_F(ReleaseChannelTest, OperatorPublishesClientsFollowCoordinatorAuditsTheLog) {
  InitAndPublish();
  // Keys: encrypted PKCS#8, owner-only.
  int keys = 0;
  for (const auto& f : fs::directory_iterator(P("w/keys"))) {
    ++keys;
    EXPECT_TRUE(absl::StartsWith(Text(f.path()), "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    EXPECT_EQ(fs::status(f.path()).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);
  }
  EXPECT_EQ(keys, 7);  // 3 root, targets, snapshot, timestamp, log
  json st = Status();
  EXPECT_EQ(st["roles"]["root"]["threshold"], 2);
  EXPECT_EQ(st["roles"]["root"]["published"]["valid_signatures"], 3);
  EXPECT_EQ(st["log"]["size"], 1);
  ClientFollows("UKI of release 1");

  // The coordinator: reference values of release 1 are a target, the targets version is logged.
  auto r = VerifyRelease({"--reference-values", S("rv1.json"), "--require-logged", "--log-key",
                          S("repo/log/log.json"), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json out = json::parse(r.out);
  EXPECT_EQ(out["release_version"], 1);
  EXPECT_EQ(out["log"]["index"], 0);
  EXPECT_TRUE(fs::exists(P("coord/checkpoint.json")));

  // Release 2, with release 1 no longer allowed.
  AddRelease(2);
  r = Release({"sign", "--workdir", S("w"), "--min-release-version", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Publish();
  ClientFollows("UKI of release 2");
  r = VerifyRelease({"--reference-values", S("rv2.json"), "--require-logged", "--log-key",
                     S("repo/log/log.json"), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  out = json::parse(r.out);
  EXPECT_EQ(out["release_version"], 2);
  EXPECT_EQ(out["log"]["extends_size"], 1);  // the kept checkpoint is extended
  EXPECT_EQ(out["checks"].back(), "tlog.consistency");
  // Each release carries an SBOM: required, missing, then published.
  r = VerifyRelease({"--reference-values", S("rv2.json"), "--require-sbom"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "release.sbom: release 2 carries no SBOM target")) << r.err;
  // Its content is checked: well formed, of this release, naming the model the reference values
  // accept, and built from the commit the coordinator rebuilt from.
  PublishSbom(R"({"_type": "appliance-sbom", "release_version": 2})");
  r = VerifyRelease({"--reference-values", S("rv2.json"), "--require-sbom"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "release.sbom: target 'sbom2.json' is signed but SBOM"))
      << r.err;
  PublishSbom(Sbom(3, ModelOf(2)));
  r = VerifyRelease({"--reference-values", S("rv2.json"), "--require-sbom"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "the SBOM describes release 3")) << r.err;
  PublishSbom(Sbom(2, ModelOf(1)));
  r = VerifyRelease({"--reference-values", S("rv2.json"), "--require-sbom"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "release.sbom.model")) << r.err;
  PublishSbom(Sbom(2, ModelOf(2)));
  r = VerifyRelease({"--reference-values", S("rv2.json"), "--require-sbom", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  out = json::parse(r.out);
  EXPECT_EQ(out["sbom"]["target"], "sbom2.json");
  EXPECT_EQ(out["sbom"]["packages"], 1);
  EXPECT_EQ(out["sbom"]["model_container"], ModelOf(2));
  r = VerifyRelease({"--reference-values", S("rv2.json"), "--source-commit", std::string(40, 'e')});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "release.sbom.commit")) << r.err;
  r = VerifyRelease({"--reference-values", S("rv2.json"), "--source-commit", std::string(40, 'C')});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // Release 1's reference values are no longer a target; release 1 reported by evidence is
  // below the minimum.
  r = VerifyRelease({"--reference-values", S("rv1.json")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "release.target")) << r.err;
  r = VerifyRelease({"--release-version", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "release.min_version: release 1 is below")) << r.err;
  // A log that does not show the current targets version (its last entry), or shows it altered,
  // is refused.
  const std::string last =
      absl::StrCat("repo/log/entries/", Status()["log"]["size"].get<int>() - 1, ".json");
  fs::copy_file(P(last), P("entry-last"));
  WriteFileOrDie(P(last), Text(P("entry-last")) + " ");
  r = VerifyRelease({"--require-logged", "--log-key", S("repo/log/log.json")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "tlog.inclusion")) << r.err;
  fs::remove(P(last));
  r = VerifyRelease({"--require-logged", "--log-key", S("repo/log/log.json")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "tlog.entry")) << r.err;
  fs::copy_file(P("entry-last"), P(last));
  // The policy only tightens.
  r = Release({"sign", "--workdir", S("w"), "--min-release-version", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "only goes up (published 2, asked 1)")) << r.err;
  // Revoking release 2.
  r = Release({"sign", "--workdir", S("w"), "--revoke-release", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Publish();
  r = VerifyRelease({"--release-version", "2"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "release.revoked")) << r.err;
}

TEST_F(ReleaseChannelTest, ThresholdNotMetIsNotPublishedUntilTheSecondPersonSigns) {
  InitAndPublish({"--keys", "targets=2", "--threshold", "targets=2"});
  // The second targets key is someone else's: not on this machine.
  fs::create_directories(P("other"));
  fs::rename(P("w/keys/targets-2.pem"), P("other/targets-2.pem"));
  const std::string timestamp_before = Text(P("repo/timestamp.json"));
  AddRelease(2);
  auto r = Release({"sign", "--workdir", S("w")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "staged targets version 2: 1 signature(s), 2 needed"))
      << r.out;
  r = Release({"publish", "--workdir", S("w"), "--repo", S("repo")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "tuf.targets.threshold")) << r.err;
  EXPECT_EQ(Text(P("repo/timestamp.json")), timestamp_before);  // nothing written
  EXPECT_FALSE(fs::exists(P("repo/2.targets.json")));
  // The second person adds their signature to the staged targets.
  r = Release({"sign", "--workdir", S("w"), "--key", S("other/targets-2.pem")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "staged targets version 2: 2 signature(s), 2 needed"))
      << r.out;
  Publish();
  ClientFollows("UKI of release 2");
  // A wrong passphrase decrypts nothing.
  r = Release({"sign", "--workdir", S("w"), "--renew", "timestamp"}, "not the passphrase");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "wrong passphrase")) << r.err;
}

TEST_F(ReleaseChannelTest, RootRotationNeedsThresholdsOfOldAndNewRootKeys) {
  InitAndPublish();
  ClientFollows("UKI of release 1");
  json st = Status();
  const std::string old_root_1 = st["roles"]["root"]["keyids"][0];
  const std::string old_timestamp = st["roles"]["timestamp"]["keyids"][0];
  // Root keys 2 and 3 are offline; key 1 is replaced by a new one, the timestamp key rotated.
  fs::create_directories(P("offline"));
  fs::rename(P("w/keys/root-2.pem"), P("offline/root-2.pem"));
  fs::rename(P("w/keys/root-3.pem"), P("offline/root-3.pem"));
  auto r = Release({"rotate-root", "--workdir", S("w"), "--generate", "root", "--remove-key",
                    "root=" + old_root_1.substr(0, 12), "--generate", "timestamp", "--remove-key",
                    "timestamp=" + old_timestamp.substr(0, 12)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Signed by old key 1 and new key 4 only: 1 of the old root's 2, 1 of the new root's 2.
  r = Release({"publish", "--workdir", S("w"), "--repo", S("repo")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "tuf.root.threshold")) << r.err;
  EXPECT_FALSE(fs::exists(P("repo/2.root.json")));
  r = Release({"sign", "--workdir", S("w"), "--key", S("offline/root-3.pem")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Publish();
  ASSERT_TRUE(fs::exists(P("repo/2.root.json")));
  ClientFollows("UKI of release 1");
  auto root = json::parse(Text(P("client/root.json")));
  EXPECT_EQ(root["signed"]["version"], 2);
  EXPECT_FALSE(root["signed"]["keys"].contains(old_root_1));
  EXPECT_FALSE(root["signed"]["keys"].contains(old_timestamp));
  // After the rotation the channel goes on: the new timestamp key signs renewals.
  r = Release({"sign", "--workdir", S("w"), "--renew", "timestamp"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "staged timestamp version 3: 1 signature(s), 1 needed\n");
  Publish();
  ClientFollows("UKI of release 1");
  EXPECT_EQ(json::parse(Text(P("client/timestamp.json")))["signed"]["version"], 3);
}

TEST_F(ReleaseChannelTest, PublishChecksTargetFilesAndRefusesBadInput) {
  InitAndPublish();
  AddRelease(2);
  auto r = Release({"sign", "--workdir", S("w")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  WriteFileOrDie(P("w/targets/uki.efi"), "swapped after signing");
  r = Release({"publish", "--workdir", S("w"), "--repo", S("repo")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "target uki.efi")) << r.err;
  // Usage errors and malformed input: exit 2.
  r = Release({"init", "--workdir", S("w2"), "--name", "x"}, "short");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(r.err, "8 characters")) << r.err;
  r = Release({"init", "--workdir", S("w3"), "--name", "x", "--threshold", "root=4"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(r.err, "root=4: the role has 3 key(s)")) << r.err;
  r = Release({"add-target", "--workdir", S("w"), S("uki.efi"), "--name", "../escape"});
  EXPECT_EQ(r.exit_code, 2);
  r = Release({"sign", "--workdir", S("w"), "--renew", "mirror"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(r.err, "unknown role 'mirror'")) << r.err;
}

TEST_F(ReleaseChannelTest, ForkedLogIsRefusedByACoordinatorWhoKeptACheckpoint) {
  InitAndPublish();
  // A copy of the operator's state: the fork, which will show a different history.
  fs::copy(P("w"), P("fork"), fs::copy_options::recursive);
  fs::copy(P("repo"), P("forkrepo"), fs::copy_options::recursive);
  AddRelease(2);
  auto r = Release({"sign", "--workdir", S("w")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Publish();
  r = VerifyRelease({"--require-logged", "--log-key", S("repo/log/log.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;  // the coordinator keeps the checkpoint of 2 entries
  // The fork: two other targets versions (versions go up, so TUF alone accepts them).
  for (int v : {7, 8}) {
    WriteFileOrDie(P("x.bin"), absl::StrCat("fork ", v));
    r = Release(
        {"add-target", "--workdir", S("fork"), S("x.bin"), "--release-version", std::to_string(v)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = Release({"sign", "--workdir", S("fork")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = Release({"publish", "--workdir", S("fork"), "--repo", S("forkrepo")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  r = VerifyRelease({"--require-logged", "--log-key", S("forkrepo/log/log.json")}, "coord",
                    "forkrepo");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "tlog.consistency")) << r.err;
  // A fresh coordinator (no checkpoint kept) cannot tell: that is what keeping one is for.
  r = VerifyRelease({"--require-logged", "--log-key", S("forkrepo/log/log.json")}, "fresh",
                    "forkrepo");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// A coordinator-supplied signed time (RFC 3161 response from a TSA it trusts): expiry is checked
// against it too, so a coordinator whose clock is wrong (or an appliance whose host sets it) still
// sees expired metadata; a time stamp that does not verify is a failed check, a file that is not
// one is bad input.
TEST_F(ReleaseChannelTest, SignedTimeFromATrustedTsaAppliesToExpiry) {
  InitAndPublish();
  attest::testing::SoftwareTsa tsa, other;
  WriteFileOrDie(P("tsa.pem"), tsa.root_pem());
  WriteFileOrDie(P("other.pem"), other.root_pem());
  auto stamp = [&](absl::Duration from_now) {
    const auto tsr = tsa.Stamp(absl::Now() + from_now);
    WriteFileOrDie(P("time.tsr"), std::string(tsr.begin(), tsr.end()));
    return S("time.tsr");
  };
  auto r = VerifyRelease(
      {"--signed-time", stamp(absl::ZeroDuration()), "--tsa-ca", S("tsa.pem"), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "time.signed")) << r.out;
  // The timestamp role expires after a day: a signed time two days on says it has expired.
  r = VerifyRelease({"--signed-time", stamp(absl::Hours(48)), "--tsa-ca", S("tsa.pem")});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "tuf.timestamp.expired")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "signed time")) << r.err;
  r = VerifyRelease({"--signed-time", stamp(absl::ZeroDuration()), "--tsa-ca", S("other.pem")});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "time.signed")) << r.err;
  WriteFileOrDie(P("junk.tsr"), "not a time stamp");
  r = VerifyRelease({"--signed-time", S("junk.tsr"), "--tsa-ca", S("tsa.pem")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = VerifyRelease({"--signed-time", stamp(absl::ZeroDuration())});  // no --tsa-ca
  EXPECT_EQ(r.exit_code, 2) << r.err;
}
}  // namespace
