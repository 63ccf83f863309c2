// Issue 11, the AWS and Google Cloud paths with real parts (the Azure path is in
// azure_supervisor_test.cc): a real supervisor process, swtpm, real TLS on loopback.
//  - AWS: reports signed by a VLEK (the software SNP signer's, ASVK chain; chip id zero), bound to
//    the channel, verified by the coordinator's client and by `appliance-verify evidence`.
//  - Google Cloud: the vTPM holds Google's AK template (NV 0x01c10001) and the AK certificate
//    (NV 0x01c10000) as Google's vTPM does; the supervisor quotes with that AK and sends the
//    certificate, which `appliance-verify evidence --ak-ca` checks against the (test) CA; a swapped
//    certificate and another CA are rejected.
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
#include "attest/tpm/ak.h"
#include "cloud_vectors.h"
#include "evidence_fetch.h"
#include "supervisor/platform.h"
#include "supervisor/tpm.h"
#include "test_support.h"
#include "tls_tools.h"
#include "tpm_signer.h"

namespace attest::testing {
namespace {

namespace fs = std::filesystem;
using appliance::supervisor::Tpm;

int PortOf(const std::string& target) { return std::stoi(target.substr(target.rfind(':') + 1)); }

// One appliance (software-snp platform, swtpm with `host` trust), its evidence for our nonce, and
// `appliance-verify evidence` over it.
class Appliance {
 public:
  Appliance(const fs::path& dir, const std::string& tcti, std::vector<std::string> extra_args)
      : dir_(dir), pki_(dir / "pki", "Coordinator CA") {
    client_ = std::make_unique<IssuedCert>(pki_.Issue("coordinator", "client"));
    LaunchConfigSpec spec;
    spec.ca_pem = pki_.ca_pem();
    spec.tcti = tcti;
    spec.trust = "host";
    extra_args.insert(extra_args.end(), {"--software-rsa-bits", "2048"});
    supervisor_ =
        std::make_unique<SupervisorProcess>(dir / "appliance", MakeLaunchConfig(spec), extra_args);
    reference_ = dir / "reference.json";
    WriteFileOrDie(reference_, MakeReferenceValues({ExampleModelDigest()}));
  }
  SupervisorProcess& supervisor() { return *supervisor_; }

  // Evidence for a fresh nonce, written to dir/NAME with the server's SPKI beside it.
  struct Fetched {
    std::vector<uint8_t> nonce;
    appliance::v1::Evidence evidence;
    fs::path spki;
  };
  Fetched Fetch() {
    Fetched f;
    f.nonce.resize(32);
    RAND_bytes(f.nonce.data(), 32);
    auto bytes = FetchEvidence(supervisor_->target(), *client_, f.nonce);
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    if (bytes.ok()) {
      EXPECT_TRUE(f.evidence.ParseFromString(*bytes));
    }
    auto tls = TryTls(PortOf(supervisor_->target()), client_->cert_pem, client_->key_pem,
                      TLS1_3_VERSION, TLS1_3_VERSION);
    f.spki = dir_ / "server.spki";
    WriteFileOrDie(f.spki, tls.server_spki_der);
    return f;
  }
  ProcessResult Verify(const Fetched& f, const appliance::v1::Evidence& ev,
                       std::vector<std::string> extra) {
    const fs::path bundle = dir_ / absl::StrCat("bundle-", n_++);
    WriteFileOrDie(bundle, ev.SerializeAsString());
    std::vector<std::string> argv = {(BinDir() / "appliance-verify").string(),
                                     "evidence",
                                     bundle.string(),
                                     "--nonce",
                                     HexEncode(f.nonce),
                                     "--tls-spki",
                                     f.spki.string(),
                                     "--launch-config",
                                     supervisor_->config_path().string(),
                                     "--reference",
                                     reference_.string(),
                                     "--roots",
                                     supervisor_->state_dir().string(),
                                     "--json"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunProcess(argv, 60);
  }

 private:
  fs::path dir_;
  TestPki pki_;
  std::unique_ptr<IssuedCert> client_;
  std::unique_ptr<SupervisorProcess> supervisor_;
  fs::path reference_;
  int n_ = 0;
};

TEST(AwsPath, VlekSignedReportsAreBoundAndVerified) {
  ScopedTempDir dir;
  Swtpm swtpm(dir.path() / "swtpm");
  Appliance app(dir.path(), swtpm.tcti(), {"--software-vlek"});
  ASSERT_TRUE(app.supervisor().WaitReady()) << app.supervisor().log();
  auto f = app.Fetch();
  ASSERT_TRUE(f.evidence.has_snp());
  auto ok = app.Verify(f, f.evidence, {});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  auto j = nlohmann::json::parse(ok.out);
  EXPECT_EQ(j["platform"], "snp");
  EXPECT_EQ(j["snp_signer"], "vlek (Genoa)");
  EXPECT_EQ(j["bound"], true);
  EXPECT_EQ(j["runtime_proof"], "runtime log digest in the binding signed by the hardware report");
  // A signed byte of the report (MEASUREMENT[0]); the VCEK chain in place of the ASVK chain.
  auto tampered = f.evidence;
  (*tampered.mutable_snp()->mutable_report())[0x90] ^= 1;
  auto bad = app.Verify(f, tampered, {});
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  EXPECT_NE(bad.err.find("snp.signature"), std::string::npos) << bad.err;
  auto no_chain = f.evidence;
  no_chain.mutable_snp()->clear_chain_der();
  auto unchained = app.Verify(f, no_chain, {});
  EXPECT_EQ(unchained.exit_code, 1) << unchained.out;
  EXPECT_NE(unchained.err.find("snp."), std::string::npos) << unchained.err;
}

// What Google does before the VM boots: the AK template into NV 0x01c10001 and, for the key that
// template gives in this vTPM's endorsement hierarchy, a certificate from its CA into 0x01c10000.
void ProvisionGceVtpm(const std::string& tcti, TestPki& google) {
  const auto tmpl = RsaAkTemplate();
  {
    auto tpm = Tpm::Open(tcti);
    ASSERT_TRUE(tpm.ok()) << tpm.status();
    ASSERT_TRUE((*tpm)
                    ->NvDefineOwner(appliance::supervisor::kGceAkTemplateNvIndexRsa,
                                    static_cast<uint16_t>(tmpl.size()))
                    .ok());
    ASSERT_TRUE((*tpm)->NvWriteOwner(appliance::supervisor::kGceAkTemplateNvIndexRsa, tmpl).ok());
  }
  auto tpm = Tpm::Open(tcti);
  ASSERT_TRUE(tpm.ok()) << tpm.status();
  EXPECT_NE((*tpm)->ak_origin().find("Google Cloud AK"), std::string::npos) << (*tpm)->ak_origin();
  auto ak = tpm::ParseAkTpmtPublic((*tpm)->ak_public());
  ASSERT_TRUE(ak.ok()) << ak.status();
  auto spki = tpm::AkSpkiDer(*ak);
  ASSERT_TRUE(spki.ok());
  const auto cert = google.IssueForKey("GCE vTPM AK (test)", *spki);
  ASSERT_TRUE((*tpm)
                  ->NvDefineOwner(appliance::supervisor::kGceAkCertNvIndexRsa,
                                  static_cast<uint16_t>(cert.size()))
                  .ok());
  ASSERT_TRUE((*tpm)->NvWriteOwner(appliance::supervisor::kGceAkCertNvIndexRsa, cert).ok());
}

TEST(GcePath, AkCertificateFromTheVtpmVerifiesAndASwappedOneIsRejected) {
  ScopedTempDir dir;
  Swtpm swtpm(dir.path() / "swtpm");
  TestPki google(dir.path() / "google", "EK/AK CA Root (test)");
  TestPki other(dir.path() / "other", "Another CA");
  ProvisionGceVtpm(swtpm.tcti(), google);
  if (HasFatalFailure()) return;
  const fs::path google_ca = dir.path() / "google-ak-ca.pem", other_ca = dir.path() / "other.pem";
  WriteFileOrDie(google_ca, google.ca_pem());
  WriteFileOrDie(other_ca, other.ca_pem());

  Appliance app(dir.path(), swtpm.tcti(), {});
  ASSERT_TRUE(app.supervisor().WaitReady()) << app.supervisor().log();
  EXPECT_NE(app.supervisor().log().find("Google Cloud AK"), std::string::npos);
  auto f = app.Fetch();
  ASSERT_EQ(f.evidence.tpm().ak_cert_chain_der_size(), 1);
  auto ok = app.Verify(f, f.evidence, {"--ak-ca", google_ca.string()});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  auto j = nlohmann::json::parse(ok.out);
  EXPECT_EQ(j["ak_certificate"], "chains to a given AK CA");
  EXPECT_EQ(j["tpm_trust"], "host") << "Google's vTPM runs in the host: extra evidence only";
  EXPECT_NE(std::find(j["checks"].begin(), j["checks"].end(), "tpm.ak.certificate"),
            j["checks"].end());

  // A certificate for another key from the same CA, in place of the AK's.
  auto quoter = SoftwareTpmQuoter::Create(SoftwareTpmQuoter::Scheme::kRsassa);
  ASSERT_TRUE(quoter.ok());
  auto other_ak = tpm::ParseAkTpmtPublic((*quoter)->ak_tpmt_public());
  ASSERT_TRUE(other_ak.ok());
  auto swapped = f.evidence;
  const auto foreign = google.IssueForKey("another AK", *tpm::AkSpkiDer(*other_ak));
  swapped.mutable_tpm()->set_ak_cert_chain_der(0, std::string(foreign.begin(), foreign.end()));
  auto r1 = app.Verify(f, swapped, {"--ak-ca", google_ca.string()});
  EXPECT_EQ(r1.exit_code, 1) << r1.out;
  EXPECT_NE(r1.err.find("tpm.ak.certificate"), std::string::npos) << r1.err;
  // The right certificate against a CA that did not issue it.
  auto r2 = app.Verify(f, f.evidence, {"--ak-ca", other_ca.string()});
  EXPECT_EQ(r2.exit_code, 1) << r2.out;
  EXPECT_NE(r2.err.find("tpm.ak.certificate"), std::string::npos) << r2.err;
}

TEST(ProbePlatform, FindsSevGuestAndNeverFallsBackToVtpmOnly) {
  ScopedTempDir dir;
  const fs::path sev_guest = dir.path() / "sev-guest";
  WriteFileOrDie(sev_guest, std::string());
  auto snp = appliance::supervisor::ProbePlatform(nullptr, dir.path() / "no-tsm", sev_guest);
  ASSERT_TRUE(snp.ok()) << snp.status();
  EXPECT_EQ(*snp, "snp");
  // A configfs-tsm directory whose entries have no provider (not a real configfs), no device.
  fs::create_directories(dir.path() / "tsm");
  auto none =
      appliance::supervisor::ProbePlatform(nullptr, dir.path() / "tsm", dir.path() / "absent");
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(absl::IsNotFound(none.status())) << none.status();
  EXPECT_NE(none.status().message().find("no confidential platform"), std::string::npos);
  // A vTPM without the paravisor's index is not Azure.
  Swtpm swtpm(dir.path() / "swtpm");
  auto tpm = Tpm::Open(swtpm.tcti());
  ASSERT_TRUE(tpm.ok()) << tpm.status();
  auto plain = appliance::supervisor::ProbePlatform(tpm->get(), dir.path() / "no-tsm",
                                                    dir.path() / "absent");
  ASSERT_FALSE(plain.ok());
  EXPECT_NE(plain.status().message().find("no Azure HCL report"), std::string::npos)
      << plain.status();
}

}  // namespace
}  // namespace attest::testing
