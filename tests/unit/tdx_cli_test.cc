// appliance-verify tdx as a process: exit codes, stderr, JSON shape.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tdx_signer.h"
#include "test_support.h"

namespace attest {
namespace {

testing::ProcessResult RunTdx(std::vector<std::string> args) {
  args.insert(args.begin(), {APPLIANCE_VERIFY_BIN, "tdx"});
  return testing::RunProcess(args);
}

TEST(TdxCli, ContractOnRealQuotes) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto t = vectors / "tdx";
  auto q = (t / "quote-v5-go-tdx-guest/quote.dat").string();
  auto ok = RunTdx({q, "--skip-tcb", "--json"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  auto j = nlohmann::json::parse(ok.out);
  for (const char* key : {"version", "tee_tcb_svn", "mrtd", "rtmr", "mrconfigid", "mrowner",
                          "report_data", "td_attributes", "fmspc", "tcb_status", "qe_tcb_status",
                          "advisory_ids", "trailing_bytes", "verified", "checks"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["version"], 5);
  EXPECT_EQ(j["rtmr"].size(), 4u);
  EXPECT_EQ(j["td_attributes"]["debug"], false);
  EXPECT_EQ(j["tcb_status"], "NotEvaluated");
  EXPECT_EQ(j["fmspc"], "90c06f000000");

  auto no_tcb = RunTdx({q});
  EXPECT_EQ(no_tcb.exit_code, 1);
  EXPECT_NE(no_tcb.err.find("tdx.tcb"), std::string::npos) << no_tcb.err;

  auto trailing = nlohmann::json::parse(
      RunTdx({(t / "quote-v4-go-tdx-guest/quote.dat").string(), "--skip-tcb", "--json"}).out);
  EXPECT_EQ(trailing["trailing_bytes"], 39);

  auto collateral =
      RunTdx({(t / "quote-v4-go-tdx-guest/quote.dat").string(), "--collateral",
              (t / "collateral/fmspc-50806f000000").string(), "--tcb-signing-chain",
              (t / "certs/tcb_info_issuer_chain.pem").string(), "--now", "2023-06-20T00:00:00Z",
              "--accept-tcb-status", "UpToDate,NoMatch", "--json"});
  ASSERT_EQ(collateral.exit_code, 0) << collateral.err;
  auto jc = nlohmann::json::parse(collateral.out);
  EXPECT_EQ(jc["tcb_status"], "NoMatch");
  EXPECT_EQ(jc["qe_tcb_status"], "UpToDate");

  auto gce = t / "quote-v4-gce-cos113-ccel";
  auto ccel = RunTdx({(gce / "quote.dat").string(), "--skip-tcb", "--ccel-table",
                      (gce / "ccel_table.dat").string(), "--ccel", (gce / "ccel_data.dat").string(),
                      "--json"});
  ASSERT_EQ(ccel.exit_code, 0) << ccel.err;
  EXPECT_EQ(nlohmann::json::parse(ccel.out)["ccel_events"], 43);
  auto other_log = RunTdx({q, "--skip-tcb", "--ccel-table", (gce / "ccel_table.dat").string(),
                           "--ccel", (gce / "ccel_data.dat").string()});
  EXPECT_EQ(other_log.exit_code, 1) << "another TD's log does not reproduce this quote's RTMRs";
  EXPECT_NE(other_log.err.find("tdx.ccel.rtmr: RTMR"), std::string::npos) << other_log.err;

  auto wrong_mrtd = RunTdx({q, "--skip-tcb", "--expect-mrtd", std::string(96, '0')});
  EXPECT_EQ(wrong_mrtd.exit_code, 1);
  EXPECT_NE(wrong_mrtd.err.find("tdx.expect.mrtd"), std::string::npos);

  for (std::vector<std::string> bad :
       std::vector<std::vector<std::string>>{{q, "--expect-rtmr", "7=00"},
                                             {q, "--ccel", "x"},
                                             {q, "--tcb-signing-chain", "x"},
                                             {(t / "MANIFEST.md").string()},
                                             {q, "--collateral", "/nonexistent"}}) {
    bad.push_back("--json");
    auto r = RunTdx(bad);
    EXPECT_EQ(r.exit_code, 2) << bad[1] << " " << r.err;
    EXPECT_TRUE(r.out.empty());
  }
}

// Quotes that are not in the repository: SoftwareTdxSigner quotes and collateral, written to files.
TEST(TdxCli, SoftwareSignedQuotesWithCollateralAndADebugTd) {
  auto signer = testing::SoftwareTdxSigner::Create();
  ASSERT_TRUE(signer.ok()) << signer.status();
  testing::ScopedTempDir dir;
  testing::SoftwareTdxSigner::QuoteSpec spec;
  spec.version = 5;
  spec.body.tdx15 = true;
  spec.body.tee_tcb_svn = {5, 0, 2};
  spec.body.td_attributes = 1ull << 28;
  spec.body.rtmr[2].fill(0x33);
  spec.pck_tcb = {4, 4, 2, 2, 4, 1, 0, 5};
  testing::TestTcbLevel level{spec.pck_tcb, spec.pcesvn, spec.body.tee_tcb_svn, "OutOfDate"};
  auto collateral = dir.path() / "collateral";
  std::filesystem::create_directories(collateral);
  testing::WriteFileOrDie(
      collateral / "tcb_info.json",
      *(*signer)->SignCollateral("tcbInfo",
                                 testing::TcbInfoJson(spec.fmspc, {level}, "2030-01-01T00:00:00Z",
                                                      "2030-02-01T00:00:00Z")));
  testing::WriteFileOrDie(
      collateral / "qe_identity.json",
      *(*signer)->SignCollateral(
          "enclaveIdentity",
          testing::QeIdentityJson(spec.qe_isvsvn, "2030-01-01T00:00:00Z", "2030-02-01T00:00:00Z")));
  testing::WriteFileOrDie(collateral / "tcb_info_issuer_chain.pem",
                          testing::CertificatesToPem((*signer)->tcb_signing_chain()));
  auto root = dir.path() / "root.pem";
  testing::WriteFileOrDie(root, testing::CertificatesToPem({(*signer)->root_der()}));
  auto write_quote = [&](const testing::SoftwareTdxSigner::QuoteSpec& s, const char* name) {
    auto path = dir.path() / name;
    testing::WriteFileOrDie(path, *(*signer)->SignQuote(s));
    return path.string();
  };
  std::string quote = write_quote(spec, "quote.dat");
  std::vector<std::string> common = {"--collateral",   collateral.string(),
                                     "--trust-anchor", root.string(),
                                     "--now",          "2030-01-15T00:00:00Z"};
  auto with = [&](std::string q, std::vector<std::string> extra) {
    std::vector<std::string> args = {q};
    args.insert(args.end(), common.begin(), common.end());
    args.insert(args.end(), extra.begin(), extra.end());
    return RunTdx(args);
  };
  auto out_of_date = with(quote, {});
  EXPECT_EQ(out_of_date.exit_code, 1);
  EXPECT_NE(out_of_date.err.find("tdx.tcb: TCB level status OutOfDate"), std::string::npos)
      << out_of_date.err;
  auto accepted = with(quote, {"--accept-tcb-status", "UpToDate,OutOfDate", "--expect-rtmr",
                               "2=" + std::string(96, '3'), "--json"});
  ASSERT_EQ(accepted.exit_code, 0) << accepted.err;
  auto j = nlohmann::json::parse(accepted.out);
  EXPECT_EQ(j["tcb_status"], "OutOfDate");
  EXPECT_EQ(j["qe_tcb_status"], "UpToDate");
  EXPECT_EQ(j["tdx15"], true);
  EXPECT_EQ(j["td_attributes"]["sept_ve_disable"], true);

  auto untrusted = RunTdx({quote, "--collateral", collateral.string(), "--now",
                           "2030-01-15T00:00:00Z", "--accept-tcb-status", "OutOfDate"});
  EXPECT_EQ(untrusted.exit_code, 1);
  EXPECT_NE(untrusted.err.find("tdx.pck.anchor"), std::string::npos) << untrusted.err;

  auto debug_spec = spec;
  debug_spec.body.td_attributes |= 1;
  std::string debug = write_quote(debug_spec, "debug.dat");
  auto rejected = with(debug, {"--accept-tcb-status", "UpToDate,OutOfDate"});
  EXPECT_EQ(rejected.exit_code, 1);
  EXPECT_NE(rejected.err.find("tdx.td.debug"), std::string::npos) << rejected.err;
  EXPECT_EQ(with(debug, {"--accept-tcb-status", "UpToDate,OutOfDate", "--allow-debug"}).exit_code,
            0);
}

}  // namespace
}  // namespace attest
