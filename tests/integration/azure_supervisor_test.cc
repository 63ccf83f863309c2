// Issue 11, the Azure path with real parts: swtpm behind a test stand-in for Azure's paravisor
// (tests/testing/azure_paravisor.h: it serves the HCL report NV index and makes a fresh SNP-signed
// HCL report for every user-data write), the supervisor as a real process on platform "azure"
// (user data = SHA-512(binding) written to NV 0x01400002, the HCL report read back, the quote
// signed by the persistent AK 0x81000003 over SHA-256(binding)), and the coordinator's verifier.
// The verifier accepts it, and rejects it when the runtime data names another AK, when the
// quote's qualifying data is not this binding's, and when the HCL report is stale.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <openssl/rand.h>
#include <openssl/tls1.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "appliance/v1/evidence.pb.h"
#include "appliance/v1/service.grpc.pb.h"
#include "appliance_fixture.h"
#include "attest/client/attested_channel.h"
#include "attest/encoding.h"
#include "attest/evidence.h"
#include "attest/files.h"
#include "attest/status.h"
#include "azure_paravisor.h"
#include "evidence_fetch.h"
#include "fake_imds.h"
#include "tdx_signer.h"
#include "test_support.h"
#include "tls_tools.h"
#include "tpm_signer.h"

namespace attest::testing {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }
int PortOf(const std::string& target) { return std::stoi(target.substr(target.rfind(':') + 1)); }

class AzureSupervisorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScopedTempDir();
    pki_ = new TestPki(dir_->path() / "pki", "Coordinator CA");
    client_ = new IssuedCert(pki_->Issue("coordinator", "client"));
    swtpm_ = new Swtpm(dir_->path() / "swtpm");
    auto ak = CreateAzureAk(swtpm_->tcti(), dir_->path().string());
    ASSERT_TRUE(ak.ok()) << ak.status();
    AzureParavisor::Options po;
    po.swtpm_port = swtpm_->port();
    po.ak = *ak;
    po.measurement.fill(0xa5);  // the paravisor's launch digest (test value)
    auto paravisor = AzureParavisor::Start(po);
    ASSERT_TRUE(paravisor.ok()) << paravisor.status();
    paravisor_ = paravisor->release();
    roots_ = dir_->path() / "roots";
    fs::create_directories(roots_);
    WriteFileOrDie(roots_ / "snp_ark.pem", CertificatesToPem({paravisor_->ark_der()}));
    // VCEK then ASK and ARK, served as Azure's THIM endpoint serves them (no VCEK file given).
    FakeImds::Options io;
    io.vcek_chain = {paravisor_->vcek_der()};
    for (const auto& c : paravisor_->chain_der()) io.vcek_chain.push_back(c);
    imds_ = new FakeImds(io);

    LaunchConfigSpec spec;
    spec.ca_pem = pki_->ca_pem();
    spec.platform = "auto";  // probed: the paravisor's HCL report index answers
    spec.tcti = paravisor_->tcti();
    spec.trust = "in_tcb";
    supervisor_ =
        new SupervisorProcess(dir_->path() / "appliance", MakeLaunchConfig(spec),
                              {"--azure-vcek", (dir_->path() / "absent-vcek.pem").string(),
                               "--azure-imds", imds_->url()});
    ASSERT_TRUE(supervisor_->WaitReady()) << supervisor_->log();
    EXPECT_NE(supervisor_->log().find("certificates) from THIM"), std::string::npos)
        << supervisor_->log();
    EXPECT_NE(supervisor_->log().find("platform auto: probed azure"), std::string::npos)
        << supervisor_->log();
    // The reference accepts the paravisor's launch digest (on Azure: Microsoft's published one).
    auto ref = nlohmann::json::parse(MakeReferenceValues({ExampleModelDigest()}));
    ref["snp"]["measurements"] = {HexEncode(po.measurement)};
    reference_ = dir_->path() / "reference.json";
    WriteFileOrDie(reference_, ref.dump(2));
  }
  static void TearDownTestSuite() {
    delete supervisor_;
    delete imds_;
    delete paravisor_;
    delete swtpm_;
    delete client_;
    delete pki_;
    delete dir_;
  }

  // Evidence for a nonce we choose, over plain mTLS (for splicing and tampering).
  static std::string FetchEvidence(const std::vector<uint8_t>& nonce, grpc::Status* status) {
    auto bytes = testing::FetchEvidence(supervisor_->target(), *client_, nonce);
    *status = bytes.ok() ? grpc::Status::OK
                         : grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                        std::string(bytes.status().message()));
    return bytes.ok() ? *bytes : std::string();
  }
  static std::vector<uint8_t> Nonce() {
    std::vector<uint8_t> n(32);
    RAND_bytes(n.data(), 32);
    return n;
  }
  static EvidenceExpectations Expect(const std::vector<uint8_t>& nonce,
                                     const ReferenceValues& ref) {
    auto tls = TryTls(PortOf(supervisor_->target()), client_->cert_pem, client_->key_pem,
                      TLS1_3_VERSION, TLS1_3_VERSION);
    EXPECT_FALSE(tls.server_spki_der.empty());
    EvidenceExpectations e;
    e.nonce = nonce;
    e.tls_spki_der = tls.server_spki_der;
    e.launch_config = ReadFileOrDie(supervisor_->config_path());
    e.reference = &ref;
    e.extra_snp_roots_der.push_back(paravisor_->ark_der());
    return e;
  }
  static ReferenceValues Reference() {
    auto ref = ParseReferenceValues(ReadFileOrDie(reference_));
    EXPECT_TRUE(ref.ok()) << ref.status();
    return *ref;
  }
  static void ExpectFailure(const std::string& bytes, const EvidenceExpectations& e,
                            const std::string& check) {
    CheckLog log;
    auto r = VerifyEvidence(Bytes(bytes), e, log);
    ASSERT_FALSE(r.ok()) << "expected " << check;
    EXPECT_NE(r.status().message().find(check), std::string::npos) << r.status();
  }

  static ScopedTempDir* dir_;
  static TestPki* pki_;
  static IssuedCert* client_;
  static Swtpm* swtpm_;
  static AzureParavisor* paravisor_;
  static FakeImds* imds_;
  static SupervisorProcess* supervisor_;
  static fs::path reference_, roots_;
};

ScopedTempDir* AzureSupervisorTest::dir_ = nullptr;
TestPki* AzureSupervisorTest::pki_ = nullptr;
IssuedCert* AzureSupervisorTest::client_ = nullptr;
Swtpm* AzureSupervisorTest::swtpm_ = nullptr;
AzureParavisor* AzureSupervisorTest::paravisor_ = nullptr;
FakeImds* AzureSupervisorTest::imds_ = nullptr;
SupervisorProcess* AzureSupervisorTest::supervisor_ = nullptr;
fs::path AzureSupervisorTest::reference_;
fs::path AzureSupervisorTest::roots_;

TEST_F(AzureSupervisorTest, CoordinatorAttestsThroughTheParavisorAndPredicts) {
  client::ConnectOptions o;
  o.target = supervisor_->target();
  o.client_cert_pem = client_->cert_pem;
  o.client_key_pem = client_->key_pem;
  o.launch_config = ReadFileOrDie(supervisor_->config_path());
  o.reference = Reference();
  o.extra_snp_roots_der = {paravisor_->ark_der()};
  CheckLog log;
  const int before = paravisor_->reports_made();
  auto conn = client::ConnectAttested(o, log);
  ASSERT_TRUE(conn.ok()) << conn.status();
  EXPECT_EQ(conn->claims.platform, "azure-snp");
  EXPECT_EQ(conn->claims.tpm_trust, "in_tcb");
  EXPECT_EQ(conn->claims.runtime_proof, "PCR 15 of an in-TCB vTPM");
  EXPECT_EQ(conn->claims.ak_source, "HCLAkPub in the runtime data the hardware report binds");
  EXPECT_EQ(absl::StrCat("sha256:", HexEncode(conn->claims.container_digest)),
            ExampleModelDigest());
  EXPECT_GT(paravisor_->reports_made(), before) << "the supervisor asked for a fresh report";
  for (const char* check : {"azure.runtime_data.binding", "azure.ak", "azure.user_data",
                            "azure.ak.quote", "tpm.quote.nonce", "tpm.pcr15.replay"}) {
    bool passed = false;
    for (const auto& c : log.checks()) passed |= c.name == check && c.ok;
    EXPECT_TRUE(passed) << check;
  }
  // The same bundle through `appliance-verify evidence` (the coordinator's one command).
  const auto nonce = Nonce();
  grpc::Status s;
  const std::string bytes = FetchEvidence(nonce, &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const auto ref = Reference();
  const auto e = Expect(nonce, ref);
  const fs::path bundle = dir_->path() / "azure.evidence", spki = dir_->path() / "server.spki";
  WriteFileOrDie(bundle, bytes);
  WriteFileOrDie(spki, e.tls_spki_der);
  auto cli = RunProcess({(BinDir() / "appliance-verify").string(), "evidence", bundle.string(),
                         "--nonce", HexEncode(nonce), "--tls-spki", spki.string(),
                         "--launch-config", supervisor_->config_path().string(), "--reference",
                         reference_.string(), "--roots", roots_.string(), "--json"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  auto j = nlohmann::json::parse(cli.out);
  EXPECT_EQ(j["platform"], "azure-snp");
  EXPECT_EQ(j["bound"], true);
  // Another nonce: exit 1 naming the binding.
  auto wrong = RunProcess({(BinDir() / "appliance-verify").string(), "evidence", bundle.string(),
                           "--nonce", HexEncode(Nonce()), "--tls-spki", spki.string(),
                           "--launch-config", supervisor_->config_path().string(), "--reference",
                           reference_.string(), "--roots", roots_.string()});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.err.find("binding.nonce"), std::string::npos) << wrong.err;
}

TEST_F(AzureSupervisorTest, SplicedQuoteAndStaleReportAreRejected) {
  const auto ref = Reference();
  const auto n1 = Nonce(), n2 = Nonce();
  grpc::Status s1, s2;
  const std::string a = FetchEvidence(n1, &s1), b = FetchEvidence(n2, &s2);
  ASSERT_TRUE(s1.ok() && s2.ok()) << s1.error_message() << s2.error_message();
  const auto e = Expect(n1, ref);
  {
    CheckLog log;
    auto ok = VerifyEvidence(Bytes(a), e, log);
    ASSERT_TRUE(ok.ok()) << ok.status();
  }
  appliance::v1::Evidence ea, eb;
  ASSERT_TRUE(ea.ParseFromString(a) && eb.ParseFromString(b));
  // The HCL report of another request (its user data is another binding's): stale.
  auto stale = ea;
  stale.mutable_azure()->set_hcl_report(eb.azure().hcl_report());
  ExpectFailure(stale.SerializeAsString(), e, "azure.user_data");
  // The quote of another request: its qualifying data is not SHA-256 of this binding.
  auto spliced = ea;
  *spliced.mutable_tpm() = eb.tpm();
  ExpectFailure(spliced.SerializeAsString(), e, "tpm.quote.nonce");
}

TEST_F(AzureSupervisorTest, RuntimeDataNamingAnotherAkIsRejected) {
  auto other = SoftwareTpmQuoter::Create(SoftwareTpmQuoter::Scheme::kRsassa);
  ASSERT_TRUE(other.ok());
  const std::string pem = (*other)->ak_pem();
  auto other_ak = tpm::ParseAkPem(std::vector<uint8_t>(pem.begin(), pem.end()));
  ASSERT_TRUE(other_ak.ok());
  paravisor_->set_runtime_ak(*other_ak);
  const auto nonce = Nonce();
  grpc::Status s;
  const std::string bytes = FetchEvidence(nonce, &s);
  paravisor_->set_runtime_ak(std::nullopt);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const auto ref = Reference();
  ExpectFailure(bytes, Expect(nonce, ref), "azure.ak.quote");
}

TEST_F(AzureSupervisorTest, AParavisorThatDoesNotRefreshGivesNoEvidence) {
  paravisor_->set_frozen(true);
  grpc::Status s;
  FetchEvidence(Nonce(), &s);
  paravisor_->set_frozen(false);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.error_message().find("not refreshed"), std::string::npos) << s.error_message();
  // And the next request is answered again.
  grpc::Status again;
  FetchEvidence(Nonce(), &again);
  EXPECT_TRUE(again.ok()) << again.error_message();
}

// Azure TDX: the HCL report holds a TDREPORT; the supervisor gets its TD quote from IMDS (here
// the stand-in, signing with the software TDX signer) and the verifier checks quote → TDREPORT →
// runtime data → AK → vTPM quote.
TEST(AzureTdxSupervisor, TdQuoteFromImdsIsVerifiedEndToEnd) {
  ScopedTempDir dir;
  TestPki pki(dir.path() / "pki", "Coordinator CA");
  IssuedCert client = pki.Issue("coordinator", "client");
  Swtpm swtpm(dir.path() / "swtpm");
  auto ak = CreateAzureAk(swtpm.tcti(), dir.path().string());
  ASSERT_TRUE(ak.ok()) << ak.status();
  AzureParavisor::Options po;
  po.swtpm_port = swtpm.port();
  po.ak = *ak;
  po.measurement.fill(0x5a);  // MRTD (test value)
  po.tdx = true;
  auto paravisor = AzureParavisor::Start(po);
  ASSERT_TRUE(paravisor.ok()) << paravisor.status();
  auto signer = SoftwareTdxSigner::Create();
  ASSERT_TRUE(signer.ok()) << signer.status();
  const fs::path roots = dir.path() / "roots";
  ASSERT_TRUE(WriteTestTdxRoots(**signer, DefaultTestQuoteSpec(), roots).ok());
  FakeImds::Options io;
  io.td_quote = [&](std::span<const uint8_t> r) { return QuoteTdReport(**signer, r); };
  FakeImds imds(io);

  LaunchConfigSpec spec;
  spec.ca_pem = pki.ca_pem();
  spec.platform = "azure";
  spec.tcti = (*paravisor)->tcti();
  spec.trust = "in_tcb";
  SupervisorProcess supervisor(
      dir.path() / "appliance", MakeLaunchConfig(spec),
      {"--azure-vcek", (dir.path() / "absent").string(), "--azure-imds", imds.url()});
  ASSERT_TRUE(supervisor.WaitReady()) << supervisor.log();
  auto ref = nlohmann::json::parse(MakeReferenceValues({ExampleModelDigest()}));
  ref["tdx"]["mrtd"] = {HexEncode(po.measurement)};
  auto parsed = ParseReferenceValues(Bytes(ref.dump()));
  ASSERT_TRUE(parsed.ok()) << parsed.status();

  client::ConnectOptions o;
  o.target = supervisor.target();
  o.client_cert_pem = client.cert_pem;
  o.client_key_pem = client.key_pem;
  o.launch_config = ReadFileOrDie(supervisor.config_path());
  o.reference = *parsed;
  auto r = client::LoadRootsDir(roots.string());
  ASSERT_TRUE(r.ok()) << r.status();
  o.extra_tdx_roots_der = r->tdx;
  o.tdx_collateral = r->tdx_collateral;
  CheckLog log;
  auto conn = client::ConnectAttested(o, log);
  ASSERT_TRUE(conn.ok()) << conn.status() << "\n" << supervisor.log();
  EXPECT_EQ(conn->claims.platform, "azure-tdx");
  EXPECT_EQ(conn->claims.tcb_status, "UpToDate");
  EXPECT_EQ(conn->claims.runtime_proof, "PCR 15 of an in-TCB vTPM");
  EXPECT_GE(imds.requests(), 1);
  EXPECT_EQ(imds.thim_requests(), 0) << "a TD quote needs no VCEK: THIM is not asked on TDX";
  bool tdreport_checked = false;
  for (const auto& c : log.checks()) tdreport_checked |= c.name == "azure.tdreport" && c.ok;
  EXPECT_TRUE(tdreport_checked);
  // Another MRTD in the reference: rejected naming it.
  auto other = *parsed;
  other.tdx_mrtd[0][0] ^= 1;
  o.reference = other;
  CheckLog log2;
  auto rejected = client::ConnectAttested(o, log2);
  ASSERT_FALSE(rejected.ok());
  EXPECT_NE(rejected.status().message().find("tdx.mrtd.reference"), std::string::npos)
      << rejected.status();
}

}  // namespace
}  // namespace attest::testing
