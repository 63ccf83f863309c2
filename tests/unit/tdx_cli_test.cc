// appliance-verify tdx as a process: exit codes, stderr, JSON shape.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

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

}  // namespace
}  // namespace attest
