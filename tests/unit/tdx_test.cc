// TDX quotes (first slice of issue 4): parsing, signatures, QE binding, PCK chain and extensions,
// TD policy, on the real quotes in ../shared/vectors/tdx with their MANIFEST facts.
#include <gtest/gtest.h>

#include <algorithm>

#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/status.h"
#include "attest/tdx/ccel.h"
#include "attest/tdx/collateral.h"
#include "attest/tdx/quote.h"
#include "attest/tdx/verify.h"
#include "snp_test_util.h"

namespace attest::tdx {
namespace {

using snp::ExpectFailedCheck;

struct TdxCase {
  const char* dir;
  uint16_t version;
  bool tdx15;
  const char* mrtd_prefix;
  const char* fmspc;
  uint32_t pcesvn;
  std::array<uint8_t, 8> tcb;  // first 8 SGX TCB components
  uint16_t qe_isvsvn;
  bool sept_ve_disable;
  size_t trailing;
};

const TdxCase kQuotes[] = {
    {"quote-v4-go-tdx-guest",
     4,
     false,
     "6363b8043668a3ad",
     "50806f000000",
     11,
     {3, 3, 2, 2, 2, 1, 0, 2},
     4,
     false,
     39},
    {"quote-v4-trustee-6",
     4,
     false,
     "21e8dead92d6c69d",
     "00a06d080000",
     11,
     {2, 2, 7, 7, 4, 1, 0, 2},
     7,
     true,
     70},
    {"quote-v4-gce-cos113-ccel",
     4,
     false,
     "dae67181d3d65e07",
     "00806f050000",
     11,
     {7, 7, 2, 2, 3, 1, 0, 3},
     6,
     true,
     3065},
    {"quote-v5-go-tdx-guest",
     5,
     true,
     "7348651a34b2d2d3",
     "90c06f000000",
     13,
     {4, 4, 2, 2, 4, 1, 0, 5},
     7,
     true,
     0},
    {"quote-v5-trustee-5",
     5,
     true,
     "dfba221b48a22af8",
     "90c06f000000",
     13,
     {1, 1, 2, 2, 3, 1, 0, 3},
     6,
     true,
     0},
};

Options SkipTcb() {
  Options o;
  o.policy.skip_tcb = true;
  return o;
}

TEST(TdxGolden, EveryRealQuoteVerifiesWithItsManifestFacts) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  for (const TdxCase& c : kQuotes) {
    SCOPED_TRACE(c.dir);
    auto bytes = testing::ReadFileOrDie(vectors / "tdx" / c.dir / "quote.dat");
    CheckLog log;
    auto v = VerifyQuote(bytes, SkipTcb(), &log);
    ASSERT_TRUE(v.ok()) << v.status();
    const Quote& q = v->quote;
    EXPECT_EQ(q.version, c.version);
    EXPECT_EQ(q.body.tdx15, c.tdx15);
    EXPECT_EQ(HexEncode(q.body.mrtd).substr(0, 16), c.mrtd_prefix);
    EXPECT_EQ(HexEncode(q.qe_vendor_id), "939a7233f79c4ca9940a0db3957f0607");
    EXPECT_EQ(q.trailing_bytes, c.trailing);
    EXPECT_EQ(HexEncode(v->pck.fmspc), c.fmspc);
    EXPECT_EQ(HexEncode(v->pck.pce_id), "0000");
    EXPECT_EQ(v->pck.pcesvn, c.pcesvn);
    EXPECT_TRUE(std::equal(c.tcb.begin(), c.tcb.end(), v->pck.tcb_components.begin()));
    EXPECT_EQ(q.qe_report.isv_prod_id, 2);
    EXPECT_EQ(q.qe_report.isv_svn, c.qe_isvsvn);
    EXPECT_EQ(HexEncode(q.qe_report.mrsigner),
              "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5");
    TdAttributes a = DecodeTdAttributes(q.body.td_attributes);
    EXPECT_FALSE(a.debug);
    EXPECT_EQ(a.sept_ve_disable, c.sept_ve_disable);
    EXPECT_EQ(v->tcb_status, "NotEvaluated");
    EXPECT_TRUE(snp::Ran(log, "tdx.quote.signature"));
  }
}

TEST(TdxGolden, TrimmedQuoteAndExpectedValues) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto dir = vectors / "tdx/quote-v4-go-tdx-guest";
  auto trimmed = testing::ReadFileOrDie(dir / "quote.trimmed.dat");
  Options o = SkipTcb();
  o.policy.mrtd = *HexDecode(
      "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d721"
      "5cbb");
  o.policy.rtmr[3] = std::vector<uint8_t>(48, 0);
  o.policy.report_data = *HexDecode(
      "6c62dec1b8191749a31dab490be532a35944dea47caef1f980863993d9899545eb7406a38d1eed313b987a467dac"
      "ead6f0c87a6d766c66f6f29f8acb281f1113");
  auto v = VerifyQuote(trimmed, o);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->quote.trailing_bytes, 0u);
  o.policy.rtmr[0] = std::vector<uint8_t>(48, 1);
  CheckLog log;
  ExpectFailedCheck(VerifyQuote(trimmed, o, &log), log, "tdx.expect.rtmr0", "but expected");
}

TEST(TdxGolden, TcbIsNotSilentlyPassed) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto bytes = testing::ReadFileOrDie(vectors / "tdx/quote-v5-trustee-5/quote.dat");
  CheckLog log;
  ExpectFailedCheck(VerifyQuote(bytes, Options{}, &log), log, "tdx.tcb", "no collateral given");
}

TEST(TdxGolden, PckChainValidityFollowsTheClock) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto bytes = testing::ReadFileOrDie(vectors / "tdx/quote-v4-go-tdx-guest/quote.dat");
  Options o = SkipTcb();
  o.now = *ParseRfc3339("2023-07-01T00:00:00Z");
  EXPECT_TRUE(VerifyQuote(bytes, o).ok()) << "the source's own verification time";
  o.now = *ParseRfc3339("2053-01-01T00:00:00Z");
  CheckLog log;
  ExpectFailedCheck(VerifyQuote(bytes, o, &log), log, "tdx.pck.chain", "expired");
}

TEST(TdxGolden, CrlsAreChecked) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto bytes = testing::ReadFileOrDie(vectors / "tdx/quote-v4-go-tdx-guest/quote.dat");
  Options o = SkipTcb();
  o.crls_der = {testing::ReadFileOrDie(vectors / "tdx/collateral/root_ca_crl.der"),
                testing::ReadFileOrDie(vectors / "tdx/collateral/pck_crl_platform.der")};
  o.require_crl = true;
  // At the real clock the collected CRLs are past their nextUpdate: fail, naming it.
  CheckLog log;
  auto r = VerifyQuote(bytes, o, &log);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("CRL"), absl::string_view::npos) << r.status();
  o.require_crl = true;
  o.crls_der.pop_back();
  EXPECT_EQ(ExitCodeFor(VerifyQuote(bytes, o).status()), 2) << "--require-crl needs both CRLs";
}

TEST(TdxGolden, AnotherRootIsNotTrusted) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto bytes = testing::ReadFileOrDie(vectors / "tdx/quote-v5-go-tdx-guest/quote.dat");
  Options o = SkipTcb();
  o.trust_anchors_der = {testing::ReadFileOrDie(vectors / "snp/milan-virtee/vcek.der")};
  CheckLog log;
  ExpectFailedCheck(VerifyQuote(bytes, o, &log), log, "tdx.pck.anchor", "not a trusted root");
}

TEST(TdxTamper, EveryByteOfHeaderBodyQeReportAndAuthData) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto bytes = testing::ReadFileOrDie(vectors / "tdx/quote-v5-trustee-5/quote.dat");
  auto parsed = ParseQuote(bytes);
  ASSERT_TRUE(parsed.ok());
  size_t signed_end = parsed->signed_region.size();
  // The signature data: sig length (4), signature (64), attestation key (64), cert type (2), cert
  // size (4), then the QE report (384), its signature (64), auth size (2) and auth data (32).
  size_t qe_start = signed_end + 4 + 64 + 64 + 2 + 4;
  size_t auth_end = qe_start + kQeReportSize + 64 + 2 + 32;
  for (size_t i = 0; i < auth_end; ++i) {
    if (i >= signed_end && i < signed_end + 4)
      continue;  // the length field: parse errors, tested by truncation
    auto t = bytes;
    t[i] ^= 0x01;
    CheckLog log;
    auto r = VerifyQuote(t, SkipTcb(), &log);
    ASSERT_FALSE(r.ok()) << "flip at " << i;
    EXPECT_FALSE(r.status().message().empty());
  }
}

TEST(TdxTamper, EveryByteOfTheCertificationData) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto bytes = testing::ReadFileOrDie(vectors / "tdx/quote-v5-trustee-5/quote.dat");
  auto parsed = ParseQuote(bytes);
  ASSERT_TRUE(parsed.ok());
  // The PCK chain PEM is the inner certification data, right before the declared end.
  const std::string& pem = parsed->pck_chain_pem;
  size_t end = bytes.size() - parsed->trailing_bytes;
  auto at = std::search(bytes.begin(), bytes.begin() + end, pem.begin(), pem.end());
  ASSERT_NE(at, bytes.begin() + end);
  size_t start = at - bytes.begin();
  size_t rejected = 0, unchanged = 0;
  for (size_t i = start; i < start + pem.size(); ++i) {
    auto t = bytes;
    t[i] ^= 0x01;
    auto r = VerifyQuote(t, SkipTcb());
    if (!r.ok()) {
      ++rejected;
      EXPECT_FALSE(r.status().message().empty());
      continue;
    }
    // Accepted only if the flip changed no certificate byte (PEM whitespace the decoder skips).
    auto chain = ParseCertificates(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(r->quote.pck_chain_pem.data()),
                                 r->quote.pck_chain_pem.size()),
        "chain");
    auto original = ParseCertificates(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(pem.data()), pem.size()),
        "chain");
    ASSERT_TRUE(chain.ok() && original.ok());
    EXPECT_EQ(*chain, *original) << "flip at " << i << " verified with other certificate bytes";
    ++unchanged;
  }
  EXPECT_GT(rejected, pem.size() * 9 / 10);
  std::printf("certification data: %zu flips rejected, %zu left the DER unchanged\n", rejected,
              unchanged);
}

TEST(TdxTruncation, EveryPrefixIsAnError) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  for (const char* f :
       {"quote-v4-go-tdx-guest/quote.trimmed.dat", "quote-v5-trustee-5/quote.dat"}) {
    auto bytes = testing::ReadFileOrDie(vectors / "tdx" / f);
    auto full = ParseQuote(bytes);
    ASSERT_TRUE(full.ok());
    size_t declared = bytes.size() - full->trailing_bytes;
    for (size_t n = 0; n < declared; ++n) {
      ASSERT_FALSE(ParseQuote(std::span<const uint8_t>(bytes.data(), n)).ok()) << f << " " << n;
    }
  }
  EXPECT_FALSE(ParseQuote(std::vector<uint8_t>(kMaxQuoteSize + 1)).ok());
}

TEST(TdxPck, ExtensionDecoderRejectsOtherCertificates) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto ext = ParsePckExtensions(testing::ReadFileOrDie(vectors / "snp/milan-virtee/vcek.der"));
  ASSERT_FALSE(ext.ok());
  EXPECT_NE(ext.status().message().find("no SGX extension"), absl::string_view::npos);
}

}  // namespace
}  // namespace attest::tdx

namespace attest::tdx {
namespace {

using snp::ExpectFailedCheck;

Collateral LoadCollateral(const std::filesystem::path& vectors, const std::string& fmspc) {
  auto dir = vectors / "tdx/collateral" / ("fmspc-" + fmspc);
  Collateral c;
  auto text = [](const std::filesystem::path& p) {
    auto b = testing::ReadFileOrDie(p);
    return std::string(b.begin(), b.end());
  };
  c.tcb_info_json = text(dir / "tcb_info.json");
  if (std::filesystem::exists(dir / "qe_identity.json"))
    c.qe_identity_json = text(dir / "qe_identity.json");
  auto chain = ParseCertificates(
      testing::ReadFileOrDie(vectors / "tdx/certs/tcb_info_issuer_chain.pem"), "chain");
  c.tcb_signing_chain_der = *chain;
  return c;
}

// 2023-06-20: the one time at which FMSPC 50806f000000's collateral, chains and CRL windows
// overlap.
constexpr char kOverlap[] = "2023-06-20T00:00:00Z";

TEST(TdxCollateral, FullPathAtTheOverlapTimeReproducesTheCrossCheck) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto bytes = testing::ReadFileOrDie(vectors / "tdx/quote-v4-go-tdx-guest/quote.dat");
  Options o;
  o.now = *ParseRfc3339(kOverlap);
  o.collateral = LoadCollateral(vectors, "50806f000000");
  CheckLog log;
  auto r = VerifyQuote(bytes, o, &log);
  // The MANIFEST: this quote matches no TCB level of its collateral; its QE is UpToDate.
  ExpectFailedCheck(r, log, "tdx.tcb", "NoMatch");
  for (const char* check :
       {"tdx.collateral.tcb_info", "tdx.collateral.tcb_info.validity", "tdx.collateral.fmspc",
        "tdx.collateral.qe_identity", "tdx.collateral.qe_identity.validity", "tdx.qe.identity"}) {
    bool passed = false;
    for (const Check& c : log.checks()) passed = passed || (c.name == check && c.ok);
    EXPECT_TRUE(passed) << check;
  }
  o.accepted_tcb_statuses = {"UpToDate", "NoMatch"};
  auto accepted = VerifyQuote(bytes, o);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_EQ(accepted->qe_tcb_status, "UpToDate");
}

TEST(TdxCollateral, EachArtifactAtItsOwnTimeAndAtTheRealClock) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto bytes = testing::ReadFileOrDie(vectors / "tdx/quote-v4-go-tdx-guest/quote.dat");
  // Later collateral still verifies under the TCB Signing key (valid in 2023) but is not yet
  // issued.
  for (const char* fmspc : {"90c06f000000", "00a06d080000"}) {
    Options o;
    o.now = *ParseRfc3339(kOverlap);
    o.collateral = LoadCollateral(vectors, fmspc);
    CheckLog log;
    ExpectFailedCheck(VerifyQuote(bytes, o, &log), log, "tdx.collateral.tcb_info.validity",
                      "not yet issued");
    EXPECT_TRUE(log.checks()[log.checks().size() - 2].ok) << "the signature check before it passed";
  }
  // At the real clock the TCB Signing certificate (expired 2025-05-21) fails, naming the expiry.
  Options now;
  now.collateral = LoadCollateral(vectors, "50806f000000");
  CheckLog log;
  ExpectFailedCheck(VerifyQuote(bytes, now, &log), log, "tdx.collateral.tcb_info", "expired");
  // After its nextUpdate, with the signing certificate still valid: stale collateral.
  Options stale;
  stale.now = *ParseRfc3339("2024-01-01T00:00:00Z");
  stale.collateral = LoadCollateral(vectors, "50806f000000");
  CheckLog log2;
  ExpectFailedCheck(VerifyQuote(bytes, stale, &log2), log2, "tdx.collateral.tcb_info.validity",
                    "stale");
}

TEST(TdxCollateral, TcbLevelMatchingReproducesTheManifestCrossChecks) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  struct Case {
    const char* quote;
    const char* fmspc;
    const char* status;
    const char* module;  // "" when the TCB info has no module identity for it
    const char* module_status;
  };
  const Case cases[] = {
      {"quote-v4-go-tdx-guest", "50806f000000", "NoMatch", "", ""},
      {"quote-v4-trustee-6", "00a06d080000", "OutOfDate", "TDX_03", "UpToDate"},
      {"quote-v5-go-tdx-guest", "90c06f000000", "UpToDate", "TDX_01", "UpToDate"},
      {"quote-v5-trustee-5", "90c06f000000", "NoMatch", "TDX_01", "OutOfDate"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.quote);
    auto v =
        VerifyQuote(testing::ReadFileOrDie(vectors / "tdx" / c.quote / "quote.dat"), SkipTcb());
    ASSERT_TRUE(v.ok()) << v.status();
    auto doc = ExtractSignedObject(LoadCollateral(vectors, c.fmspc).tcb_info_json, "tcbInfo");
    ASSERT_TRUE(doc.ok()) << doc.status();
    auto info = ParseTcbInfo(doc->raw);
    ASSERT_TRUE(info.ok()) << info.status();
    TcbResult r =
        EvaluateTcb(*info, v->pck.tcb_components, v->pck.pcesvn, v->quote.body.tee_tcb_svn);
    EXPECT_EQ(r.status, c.status);
    EXPECT_EQ(r.module_id.value_or(""), c.module);
    EXPECT_EQ(r.module_status.value_or(""), c.module_status);
  }
}

TEST(TdxCollateral, EveryByteOfTheSignedObjectsIsCovered) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto bytes = testing::ReadFileOrDie(vectors / "tdx/quote-v4-go-tdx-guest/quote.dat");
  Collateral good = LoadCollateral(vectors, "50806f000000");

  for (int which = 0; which < 2; ++which) {
    std::string text = which == 0 ? good.tcb_info_json : *good.qe_identity_json;
    auto doc = ExtractSignedObject(text, which == 0 ? "tcbInfo" : "enclaveIdentity");
    ASSERT_TRUE(doc.ok());
    size_t start = text.find(doc->raw);
    for (size_t i = start; i < start + doc->raw.size(); i += 3) {
      Collateral t = good;
      std::string& s = which == 0 ? t.tcb_info_json : *t.qe_identity_json;
      s[i] ^= 0x01;
      Options o;
      o.now = *ParseRfc3339(kOverlap);
      o.collateral = t;
      o.accepted_tcb_statuses = {"UpToDate", "NoMatch"};
      EXPECT_FALSE(VerifyQuote(bytes, o).ok())
          << (which == 0 ? "tcbInfo" : "enclaveIdentity") << " flip at " << i;
    }
  }
}

TEST(TdxCollateral, ExtractionIsExactAndStrict) {
  std::string text =
      R"({"tcbInfo":{"a":"}\"{","b":[1,{"c":2}]},"signature":")" + std::string(128, 'a') + R"("})";
  auto doc = ExtractSignedObject(text, "tcbInfo");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->raw, R"({"a":"}\"{","b":[1,{"c":2}]})");
  EXPECT_FALSE(ExtractSignedObject(R"({"x":{"tcbInfo":{}},"signature":"00"})", "tcbInfo").ok())
      << "nested only";
  EXPECT_FALSE(ExtractSignedObject(R"({"tcbInfo":{},"signature":"00"})", "tcbInfo").ok())
      << "short signature";
  EXPECT_FALSE(ExtractSignedObject(R"({"tcbInfo":{"a":1)", "tcbInfo").ok()) << "unbalanced";
  EXPECT_FALSE(ExtractSignedObject("[]", "tcbInfo").ok());
}

}  // namespace
}  // namespace attest::tdx

namespace attest::tdx {
namespace {

TEST(TdxCcel, RealLogReplaysToTheQuotedRtmrs) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto dir = vectors / "tdx/quote-v4-gce-cos113-ccel";
  auto table = ParseCcelTable(testing::ReadFileOrDie(dir / "ccel_table.dat"));
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->cc_type, 2);
  EXPECT_EQ(table->log_area_min_length, 0x40000u);
  EXPECT_EQ(table->log_area_start, 0xbedbf000u);
  auto log_bytes = testing::ReadFileOrDie(dir / "ccel_data.dat");
  auto replay = ReplayCcel(*table, log_bytes);
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(replay->log.events.size(), 43u) << "44 with the Spec ID header";
  EXPECT_EQ(replay->log.algorithms, std::vector<uint16_t>{tpm::kAlgSha384});
  EXPECT_EQ(HexEncode(replay->rtmr[0]),
            "3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b19297fc35e544039c7e1edece"
            "752afd17f6");
  EXPECT_EQ(HexEncode(replay->rtmr[1]),
            "f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86e8a8"
            "78c2b122c1");
  EXPECT_EQ(HexEncode(replay->rtmr[2]),
            "4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11f3"
            "81a6fbe7c1");
  EXPECT_FALSE(replay->touched[3]);

  Options o;
  o.policy.skip_tcb = true;
  o.ccel_table = testing::ReadFileOrDie(dir / "ccel_table.dat");
  o.ccel_log = log_bytes;
  auto quote = testing::ReadFileOrDie(dir / "quote.dat");
  CheckLog log;
  auto v = VerifyQuote(quote, o, &log);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->ccel_events, 43u);
  EXPECT_EQ(HexEncode(v->quote.body.report_data),
            HexEncode(testing::ReadFileOrDie(dir / "nonce.dat")));

  // An edited event: the RTMR it extends is named.
  auto edited = log_bytes;
  size_t offset = replay->log.events[5].offset + 8;  // inside the event's first digest area
  edited[offset + 10] ^= 1;
  o.ccel_log = edited;
  CheckLog log2;
  auto r = VerifyQuote(quote, o, &log2);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("tdx.ccel.rtmr: RTMR"), absl::string_view::npos)
      << r.status();
}

TEST(TdxCcel, MalformedTablesAndPadding) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto dir = vectors / "tdx/quote-v4-gce-cos113-ccel";
  auto table = testing::ReadFileOrDie(dir / "ccel_table.dat");
  for (size_t i = 0; i < table.size(); ++i) {
    auto t = table;
    t[i] ^= 0x01;
    EXPECT_FALSE(ParseCcelTable(t).ok()) << "flip at " << i << " (signature, length or checksum)";
  }
  for (size_t n = 0; n < table.size(); ++n) {
    EXPECT_FALSE(ParseCcelTable(std::span<const uint8_t>(table.data(), n)).ok());
  }
  auto log = testing::ReadFileOrDie(dir / "ccel_data.dat");
  auto parsed = ParseCcelTable(table);
  auto junk = log;
  junk[junk.size() - 100] = 0x00;  // data after the padding started
  auto r = ReplayCcel(*parsed, junk);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("after the 0xFF padding"), absl::string_view::npos);
  log.push_back(0xff);
  EXPECT_FALSE(ReplayCcel(*parsed, log).ok()) << "larger than the table's log area";
}

}  // namespace
}  // namespace attest::tdx
