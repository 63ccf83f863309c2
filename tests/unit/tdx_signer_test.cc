// The full TDX path on software-signed quotes and collateral: every TCB status, TDX 1.5 bodies,
// a debug TD, a revoked PCK, QE TCB, and the test root never trusted by default.
#include "tdx_signer.h"

#include <gtest/gtest.h>

#include "attest/tdx/verify.h"
#include "snp_test_util.h"

namespace attest::tdx {
namespace {

using snp::ExpectFailedCheck;
using testing::SoftwareTdxSigner;

const SoftwareTdxSigner& Signer() {
  static auto* signer = SoftwareTdxSigner::Create()->release();
  return *signer;
}

SoftwareTdxSigner::QuoteSpec Spec(uint16_t version, bool tdx15) {
  SoftwareTdxSigner::QuoteSpec s;
  s.version = version;
  s.body.tdx15 = tdx15;
  s.body.tee_tcb_svn = {5, 0, 2};
  s.body.mrtd.fill(0x42);
  s.body.td_attributes = 1ull << 28;  // SEPT_VE_DISABLE
  s.pck_tcb = {4, 4, 2, 2, 4, 1, 0, 5};
  s.pcesvn = 13;
  return s;
}

constexpr char kIssue[] = "2030-01-01T00:00:00Z";
constexpr char kNext[] = "2030-02-01T00:00:00Z";
constexpr char kNow[] = "2030-01-15T00:00:00Z";

Options OptionsFor(const std::string& status, const SoftwareTdxSigner::QuoteSpec& spec,
                   uint16_t qe_up_to = 8) {
  testing::TestTcbLevel level;
  level.sgx = spec.pck_tcb;
  level.pcesvn = spec.pcesvn;
  level.tdx = spec.body.tee_tcb_svn;
  level.status = status;
  Options o;
  o.now = *ParseRfc3339(kNow);
  o.trust_anchors_der = {Signer().root_der()};
  Collateral c;
  c.tcb_info_json =
      *Signer().SignCollateral("tcbInfo", testing::TcbInfoJson(spec.fmspc, {level}, kIssue, kNext));
  c.qe_identity_json =
      *Signer().SignCollateral("enclaveIdentity", testing::QeIdentityJson(qe_up_to, kIssue, kNext));
  c.tcb_signing_chain_der = Signer().tcb_signing_chain();
  o.collateral = c;
  return o;
}

TEST(TdxSigner, V4AndV5QuotesVerifyWithSignedCollateral) {
  for (auto [version, tdx15] : {std::pair{4, false}, std::pair{5, false}, std::pair{5, true}}) {
    SCOPED_TRACE(absl::StrCat("v", version, tdx15 ? " TDX 1.5" : " TDX 1.0"));
    auto spec = Spec(static_cast<uint16_t>(version), tdx15);
    auto quote = Signer().SignQuote(spec);
    ASSERT_TRUE(quote.ok()) << quote.status();
    CheckLog log;
    auto v = VerifyQuote(*quote, OptionsFor("UpToDate", spec), &log);
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(v->tcb_status, "UpToDate");
    EXPECT_EQ(v->qe_tcb_status, "UpToDate");
    EXPECT_EQ(v->quote.body.tdx15, tdx15);
    EXPECT_EQ(v->advisory_ids.size(), 1u);
  }
}

TEST(TdxSigner, EveryTcbStatusIsReportedAndOnlyAcceptedOnesPass) {
  auto spec = Spec(4, false);
  auto quote = *Signer().SignQuote(spec);
  for (const char* status :
       {"UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded",
        "OutOfDate", "OutOfDateConfigurationNeeded", "Revoked"}) {
    SCOPED_TRACE(status);
    Options o = OptionsFor(status, spec);
    CheckLog log;
    auto r = VerifyQuote(quote, o, &log);
    if (std::string(status) == "UpToDate") {
      EXPECT_TRUE(r.ok()) << r.status();
      continue;
    }
    ExpectFailedCheck(r, log, "tdx.tcb", status);
    o.accepted_tcb_statuses = {"UpToDate", status};
    auto accepted = VerifyQuote(quote, o);
    ASSERT_TRUE(accepted.ok()) << accepted.status();
    EXPECT_EQ(accepted->tcb_status, status);
  }
}

TEST(TdxSigner, NoMatchingLevelAndOldQe) {
  auto spec = Spec(5, true);
  auto quote = *Signer().SignQuote(spec);
  Options o = OptionsFor("UpToDate", spec);
  spec.pck_tcb[0] = 9;  // the collateral's only level now needs a newer SGX component
  Options newer = OptionsFor("UpToDate", spec);
  CheckLog log;
  ExpectFailedCheck(VerifyQuote(quote, newer, &log), log, "tdx.tcb", "NoMatch");
  CheckLog log2;
  ExpectFailedCheck(VerifyQuote(quote, OptionsFor("UpToDate", Spec(5, true), 9), &log2), log2,
                    "tdx.qe.tcb", "OutOfDate");
}

TEST(TdxSigner, DebugTdIsRejectedByDefault) {
  auto spec = Spec(4, false);
  spec.body.td_attributes |= 1;
  auto quote = *Signer().SignQuote(spec);
  Options o = OptionsFor("UpToDate", spec);
  CheckLog log;
  ExpectFailedCheck(VerifyQuote(quote, o, &log), log, "tdx.td.debug", "DEBUG=1");
  o.policy.allow_debug = true;
  EXPECT_TRUE(VerifyQuote(quote, o).ok());
}

TEST(TdxSigner, RevokedPckIsRejected) {
  auto spec = Spec(4, false);
  spec.pck_serial = 0xdead;
  auto quote = *Signer().SignQuote(spec);
  Options o = OptionsFor("UpToDate", spec);
  o.crls_der = {*Signer().RootCrl(), *Signer().PckCrl({0xbeef})};
  o.require_crl = true;
  EXPECT_TRUE(VerifyQuote(quote, o).ok()) << "another serial is revoked";
  o.crls_der = {*Signer().RootCrl(), *Signer().PckCrl({0xdead})};
  CheckLog log;
  ExpectFailedCheck(VerifyQuote(quote, o, &log), log, "tdx.pck.chain", "revoked");
}

TEST(TdxSigner, TestRootIsNotTrustedByDefaultAndCollateralIsSigned) {
  auto spec = Spec(4, false);
  auto quote = *Signer().SignQuote(spec);
  Options o = OptionsFor("UpToDate", spec);
  o.trust_anchors_der.clear();
  CheckLog log;
  ExpectFailedCheck(VerifyQuote(quote, o, &log), log, "tdx.pck.anchor", "not a trusted root");
  // One byte of the signed TCB info changed: the signature no longer covers it.
  Options t = OptionsFor("UpToDate", spec);
  std::string& json = t.collateral->tcb_info_json;
  json[json.find("UpToDate")] = 'u';
  CheckLog log2;
  ExpectFailedCheck(VerifyQuote(quote, t, &log2), log2, "tdx.collateral.tcb_info",
                    "does not verify");
}

bool Reused(const CheckLog& log, const std::string& name) {
  for (const auto& c : log.checks()) {
    if (c.name == name && c.ok && c.detail.find("verified before") != std::string::npos)
      return true;
  }
  return false;
}

TEST(TdxSigner, CacheReusesSignaturesButRechecksWindowsRevocationAndQuote) {
  auto spec = Spec(4, false);
  auto quote = *Signer().SignQuote(spec);
  Options o = OptionsFor("UpToDate", spec);
  o.cache = std::make_shared<VerificationCache>();
  CheckLog first;
  ASSERT_TRUE(VerifyQuote(quote, o, &first).ok());
  EXPECT_FALSE(Reused(first, "tdx.pck.chain"));
  EXPECT_EQ(o.cache->size(), 2u);
  CheckLog second;
  auto v = VerifyQuote(quote, o, &second);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(Reused(second, "tdx.pck.chain"));
  EXPECT_TRUE(Reused(second, "tdx.collateral.tcb_info"));
  EXPECT_EQ(v->tcb_status, "UpToDate");

  // The quote's own signature is checked every time.
  auto bad = quote;
  bad[bad.size() / 3] ^= 1;
  EXPECT_FALSE(VerifyQuote(bad, o).ok());
  // Collateral windows are checked every time, even when the signatures are reused.
  Options late = o;
  late.now = *ParseRfc3339("2030-03-01T00:00:00Z");
  CheckLog log;
  EXPECT_FALSE(VerifyQuote(quote, late, &log).ok());
  // A new CRL is a new key: the chain is verified again, and the revocation is found.
  Options revoked = o;
  revoked.crls_der = {*Signer().RootCrl(), *Signer().PckCrl({spec.pck_serial})};
  revoked.require_crl = true;
  CheckLog log2;
  ExpectFailedCheck(VerifyQuote(quote, revoked, &log2), log2, "tdx.pck.chain", "revoked");
}

}  // namespace
}  // namespace attest::tdx
