// Issue 5's integration tests: a real swtpm, appliance-supervisor as a real process with the
// software SNP signer, the example model in its namespaces, real gRPC over TLS 1.3 on loopback,
// and the coordinator's client (library and CLI). Every attack must fail closed with a named
// reason; every fault must leave the supervisor up.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/tls1.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "appliance/v1/service.grpc.pb.h"
#include "appliance_fixture.h"
#include "attest/client/attested_channel.h"
#include "attest/client/tls.h"
#include "attest/encoding.h"
#include "attest/evidence.h"
#include "attest/files.h"
#include "attest/status.h"
#include "attest/tuf/client_revocations.h"
#include "evidence_fetch.h"
#include "nlohmann/json.hpp"
#include "supervisor/oci.h"
#include "supervisor/release_counter.h"
#include "supervisor/runner.h"
#include "supervisor/tpm.h"
#include "test_support.h"
#include "tls_tools.h"

namespace attest::testing {
namespace {

namespace fs = std::filesystem;
using appliance::v1::Inference;
using appliance::v1::PredictRequest;
using appliance::v1::PredictResponse;
using Clock = std::chrono::steady_clock;

constexpr char kInput[] = R"({"instances": [[0.5, 0.1], [-0.3, 0.4], [0.0, -0.6]]})";

std::vector<uint8_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }

int PortOf(const std::string& target) { return std::stoi(target.substr(target.rfind(':') + 1)); }

// One appliance shared by the tests that do not change its state.
class SupervisorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScopedTempDir();
    pki_ = new TestPki(dir_->path() / "pki", "Coordinator CA");
    other_pki_ = new TestPki(dir_->path() / "other-pki", "Another CA");
    client_ = new IssuedCert(pki_->Issue("coordinator", "client"));
    intruder_ = new IssuedCert(pki_->Issue("intruder", "intruder"));
    foreign_ = new IssuedCert(other_pki_->Issue("coordinator", "foreign"));
    swtpm_ = new Swtpm(dir_->path() / "swtpm");
    LaunchConfigSpec spec;
    spec.ca_pem = pki_->ca_pem();
    spec.tcti = swtpm_->tcti();
    supervisor_ = new SupervisorProcess(dir_->path() / "appliance", MakeLaunchConfig(spec));
    ASSERT_TRUE(supervisor_->WaitReady()) << supervisor_->log();
    reference_ = dir_->path() / "reference.json";
    WriteFileOrDie(reference_, MakeReferenceValues({ExampleModelDigest()}));
  }
  static void TearDownTestSuite() {
    delete supervisor_;
    delete swtpm_;
    delete foreign_;
    delete intruder_;
    delete client_;
    delete other_pki_;
    delete pki_;
    delete dir_;
  }

  static client::ConnectOptions Options(const std::string& target, const IssuedCert& cert,
                                        const fs::path& config, const fs::path& reference) {
    client::ConnectOptions o;
    o.target = target;
    o.client_cert_pem = cert.cert_pem;
    o.client_key_pem = cert.key_pem;
    o.launch_config = ReadFileOrDie(config);
    auto ref = ParseReferenceValues(ReadFileOrDie(reference));
    EXPECT_TRUE(ref.ok()) << ref.status();
    o.reference = *ref;
    auto roots = client::LoadRootsDir((config.parent_path() / "state").string());
    EXPECT_TRUE(roots.ok()) << roots.status();
    o.extra_snp_roots_der = roots->snp;
    o.extra_tdx_roots_der = roots->tdx;
    o.tdx_collateral = roots->tdx_collateral;
    return o;
  }
  static std::vector<uint8_t> SnpRootDer(const fs::path& state) {
    auto certs = ParseCertificates(ReadFileOrDie(state / "snp_ark.pem"), "snp_ark.pem");
    EXPECT_TRUE(certs.ok()) << certs.status();
    return certs.ok() ? (*certs)[0] : std::vector<uint8_t>{};
  }
  static client::ConnectOptions MainOptions(const IssuedCert& cert) {
    return Options(supervisor_->target(), cert, supervisor_->config_path(), reference_);
  }

  // appliance-verify connect … as a process.
  static ProcessResult Cli(const std::string& target, const IssuedCert& cert,
                           const fs::path& config, const fs::path& reference, const fs::path& roots,
                           std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {(BinDir() / "appliance-verify").string(),
                                     "connect",
                                     target,
                                     "--cert",
                                     cert.cert_path.string(),
                                     "--key",
                                     cert.key_path.string(),
                                     "--launch-config",
                                     config.string(),
                                     "--reference",
                                     reference.string(),
                                     "--roots",
                                     roots.string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunProcess(argv, 120);
  }
  static ProcessResult MainCli(const IssuedCert& cert, std::vector<std::string> extra = {}) {
    return Cli(supervisor_->target(), cert, supervisor_->config_path(), reference_,
               supervisor_->state_dir(), std::move(extra));
  }

  // Evidence fetched over a plain mTLS channel with a chosen nonce (for tamper tests).
  static std::string FetchEvidence(const std::string& target, const std::vector<uint8_t>& nonce) {
    auto bytes = testing::FetchEvidence(target, *client_, nonce);
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    return bytes.ok() ? *bytes : std::string();
  }

  static ScopedTempDir* dir_;
  static TestPki* pki_;
  static TestPki* other_pki_;
  static IssuedCert* client_;
  static IssuedCert* intruder_;
  static IssuedCert* foreign_;
  static Swtpm* swtpm_;
  static SupervisorProcess* supervisor_;
  static fs::path reference_;
};

ScopedTempDir* SupervisorTest::dir_ = nullptr;
TestPki* SupervisorTest::pki_ = nullptr;
TestPki* SupervisorTest::other_pki_ = nullptr;
IssuedCert* SupervisorTest::client_ = nullptr;
IssuedCert* SupervisorTest::intruder_ = nullptr;
IssuedCert* SupervisorTest::foreign_ = nullptr;
Swtpm* SupervisorTest::swtpm_ = nullptr;
SupervisorProcess* SupervisorTest::supervisor_ = nullptr;
fs::path SupervisorTest::reference_;

bool HasPassed(const CheckLog& log, const std::string& name) {
  for (const auto& c : log.checks()) {
    if (c.name == name && c.ok) return true;
  }
  return false;
}

grpc::Status Predict(const std::shared_ptr<grpc::Channel>& channel, const std::string& input,
                     PredictResponse* resp, int timeout_ms = 10000) {
  auto stub = Inference::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  PredictRequest req;
  req.set_input(input);
  return stub->Predict(&ctx, req, resp);
}

TEST_F(SupervisorTest, HappyPathAttestsAndPredicts) {
  CheckLog log;
  auto conn = client::ConnectAttested(MainOptions(*client_), log);
  ASSERT_TRUE(conn.ok()) << conn.status();
  EXPECT_EQ(conn->claims.platform, "snp");
  EXPECT_EQ(absl::StrCat("sha256:", HexEncode(conn->claims.container_digest)),
            ExampleModelDigest());
  EXPECT_EQ(conn->claims.events, (std::vector<std::string>{"launch-config", "container-manifest"}));
  EXPECT_EQ(conn->claims.tpm_trust, "host");
  // The runtime log replays to the quoted PCR 15, and its digest is in the binding.
  EXPECT_TRUE(HasPassed(log, "tpm.pcr15.replay"));
  EXPECT_TRUE(HasPassed(log, "binding.runtime-log"));
  EXPECT_TRUE(HasPassed(log, "binding.tls-spki"));
  EXPECT_TRUE(HasPassed(log, "snp.signature"));

  PredictResponse resp;
  grpc::Status s = Predict(conn->channel, kInput, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto out = nlohmann::json::parse(resp.output());
  ASSERT_EQ(out["predictions"].size(), 3u);
  for (const auto& p : out["predictions"]) {
    double sum = 0;
    for (double v : p["probabilities"]) sum += v;
    EXPECT_NEAR(sum, 1.0, 1e-9);
  }

  // Server streaming: one response per instance, in order.
  auto stub = Inference::NewStub(conn->channel);
  grpc::ClientContext ctx;
  PredictRequest req;
  req.set_input(kInput);
  auto reader = stub->PredictStream(&ctx, req);
  std::vector<std::string> classes;
  PredictResponse msg;
  while (reader->Read(&msg)) classes.push_back(nlohmann::json::parse(msg.output())["class"]);
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_EQ(classes.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(classes[i], out["predictions"][i]["class"]);
}

TEST_F(SupervisorTest, CliConnectPrintsClaimsAndPrediction) {
  auto r = MainCli(*client_, {"--predict", kInput, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["verified"].get<bool>());
  EXPECT_EQ(j["claims"]["container_digest"], ExampleModelDigest());
  EXPECT_EQ(j["prediction"]["predictions"].size(), 3u);
  auto human = MainCli(*client_);
  EXPECT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("runtime_proof"), std::string::npos);
}

TEST_F(SupervisorTest, NoClientCertificateIsRefused) {
  auto r = TryTls(PortOf(supervisor_->target()), "", "", TLS1_3_VERSION, TLS1_3_VERSION);
  EXPECT_FALSE(r.accepted) << "a client without a certificate got HTTP/2 data";
}

TEST_F(SupervisorTest, ClientCertificateFromAnotherCaIsRefused) {
  auto r = MainCli(*foreign_);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("tls.handshake"), std::string::npos) << r.err;
}

TEST_F(SupervisorTest, IdentityNotInAllowlistIsRefused) {
  auto r = MainCli(*intruder_);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("tls.handshake"), std::string::npos) << r.err;
  EXPECT_TRUE(supervisor_->WaitForLog("CN=intruder,O=Competition", 1, 5000)) << supervisor_->log();
}

TEST_F(SupervisorTest, Tls12OnlyClientIsRefused) {
  const int port = PortOf(supervisor_->target());
  auto tls12 = TryTls(port, client_->cert_pem, client_->key_pem, TLS1_2_VERSION, TLS1_2_VERSION);
  EXPECT_FALSE(tls12.accepted);
  EXPECT_TRUE(tls12.protocol.empty()) << "negotiated " << tls12.protocol;
  auto tls13 = TryTls(port, client_->cert_pem, client_->key_pem, TLS1_2_VERSION, TLS1_3_VERSION);
  EXPECT_TRUE(tls13.accepted) << tls13.error;
  EXPECT_EQ(tls13.protocol, "TLSv1.3");
}

TEST_F(SupervisorTest, TlsTerminatingProxyIsDetected) {
  TlsProxy proxy(PortOf(supervisor_->target()), client_->cert_pem, client_->key_pem);
  CheckLog log;
  auto opts = MainOptions(*client_);
  opts.target = absl::StrCat("127.0.0.1:", proxy.port());
  auto conn = client::ConnectAttested(opts, log);
  ASSERT_FALSE(conn.ok());
  EXPECT_TRUE(IsVerificationFailure(conn.status())) << conn.status();
  EXPECT_NE(conn.status().message().find("binding.tls-spki"), std::string::npos) << conn.status();
}

TEST_F(SupervisorTest, WrongNonceEditedLogAndOtherKeyAreRejected) {
  std::vector<uint8_t> nonce(32);
  RAND_bytes(nonce.data(), 32);
  const std::string bytes = FetchEvidence(supervisor_->target(), nonce);
  auto tls = TryTls(PortOf(supervisor_->target()), client_->cert_pem, client_->key_pem,
                    TLS1_3_VERSION, TLS1_3_VERSION);
  ASSERT_FALSE(tls.server_spki_der.empty());
  auto ref = ParseReferenceValues(ReadFileOrDie(reference_));
  ASSERT_TRUE(ref.ok());
  EvidenceExpectations e;
  e.nonce = nonce;
  e.tls_spki_der = tls.server_spki_der;
  e.launch_config = ReadFileOrDie(supervisor_->config_path());
  e.reference = &*ref;
  e.extra_snp_roots_der.push_back(SnpRootDer(supervisor_->state_dir()));
  {
    CheckLog log;
    auto ok = VerifyEvidence(Bytes(bytes), e, log);
    ASSERT_TRUE(ok.ok()) << ok.status();
  }
  {  // a wrong nonce
    auto wrong = e;
    wrong.nonce[0] ^= 1;
    CheckLog log;
    auto r = VerifyEvidence(Bytes(bytes), wrong, log);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("binding.nonce"), std::string::npos) << r.status();
  }
  {  // evidence replayed on a connection to another key
    auto other = e;
    auto id = client::GenerateSelfSignedIdentity("elsewhere", absl::Hours(1));
    other.tls_spki_der = id->spki_der;
    CheckLog log;
    auto r = VerifyEvidence(Bytes(bytes), other, log);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("binding.tls-spki"), std::string::npos) << r.status();
  }
  {  // every signed byte: flip bytes across the SNP report's signed area and the TPM quote
    appliance::v1::Evidence ev;
    ASSERT_TRUE(ev.ParseFromString(bytes));
    int checked = 0;
    for (size_t i = 0; i < 0x2A0; i += 11) {
      auto t = ev;
      std::string report = t.snp().report();
      report[i] = static_cast<char>(report[i] ^ 0x01);
      t.mutable_snp()->set_report(report);
      CheckLog log;
      auto r = VerifyEvidence(Bytes(t.SerializeAsString()), e, log);
      ASSERT_FALSE(r.ok()) << "report byte " << i;
      // A failed check (signature, binding, …) or a malformed field, named either way.
      EXPECT_TRUE(log.first_failure() != nullptr ||
                  r.status().message().find("snp report") != std::string::npos ||
                  r.status().message().find("TCB_VERSION") != std::string::npos)
          << "report byte " << i << ": " << r.status();
      ++checked;
    }
    for (size_t i = 0; i < ev.tpm().attest().size(); i += 5) {
      auto t = ev;
      std::string attest = t.tpm().attest();
      attest[i] = static_cast<char>(attest[i] ^ 0x01);
      t.mutable_tpm()->set_attest(attest);
      CheckLog log;
      auto r = VerifyEvidence(Bytes(t.SerializeAsString()), e, log);
      ASSERT_FALSE(r.ok()) << "quote byte " << i;
      ++checked;
    }
    EXPECT_GT(checked, 80);
  }
  {  // the runtime log edited after signing: claim another container
    appliance::v1::Evidence ev;
    ASSERT_TRUE(ev.ParseFromString(bytes));
    std::string cel = ev.runtime_event_log();
    const std::string digest = ExampleModelDigest().substr(7);
    std::string data_hex = digest;
    data_hex[0] = data_hex[0] == '0' ? '1' : '0';
    auto pos = cel.find(digest);
    if (pos != std::string::npos) cel.replace(pos, digest.size(), data_hex);
    ASSERT_NE(cel, ev.runtime_event_log()) << "container digest not found in the CEL text";
    ev.set_runtime_event_log(cel);
    CheckLog log;
    auto r = VerifyEvidence(Bytes(ev.SerializeAsString()), e, log);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("binding.runtime-log"), std::string::npos) << r.status();
  }
}

TEST_F(SupervisorTest, ContainerDigestNotInReferenceIsRejected) {
  const fs::path ref = dir_->path() / "other-reference.json";
  WriteFileOrDie(ref, MakeReferenceValues({"sha256:" + std::string(64, 'a')}));
  auto r = Cli(supervisor_->target(), *client_, supervisor_->config_path(), ref,
               supervisor_->state_dir());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("runtime.container"), std::string::npos) << r.err;
}

TEST_F(SupervisorTest, DifferentLaunchConfigurationIsRejected) {
  const auto bytes = ReadFileOrDie(supervisor_->config_path());
  const std::string text(bytes.begin(), bytes.end());
  const fs::path other = dir_->path() / "other-config" / "launch-config.json";
  fs::create_directories(other.parent_path());
  WriteFileOrDie(other, text + " ");  // the same JSON, other bytes: another measured configuration
  auto r = Cli(supervisor_->target(), *client_, other, reference_, supervisor_->state_dir());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("host_data"), std::string::npos) << r.err;
}

TEST_F(SupervisorTest, UnreachableHostIsExit2) {
  auto r = Cli(absl::StrCat("127.0.0.1:", PickFreePort()), *client_, supervisor_->config_path(),
               reference_, supervisor_->state_dir());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("unreachable"), std::string::npos) << r.err;
}

// The model inherits none of the supervisor's descriptors (a vTPM connection, sockets, files):
// the namespace runner's child closes them before it waits for its user namespace maps. A pipe
// without O_CLOEXEC stands for the swtpm TCTI's socket: once we close our end, its reader sees
// EOF only if the container holds no copy. (A copy of the swtpm connection once stalled the
// supervisor's quote until the container ended: PredictIsUnavailableUntilTheModelServes.)
TEST_F(SupervisorTest, ContainerInheritsNoDescriptors) {
  namespace sup = appliance::supervisor;
  const fs::path work = dir_->path() / "inherit";
  fs::create_directories(work);
  auto image = sup::LoadOciImage(ModelDir() / "oci", work);
  ASSERT_TRUE(image.ok()) << image.status();
  sup::ContainerSpec spec;
  spec.rootfs = work / "rootfs";
  spec.socket_dir = work / "socket";
  spec.argv = image->argv;
  spec.env = image->env;
  spec.working_dir = image->working_dir.empty() ? "/" : image->working_dir;
  ASSERT_TRUE(sup::UnpackLayers(*image, spec.rootfs).ok());
  ASSERT_TRUE(sup::PrepareContainerDirs(spec, sup::SocketDirAccess::kHostId).ok());
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);  // deliberately without O_CLOEXEC
  auto runner = sup::MakeNamespaceRunner();
  auto pid = runner->Start(spec);
  ASSERT_TRUE(pid.ok()) << pid.status();
  close(fds[1]);
  pollfd p{fds[0], POLLIN, 0};
  const int ready = poll(&p, 1, 5000);
  char c;
  const ssize_t n = ready == 1 ? read(fds[0], &c, 1) : -1;
  close(fds[0]);
  runner->Stop(*pid, std::chrono::milliseconds(2000));
  EXPECT_EQ(ready, 1) << "the container holds a copy of the pipe's write end";
  EXPECT_EQ(n, 0);
}

// Appliances with their own configuration.
class OwnApplianceTest : public SupervisorTest {
 protected:
  struct Appliance {
    std::unique_ptr<Swtpm> swtpm;
    std::unique_ptr<SupervisorProcess> supervisor;
    fs::path reference;
  };
  Appliance Start(const std::string& name, LaunchConfigSpec spec,
                  std::vector<std::string> extra = {"--software-rsa-bits", "2048"},
                  bool wait = true) {
    Appliance a;
    const fs::path d = dir_->path() / name;
    a.swtpm = std::make_unique<Swtpm>(d / "swtpm");
    spec.ca_pem = pki_->ca_pem();
    if (spec.tcti.empty()) spec.tcti = a.swtpm->tcti();
    a.supervisor =
        std::make_unique<SupervisorProcess>(d / "appliance", MakeLaunchConfig(spec), extra);
    if (wait) {
      EXPECT_TRUE(a.supervisor->WaitReady()) << a.supervisor->log();
    }
    a.reference = d / "reference.json";
    WriteFileOrDie(a.reference, MakeReferenceValues({ExampleModelDigest()}));
    return a;
  }
  ProcessResult CliFor(const Appliance& a, std::vector<std::string> extra = {}) {
    return Cli(a.supervisor->target(), *client_, a.supervisor->config_path(), a.reference,
               a.supervisor->state_dir(), std::move(extra));
  }
};

// The running release (issue 8): logged as a runtime event, reported as Evidence.release and held
// against the channel's minimum release version and revocations.
TEST_F(OwnApplianceTest, ReleaseInTheEvidenceMeetsTheChannelPolicy) {
  const fs::path release = dir_->path() / "release.json";
  const std::string target(64, 'a');
  WriteFileOrDie(release,
                 absl::StrCat(R"({"release_version": 3, "target_sha256": ")", target, R"("})"));
  LaunchConfigSpec spec;
  auto a =
      Start("release", spec, {"--software-rsa-bits", "2048", "--release-file", release.string()});
  auto r = CliFor(a, {"--min-release-version", "3", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["claims"]["release_version"], 3);
  EXPECT_EQ(j["claims"]["release_target_sha256"], target);
  EXPECT_EQ(j["claims"]["runtime_events"],
            (nlohmann::json{"launch-config", "release", "container-manifest"}));
  r = CliFor(a, {"--min-release-version", "4"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("release.min_version: release 3 is below the channel's minimum release 4"),
            std::string::npos)
      << r.err;
  // The channel's trusted metadata as appliance-verify release keeps it: release 3 revoked.
  const fs::path meta = dir_->path() / "release-meta";
  fs::create_directories(meta);
  WriteFileOrDie(meta / "targets.json",
                 R"({"signed": {"_type": "targets", "spec_version": "1.0.31", "version": 2,)"
                 R"( "expires": "2099-01-01T00:00:00Z", "targets": {},)"
                 R"( "custom": {"min_release_version": 2, "revoked_releases": [3]}},)"
                 R"( "signatures": []})");
  r = CliFor(a, {"--release-metadata", meta.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("release.revoked: release 3 is revoked"), std::string::npos) << r.err;
  // An appliance that reports no release fails a policy that needs one.
  r = MainCli(*client_, {"--min-release-version", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("release.version: the appliance reports no release"), std::string::npos)
      << r.err;
  // Evidence.release edited without the runtime log: refused.
  std::vector<uint8_t> nonce(32, 7);
  std::string bytes = FetchEvidence(a.supervisor->target(), nonce);
  appliance::v1::Evidence ev;
  ASSERT_TRUE(ev.ParseFromString(bytes));
  ev.mutable_release()->set_version("4");
  auto tls = TryTls(PortOf(a.supervisor->target()), client_->cert_pem, client_->key_pem,
                    TLS1_3_VERSION, TLS1_3_VERSION);
  auto ref = ParseReferenceValues(ReadFileOrDie(a.reference));
  ASSERT_TRUE(ref.ok());
  EvidenceExpectations e;
  e.nonce = nonce;
  e.tls_spki_der = tls.server_spki_der;
  e.launch_config = ReadFileOrDie(a.supervisor->config_path());
  e.reference = &*ref;
  e.extra_snp_roots_der.push_back(SnpRootDer(a.supervisor->state_dir()));
  CheckLog log;
  auto verified = VerifyEvidence(Bytes(ev.SerializeAsString()), e, log);
  ASSERT_FALSE(verified.ok());
  EXPECT_NE(verified.status().message().find("runtime.release: the evidence names release 4"),
            std::string::npos)
      << verified.status();
  // Release 5 was committed on this vTPM since: release 3 (a disk reset to an older image) is not
  // served at all.
  a.supervisor->Stop();
  {
    auto tpm = appliance::supervisor::Tpm::Open(a.swtpm->tcti());
    ASSERT_TRUE(tpm.ok()) << tpm.status();
    ASSERT_TRUE(appliance::supervisor::ReleaseCounter(**tpm).Commit(5).ok());
  }
  LaunchConfigSpec again;
  again.ca_pem = pki_->ca_pem();
  again.tcti = a.swtpm->tcti();
  SupervisorProcess old(dir_->path() / "release-old", MakeLaunchConfig(again),
                        {"--software-rsa-bits", "2048", "--release-file", release.string()});
  EXPECT_FALSE(old.WaitReady(30000));
  EXPECT_NE(old.log().find("rollback.tpm_counter: release 3 is below release 5"), std::string::npos)
      << old.log();
}

TEST_F(OwnApplianceTest, ReadinessIsNotifiedToSystemd) {
  const fs::path d = dir_->path() / "notify";
  fs::create_directories(d);
  const fs::path sock = d / "notify.sock";
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  Swtpm swtpm(d / "swtpm");
  LaunchConfigSpec spec;
  spec.ca_pem = pki_->ca_pem();
  spec.tcti = swtpm.tcti();
  SupervisorProcess sup(d / "appliance", MakeLaunchConfig(spec), {"--software-rsa-bits", "2048"},
                        {{"NOTIFY_SOCKET", sock.string()}});
  std::string messages;
  for (int i = 0; i < 60 && messages.find("READY=1") == std::string::npos; ++i) {
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n > 0) messages.append(buf, static_cast<size_t>(n)).push_back('\n');
  }
  close(fd);
  EXPECT_NE(messages.find("READY=1"), std::string::npos) << messages;
  EXPECT_NE(messages.find("STATUS=serving"), std::string::npos) << messages;
  // READY=1 is sent just before the "ready" log line.
  EXPECT_TRUE(sup.WaitForLog("appliance-supervisor: ready:", 1, 5000)) << sup.log();
}

TEST_F(OwnApplianceTest, PredictIsUnavailableUntilTheModelServes) {
  // An image whose server listens elsewhere: measured and started, but never serving on the
  // supervisor's socket. Attestation works (it is measured); Predict must say why it cannot.
  const fs::path layout = dir_->path() / "silent-layout";
  fs::copy(ModelDir() / "oci", layout, fs::copy_options::recursive);
  auto blob = [&](const std::string& digest) {
    return layout / "blobs" / "sha256" / digest.substr(7);
  };
  auto put = [&](const std::string& text) {
    unsigned char md[32];
    EVP_Digest(text.data(), text.size(), md, nullptr, EVP_sha256(), nullptr);
    const std::string digest = "sha256:" + HexEncode(std::span<const uint8_t>(md, 32));
    WriteFileOrDie(blob(digest), text);
    return std::make_pair(digest, text.size());
  };
  auto read_json = [&](const fs::path& p) {
    auto b = ReadFileOrDie(p);
    return nlohmann::json::parse(std::string(b.begin(), b.end()));
  };
  auto index = read_json(layout / "index.json");
  auto manifest = read_json(blob(index["manifests"][0]["digest"]));
  auto config = read_json(blob(manifest["config"]["digest"]));
  config["config"]["Cmd"] = {"--socket", "/tmp/elsewhere.sock", "--weights", "/model/weights.json"};
  auto [cfg_digest, cfg_size] = put(config.dump());
  manifest["config"]["digest"] = cfg_digest;
  manifest["config"]["size"] = cfg_size;
  auto [man_digest, man_size] = put(manifest.dump());
  index["manifests"][0]["digest"] = man_digest;
  index["manifests"][0]["size"] = man_size;
  WriteFileOrDie(layout / "index.json", index.dump());

  LaunchConfigSpec spec;
  spec.image = layout.string();
  auto a = Start("silent", spec, {"--software-rsa-bits", "2048"}, /*wait=*/false);
  ASSERT_TRUE(a.supervisor->WaitForLog("container-started", 0, 100));
  ASSERT_TRUE(a.supervisor->WaitForLog("listening:", 1, 60000)) << a.supervisor->log();
  ASSERT_TRUE(a.supervisor->WaitForLog("container-manifest:", 1, 60000)) << a.supervisor->log();
  WriteFileOrDie(a.reference, MakeReferenceValues({man_digest}));
  CheckLog log;
  auto conn = client::ConnectAttested(
      Options(a.supervisor->target(), *client_, a.supervisor->config_path(), a.reference), log);
  ASSERT_TRUE(conn.ok()) << conn.status() << "\n" << a.supervisor->log();
  EXPECT_EQ(absl::StrCat("sha256:", HexEncode(conn->claims.container_digest)), man_digest);
  PredictResponse resp;
  grpc::Status s = Predict(conn->channel, kInput, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_NE(s.error_message().find("model container"), std::string::npos) << s.error_message();
}

TEST_F(OwnApplianceTest, DebugPolicyReportIsRejected) {
  auto a = Start("debug", {}, {"--software-rsa-bits", "2048", "--software-debug"});
  auto r = CliFor(a);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("snp.policy.debug"), std::string::npos) << r.err;
}

TEST_F(OwnApplianceTest, VtpmOnlyNeedsExplicitAcceptance) {
  LaunchConfigSpec spec;
  spec.platform = "vtpm-only";
  auto a = Start("vtpm-only", spec, {});
  auto refused = CliFor(a);
  EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("platform.vtpm-only"), std::string::npos) << refused.err;
  auto accepted = CliFor(a, {"--allow-vtpm-only", "--json", "--predict", kInput});
  ASSERT_EQ(accepted.exit_code, 0) << accepted.err;
  auto j = nlohmann::json::parse(accepted.out);
  EXPECT_EQ(j["claims"]["platform"], "vtpm-only");
  EXPECT_NE(j["claims"]["runtime_proof"].get<std::string>().find("PCR 15"), std::string::npos);
}

TEST_F(OwnApplianceTest, SoftwareTdxAttestsWithRtmr3AndPredicts) {
  LaunchConfigSpec spec;
  spec.platform = "software-tdx";
  auto a = Start("software-tdx", spec, {});
  auto r = CliFor(a, {"--json", "--predict", kInput});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << a.supervisor->log();
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["claims"]["platform"], "tdx");
  bool rtmr3 = false, mrconfigid = false;
  for (const auto& c : j["checks"]) {
    rtmr3 = rtmr3 || (c["name"] == "tdx.rtmr3.replay" && c["ok"].get<bool>());
    mrconfigid =
        mrconfigid || (c["name"].get<std::string>().find("mrconfigid") != std::string::npos &&
                       c["ok"].get<bool>());
  }
  EXPECT_TRUE(rtmr3) << r.out;
  EXPECT_TRUE(mrconfigid) << r.out;
  EXPECT_EQ(j["prediction"]["predictions"].size(), 3u);
  // Another launch configuration than the one measured into MRCONFIGID is refused.
  const auto bytes = ReadFileOrDie(a.supervisor->config_path());
  const fs::path other = dir_->path() / "software-tdx" / "other" / "launch-config.json";
  fs::create_directories(other.parent_path());
  WriteFileOrDie(other, std::string(bytes.begin(), bytes.end()) + "\n");
  auto refused =
      Cli(a.supervisor->target(), *client_, other, a.reference, a.supervisor->state_dir());
  EXPECT_EQ(refused.exit_code, 1) << refused.err;
  EXPECT_NE(refused.err.find("mrconfigid"), std::string::npos) << refused.err;
}

TEST_F(OwnApplianceTest, ModifiedContainerBlobIsRefused) {
  // Copy the example layout and flip one byte of its layer.
  const fs::path layout = dir_->path() / "tampered-layout";
  fs::copy(ModelDir() / "oci", layout, fs::copy_options::recursive);
  fs::path biggest;
  for (const auto& e : fs::directory_iterator(layout / "blobs" / "sha256")) {
    if (biggest.empty() || fs::file_size(e.path()) > fs::file_size(biggest)) {
      biggest = e.path();
    }
  }
  auto blob = ReadFileOrDie(biggest);
  blob[blob.size() / 2] ^= 0x01;
  WriteFileOrDie(biggest, blob);
  LaunchConfigSpec spec;
  spec.image = layout.string();
  auto a = Start("tampered", spec, {"--software-rsa-bits", "2048"}, /*wait=*/false);
  EXPECT_FALSE(a.supervisor->WaitReady(60000));
  EXPECT_EQ(a.supervisor->Stop(), 1);
  EXPECT_NE(a.supervisor->log().find("oci.blob.digest"), std::string::npos) << a.supervisor->log();
}

TEST_F(OwnApplianceTest, QueryBudgetIsEnforced) {
  LaunchConfigSpec spec;
  spec.budget = 5;
  auto a = Start("budget", spec);
  CheckLog log;
  auto conn = client::ConnectAttested(
      Options(a.supervisor->target(), *client_, a.supervisor->config_path(), a.reference), log);
  ASSERT_TRUE(conn.ok()) << conn.status();
  PredictResponse resp;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Predict(conn->channel, kInput, &resp).ok()) << i;
  grpc::Status s = Predict(conn->channel, kInput, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_NE(s.error_message().find("budget"), std::string::npos);
  // The audit log has every query, with sizes and no content.
  const auto audit_bytes = ReadFileOrDie(a.supervisor->state_dir() / "audit.jsonl");
  const std::string audit(audit_bytes.begin(), audit_bytes.end());
  EXPECT_EQ(std::count(audit.begin(), audit.end(), '\n'), 6);
  EXPECT_EQ(audit.find("instances"), std::string::npos);
  EXPECT_NE(audit.find("CN=coordinator,O=Competition"), std::string::npos);
}

TEST_F(OwnApplianceTest, RateLimitIsEnforcedPerClient) {
  LaunchConfigSpec spec;
  spec.rps = 0.5;
  spec.burst = 2;
  auto a = Start("rate", spec);
  CheckLog log;
  auto conn = client::ConnectAttested(
      Options(a.supervisor->target(), *client_, a.supervisor->config_path(), a.reference), log);
  ASSERT_TRUE(conn.ok()) << conn.status();
  PredictResponse resp;
  ASSERT_TRUE(Predict(conn->channel, kInput, &resp).ok());
  ASSERT_TRUE(Predict(conn->channel, kInput, &resp).ok());
  grpc::Status s = Predict(conn->channel, kInput, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_NE(s.error_message().find("rate limit"), std::string::npos) << s.error_message();
}

TEST_F(OwnApplianceTest, KilledContainerIsRestartedRemeasuredAndReattested) {
  auto a = Start("restart", {});
  auto opts = Options(a.supervisor->target(), *client_, a.supervisor->config_path(), a.reference);
  CheckLog log;
  auto conn = client::ConnectAttested(opts, log);
  ASSERT_TRUE(conn.ok()) << conn.status();
  PredictResponse resp;
  ASSERT_TRUE(Predict(conn->channel, kInput, &resp).ok());
  std::vector<uint8_t> nonce(32, 7);
  const std::string old_evidence = FetchEvidence(a.supervisor->target(), nonce);

  // Kill the container's init process (its host pid is in the log).
  const std::string text = a.supervisor->log();
  const auto at = text.find("runner, pid ");
  ASSERT_NE(at, std::string::npos) << text;
  ASSERT_EQ(kill(std::stoi(text.substr(at + 12)), SIGKILL), 0);
  // Predict answers UNAVAILABLE quickly (the pinned channel still talks to the same server).
  const auto t0 = Clock::now();
  grpc::Status s;
  for (int i = 0; i < 100; ++i) {
    s = Predict(conn->channel, kInput, &resp, 2000);
    if (!s.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(3));

  // Restart, re-measure, new key: the log shows the restart; the old channel is refused.
  ASSERT_TRUE(a.supervisor->WaitForLog("container-started:", 2, 60000)) << a.supervisor->log();
  ASSERT_TRUE(a.supervisor->WaitForLog("listening:", 2, 10000)) << a.supervisor->log();
  EXPECT_NE(a.supervisor->log().find("container-restart: model container measured"),
            std::string::npos);
  s = Predict(conn->channel, kInput, &resp, 5000);
  EXPECT_FALSE(s.ok()) << "the pinned channel reached a server with another key";

  CheckLog log2;
  auto again = client::ConnectAttested(opts, log2);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->claims.container_restarts, 1u);
  EXPECT_EQ(again->claims.events.back(), "container-restart");
  EXPECT_NE(again->server_spki_der, conn->server_spki_der);
  ASSERT_TRUE(Predict(again->channel, kInput, &resp).ok());

  // Evidence from the earlier connection names the old key.
  EvidenceExpectations e;
  e.nonce = nonce;
  e.tls_spki_der = again->server_spki_der;
  e.launch_config = opts.launch_config;
  e.reference = &opts.reference;
  e.extra_snp_roots_der = opts.extra_snp_roots_der;
  CheckLog log3;
  auto replay = VerifyEvidence(Bytes(old_evidence), e, log3);
  ASSERT_FALSE(replay.ok());
  EXPECT_NE(replay.status().message().find("binding.tls-spki"), std::string::npos)
      << replay.status();
}

TEST_F(OwnApplianceTest, StoppedSwtpmGivesClearEvidenceErrorWithoutCrash) {
  auto a = Start("swtpm-stop", {});
  a.swtpm->Stop();
  CheckLog log;
  auto conn = client::ConnectAttested(
      Options(a.supervisor->target(), *client_, a.supervisor->config_path(), a.reference), log);
  ASSERT_FALSE(conn.ok());
  EXPECT_NE(conn.status().message().find("vTPM unreachable"), std::string::npos) << conn.status();
  EXPECT_TRUE(a.supervisor->Running()) << a.supervisor->log();
}

// Load: `requests` unary calls across 64 connections and `streams` concurrent server streams.
struct LoadResult {
  int failed = 0, done = 0, stream_failed = 0, messages = 0;
};

class StreamReader : public grpc::ClientReadReactor<PredictResponse> {
 public:
  StreamReader(Inference::Stub* stub, std::function<void(bool, int)> done)
      : done_(std::move(done)) {
    req_.set_input(kInput);
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    stub->async()->PredictStream(&ctx_, &req_, this);
    StartRead(&msg_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (ok) {
      ++count_;
      StartRead(&msg_);
    }
  }
  void OnDone(const grpc::Status& s) override {
    done_(s.ok(), count_);
    delete this;
  }

 private:
  grpc::ClientContext ctx_;
  PredictRequest req_;
  PredictResponse msg_;
  int count_ = 0;
  std::function<void(bool, int)> done_;
};

LoadResult RunLoad(const std::string& target, const IssuedCert& cert, int connections, int requests,
                   int streams) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < connections; ++i) {
    channels.push_back(client::PlainMtlsChannel(target, cert.cert_pem, cert.key_pem));
  }
  std::atomic<int> failed{0}, done{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < connections; ++w) {
    workers.emplace_back([&, w] {
      auto stub = Inference::NewStub(channels[w]);
      for (int i = w; i < requests; i += connections) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
        PredictRequest req;
        req.set_input(kInput);
        PredictResponse resp;
        grpc::Status st = stub->Predict(&ctx, req, &resp);
        if (!st.ok() && failed++ == 0) {
          ADD_FAILURE() << "first failed request: " << st.error_code() << " " << st.error_message();
        }
        ++done;
      }
    });
  }
  for (auto& t : workers) t.join();

  std::mutex mu;
  std::condition_variable cv;
  int remaining = streams;
  std::atomic<int> stream_failed{0}, messages{0};
  std::vector<std::unique_ptr<Inference::Stub>> stubs;
  for (auto& ch : channels) stubs.push_back(Inference::NewStub(ch));
  for (int i = 0; i < streams; ++i) {
    new StreamReader(stubs[i % connections].get(), [&](bool ok, int n) {
      if (!ok) ++stream_failed;
      messages += n;
      std::lock_guard<std::mutex> lock(mu);
      if (--remaining == 0) cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::seconds(180), [&] { return remaining == 0; });
    EXPECT_EQ(remaining, 0);
  }
  return {failed.load(), done.load(), stream_failed.load(), messages.load()};
}

TEST_F(SupervisorTest, ManyConnectionsAndStreamsLeakNothing) {
  const std::string target = supervisor_->target();
  const pid_t pid = supervisor_->pid();
  constexpr int kConnections = 64, kRequests = 20000, kStreams = 1000;
  // Warm-up at the same concurrency: gRPC's thread pools grow to the load they see once.
  RunLoad(target, *client_, kConnections, 2000, kStreams);
  ASSERT_TRUE(supervisor_->Running()) << supervisor_->log();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const size_t fds_before = CountFds(pid), threads_before = CountThreads(pid);

  auto r = RunLoad(target, *client_, kConnections, kRequests, kStreams);
  ASSERT_TRUE(supervisor_->Running()) << supervisor_->log();
  EXPECT_EQ(r.failed, 0);
  EXPECT_EQ(r.done, kRequests);
  EXPECT_EQ(r.stream_failed, 0);
  EXPECT_EQ(r.messages, kStreams * 3);

  // Connections close; the server's fds and threads return to where they were.
  size_t fds_after = 0, threads_after = 0;
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    fds_after = CountFds(pid);
    threads_after = CountThreads(pid);
    if (fds_after <= fds_before && threads_after <= threads_before) break;
  }
  EXPECT_LE(fds_after, fds_before);
  // gRPC's executor pool may keep a thread or two more after a burst; a leak per connection or
  // per stream would show as tens or hundreds.
  EXPECT_LE(threads_after, threads_before + 2);
  std::printf("supervisor fds %zu -> %zu, threads %zu -> %zu\n", fds_before, fds_after,
              threads_before, threads_after);
}

// The channel's client-revocation list (issue 8 item 7; `appliance-update revocations` writes it):
// applied to every handshake, measured as the runtime event "client-revocations", re-read when it
// changes (then a new TLS key: open connections must re-handshake); a coordinator that holds the
// channel's metadata requires the list it publishes.
TEST_F(OwnApplianceTest, RevokedClientIsRefusedAndTheAppliedListIsMeasured) {
  const fs::path list = dir_->path() / "client-revocations.json";
  auto write_list = [&](std::map<std::string, std::string> revoked) {
    attest::tuf::ClientRevocations r;
    r.revoked = std::move(revoked);
    const std::string bytes = attest::tuf::SerializeClientRevocations(r);
    WriteFileOrDie(dir_->path() / "list.tmp", bytes);
    fs::rename(dir_->path() / "list.tmp", list);  // as the updater replaces it
    std::array<uint8_t, 32> d{};
    EVP_Digest(bytes.data(), bytes.size(), d.data(), nullptr, EVP_sha256(), nullptr);
    return d;
  };
  const auto first = write_list({{std::string(64, 'c'), "another coordinator"}});
  auto a = Start("revocations", {},
                 {"--software-rsa-bits", "2048", "--client-revocations", list.string()});
  auto options = [&](const std::array<uint8_t, 32>& expected) {
    auto o = Options(a.supervisor->target(), *client_, a.supervisor->config_path(), a.reference);
    o.client_revocations_sha256 = expected;
    return o;
  };
  {
    CheckLog log;
    auto conn = client::ConnectAttested(options(first), log);
    ASSERT_TRUE(conn.ok()) << conn.status() << "\n" << a.supervisor->log();
    auto newer = first;
    newer[0] ^= 1;  // the channel has moved on; this appliance still applies the old list
    CheckLog log2;
    auto stale = client::ConnectAttested(options(newer), log2);
    ASSERT_FALSE(stale.ok());
    EXPECT_NE(stale.status().message().find("release.client_revocations"), std::string::npos)
        << stale.status();
  }

  // The channel revokes this coordinator's key.
  auto spki = attest::tuf::SpkiSha256OfPemCertificate(client_->cert_pem);
  ASSERT_TRUE(spki.ok()) << spki.status();
  write_list({{*spki, "key stolen"}});
  ASSERT_TRUE(a.supervisor->WaitForLog("client-revocations:", 2, 15000)) << a.supervisor->log();
  ASSERT_TRUE(a.supervisor->WaitForLog("listening:", 2, 15000)) << a.supervisor->log();
  auto r = CliFor(a);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("tls.handshake"), std::string::npos) << r.err;
  EXPECT_TRUE(a.supervisor->WaitForLog("revoked by the release channel: key stolen", 1, 5000))
      << a.supervisor->log();

  // A malformed list: reported, and the list in force stays.
  WriteFileOrDie(list, R"({"_type":"client-revocations","revoked":[{"spki_sha256":"00"}]})");
  ASSERT_TRUE(a.supervisor->WaitForLog("client-revocations-failed:", 1, 15000))
      << a.supervisor->log();
  r = CliFor(a);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;

  // The revocation is lifted: served again, and the evidence shows the list now applied.
  const auto lifted = write_list({});
  ASSERT_TRUE(a.supervisor->WaitForLog("client-revocations:", 3, 15000)) << a.supervisor->log();
  ASSERT_TRUE(a.supervisor->WaitForLog("listening:", 3, 15000)) << a.supervisor->log();
  CheckLog log;
  auto conn = client::ConnectAttested(options(lifted), log);
  ASSERT_TRUE(conn.ok()) << conn.status();
}

TEST_F(OwnApplianceTest, UnreadableRevocationListStopsTheStart) {
  const fs::path list = dir_->path() / "bad-revocations.json";
  WriteFileOrDie(list, R"({"_type":"client-revocations","revoked":"everyone"})");
  auto a = Start("bad-revocations", {},
                 {"--software-rsa-bits", "2048", "--client-revocations", list.string()},
                 /*wait=*/false);
  EXPECT_TRUE(a.supervisor->WaitForLog("startup-failed:", 1, 30000)) << a.supervisor->log();
  EXPECT_NE(a.supervisor->log().find("revoked must be a list"), std::string::npos)
      << a.supervisor->log();
}

}  // namespace
}  // namespace attest::testing
