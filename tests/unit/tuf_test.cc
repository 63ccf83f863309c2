// The release channel's TUF client (issue 8, attest/tuf): one named test per attack class of the
// TUF specification that the metadata workflow must stop, with a repository made by software keys
// (tests/testing/tuf_repo.h). After every refused refresh the trusted metadata directory is
// unchanged byte for byte.
#include <gtest/gtest.h>
#include <openssl/ts.h>

#include <fstream>
#include <functional>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/status.h"
#include "attest/tpm/hash_alg.h"
#include "attest/tuf/client.h"
#include "attest/tuf/client_revocations.h"
#include "attest/tuf/metadata.h"
#include "attest/tuf/release.h"
#include "attest/tuf/signed_time.h"
#include "software_tsa.h"
#include "static_http_server.h"
#include "test_support.h"
#include "tuf_repo.h"

namespace attest::tuf {
namespace {

namespace fs = std::filesystem;
using testing::TufKey;
using testing::TufRepo;

// File name → SHA-256 of the trusted metadata directory's files.
std::map<std::string, std::string> Snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    out[e.path().filename()] =
        HexEncode(*tpm::Hash(tpm::kAlgSha256, testing::ReadFileOrDie(e.path())));
  }
  return out;
}

std::string ReadText(const fs::path& p) {
  auto b = testing::ReadFileOrDie(p);
  return std::string(b.begin(), b.end());
}

class TufClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = std::make_unique<TufRepo>(tmp_.path() / "repo");
    repo_->target_files["release-1.raw"] = "release one";
    const std::string root = repo_->PublishRoot();
    repo_->PublishAll();
    ASSERT_TRUE(
        Client::Init(meta(), std::span(reinterpret_cast<const uint8_t*>(root.data()), root.size()))
            .ok());
  }
  fs::path meta() const { return tmp_.path() / "meta"; }
  fs::path out() const { return tmp_.path() / "out"; }
  absl::Status Refresh(absl::Time now = absl::Now(), Limits limits = {}) {
    Client c(meta(), repo_->dir().string(), fetcher_.get(), now, limits);
    return c.Refresh();
  }
  absl::StatusOr<TargetFile> Download(const std::string& name) {
    Client c(meta(), repo_->dir().string(), fetcher_.get());
    RETURN_IF_ERROR(c.Refresh());
    return c.Download(name, repo_->targets_dir().string(), out());
  }
  // The refresh fails naming `check`, and writes nothing into the trusted metadata.
  void ExpectRefused(const std::string& check, absl::Time now = absl::Now(), Limits limits = {}) {
    const auto before = Snapshot(meta());
    const absl::Status st = Refresh(now, limits);
    EXPECT_FALSE(st.ok()) << "expected a refusal naming " << check;
    EXPECT_TRUE(absl::StrContains(st.message(), check)) << st;
    EXPECT_EQ(Snapshot(meta()), before) << "trusted metadata changed on a failed refresh: " << st;
  }

  testing::ScopedTempDir tmp_;
  std::unique_ptr<TufRepo> repo_;
  std::unique_ptr<Fetcher> fetcher_ = MakeFileFetcher();
};

TEST_F(TufClientTest, UpdatesAndDownloadsAVerifiedTarget) {
  auto tf = Download("release-1.raw");
  ASSERT_TRUE(tf.ok()) << tf.status();
  EXPECT_EQ(tf->length, 11u);
  auto got = testing::ReadFileOrDie(out() / "release-1.raw");
  EXPECT_EQ(std::string(got.begin(), got.end()), "release one");
  for (const char* f : {"root.json", "timestamp.json", "snapshot.json", "targets.json"}) {
    EXPECT_TRUE(fs::exists(meta() / f)) << f;
  }
  // Consistent snapshots: versioned metadata names and hash-prefixed target names.
  repo_->consistent_snapshot = true;
  ++repo_->root_version;
  ++repo_->timestamp_version;
  ++repo_->snapshot_version;
  ++repo_->targets_version;
  repo_->target_files["release-2.raw"] = "release two";
  repo_->PublishRoot();
  repo_->PublishAll();
  std::filesystem::remove(repo_->dir() / "targets/release-2.raw");  // only the hashed name exists
  tf = Download("release-2.raw");
  ASSERT_TRUE(tf.ok()) << tf.status();
}

TEST_F(TufClientTest, ArbitrarySoftwareIsRefused) {
  // A target swapped on the mirror: hash mismatch.
  ASSERT_TRUE(Refresh().ok());
  repo_->Write("targets/release-1.raw", "evil bytes!");
  auto tf = Download("release-1.raw");
  ASSERT_FALSE(tf.ok());
  EXPECT_TRUE(absl::StrContains(tf.status().message(), "tuf.target.hash")) << tf.status();
  EXPECT_FALSE(fs::exists(out() / "release-1.raw"));
  EXPECT_FALSE(fs::exists(out() / "release-1.raw.part"));  // the streamed copy is removed too
  // Targets metadata signed by a key the root does not list.
  ++repo_->timestamp_version;
  ++repo_->snapshot_version;
  ++repo_->targets_version;
  repo_->target_files["release-1.raw"] = "evil bytes!";
  repo_->keys["targets"] = {TufKey::Ed25519()};  // not in root
  repo_->PublishAll();
  ExpectRefused("tuf.targets.threshold");
}

TEST_F(TufClientTest, RollbackAttacksAreRefused) {
  ASSERT_TRUE(Refresh().ok());
  const std::string old_timestamp = ReadText(repo_->dir() / "timestamp.json");
  ++repo_->timestamp_version;
  ++repo_->snapshot_version;
  ++repo_->targets_version;
  repo_->PublishAll();
  ASSERT_TRUE(Refresh().ok());
  // An older timestamp replayed.
  repo_->Write("timestamp.json", old_timestamp);
  ExpectRefused("tuf.timestamp.rollback");
  // A newer timestamp naming an older snapshot.
  ++repo_->timestamp_version;
  --repo_->snapshot_version;
  repo_->PublishAll();
  ExpectRefused("tuf.timestamp.snapshot-rollback");
  // A new snapshot listing an older targets version.
  repo_->snapshot_version += 2;
  ++repo_->timestamp_version;
  --repo_->targets_version;
  repo_->PublishAll();
  ExpectRefused("tuf.snapshot.rollback");
}

TEST_F(TufClientTest, IndefiniteFreezeIsRefused) {
  // A timestamp that expires in an hour (the root keeps its 30 days), read two hours later.
  repo_->expires = absl::Now() + absl::Hours(1);
  ++repo_->timestamp_version;
  repo_->PublishAll();
  ExpectRefused("tuf.timestamp.expired", absl::Now() + absl::Hours(2));
  // The root itself expired (a repository that stopped being maintained).
  ExpectRefused("tuf.root.expired", absl::Now() + absl::Hours(24 * 365));
}

TEST_F(TufClientTest, ExpiryUsesATimeFloorThatNeverGoesBack) {
  // The guest's clock is the host's. A timestamp signed two hours from the clock's "now" is
  // trusted; its signing time becomes the floor.
  const absl::Time clock = absl::Now();
  repo_->issued = clock + absl::Hours(2);
  ++repo_->timestamp_version;
  repo_->PublishAll();
  ASSERT_TRUE(Refresh(clock).ok());
  const std::string floor_file = ReadText(meta() / kFloorFile);
  EXPECT_EQ(nlohmann::json::parse(floor_file)["time"], FormatUtc(clock + absl::Hours(2)));
  // New targets that expire an hour from the clock: the clock (set back by the host) says they
  // are valid, the floor says they expired an hour ago.
  repo_->role_expires["targets"] = clock + absl::Hours(1);
  ++repo_->targets_version;
  ++repo_->snapshot_version;
  repo_->issued = clock + absl::Hours(3);
  ++repo_->timestamp_version;
  repo_->PublishAll();
  ExpectRefused("tuf.targets.expired", clock);
  const absl::Status st = Refresh(clock);
  EXPECT_TRUE(absl::StrContains(st.message(), "but a timestamp issued at")) << st;
  // The floor never goes back: an older signing time leaves it where it is.
  repo_->role_expires.clear();
  ++repo_->targets_version;
  ++repo_->snapshot_version;
  repo_->issued = clock + absl::Hours(1);
  ++repo_->timestamp_version;
  repo_->PublishAll();
  ASSERT_TRUE(Refresh(clock).ok());
  EXPECT_EQ(ReadText(meta() / kFloorFile), floor_file);
}

// Delegations: the search order (top-level, then delegated roles depth first in listed order), a
// role trusted only for the paths delegated to it, terminating delegations, and a delegated role
// (also the one cached in the trusted store) re-checked against its delegator on every lookup.
TEST_F(TufClientTest, DelegatedRolesAreSearchedAndRecheckedAgainstTheirDelegator) {
  const TufKey a = TufKey::Ed25519(), b = TufKey::EcdsaP256(), c = TufKey::Ed25519();
  const std::string z = "elsewhere/z.raw";
  const std::string z_prefix =
      HexEncode(*tpm::Hash(tpm::kAlgSha256,
                           std::span(reinterpret_cast<const uint8_t*>(z.data()), z.size())))
          .substr(0, 4);
  auto delegate = [&](const TufKey& team_a_key, bool terminating) {
    return nlohmann::json{
        {"keys", {{team_a_key.id(), team_a_key.public_json()}, {c.id(), c.public_json()}}},
        {"roles", nlohmann::json::array({{{"name", "team-a"},
                                          {"keyids", {team_a_key.id()}},
                                          {"threshold", 1},
                                          {"paths", {"models/*"}},
                                          {"terminating", terminating}},
                                         {{"name", "team-b"},
                                          {"keyids", {c.id()}},
                                          {"threshold", 1},
                                          {"paths", {"models/*", "other/*"}}},
                                         {{"name", "team-c"},  // never published
                                          {"keyids", {c.id()}},
                                          {"threshold", 1},
                                          {"path_hash_prefixes", {z_prefix}}}})}};
  };
  auto publish = [&] {
    ++repo_->targets_version;
    ++repo_->snapshot_version;
    ++repo_->timestamp_version;
    repo_->PublishAll();
  };
  repo_->delegations = delegate(a, false);
  repo_->delegated["team-a"] = {1, {{"models/m1.raw", "model one"}, {"other/y.raw", "y"}}, {a}};
  repo_->delegated["team-b"] = {1, {{"models/m2.raw", "model two"}}, {c}};
  publish();
  auto tf = Download("models/m1.raw");
  ASSERT_TRUE(tf.ok()) << tf.status();
  EXPECT_EQ(ReadText(out() / "models/m1.raw"), "model one");
  EXPECT_TRUE(fs::exists(meta() / "team-a.json"));  // kept in the trusted store
  tf = Download("models/m2.raw");                   // not in team-a: the search goes on
  ASSERT_TRUE(tf.ok()) << tf.status();
  // team-a lists other/y.raw, but "other/*" was delegated to team-b only.
  EXPECT_EQ(Download("other/y.raw").status().code(), absl::StatusCode::kNotFound);
  // A delegated role (here by path hash prefix) that the snapshot does not list is refused.
  auto st = Download(z).status();
  EXPECT_TRUE(absl::StrContains(st.message(), "tuf.team-c.missing")) << st;

  // A terminating delegation ends the search: team-b is not consulted for models/*.
  repo_->delegations = delegate(a, true);
  publish();
  EXPECT_EQ(Download("models/m2.raw").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Download("models/m1.raw").ok());

  // The delegator moves team-a to key b. The cached team-a.json (signed by a) no longer holds,
  // nor does the mirror's copy: refused, and the trusted copy is left as it was.
  const std::string cached = ReadText(meta() / "team-a.json");
  repo_->delegations = delegate(b, false);
  publish();
  st = Download("models/m1.raw").status();
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(absl::StrContains(st.message(), "tuf.team-a.threshold")) << st;
  EXPECT_EQ(ReadText(meta() / "team-a.json"), cached);
  // team-a re-signed by its new key: accepted again.
  repo_->delegated["team-a"].signers = {b};
  ++repo_->delegated["team-a"].version;
  publish();
  tf = Download("models/m1.raw");
  ASSERT_TRUE(tf.ok()) << tf.status();
}

TEST_F(TufClientTest, EndlessDataIsRefused) {
  Limits small;
  small.timestamp = 100;
  ExpectRefused("tuf.download.size", absl::Now(), small);
  // A target longer than its metadata says: the fetch stops at the listed length.
  ASSERT_TRUE(Refresh().ok());
  repo_->Write("targets/release-1.raw", std::string(1 << 20, 'x'));
  auto tf = Download("release-1.raw");
  ASSERT_FALSE(tf.ok());
  EXPECT_TRUE(absl::StrContains(tf.status().message(), "endless data")) << tf.status();
}

TEST_F(TufClientTest, MixAndMatchIsRefused) {
  ASSERT_TRUE(Refresh().ok());
  // A valid snapshot of another version than the timestamp names.
  ++repo_->timestamp_version;
  ++repo_->snapshot_version;
  ++repo_->targets_version;
  repo_->PublishAll();
  const std::string timestamp = ReadText(repo_->dir() / "timestamp.json");
  ++repo_->snapshot_version;
  ++repo_->targets_version;
  repo_->PublishAll();
  repo_->Write("timestamp.json", timestamp);  // names the previous snapshot's length and hash
  ExpectRefused("snapshot");  // its length bound or hash, as the timestamp lists them
  // Targets that do not match the snapshot's hash.
  ++repo_->timestamp_version;
  repo_->PublishAll();
  repo_->target_files["release-9.raw"] = "nine";
  repo_->Write("targets.json", TufRepo::Envelope(repo_->TargetsSigned(), repo_->keys["targets"]));
  ExpectRefused("targets");  // the length bound or the hash the snapshot lists
}

TEST_F(TufClientTest, ThresholdNotMetWithOneOfTwoKeys) {
  // Root role: two keys, threshold 2; an attacker with one of them signs a new root.
  repo_->keys["root"].push_back(TufKey::EcdsaP256());
  repo_->thresholds["root"] = 2;
  ++repo_->root_version;
  const auto old_key = repo_->keys["root"][0];
  repo_->PublishRoot();  // v2 signed by both new keys and (below) the old one
  repo_->PublishRoot({old_key});
  ASSERT_TRUE(Refresh().ok());
  ++repo_->root_version;
  repo_->keys["targets"] = {TufKey::Ed25519()};
  const auto stolen = repo_->keys["root"][1];
  repo_->Write("3.root.json", TufRepo::Envelope(repo_->RootSigned(), {stolen}));
  ExpectRefused("tuf.root.threshold");
}

TEST_F(TufClientTest, RootRotationChainCannotSkipAVersion) {
  // v2 and v3 published as v2 (a skipped version inside): refused.
  repo_->root_version = 3;
  const std::string v3 = TufRepo::Envelope(repo_->RootSigned(), repo_->keys["root"]);
  repo_->Write("2.root.json", v3);
  ExpectRefused("tuf.root.version");
  // Only v3 published: the chain stops at v1, and metadata signed with v3's new keys fails.
  std::filesystem::remove(repo_->dir() / "2.root.json");
  repo_->keys["timestamp"] = {TufKey::Ed25519()};
  repo_->PublishRoot();
  ++repo_->timestamp_version;
  repo_->PublishAll();
  ExpectRefused("tuf.timestamp.threshold");
}

TEST_F(TufClientTest, FastForwardRecoveryAfterKeyRotation) {
  ASSERT_TRUE(Refresh().ok());
  // The timestamp key is stolen and a timestamp of version 1000 is trusted.
  repo_->timestamp_version = 1000;
  repo_->PublishAll();
  ASSERT_TRUE(Refresh().ok());
  // The operators rotate the timestamp key (root v2) and restart its versions.
  repo_->keys["timestamp"] = {TufKey::Ed25519()};
  ++repo_->root_version;
  repo_->timestamp_version = 2;
  repo_->PublishRoot();
  repo_->PublishAll();
  ASSERT_TRUE(Refresh().ok()) << "the rotated root must drop the fast-forwarded timestamp";
  auto ts = ParseTimestamp(testing::ReadFileOrDie(meta() / "timestamp.json"));
  ASSERT_TRUE(ts.ok());
  EXPECT_EQ(ts->envelope.version, 2u);
}

TEST_F(TufClientTest, WrongSoftwareInstallationIsRefused) {
  ++repo_->timestamp_version;
  ++repo_->snapshot_version;
  ++repo_->targets_version;
  repo_->target_files["appliance-sev.raw"] = "for SEV-SNP hosts";
  repo_->target_custom["appliance-sev.raw"] = {{"hardware", "appliance-sev-snp"}};
  repo_->target_files["appliance-tdx.raw"] = "for TDX hosts";
  repo_->target_custom["appliance-tdx.raw"] = {{"hardware", "appliance-tdx"}};
  repo_->PublishAll();
  Client c(meta(), repo_->dir().string(), fetcher_.get());
  ASSERT_TRUE(c.Refresh().ok());
  auto ok =
      c.Download("appliance-sev.raw", repo_->targets_dir().string(), out(), "appliance-sev-snp");
  EXPECT_TRUE(ok.ok()) << ok.status();
  auto wrong =
      c.Download("appliance-tdx.raw", repo_->targets_dir().string(), out(), "appliance-sev-snp");
  ASSERT_FALSE(wrong.ok());
  EXPECT_TRUE(absl::StrContains(wrong.status().message(), "tuf.target.hardware")) << wrong.status();
  EXPECT_FALSE(fs::exists(out() / "appliance-tdx.raw"));
  auto unnamed =
      c.Download("release-1.raw", repo_->targets_dir().string(), out(), "appliance-sev-snp");
  EXPECT_FALSE(unnamed.ok());
}

TEST_F(TufClientTest, MaliciousMirrorSwappingFilesIsRefused) {
  ASSERT_TRUE(Refresh().ok());
  ++repo_->timestamp_version;
  ++repo_->snapshot_version;
  ++repo_->targets_version;
  repo_->PublishAll();
  // The mirror serves the targets metadata where the snapshot is expected.
  std::filesystem::copy_file(repo_->dir() / "targets.json", repo_->dir() / "snapshot.json",
                             fs::copy_options::overwrite_existing);
  ExpectRefused("snapshot");  // its length bound or hash, as the timestamp lists them
}

TEST_F(TufClientTest, OverHttpAndSlowRetrievalIsBounded) {
  testing::StaticHttpServer server(repo_->dir());
  auto fetcher = MakeHttpFetcher(absl::Seconds(5));
  {
    Client c(meta(), server.url(), fetcher.get());
    ASSERT_TRUE(c.Refresh().ok());
    auto tf = c.Download("release-1.raw", server.url() + "/targets", out());
    ASSERT_TRUE(tf.ok()) << tf.status();
  }
  // A server that sends one byte every 50 ms: the whole request is bounded by the deadline.
  testing::StaticHttpServer slow(repo_->dir(), std::chrono::milliseconds(50));
  auto impatient = MakeHttpFetcher(absl::Milliseconds(800));
  const auto before = Snapshot(meta());
  const absl::Time start = absl::Now();
  Client c(meta(), slow.url(), impatient.get());
  auto st = c.Refresh();
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(absl::StrContains(st.message(), "tuf.download.timeout")) << st;
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(Snapshot(meta()), before);
  // A missing file over HTTP is "not found", and oversized metadata is endless data.
  auto missing = fetcher->Fetch(server.url() + "/no-such.json", 1000);
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  auto big = fetcher->Fetch(server.url() + "/timestamp.json", 50);
  EXPECT_TRUE(absl::StrContains(big.status().message(), "endless data")) << big.status();
  Limits small;
  small.timestamp = 50;
  Client c2(meta(), server.url(), fetcher.get(), absl::Now(), small);
  st = c2.Refresh();
  EXPECT_TRUE(absl::StrContains(st.message(), "endless data")) << st;
}

TEST_F(TufClientTest, OverHttpsTheServerIsAuthenticated) {
  testing::StaticHttpServer server(repo_->dir(), std::chrono::milliseconds(0),
                                   testing::StaticHttpServer::Tls::kYes);
  ASSERT_TRUE(absl::StartsWith(server.url(), "https://127.0.0.1:"));
  const fs::path ca = tmp_.path() / "server-ca.pem";
  testing::WriteFileOrDie(ca, server.ca_pem());
  auto fetcher = MakeHttpFetcher(absl::Seconds(5), ca.string());
  {
    Client c(meta(), server.url(), fetcher.get());
    ASSERT_TRUE(c.Refresh().ok());
    auto tf = c.Download("release-1.raw", server.url() + "/targets", out());
    ASSERT_TRUE(tf.ok()) << tf.status();
  }
  // Not a server the client trusts (the system's trust store has never heard of it).
  auto system_store = MakeHttpFetcher(absl::Seconds(5));
  auto st = system_store->Fetch(server.url() + "/timestamp.json", 1 << 16).status();
  EXPECT_TRUE(absl::StrContains(st.message(), "tls:")) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "not authenticated")) << st;
  // The certificate names 127.0.0.1, not "localhost".
  const std::string port = server.url().substr(server.url().rfind(':') + 1);
  st = fetcher->Fetch("https://localhost:" + port + "/timestamp.json", 1 << 16).status();
  EXPECT_TRUE(absl::StrContains(st.message(), "not authenticated")) << st;
  // Plain HTTP to the TLS port fails cleanly.
  st = fetcher->Fetch("http://127.0.0.1:" + port + "/timestamp.json", 1 << 16).status();
  EXPECT_FALSE(st.ok());
}

TEST(TufClientCliTest, InitRefreshDownloadContract) {
  testing::ScopedTempDir tmp;
  TufRepo repo(tmp.path() / "repo");
  repo.target_files["a/release.raw"] = "payload";
  const std::string root = repo.PublishRoot();
  repo.PublishAll();
  testing::WriteFileOrDie(tmp.path() / "root.json", root);
  const std::string bin = APPLIANCE_TUF_CLIENT_BIN;
  const std::string meta = (tmp.path() / "meta").string();
  auto r = testing::RunProcess(
      {bin, "--metadata-dir", meta, "init", (tmp.path() / "root.json").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = testing::RunProcess(
      {bin, "--metadata-dir", meta, "--metadata-url", repo.dir().string(), "refresh"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = testing::RunProcess({bin, "--metadata-dir", meta, "--metadata-url",
                           "file://" + repo.dir().string(), "--target-name", "a/release.raw",
                           "--target-base-url", repo.targets_dir().string(), "--target-dir",
                           (tmp.path() / "out").string(), "download"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadText(tmp.path() / "out/a/release.raw"), "payload");
  // Failures are exit 1 (the suite's protocol), usage errors too.
  r = testing::RunProcess({bin, "--metadata-dir", meta, "--metadata-url", repo.dir().string(),
                           "--target-name", "missing", "--target-base-url",
                           repo.targets_dir().string(), "--target-dir",
                           (tmp.path() / "out").string(), "download"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "not in the trusted targets")) << r.err;
  r = testing::RunProcess({bin, "refresh"});
  EXPECT_EQ(r.exit_code, 1);
  r = testing::RunProcess({bin, "--metadata-dir", meta, "init", "/nonexistent/root.json"});
  EXPECT_EQ(r.exit_code, 1);
}

TEST(TufMetadataTest, TruncationsFailCleanlyAndEverySignedByteMatters) {
  testing::ScopedTempDir tmp;
  TufRepo repo(tmp.path() / "repo");
  repo.PublishRoot();
  repo.PublishAll();
  const auto root_bytes = testing::ReadFileOrDie(repo.dir() / "1.root.json");
  auto root = ParseRoot(root_bytes);
  ASSERT_TRUE(root.ok());
  const auto ts = testing::ReadFileOrDie(repo.dir() / "timestamp.json");
  for (size_t n = 0; n < ts.size(); ++n) {
    auto p = ParseTimestamp(std::span(ts).first(n));
    ASSERT_FALSE(p.ok()) << n;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  }
  // Flip each byte of the "signed" part: the file no longer parses, or the signature fails.
  const std::string text(ts.begin(), ts.end());
  const size_t from = text.find("\"signed\"");
  const size_t to = text.rfind('}');
  size_t refused = 0;
  for (size_t i = from + 9; i < to; ++i) {
    if (std::isspace(static_cast<unsigned char>(ts[i]))) continue;  // whitespace is not signed
    auto t = ts;
    t[i] ^= 0x01;
    auto p = ParseTimestamp(t);
    if (!p.ok()) {
      ++refused;
      continue;
    }
    auto st =
        VerifyRoleSignatures(p->envelope, "timestamp", root->roles.at("timestamp"), root->keys);
    EXPECT_FALSE(st.ok()) << "byte " << i << " flipped and still verified";
    if (!st.ok()) {
      EXPECT_TRUE(absl::StrContains(st.message(), "tuf.timestamp.threshold")) << st;
      ++refused;
    }
  }
  EXPECT_GT(refused, 100u);
}

TEST(TufMetadataTest, CanonicalJsonAndKeys) {
  auto c =
      CanonicalJson(nlohmann::json::parse(R"({"b": [1, "x\"y\\z"], "a": {"d": true, "c": null}})"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, R"({"a":{"c":null,"d":true},"b":[1,"x\"y\\z"]})");
  EXPECT_FALSE(CanonicalJson(nlohmann::json::parse("[1.5]")).ok());
  auto ed = TufKey::Ed25519();
  auto key = ParseKey(ed.public_json());
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->KeyId(), ed.id());
  const std::string msg = "message";
  auto sig = HexDecode(ed.SignHex(msg));
  EXPECT_TRUE(VerifySignature(
                  *key, std::span(reinterpret_cast<const uint8_t*>(msg.data()), msg.size()), *sig)
                  .ok());
  (*sig)[0] ^= 1;
  EXPECT_FALSE(VerifySignature(
                   *key, std::span(reinterpret_cast<const uint8_t*>(msg.data()), msg.size()), *sig)
                   .ok());
  EXPECT_FALSE(ParseKey(nlohmann::json{{"keytype", "rsa"},
                                       {"scheme", "rsassa-pss-sha256"},
                                       {"keyval", {{"public", "x"}}}})
                   .ok());
}

// The release log's index and entry files (fetched from a mirror before any proof is checked):
// every truncation and every wrongly typed field is a clean InvalidArgument, never a throw.
TEST(ReleaseLogFilesTest, StrictTypesAndEveryTruncationRefused) {
  auto bytes = [](const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); };
  const std::string sha(64, 'a');
  const std::string entry = R"({"_type":"release-log-entry","channel":"c","targets_version":7,)"
                            R"("targets_sha256":")" +
                            sha + R"(","targets":{}})";
  auto e = ParseLogEntry(bytes(entry));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->targets_version, 7u);
  EXPECT_EQ(e->targets_sha256, sha);
  auto i = ParseLogIndex(bytes(R"({"index":12})"));
  ASSERT_TRUE(i.ok()) << i.status();
  EXPECT_EQ(*i, 12u);
  for (size_t n = 0; n < entry.size(); ++n) {
    EXPECT_TRUE(absl::IsInvalidArgument(ParseLogEntry(bytes(entry.substr(0, n))).status())) << n;
  }
  for (const std::string& bad : std::vector<std::string>{
           R"({"_type":"release-log-entry","targets_version":"7","targets_sha256":")" + sha + "\"}",
           R"({"_type":"release-log-entry","targets_version":-7,"targets_sha256":")" + sha + "\"}",
           R"({"_type":"release-log-entry","targets_version":7,"targets_sha256":7})",
           R"({"_type":"release-log-entry","targets_version":7,"targets_sha256":")" +
               sha.substr(1) + "g\"}",
           R"({"_type":["release-log-entry"],"targets_version":7,"targets_sha256":")" + sha + "\"}",
           R"({"_type":"other","targets_version":7,"targets_sha256":")" + sha + "\"}",
           std::string("[]")}) {
    auto r = ParseLogEntry(bytes(bad));
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << bad << ": " << r.status();
  }
  for (const std::string bad : {R"({"index":"1"})", R"({"index":-1})", R"({"index":1.5})",
                                R"({"Index":1})", R"([1])", R"({"index":1)"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(ParseLogIndex(bytes(bad)).status())) << bad;
  }
  EXPECT_TRUE(absl::IsInvalidArgument(
      ParseLogIndex(bytes(R"({"index":1,"pad":")" + std::string(2000, ' ') + "\"}")).status()));
  // A target's release facts: wrong types read as "no release", never a throw.
  TargetFile tf;
  tf.custom =
      nlohmann::json::parse(R"({"release_version":"3","kind":7,"hardware":["x"],"roothash":null})");
  const TargetRelease r = ReleaseOf(tf);
  EXPECT_EQ(r.release_version, 0u);
  EXPECT_TRUE(r.kind.empty() && r.hardware.empty() && r.roothash.empty());
  tf.custom = {{"release_version", 3}, {"kind", "uki"}, {"hardware", "h"}};
  EXPECT_EQ(ReleaseOf(tf).release_version, 3u);
  EXPECT_EQ(ReleaseOf(tf).kind, "uki");
}

// The client-revocation list: canonical bytes parse back; every truncation, unknown key,
// duplicate, malformed hash and oversized field is a clean InvalidArgument naming the field.
TEST(ClientRevocationsTest, StrictBoundedAndEveryTruncationRefused) {
  auto parse = [](const std::string& s) {
    return ParseClientRevocations(std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  };
  ClientRevocations list;
  list.revoked[std::string(64, 'a')] = "key stolen";
  list.revoked[std::string(64, '1')] = "";
  const std::string bytes = SerializeClientRevocations(list);
  auto back = parse(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->revoked, list.revoked);
  std::string reason;
  EXPECT_TRUE(back->Revoked(std::string(64, 'A'), &reason));
  EXPECT_EQ(reason, "key stolen");
  EXPECT_FALSE(back->Revoked(std::string(64, 'b')));
  for (size_t n = 0; n + 1 < bytes.size(); ++n) {  // the last byte is the newline
    EXPECT_TRUE(absl::IsInvalidArgument(parse(bytes.substr(0, n)).status())) << n;
  }
  const std::string h = std::string(64, 'c');
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"({"_type":"client-revocations","revoked":[],"extra":1})", "unknown key 'extra'"},
      {R"({"_type":"revocations","revoked":[]})", "_type"},
      {R"({"_type":"client-revocations","revoked":{}})", "revoked must be a list"},
      {R"({"_type":"client-revocations","revoked":[{"spki_sha256":")" + h.substr(1) + R"("}]})",
       "revoked[0].spki_sha256"},
      {R"({"_type":"client-revocations","revoked":[{"spki_sha256":")" + h.substr(1) + R"(z"}]})",
       "revoked[0].spki_sha256"},
      {R"({"_type":"client-revocations","revoked":[{"spki_sha256":")" + h +
           R"("},{"spki_sha256":")" + absl::AsciiStrToUpper(h) + R"("}]})",
       "listed twice"},
      {R"({"_type":"client-revocations","revoked":[{"spki_sha256":")" + h + R"(","why":"x"}]})",
       "unknown key 'why'"},
      {R"({"_type":"client-revocations","revoked":[{"spki_sha256":")" + h + R"(","reason":")" +
           std::string(300, 'r') + R"("}]})",
       "reason"},
      {R"({"_type":"client-revocations","revoked":[7]})", "revoked[0]: an object"},
  };
  for (const auto& [text, names] : bad) {
    auto r = parse(text);
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << text << ": " << r.status();
    EXPECT_TRUE(absl::StrContains(r.status().message(), names)) << r.status();
  }
  std::string many = R"({"_type":"client-revocations","revoked":[)";
  for (size_t i = 0; i <= kMaxClientRevocations; ++i) {
    char hex[65];
    std::snprintf(hex, sizeof(hex), "%064zx", i);
    absl::StrAppend(&many, i ? "," : "", R"({"spki_sha256":")", hex, R"("})");
  }
  many += "]}";
  EXPECT_TRUE(absl::StrContains(parse(many).status().message(), "at most")) << parse(many).status();
  EXPECT_FALSE(SpkiSha256OfPemCertificate("-----BEGIN CERTIFICATE-----\nAAAA\n").ok());
}

// A coordinator-supplied signed time (RFC 3161, issue 8 item 6): the host set the clock back
// further than the floor can tell (the newest timestamp was issued before the targets expired), so
// only the signed time shows that the targets expired; a time stamp that does not verify is refused
// before anything is fetched.
TEST_F(TufClientTest, SignedTimeCatchesAClockSetBackBeyondTheFloor) {
  const absl::Time real = absl::Now();
  const absl::Time host_clock = real - absl::Hours(72);
  repo_->issued = real - absl::Hours(48);
  repo_->role_expires["targets"] = real - absl::Hours(24);
  ++repo_->targets_version;
  ++repo_->snapshot_version;
  ++repo_->timestamp_version;
  repo_->PublishAll();
  testing::SoftwareTsa tsa;
  auto st = VerifySignedTime(tsa.Stamp(real), tsa.root_pem());
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(absl::ToUnixSeconds(st->time), absl::ToUnixSeconds(real));
  EXPECT_TRUE(absl::StrContains(st->tsa, "Software TSA root")) << st->tsa;
  EXPECT_EQ(st->policy, "1.3.6.1.4.1.99999.1");
  const auto before = Snapshot(meta());
  {
    Client c(meta(), repo_->dir().string(), fetcher_.get(), host_clock);
    c.set_signed_time(st->time, "a time stamp " + st->tsa);
    const absl::Status refused = c.Refresh();
    EXPECT_TRUE(absl::StrContains(refused.message(), "tuf.targets.expired")) << refused;
    EXPECT_TRUE(absl::StrContains(refused.message(), "but a signed time (a time stamp issued by"))
        << refused;
  }
  EXPECT_EQ(Snapshot(meta()), before);
  // An old (replayed) time stamp cannot move "now" back: the floor still holds.
  {
    auto old = VerifySignedTime(tsa.Stamp(real - absl::Hours(24 * 30)), tsa.root_pem());
    ASSERT_TRUE(old.ok()) << old.status();
    Client c(meta(), repo_->dir().string(), fetcher_.get(), real);
    c.set_signed_time(old->time, "old");
    EXPECT_TRUE(absl::StrContains(c.Refresh().message(), "tuf.targets.expired"));
  }
  // Without it the clock set back (and a floor older than the expiry) accept the expired targets:
  // what the signed time is for.
  EXPECT_TRUE(Refresh(host_clock).ok());
}

// The DER TSTInfo a time-stamp response signs (to locate it in the response).
std::vector<uint8_t> TstInfoDer(const std::vector<uint8_t>& tsr) {
  const unsigned char* p = tsr.data();
  TS_RESP* resp = d2i_TS_RESP(nullptr, &p, static_cast<long>(tsr.size()));
  if (resp == nullptr) return {};
  unsigned char* der = nullptr;
  const int n = i2d_TS_TST_INFO(TS_RESP_get_tst_info(resp), &der);
  std::vector<uint8_t> out(der, der + std::max(n, 0));
  OPENSSL_free(der);
  TS_RESP_free(resp);
  return out;
}

TEST(SignedTimeTest, OnlyAVerifiedTimeStampFromATrustedTsaIsAccepted) {
  testing::SoftwareTsa tsa, other;
  const absl::Time t = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  const auto tsr = tsa.Stamp(t);
  ASSERT_TRUE(VerifySignedTime(tsr, tsa.root_pem()).ok());
  // Another TSA's root, a token without the TSA certificate, a time outside the TSA's validity.
  auto wrong = VerifySignedTime(tsr, other.root_pem());
  EXPECT_TRUE(absl::IsPermissionDenied(wrong.status())) << wrong.status();
  EXPECT_TRUE(absl::StrContains(wrong.status().message(), "time.signed")) << wrong.status();
  EXPECT_FALSE(VerifySignedTime(tsa.Stamp(t, "x", /*include_cert=*/false), tsa.root_pem()).ok());
  EXPECT_FALSE(VerifySignedTime(tsa.Stamp(t + absl::Hours(24 * 800)), tsa.root_pem()).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(VerifySignedTime(tsr, "no certificates").status()));
  // Every truncation and trailing garbage: malformed.
  for (size_t n = 0; n < tsr.size(); ++n) {
    auto r = VerifySignedTime(std::span(tsr.data(), n), tsa.root_pem());
    EXPECT_FALSE(r.ok()) << n;
  }
  auto longer = tsr;
  longer.push_back(0);
  EXPECT_TRUE(absl::IsInvalidArgument(VerifySignedTime(longer, tsa.root_pem()).status()));
  // Every byte flipped: no flip inside the signed TSTInfo (which carries the time) verifies, and
  // none verifies to another time. (Flips that still verify, 13 of 969 bytes here, are outside
  // the signed content: the response's PKIStatusInfo (granted → grantedWithMods) and algorithm
  // identifiers the verification does not use.)
  const std::vector<uint8_t> tst = TstInfoDer(tsr);
  ASSERT_FALSE(tst.empty());
  const auto at = std::search(tsr.begin(), tsr.end(), tst.begin(), tst.end());
  ASSERT_NE(at, tsr.end());
  const size_t begin = static_cast<size_t>(at - tsr.begin()), end = begin + tst.size();
  std::vector<size_t> accepted;
  for (size_t i = 0; i < tsr.size(); ++i) {
    auto flipped = tsr;
    flipped[i] ^= 0x01;
    auto r = VerifySignedTime(flipped, tsa.root_pem());
    if (r.ok()) {
      accepted.push_back(i);
      EXPECT_EQ(r->time, t) << "byte " << i;
      EXPECT_TRUE(i < begin || i >= end) << "a flip in the signed TSTInfo verified: byte " << i;
    }
  }
  std::printf("TSTInfo bytes %zu..%zu of %zu; flips that verify: %s\n", begin, end, tsr.size(),
              absl::StrJoin(accepted, ",").c_str());
}

// The release's SBOM: what scripts/build-image writes parses; every truncation, wrong type,
// malformed hash and duplicate package is a clean InvalidArgument naming the field.
TEST(SbomTest, StrictBoundedAndEveryTruncationRefused) {
  auto parse = [](const std::string& s) {
    return ParseSbom(std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  };
  const std::string deb(64, 'd'), model = "sha256:" + std::string(64, 'e');
  auto pkg = [&](const std::string& name, const std::string& arch) {
    return nlohmann::json{
        {"name", name}, {"version", "1.0-1"}, {"architecture", arch}, {"deb_sha256", deb}};
  };
  nlohmann::json good = {{"_type", "appliance-sbom"},
                         {"source_commit", std::string(40, 'a')},
                         {"source_date_epoch", 1795000000},
                         {"release_version", 2},
                         {"model_container", model},
                         {"packages", {pkg("libc6", "amd64"), pkg("libc6", "i386")}}};
  auto s = parse(good.dump(2));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->release_version, 2u);
  EXPECT_EQ(s->packages.size(), 2u);
  const std::string text = good.dump();
  for (size_t n = 0; n < text.size(); ++n) {
    EXPECT_TRUE(absl::IsInvalidArgument(parse(text.substr(0, n)).status())) << n;
  }
  const std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>> bad = {
      {[](auto& j) { j["_type"] = "sbom"; }, "_type"},
      {[](auto& j) { j["source_commit"] = std::string(39, 'a'); }, "source_commit"},
      {[](auto& j) { j["source_date_epoch"] = "1795000000"; }, "source_date_epoch"},
      {[](auto& j) { j["release_version"] = -2; }, "release_version"},
      {[](auto& j) { j["model_container"] = std::string(64, 'e'); }, "model_container"},
      {[](auto& j) { j["packages"] = nlohmann::json::object(); }, "packages"},
      {[](auto& j) { j["packages"][0]["deb_sha256"] = "xyz"; }, "packages[0].deb_sha256"},
      {[](auto& j) { j["packages"][1]["architecture"] = "amd64"; }, "listed twice"},
      {[](auto& j) { j["packages"][0]["version"] = std::string(300, 'v'); }, "packages[0].version"},
      {[](auto& j) { j["packages"][0].erase("name"); }, "packages[0].name"},
  };
  for (const auto& [edit, names] : bad) {
    nlohmann::json j = good;
    edit(j);
    auto r = parse(j.dump());
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << names << ": " << r.status();
    EXPECT_TRUE(absl::StrContains(r.status().message(), names)) << r.status();
  }
}
}  // namespace
}  // namespace attest::tuf
