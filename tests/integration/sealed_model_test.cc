// Issue 10's integration tests: a sealed example model, the real key service (appliance-keyd) and
// real supervisors (software SNP signer, swtpm) on loopback. The key is released only to evidence
// that matches the model's policy; every refusal is named by the service, logged, and leaves the
// supervisor up without a model; the plaintext never reaches a disk.
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "appliance/v1/service.grpc.pb.h"
#include "appliance_fixture.h"
#include "attest/client/attested_channel.h"
#include "attest/client/tls.h"
#include "attest/encoding.h"
#include "attest/seal/key_wrap.h"
#include "nlohmann/json.hpp"
#include "test_support.h"

namespace attest::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kInput[] = R"({"instances": [[0.5, 0.1], [-0.3, 0.4]]})";

std::string Text(const std::vector<uint8_t>& b) { return std::string(b.begin(), b.end()); }

// Bytes of the model that must never be found on a disk: a window of the weights (in the unpacked
// root file system) and of the big layer blob (in the unsealed image layout).
std::vector<std::string> PlaintextMarkers() {
  std::vector<std::string> out;
  const auto weights = Text(ReadFileOrDie(ModelDir() / "weights.json"));
  out.push_back(weights.substr(200, 64));
  for (const auto& e : fs::directory_iterator(ModelDir() / "oci/blobs/sha256")) {
    if (fs::file_size(e.path()) > (2u << 20)) {
      std::ifstream in(e.path(), std::ios::binary);
      in.seekg(1 << 20);
      std::string w(64, '\0');
      in.read(w.data(), 64);
      out.push_back(w);
    }
  }
  return out;
}

// Every regular file under `root` (not following links) that contains one of `markers`.
std::vector<std::string> FilesContaining(const fs::path& root,
                                         const std::vector<std::string>& markers) {
  std::vector<std::string> found;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); it != fs::end(it); it.increment(ec)) {
    if (ec || !it->is_regular_file(ec) || it->is_symlink(ec)) continue;
    std::ifstream in(it->path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string content = ss.str();
    for (const auto& m : markers) {
      if (content.find(m) != std::string::npos) found.push_back(it->path().string());
    }
  }
  return found;
}

class SealedModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScopedTempDir();
    pki_ = new TestPki(dir_->path() / "pki", "Coordinator CA");
    client_ = new IssuedCert(pki_->Issue("coordinator", "client"));
    auto r = RunKeyd({"init", "--store", Store().string(), "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    keyd_spki_ = json::parse(r.out)["spki_sha256"].get<std::string>();
    keyd_port_ = PickFreePort();
  }
  static void TearDownTestSuite() {
    delete keyd_;
    delete client_;
    delete pki_;
    delete dir_;
  }
  static fs::path Store() { return dir_->path() / "keyd-store"; }

  // The launch configuration of an appliance that runs sealed model `model_id`.
  static std::string SealedConfig(const std::string& model_id, const std::string& tcti) {
    LaunchConfigSpec spec;
    spec.ca_pem = pki_->ca_pem();
    spec.tcti = tcti;
    return MakeSealedLaunchConfig(spec, dir_->path() / ("sealed-" + model_id), model_id,
                                  absl::StrCat("127.0.0.1:", keyd_port_), keyd_spki_);
  }

  // Seals the example model as `model_id` and adds it to the key service: a policy over
  // `config`, reference `reference_json`.
  static void AddModel(const std::string& model_id, const std::string& config,
                       const std::string& reference_json, json policy_extra = json::object()) {
    const fs::path key =
        SealExampleModel(dir_->path(), model_id, dir_->path() / ("sealed-" + model_id));
    auto r =
        AddKeydModel(Store(), dir_->path(), model_id, key, config, reference_json, policy_extra);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }

  // (Re)starts the key service with the software signer's root of `roots_dir`.
  static void StartKeyd(const fs::path& roots_dir) {
    delete keyd_;
    keyd_ = new BackgroundProcess(
        {(BinDir() / "appliance-keyd").string(), "serve", "--store", Store().string(), "--listen",
         absl::StrCat("127.0.0.1:", keyd_port_), "--roots", roots_dir.string()},
        dir_->path() / "keyd.log", {{"APPLIANCE_KEYD_PASSPHRASE", kKeydTestPassphrase}});
    for (int i = 0; i < 100 && !absl::StrContains(KeydLog(), "serving"); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(absl::StrContains(KeydLog(), "serving")) << KeydLog();
  }
  static std::string KeydLog() {
    std::error_code ec;
    if (!fs::exists(dir_->path() / "keyd.log", ec)) return "";
    return Text(ReadFileOrDie(dir_->path() / "keyd.log"));
  }
  static std::vector<json> ReleaseLog() {
    std::vector<json> out;
    std::ifstream in(Store() / "release-log.jsonl");
    for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
    return out;
  }

  struct Appliance {
    std::unique_ptr<Swtpm> swtpm;
    std::unique_ptr<SupervisorProcess> supervisor;
    fs::path dir;
  };
  static Appliance Start(const std::string& name, const std::string& model_id,
                         std::vector<std::string> extra = {}) {
    Appliance a;
    a.dir = dir_->path() / name;
    a.swtpm = std::make_unique<Swtpm>(a.dir / "swtpm");
    extra.insert(extra.begin(), {"--software-rsa-bits", "2048"});
    a.supervisor = std::make_unique<SupervisorProcess>(
        a.dir / "appliance", SealedConfig(model_id, a.swtpm->tcti()), extra);
    return a;
  }

  static ScopedTempDir* dir_;
  static TestPki* pki_;
  static IssuedCert* client_;
  static std::string keyd_spki_;
  static int keyd_port_;
  static BackgroundProcess* keyd_;
};

ScopedTempDir* SealedModelTest::dir_ = nullptr;
TestPki* SealedModelTest::pki_ = nullptr;
IssuedCert* SealedModelTest::client_ = nullptr;
std::string SealedModelTest::keyd_spki_;
int SealedModelTest::keyd_port_ = 0;
BackgroundProcess* SealedModelTest::keyd_ = nullptr;

// The whole flow and every policy refusal. Each appliance starts before the key service trusts
// it (the software signer's root exists only once its supervisor runs): it must come up without a
// model, say why, and retry. The key service restarts for each (the store keeps every key).
TEST_F(SealedModelTest, ReleaseToTheMatchingApplianceOnlyAndNothingPlainOnDisk) {
  const std::string good_ref = MakeReferenceValues({ExampleModelDigest()});
  auto config_of = [](const Appliance& a) {
    return Text(ReadFileOrDie(a.supervisor->config_path()));
  };

  // 1. Released to the matching appliance, which then serves.
  auto good = Start("good", "example");
  ASSERT_TRUE(good.supervisor->WaitReady()) << good.supervisor->log();
  EXPECT_TRUE(absl::StrContains(good.supervisor->log(), "sealed-model: no key"))
      << good.supervisor->log();
  AddModel("example", config_of(good), good_ref);
  StartKeyd(good.supervisor->state_dir());
  ASSERT_TRUE(good.supervisor->WaitForLog("measured and serving", 1, 60000))
      << good.supervisor->log() << KeydLog();
  EXPECT_TRUE(absl::StrContains(good.supervisor->log(), "model key released"));
  auto options = client::ConnectOptions{};
  options.target = good.supervisor->target();
  options.client_cert_pem = client_->cert_pem;
  options.client_key_pem = client_->key_pem;
  options.launch_config = ReadFileOrDie(good.supervisor->config_path());
  auto ref = ParseReferenceValues(std::vector<uint8_t>(good_ref.begin(), good_ref.end()));
  ASSERT_TRUE(ref.ok()) << ref.status();
  options.reference = *ref;
  auto roots = client::LoadRootsDir(good.supervisor->state_dir().string());
  ASSERT_TRUE(roots.ok());
  options.extra_snp_roots_der = roots->snp;
  CheckLog check_log;
  auto conn = client::ConnectAttested(options, check_log);
  ASSERT_TRUE(conn.ok()) << conn.status();
  EXPECT_EQ(HexEncode(conn->claims.container_digest), ExampleModelDigest().substr(7));
  {
    auto stub = appliance::v1::Inference::NewStub(conn->channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    appliance::v1::PredictRequest req;
    req.set_input(kInput);
    appliance::v1::PredictResponse resp;
    ASSERT_TRUE(stub->Predict(&ctx, req, &resp).ok());
    EXPECT_TRUE(absl::StrContains(resp.output(), "predictions"));
  }

  // 2. Refusals, each named in the supervisor's status and in the release log; the supervisor
  //    stays up and Predict-less.
  auto refused = [&](const std::string& name, const std::string& model,
                     const std::string& reference, json policy_extra,
                     std::vector<std::string> extra, const std::string& check) {
    auto a = Start(name, model, std::move(extra));
    ASSERT_TRUE(a.supervisor->WaitReady()) << a.supervisor->log();
    AddModel(model, config_of(a), reference, std::move(policy_extra));
    StartKeyd(a.supervisor->state_dir());
    EXPECT_TRUE(a.supervisor->WaitForLog("sealed-model: key refused", 1, 60000))
        << a.supervisor->log() << KeydLog();
    EXPECT_TRUE(absl::StrContains(a.supervisor->log(), check)) << check << "\n"
                                                               << a.supervisor->log();
    EXPECT_FALSE(absl::StrContains(a.supervisor->log(), "measured and serving"));
    EXPECT_TRUE(a.supervisor->Running());
    bool logged = false;
    for (const auto& e : ReleaseLog()) {
      EXPECT_EQ(e["evidence_sha256"].get<std::string>().size(), 64u);
      logged =
          logged || (e["model_id"] == model && e["result"] == "refused" && e["check"] == check);
    }
    EXPECT_TRUE(logged) << check << " not in the release log";
    EXPECT_EQ(a.supervisor->Stop(), 0);
  };
  refused("debug", "example-debug", good_ref, json::object(), {"--software-debug"},
          "snp.policy.debug");
  auto other_ref = json::parse(good_ref);
  other_ref["snp"]["measurements"] = {std::string(96, 'a')};
  refused("other", "other-measurement", other_ref.dump(), json::object(), {},
          "snp.measurement.reference");
  const fs::path release = dir_->path() / "release-3.json";
  WriteFileOrDie(release,
                 json({{"release_version", 3}, {"target_sha256", std::string(64, 'b')}}).dump());
  refused("old", "old-release", good_ref, {{"min_release_version", 5}},
          {"--release-file", release.string()}, "release.min_version");

  // 3. The key service restarted three times since the release: a restarted supervisor of the
  //    good appliance (same vTPM, so its runtime log continues) gets the key again.
  EXPECT_EQ(good.supervisor->Stop(), 0);
  good.supervisor =
      std::make_unique<SupervisorProcess>(good.dir / "appliance", config_of(good),
                                          std::vector<std::string>{"--software-rsa-bits", "2048"});
  // (The supervisor's log continues the first process's: count the second "ready".)
  ASSERT_TRUE(good.supervisor->WaitForLog("up without a model", 2, 60000))
      << good.supervisor->log();
  StartKeyd(good.supervisor->state_dir());
  EXPECT_TRUE(good.supervisor->WaitForLog("measured and serving", 2, 60000))
      << good.supervisor->log() << KeydLog();
  int released = 0;
  for (const auto& e : ReleaseLog()) released += e["result"] == "released" ? 1 : 0;
  EXPECT_EQ(released, 2) << KeydLog();

  // 4. Plaintext never on a disk: stop the appliance (its tmpfs goes), then scan every directory
  //    the appliances, the key service and the seal step used, and any /dev/shm fallback.
  EXPECT_EQ(good.supervisor->Stop(), 0);
  const auto markers = PlaintextMarkers();
  ASSERT_EQ(markers.size(), 2u);
  ASSERT_GE(FilesContaining(ModelDir(), markers).size(), 2u);  // the scan finds plaintext
  const auto found = FilesContaining(dir_->path(), markers);
  EXPECT_TRUE(found.empty()) << "plaintext model bytes on disk: " << found.front();
  for (const auto& e : fs::directory_iterator("/dev/shm")) {
    EXPECT_FALSE(absl::StartsWith(e.path().filename().string(), "appliance-sealed-") &&
                 !FilesContaining(e.path(), markers).empty())
        << e.path();
  }
}

// Evidence is bound to the connection it was made for: evidence the appliance made for someone
// else, replayed on another connection, and a caller without a client certificate get nothing.
TEST_F(SealedModelTest, ReplayedEvidenceAndMissingClientCertificateAreRefused) {
  auto a = Start("replay", "replay");
  ASSERT_TRUE(a.supervisor->WaitReady()) << a.supervisor->log();
  AddModel("replay", Text(ReadFileOrDie(a.supervisor->config_path())),
           MakeReferenceValues({ExampleModelDigest()}));
  StartKeyd(a.supervisor->state_dir());
  ASSERT_TRUE(a.supervisor->WaitForLog("measured and serving", 1, 60000)) << a.supervisor->log();

  // An attacker with a certificate of the coordinator's CA: asks the key service for a challenge
  // on its own connection, has the appliance put that challenge into evidence (GetEvidence), and
  // presents the evidence with a key-request key of its own.
  auto attacker = client::GenerateSelfSignedIdentity("attacker", absl::Hours(1));
  ASSERT_TRUE(attacker.ok());
  grpc::experimental::IdentityKeyCertPair pair{attacker->key_pem, attacker->cert_pem};
  grpc::experimental::TlsChannelCredentialsOptions opts;
  opts.set_certificate_provider(std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      std::vector<grpc::experimental::IdentityKeyCertPair>{pair}));
  opts.watch_identity_key_cert_pairs();
  opts.set_verify_server_certs(false);
  opts.set_check_call_host(false);
  opts.set_certificate_verifier(std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("appliance-keyd");
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", keyd_port_),
                                           grpc::experimental::TlsCredentials(opts), args);
  auto keyd = appliance::v1::KeyRelease::NewStub(channel);
  appliance::v1::KeyChallengeResponse challenge;
  {
    grpc::ClientContext ctx;
    appliance::v1::KeyChallengeRequest req;
    req.set_model_id("replay");
    ASSERT_TRUE(keyd->Challenge(&ctx, req, &challenge).ok());
  }
  auto appliance_channel =
      client::PlainMtlsChannel(a.supervisor->target(), client_->cert_pem, client_->key_pem);
  appliance::v1::Evidence ev;
  {
    grpc::ClientContext ctx;
    appliance::v1::GetEvidenceRequest req;
    req.set_nonce(challenge.nonce());
    ASSERT_TRUE(
        appliance::v1::Attestation::NewStub(appliance_channel)->GetEvidence(&ctx, req, &ev).ok());
  }
  auto request_key = seal::KeyRequestKey::Generate();
  ASSERT_TRUE(request_key.ok());
  appliance::v1::KeyReleaseRequest rel;
  rel.set_model_id("replay");
  rel.set_nonce(challenge.nonce());
  rel.set_evidence(ev.SerializeAsString());
  rel.set_key_request_spki(Text(request_key->spki_der()));
  rel.set_launch_config(Text(ReadFileOrDie(a.supervisor->config_path())));
  {
    grpc::ClientContext ctx;
    appliance::v1::KeyReleaseResponse resp;
    grpc::Status s = keyd->Release(&ctx, rel, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_TRUE(absl::StrContains(s.error_message(), "binding.")) << s.error_message();
  }
  // The same nonce again: single use.
  {
    grpc::ClientContext ctx;
    appliance::v1::KeyReleaseResponse resp;
    grpc::Status s = keyd->Release(&ctx, rel, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_TRUE(absl::StrContains(s.error_message(), "challenge")) << s.error_message();
  }

  // No client certificate: the handshake fails, no RPC is served.
  grpc::experimental::TlsChannelCredentialsOptions anon;
  anon.set_verify_server_certs(false);
  anon.set_check_call_host(false);
  anon.set_certificate_verifier(std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
  auto anon_channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", keyd_port_),
                                                grpc::experimental::TlsCredentials(anon), args);
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    appliance::v1::KeyChallengeRequest req;
    req.set_model_id("replay");
    appliance::v1::KeyChallengeResponse resp;
    grpc::Status s = appliance::v1::KeyRelease::NewStub(anon_channel)->Challenge(&ctx, req, &resp);
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  }
  EXPECT_EQ(a.supervisor->Stop(), 0);
}

// A sealed blob with one flipped byte: the key is released, the unseal names the chunk, and the
// supervisor stays up without a model.
TEST_F(SealedModelTest, TamperedChunkIsNamed) {
  auto a = Start("tamper", "tamper");
  ASSERT_TRUE(a.supervisor->WaitReady()) << a.supervisor->log();
  AddModel("tamper", Text(ReadFileOrDie(a.supervisor->config_path())),
           MakeReferenceValues({ExampleModelDigest()}));
  // The biggest sealed blob, one byte in its third chunk.
  fs::path biggest;
  for (const auto& e : fs::recursive_directory_iterator(dir_->path() / "sealed-tamper")) {
    if (e.is_regular_file() && (biggest.empty() || e.file_size() > fs::file_size(biggest)))
      biggest = e.path();
  }
  ASSERT_FALSE(biggest.empty());
  {
    std::fstream f(biggest, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg((2u << 20) + 1000);
    char c = 0;
    f.read(&c, 1);
    c ^= 0x01;
    f.seekp((2u << 20) + 1000);
    f.write(&c, 1);
  }
  StartKeyd(a.supervisor->state_dir());
  ASSERT_TRUE(a.supervisor->WaitForLog("sealed-model: cannot unseal", 1, 60000))
      << a.supervisor->log();
  EXPECT_TRUE(absl::StrContains(a.supervisor->log(), "chunk ")) << a.supervisor->log();
  EXPECT_TRUE(a.supervisor->Running());
  EXPECT_EQ(a.supervisor->Stop(), 0);
}

}  // namespace
}  // namespace attest::testing
