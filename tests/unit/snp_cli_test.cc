// appliance-verify snp as a process: the command-line contract (exit codes, stderr, --json).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "attest/encoding.h"
#include "attest/snp/cert_store.h"
#include "attest/snp/report.h"
#include "snp_signer.h"
#include "test_support.h"

namespace attest {
namespace {

using testing::RunProcess;

testing::ProcessResult Verify(std::vector<std::string> args) {
  args.insert(args.begin(), {APPLIANCE_VERIFY_BIN, "snp"});
  return RunProcess(args);
}

int Lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

TEST(SnpCli, RealReportsExitCodes) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto v = [&](const char* f) { return (vectors / "snp" / f).string(); };
  auto ok = Verify({v("milan-virtee/report.bin"), "--cert", v("milan-virtee/vcek.der")});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_TRUE(ok.err.empty());
  EXPECT_EQ(
      Verify({v("milan-virtee/report_milan.hex"), "--cert", v("milan-virtee/vcek.der")}).exit_code,
      0)
      << "hex text reports are accepted";
  EXPECT_EQ(Verify({v("genoa-azure-vtpm/snp_report.bin"), "--cert", v("genoa-azure-vtpm/vcek.pem")})
                .exit_code,
            0);
  EXPECT_EQ(
      Verify({v("milan-azure-hcl/snp_report.bin"), "--cert", v("milan-azure-hcl/vcek_chain.pem")})
          .exit_code,
      0);

  auto debug =
      Verify({v("milan-go-sev-guest/report.bin"), "--cert", v("milan-go-sev-guest/vcek.der")});
  EXPECT_EQ(debug.exit_code, 1);
  EXPECT_EQ(Lines(debug.err), 1) << debug.err;
  EXPECT_NE(debug.err.find("snp.policy.debug"), std::string::npos) << debug.err;
  EXPECT_EQ(Verify({v("milan-go-sev-guest/report.bin"), "--cert", v("milan-go-sev-guest/vcek.der"),
                    "--allow-debug"})
                .exit_code,
            0);

  auto expired = Verify({v("milan-aws-vlek/report.bin"), "--cert", v("milan-aws-vlek/vlek.der")});
  EXPECT_EQ(expired.exit_code, 1);
  EXPECT_NE(expired.err.find("expired"), std::string::npos) << expired.err;
  EXPECT_NE(expired.err.find("2025-12-10T22:14:21Z"), std::string::npos) << "names the notAfter";
  EXPECT_EQ(Verify({v("milan-aws-vlek/report.bin"), "--cert", v("milan-aws-vlek/vlek.der"), "--now",
                    "2025-06-01T00:00:00Z"})
                .exit_code,
            0);

  auto genoa_chain = Verify({v("milan-virtee/report.bin"), "--cert", v("milan-virtee/vcek.der"),
                             "--chain", v("certs/kds_ask_ark_genoa.pem")});
  EXPECT_EQ(genoa_chain.exit_code, 1);
  EXPECT_NE(genoa_chain.err.find("Genoa"), std::string::npos) << genoa_chain.err;

  auto wrong_measurement =
      Verify({v("milan-virtee/report.bin"), "--cert", v("milan-virtee/vcek.der"),
              "--expect-measurement", std::string(96, '0')});
  EXPECT_EQ(wrong_measurement.exit_code, 1);
  EXPECT_NE(wrong_measurement.err.find("snp.expect.measurement: measurement 7a1e5c26"),
            std::string::npos)
      << wrong_measurement.err;
  EXPECT_EQ(Verify({v("milan-virtee/report.bin"), "--cert", v("milan-virtee/vcek.der"), "--min-tcb",
                    "3,0,8,116"})
                .exit_code,
            1);
  EXPECT_EQ(Verify({v("milan-virtee/report.bin"), "--cert", v("milan-virtee/vcek.der"), "--min-tcb",
                    "3,0,8,115", "--max-vmpl", "0", "--require-no-migration-agent"})
                .exit_code,
            0);
}

TEST(SnpCli, JsonOutput) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto v = [&](const char* f) { return (vectors / "snp" / f).string(); };
  auto r = Verify(
      {v("genoa-azure-vtpm/snp_report.bin"), "--cert", v("genoa-azure-vtpm/vcek.pem"), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  for (const char* key : {"version", "product", "signer", "vmpl", "measurement", "report_data",
                          "host_data", "chip_id", "id_key_digest", "policy", "reported_tcb",
                          "committed_tcb", "launch_tcb", "verified", "checks"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["version"], 3);
  EXPECT_EQ(j["product"], "Genoa");
  EXPECT_EQ(j["signer"], "vcek");
  EXPECT_EQ(j["verified"], true);
  EXPECT_EQ(j["measurement"],
            "f57dc09a507c6ecd82369bffb600f0003792f4d99bc26e985ec0c266fc34faf3706faf814c9e61065768a6"
            "ff917c89ae");
  EXPECT_EQ(j["reported_tcb"]["bl"], 10);
  EXPECT_EQ(j["reported_tcb"]["snp"], 23);
  EXPECT_EQ(j["reported_tcb"]["ucode"], 84);
  EXPECT_EQ(j["policy"]["debug"], false);
  EXPECT_EQ(j["policy"]["smt"], true);
  EXPECT_EQ(j["policy"]["abi_minor"], 31);
  for (const auto& c : j["checks"]) {
    EXPECT_TRUE(c.contains("name") && c.contains("ok") && c.contains("detail"));
  }

  // Printed on exit 1 too, with the failed check.
  auto f = Verify(
      {v("milan-go-sev-guest/report.bin"), "--cert", v("milan-go-sev-guest/vcek.der"), "--json"});
  ASSERT_EQ(f.exit_code, 1);
  auto jf = nlohmann::json::parse(f.out);
  EXPECT_EQ(jf["verified"], false);
  EXPECT_EQ(jf["policy"]["debug"], true);
  EXPECT_EQ(jf["checks"].back()["name"], "snp.policy.debug");
  EXPECT_EQ(jf["checks"].back()["ok"], false);
}

TEST(SnpCli, UsageAndMalformedInputExitTwoWithEmptyStdout) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  testing::ScopedTempDir dir;
  auto v = [&](const char* f) { return (vectors / "snp" / f).string(); };
  auto truncated = dir.path() / "truncated.bin";
  auto report = testing::ReadFileOrDie(v("milan-virtee/report.bin"));
  testing::WriteFileOrDie(truncated, std::span<const uint8_t>(report.data(), 1000));
  auto garbage_cert = dir.path() / "garbage.der";
  testing::WriteFileOrDie(garbage_cert, std::string("not a certificate"));
  const std::vector<std::vector<std::string>> cases = {
      {},
      {v("milan-virtee/report.bin")},
      {v("milan-virtee/report.bin"), "--cert", v("milan-virtee/vcek.der"), "--cert-store",
       dir.path().string()},
      {truncated.string(), "--cert", v("milan-virtee/vcek.der")},
      {(dir.path() / "missing.bin").string(), "--cert", v("milan-virtee/vcek.der")},
      {v("milan-virtee/report.bin"), "--cert", garbage_cert.string()},
      {v("milan-virtee/report.bin"), "--cert", v("milan-virtee/vcek.der"), "--expect-measurement",
       "xyz"},
      {v("milan-virtee/report.bin"), "--cert", v("milan-virtee/vcek.der"), "--min-tcb", "1,2"},
      {v("milan-virtee/report.bin"), "--cert", v("milan-virtee/vcek.der"), "--now", "soon"},
      {v("milan-virtee/report.bin"), "--cert", v("milan-virtee/vcek.der"), "--max-vmpl", "7"},
      {v("milan-virtee/report.bin"), "--cert", v("milan-virtee/vcek.der"), "--no-such-flag"},
      {v("milan-virtee/report.bin"), "--cert-store", dir.path().string()},  // nothing in the store
  };
  for (auto args : cases) {
    args.push_back("--json");
    auto r = Verify(args);
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_EQ(r.exit_code, 2) << joined << "\n" << r.err;
    EXPECT_TRUE(r.out.empty()) << joined << "\n" << r.out;
    EXPECT_FALSE(r.err.empty()) << joined;
  }
}

TEST(SnpCli, CertStoreAndSoftwareTrustAnchor) {
  using snp::Product;
  const auto& signer = testing::SharedSnpSigner(Product::kTurin);
  testing::VekOptions vo;
  vo.tcb = {4, 0, 22, 213, 1};
  vo.chip_id.fill(0xc1);
  auto evidence = signer.MakeEvidence(5, vo);
  ASSERT_TRUE(evidence.ok()) << evidence.status();
  const auto& report = evidence->report;

  testing::ScopedTempDir dir;
  auto report_path = dir.path() / "report.bin";
  testing::WriteFileOrDie(report_path, report);
  auto store = dir.path() / "store";
  auto parsed = snp::ParseReport(report);
  ASSERT_TRUE(parsed.ok());
  testing::WriteFileOrDie(store / snp::CertStore::VcekPath(Product::kTurin, *parsed),
                          evidence->vek.cert_der);
  testing::WriteFileOrDie(store / "Turin/cert_chain.pem",
                          testing::CertificatesToPem(signer.Chain(snp::SigningKey::kVcek)));
  auto anchor = dir.path() / "ark.pem";
  testing::WriteFileOrDie(anchor, testing::CertificatesToPem({signer.ark_der()}));

  // Built-in roots do not trust the software signer.
  auto untrusted = Verify({report_path.string(), "--cert-store", store.string()});
  EXPECT_EQ(untrusted.exit_code, 1);
  EXPECT_NE(untrusted.err.find("snp.chain.anchor"), std::string::npos) << untrusted.err;

  auto r = Verify({report_path.string(), "--cert-store", store.string(), "--trust-anchor",
                   anchor.string(), "--json", "--min-tcb", "4,0,22,213,1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["product"], "Turin");
  EXPECT_EQ(j["version"], 5);
  EXPECT_EQ(j["reported_tcb"]["fmc"], 1);
  EXPECT_TRUE(j.contains("launch_mit_vector"));

  auto too_high = Verify({report_path.string(), "--cert-store", store.string(), "--trust-anchor",
                          anchor.string(), "--min-tcb", "4,0,22,213,2"});
  EXPECT_EQ(too_high.exit_code, 1);
  EXPECT_NE(too_high.err.find("fmc 1 < 2"), std::string::npos) << too_high.err;

  // A CRL that revokes the ASK.
  auto crl = signer.MakeCrl({testing::SoftwareSnpSigner::kAskSerial}, absl::Now() - absl::Hours(1),
                            absl::Now() + absl::Hours(1));
  ASSERT_TRUE(crl.ok());
  auto crl_path = dir.path() / "crl.der";
  testing::WriteFileOrDie(crl_path, *crl);
  auto revoked = Verify({report_path.string(), "--cert-store", store.string(), "--trust-anchor",
                         anchor.string(), "--crl", crl_path.string()});
  EXPECT_EQ(revoked.exit_code, 1);
  EXPECT_NE(revoked.err.find("snp.crl"), std::string::npos) << revoked.err;

  // Tampered report: exit 1 naming the signature check.
  auto tampered = report;
  tampered[0x90] ^= 1;
  testing::WriteFileOrDie(report_path, tampered);
  auto bad = Verify(
      {report_path.string(), "--cert-store", store.string(), "--trust-anchor", anchor.string()});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("snp.signature"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace attest
