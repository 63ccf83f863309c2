// appliance-verify tpm-quote | eventlog | azure as processes: exit codes, stderr, JSON shapes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_support.h"
#include "tpm_test_util.h"

namespace attest {
namespace {

testing::ProcessResult RunCli(std::vector<std::string> args) {
  args.insert(args.begin(), APPLIANCE_VERIFY_BIN);
  return testing::RunProcess(args);
}

int Lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

TEST(TpmCli, GceQuoteWithCertificateAndLog) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto d = (vectors / "tpm/quote-gce-cos85-nonce9009").string();
  auto ca = (vectors / "tpm/gce-ek-ak-ca").string();
  testing::ScopedTempDir tmp;
  auto pcrs = tmp.path() / "pcrs.json";
  nlohmann::json facts = nlohmann::json::parse(tpm::ReadText(d + "/quote_facts.json"));
  nlohmann::json banks;
  for (auto& [b, q] : facts["quotes"].items()) banks[b] = q["pcrs"];
  testing::WriteFileOrDie(pcrs, banks.dump());
  std::vector<std::string> base = {"tpm-quote",
                                   "--attest",
                                   d + "/quote_sha256.tpms_attest",
                                   "--signature",
                                   d + "/quote_sha256.tpmt_signature",
                                   "--ak",
                                   d + "/ak_pub.tpmt_public"};
  auto with = [&](std::vector<std::string> extra) {
    auto args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return RunCli(args);
  };
  auto ok = with({"--nonce", "9009", "--pcrs", pcrs.string(), "--eventlog", d + "/event_log.bin",
                  "--ak-cert", d + "/ak_cert.der", "--ak-ca", ca + "/tpm_ek_root_1.cer", "--ak-ca",
                  ca + "/tpm_ek_intermediate_2.crt", "--json"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  auto j = nlohmann::json::parse(ok.out);
  EXPECT_EQ(j["verified"], true);
  EXPECT_EQ(j["quote"]["extra_data"], "9009");
  EXPECT_EQ(j["eventlog"]["explained_pcrs"]["sha256"].size(), 10u);
  EXPECT_TRUE(j["eventlog"]["unexplained_pcrs"].contains("sha256"));
  EXPECT_FALSE(j["checks"].empty());

  // Without --pcrs: signature and nonce only, pcr_digest printed.
  auto bare = with({"--nonce", "9009", "--json"});
  ASSERT_EQ(bare.exit_code, 0) << bare.err;
  std::string digest = nlohmann::json::parse(bare.out)["quote"]["pcr_digest"];
  EXPECT_EQ(digest.size(), 64u);

  auto wrong = with({"--nonce", "9008"});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_EQ(Lines(wrong.err), 1) << wrong.err;
  EXPECT_NE(wrong.err.find("tpm.quote.nonce"), std::string::npos);

  EXPECT_EQ(with({"--nonce", "9009", "--signature-format", "raw"}).exit_code, 2)
      << "a TPMT is not raw";
  EXPECT_EQ(with({}).exit_code, 2) << "--nonce is required";
  EXPECT_EQ(with({"--nonce", "zz"}).exit_code, 2);
  EXPECT_EQ(with({"--nonce", "9009", "--eventlog", d + "/event_log.bin"}).exit_code, 2)
      << "a log needs --pcrs";
  auto usage = with({"--nonce", "9009", "--ak-format", "xml", "--json"});
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_TRUE(usage.out.empty());
}

TEST(TpmCli, WindowsSha1AndAzureRawSignature) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto w = (vectors / "tpm/quote-windows-gcp-shielded-vm").string();
  std::vector<std::string> win = {"tpm-quote",
                                  "--attest",
                                  w + "/quote.tpms_attest",
                                  "--signature",
                                  w + "/quote.tpmt_signature",
                                  "--ak",
                                  w + "/ak_pub.tpmt_public",
                                  "--nonce",
                                  "",
                                  "--pcrs",
                                  w + "/pcrs_sha1.json",
                                  "--pcr-bank",
                                  "sha1"};
  EXPECT_EQ(RunCli(win).exit_code, 1);
  win.push_back("--allow-sha1");
  EXPECT_EQ(RunCli(win).exit_code, 0);
  auto a = (vectors / "snp/genoa-azure-vtpm").string();
  auto r = RunCli({"tpm-quote", "--attest", a + "/vtpm_quote.tpms_attest", "--signature",
                   a + "/vtpm_quote.sig", "--ak", a + "/runtime_data.json", "--ak-format", "jwk",
                   "--nonce", tpm::kAzureNonce, "--pcrs", a + "/vtpm_pcrs_sha256.json",
                   "--pcr-bank", "sha256", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["signature"]["format"], "raw");
}

TEST(TpmCli, EventlogJsonShape) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto r = RunCli({"eventlog", (vectors / "tpm/eventlogs/glinux-alex.bin").string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["format"], "tcg2");
  EXPECT_EQ(j["events"], 28);
  EXPECT_EQ(j["startup_locality"], 3);
  EXPECT_EQ(j["banks"]["sha256"]["0"],
            "0e5ea849d7647a1ac1becc096fee4df98f00f8015f934afadaab0b8aa20b38a5");
  EXPECT_TRUE(j["digest_mismatches"].is_array());
  auto legacy = nlohmann::json::parse(
      RunCli({"eventlog", (vectors / "tpm/eventlogs/debian-10.bin").string(), "--json"}).out);
  EXPECT_EQ(legacy["format"], "tcg1");
  EXPECT_TRUE(legacy["startup_locality"].is_null());
  EXPECT_EQ(legacy["banks"].size(), 1u);

  // --expect-pcrs takes the `banks` shape eventlog prints: its own output verifies.
  testing::ScopedTempDir tmp;
  testing::WriteFileOrDie(tmp.path() / "banks.json", j["banks"].dump());
  EXPECT_EQ(RunCli({"eventlog", (vectors / "tpm/eventlogs/glinux-alex.bin").string(),
                    "--expect-pcrs", (tmp.path() / "banks.json").string()})
                .exit_code,
            0);
  j["banks"]["sha256"]["4"] = std::string(64, '0');
  testing::WriteFileOrDie(tmp.path() / "wrong.json", j["banks"].dump());
  auto bad = RunCli({"eventlog", (vectors / "tpm/eventlogs/glinux-alex.bin").string(),
                     "--expect-pcrs", (tmp.path() / "wrong.json").string()});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("sha256 PCR 4"), std::string::npos) << bad.err;
  auto text = RunCli({"eventlog", (vectors / "tpm/eventlogs/arch-linux-workstation.bin").string()});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("variable PK"), std::string::npos);
  EXPECT_NE(text.out.find("replayed PCRs"), std::string::npos);
  testing::WriteFileOrDie(tmp.path() / "garbage", std::string("garbage"));
  auto garbage = RunCli({"eventlog", (tmp.path() / "garbage").string(), "--json"});
  EXPECT_EQ(garbage.exit_code, 2);
  EXPECT_TRUE(garbage.out.empty());
}

TEST(TpmCli, Azure) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto ev = (vectors / "snp/genoa-azure-vtpm/evidence.json").string();
  auto ok = RunCli({"azure", ev, "--nonce", tpm::kAzureNonce, "--json"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  auto j = nlohmann::json::parse(ok.out);
  EXPECT_EQ(j["platform"], "azure-snp");
  EXPECT_EQ(j["snp"]["product"], "Genoa");
  EXPECT_EQ(j["pcrs"]["sha256"].size(), 24u);
  auto wrong = RunCli({"azure", ev, "--nonce", "00"});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.err.find("tpm.quote.nonce"), std::string::npos);
  EXPECT_EQ(RunCli({"azure", ev}).exit_code, 2);
  EXPECT_EQ(RunCli({"azure", (vectors / "snp/genoa-azure-vtpm/runtime_data.json").string(),
                    "--nonce", "00"})
                .exit_code,
            2);
}

}  // namespace
}  // namespace attest
