// The appliance's updater end to end on the host (issue 8): an operator publishes releases with
// appliance-release into a repository served by a loopback HTTPS server; appliance-update (a
// process) refreshes the channel from the image's trusted root, installs the newest release for
// its hardware into the inactive A/B slot of a GPT disk image, and after the (simulated) reboot
// and boot-complete commits it to a real vTPM (swtpm) NV counter. Then the disk is reset to the
// factory image and the trusted metadata wiped, and a mirror replays an older, validly signed
// channel: the counter refuses the rollback. The VM version of this flow is not built yet.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ab_disk.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "appliance_fixture.h"
#include "attest/tuf/client_revocations.h"
#include "static_http_server.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using attest::testing::AbDisk;
using attest::testing::ProcessResult;
using attest::testing::RunProcess;
using attest::testing::ScopedTempDir;
using attest::testing::StaticHttpServer;
using attest::testing::Swtpm;
using attest::testing::TestRelease;
using json = nlohmann::json;

const fs::path kBin = attest::testing::BinDir();
constexpr char kPass[] = "correct horse battery";

class UpdaterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    disk_.emplace(tmp_.path() / "appliance");
    swtpm_ = std::make_unique<Swtpm>(tmp_.path() / "swtpm");
    auto r = Release({"init", "--workdir", S("w"), "--name", "appliance-releases"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = Release({"publish", "--workdir", S("w"), "--repo", S("repo")});  // the empty channel
    ASSERT_EQ(r.exit_code, 0) << r.err;
    fs::copy_file(P("repo/1.root.json"), P("image-root.json"));  // what the image carries
    server_ = std::make_unique<StaticHttpServer>(P("repo"), std::chrono::milliseconds(0),
                                                 StaticHttpServer::Tls::kYes);
    attest::testing::WriteFileOrDie(P("repo-ca.pem"), server_->ca_pem());
  }
  fs::path P(const std::string& n) const { return tmp_.path() / n; }
  std::string S(const std::string& n) const { return P(n).string(); }

  ProcessResult Release(std::vector<std::string> args) {
    return attest::testing::RunReleaseTool((kBin / "appliance-release").string(), args, kPass);
  }
  void Publish(const TestRelease& r, const std::string& hardware = "qemu-x86_64") {
    const std::string v = std::to_string(r.version);
    for (const auto& [file, kind] : std::vector<std::pair<std::string, std::string>>{
             {"uki.efi", "uki"}, {"root.raw", "root"}, {"root.verity", "verity"}}) {
      std::vector<std::string> args = {"add-target",
                                       "--workdir",
                                       S("w"),
                                       (r.dir / file).string(),
                                       "--name",
                                       absl::StrCat("appliance_", v, "_", file),
                                       "--kind",
                                       kind,
                                       "--release-version",
                                       v,
                                       "--hardware",
                                       hardware};
      if (kind == "root") {
        args.push_back("--roothash");
        args.push_back(r.roothash);
      }
      auto res = Release(args);
      ASSERT_EQ(res.exit_code, 0) << res.err;
    }
    auto res = Release({"sign", "--workdir", S("w")});
    ASSERT_EQ(res.exit_code, 0) << res.err;
    res = Release({"publish", "--workdir", S("w"), "--repo", S("repo")});
    ASSERT_EQ(res.exit_code, 0) << res.err;
  }
  ProcessResult Update(const std::string& command, const std::string& url = "",
                       const std::string& ca_file = "") {
    return RunProcess({(kBin / "appliance-update").string(),
                       "--metadata-dir",
                       S("appliance/meta"),
                       "--trusted-root",
                       S("image-root.json"),
                       "--metadata-url",
                       url.empty() ? server_->url() : url,
                       "--hardware",
                       "qemu-x86_64",
                       "--disk",
                       disk_->disk_path().string(),
                       "--esp",
                       disk_->esp().string(),
                       "--cmdline",
                       disk_->cmdline().string(),
                       "--work-dir",
                       S("appliance/downloads"),
                       "--tcti",
                       swtpm_->tcti(),
                       "--ca-file",
                       ca_file.empty() ? S("repo-ca.pem") : ca_file,
                       command},
                      120);
  }

  ScopedTempDir tmp_;
  std::optional<AbDisk> disk_;
  std::unique_ptr<Swtpm> swtpm_;
  std::unique_ptr<StaticHttpServer> server_;
};

TEST_F(UpdaterTest, InstallsRebootsCommitsAndTheVtpmCounterRefusesARollback) {
  ASSERT_EQ(disk_->Boot(), 1u);
  auto r = Update("install");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["reason"], "up to date");  // nothing published yet

  // Release 2 (and a release for other hardware, which is not this appliance's).
  const TestRelease r2 = disk_->MakeRelease(2, 2 * AbDisk::kMiB, 40 * 1024);
  const TestRelease other = disk_->MakeRelease(9, AbDisk::kMiB, 1024);
  Publish(other, "other-board");
  Publish(r2);
  fs::copy(P("repo"), P("repo-at-2"), fs::copy_options::recursive);  // kept by a mirror
  r = Update("status");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json status = json::parse(r.out);
  EXPECT_EQ(status["running_version"], 1);
  EXPECT_EQ(status["available_version"], 2);
  EXPECT_EQ(status["committed_version"], 0);
  r = Update("install");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["version"], 2);
  // Not committed before the new release completed a boot.
  r = Update("commit");
  EXPECT_EQ(r.exit_code, 0) << r.err;  // release 1 is running and blessed: commits 1
  ASSERT_EQ(disk_->Boot(), 2u);
  r = Update("commit");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "release 2 is not blessed yet")) << r.err;
  disk_->Bless();
  r = Update("commit");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["committed_version"], 2);

  // Release 3, the same way.
  const TestRelease r3 = disk_->MakeRelease(3, 3 * AbDisk::kMiB, 40 * 1024);
  Publish(r3);
  r = Update("install");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(disk_->Boot(), 3u);
  disk_->Bless();
  r = Update("commit");
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // An attacker resets the disk to the factory image (release 1) and wipes the trusted metadata;
  // a mirror replays the channel as it was at release 2 (validly signed, not yet expired).
  disk_->FactoryReset();
  fs::remove_all(P("appliance/meta"));
  ASSERT_EQ(disk_->Boot(), 1u);
  StaticHttpServer old_mirror(P("repo-at-2"), std::chrono::milliseconds(0),
                              StaticHttpServer::Tls::kYes);
  attest::testing::WriteFileOrDie(P("old-mirror-ca.pem"), old_mirror.ca_pem());
  r = Update("install", old_mirror.url(), S("old-mirror-ca.pem"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "rollback.tpm_counter: release 2 is below release 3"))
      << r.err;
  r = Update("status", old_mirror.url(), S("old-mirror-ca.pem"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["committed_version"], 3);
  EXPECT_EQ(disk_->Boot(), 1u);  // nothing was written
}

TEST_F(UpdaterTest, ChannelPolicyAndABrokenReleaseFallBack) {
  ASSERT_EQ(disk_->Boot(), 1u);
  const TestRelease r2 = disk_->MakeRelease(2, AbDisk::kMiB, 4096);
  Publish(r2);
  // Release 2 revoked before this appliance saw it: not installed.
  auto r = Release({"sign", "--workdir", S("w"), "--revoke-release", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Release({"publish", "--workdir", S("w"), "--repo", S("repo")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Update("install");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "release.revoked")) << r.err;
  // Release 3 installs, but never completes a boot: after its tries, release 1 boots again and
  // release 3 is not committed.
  const TestRelease r3 = disk_->MakeRelease(3, AbDisk::kMiB, 4096);
  Publish(r3);
  r = Update("install");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (int i = 0; i < 3; ++i) ASSERT_EQ(disk_->Boot(), 3u);
  ASSERT_EQ(disk_->Boot(), 1u);
  r = Update("status");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["running_version"], 1);
  EXPECT_EQ(json::parse(r.out)["committed_version"], 0);
}

// Client-certificate revocations ship as a signed target (issue 8 item 7): the operator revokes a
// coordinator's key with appliance-release, the appliance's updater writes the channel's list for
// the supervisor (which applies it: supervisor_integration_tests); a mirror that swaps the list
// makes the updater write nothing.
TEST_F(UpdaterTest, ClientRevocationsShipAsASignedTarget) {
  const fs::path out = P("appliance/state/client-revocations.json");
  fs::create_directories(out.parent_path());
  auto revocations = [&] {
    return RunProcess(
        {(kBin / "appliance-update").string(), "--metadata-dir", S("appliance/meta"),
         "--trusted-root", S("image-root.json"), "--metadata-url", server_->url(), "--hardware",
         "qemu-x86_64", "--ca-file", S("repo-ca.pem"), "revocations", "--output", out.string()},
        120);
  };
  auto list = [&] {
    return attest::tuf::ParseClientRevocations(attest::testing::ReadFileOrDie(out));
  };
  // The channel revokes no one yet: the supervisor gets the empty list.
  auto r = revocations();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(json::parse(r.out)["target"].is_null()) << r.out;
  ASSERT_TRUE(list().ok());
  EXPECT_TRUE(list()->revoked.empty());

  attest::testing::TestPki pki(P("pki"), "coordinators");
  const auto stolen = pki.Issue("coordinator-7", "c7");
  auto spki = attest::tuf::SpkiSha256OfPemCertificate(stolen.cert_pem);
  ASSERT_TRUE(spki.ok()) << spki.status();
  const std::string other(64, 'b');
  r = Release({"revoke-client", "--workdir", S("w"), "--cert", stolen.cert_path.string(),
               "--spki-sha256", other, "--reason", "key stolen"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, *spki)) << r.out;
  r = Release({"revoke-client", "--workdir", S("w"), "--spki-sha256", "12345"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "64 hex digits")) << r.err;
  ASSERT_EQ(Release({"sign", "--workdir", S("w")}).exit_code, 0);
  ASSERT_EQ(Release({"publish", "--workdir", S("w"), "--repo", S("repo")}).exit_code, 0);

  r = revocations();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["revoked_clients"], 2) << r.out;
  ASSERT_TRUE(list().ok()) << list().status();
  std::string reason;
  EXPECT_TRUE(list()->Revoked(*spki, &reason));
  EXPECT_EQ(reason, "key stolen");
  EXPECT_TRUE(list()->Revoked(other));

  // A mirror serves an empty list under the signed name (every copy of it): refused, and the
  // supervisor's file keeps the signed list.
  const auto before = attest::testing::ReadFileOrDie(out);
  for (const auto& f : fs::directory_iterator(P("repo/targets"))) {
    if (absl::EndsWith(f.path().filename().string(), attest::tuf::kClientRevocationsTarget)) {
      attest::testing::WriteFileOrDie(f.path(), attest::tuf::SerializeClientRevocations({}));
    }
  }
  r = revocations();
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "client-revocations.json")) << r.err;
  EXPECT_EQ(attest::testing::ReadFileOrDie(out), before);
}

}  // namespace
