#include <gtest/gtest.h>

#include "attest/status.h"
#include "attest/tpm/ak.h"
#include "attest/tpm/eventlog.h"
#include "attest/tpm/quote.h"
#include "snp_test_util.h"
#include "tpm_signer.h"
#include "tpm_test_util.h"

namespace attest::tpm {
namespace {

using snp::ExpectFailedCheck;
using snp::Ran;

struct GceQuote {
  std::vector<uint8_t> attest, signature;
};

GceQuote LoadGce(const std::filesystem::path& vectors, const std::string& bank) {
  auto dir = vectors / "tpm/quote-gce-cos85-nonce9009";
  return {testing::ReadFileOrDie(dir / ("quote_" + bank + ".tpms_attest")),
          testing::ReadFileOrDie(dir / ("quote_" + bank + ".tpmt_signature"))};
}

std::unique_ptr<QuoteVerifier> GceVerifier(const std::filesystem::path& vectors) {
  auto ak = ParseAkTpmtPublic(
      testing::ReadFileOrDie(vectors / "tpm/quote-gce-cos85-nonce9009/ak_pub.tpmt_public"));
  EXPECT_TRUE(ak.ok()) << ak.status();
  auto v = QuoteVerifier::Create(*ak);
  return v.ok() ? *std::move(v) : nullptr;
}

TEST(TpmQuoteGolden, GceQuotesInThreeBanksWithPcrsAndLog) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto verifier = GceVerifier(vectors);
  auto ak = ParseAkTpmtPublic(
      testing::ReadFileOrDie(vectors / "tpm/quote-gce-cos85-nonce9009/ak_pub.tpmt_public"));
  EXPECT_EQ(HexEncode(*ak->name),
            "000bf175bdb57297b2b289973f819863d6c9d09c236725676914f4248c9a2404c2a4");
  EXPECT_EQ(ak->Describe(), "RSA-2048");
  auto log = ParseEventLog(
      testing::ReadFileOrDie(vectors / "tpm/quote-gce-cos85-nonce9009/event_log.bin"));
  ASSERT_TRUE(log.ok());
  auto replay = ReplayEventLog(*log);
  ASSERT_TRUE(replay.ok());
  PcrBanks pcrs = GcePcrs(vectors);
  for (const char* bank : {"sha1", "sha256", "sha384"}) {
    SCOPED_TRACE(bank);
    GceQuote q = LoadGce(vectors, bank);
    QuoteVerifyOptions o;
    o.nonce = {0x90, 0x09};
    o.pcrs = pcrs;
    CheckLog checks;
    auto r = verifier->Verify(q.attest, q.signature, SignatureFormat::kAuto, o, &checks);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->signature.hash_alg, kAlgSha256) << "every bank's quote is signed with SHA-256";
    EXPECT_EQ(r->quote.selections.size(), 1u);
    EXPECT_EQ(r->quote.selections[0].pcrs.size(), 24u);
    auto match = CheckLogAgainstQuote(*log, *replay, r->quoted_pcrs, checks);
    ASSERT_TRUE(match.ok()) << match.status();
    uint16_t alg = *HashAlgFromName(bank);
    EXPECT_EQ(match->explained[alg], (std::set<uint32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
    EXPECT_EQ(match->unexplained[alg].size(), 14u) << "PCR 10 (IMA) and 11-23 are not in the log";
    EXPECT_TRUE(Ran(checks, "tpm.eventlog.unexplained"));
    EXPECT_FALSE(VouchedEvents(*log, *match).empty());
  }
}

TEST(TpmQuoteGolden, GceAkCertificateChainsToGoogleCa) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto dir = vectors / "tpm/quote-gce-cos85-nonce9009";
  auto ak = ParseAkTpmtPublic(testing::ReadFileOrDie(dir / "ak_pub.tpmt_public"));
  auto cert = testing::ReadFileOrDie(dir / "ak_cert.der");
  std::vector<std::vector<uint8_t>> cas = {
      testing::ReadFileOrDie(vectors / "tpm/gce-ek-ak-ca/tpm_ek_root_1.cer"),
      testing::ReadFileOrDie(vectors / "tpm/gce-ek-ak-ca/tpm_ek_intermediate_2.crt")};
  CheckLog log;
  EXPECT_TRUE(VerifyAkCertificate(*ak, cert, cas, absl::Now(), log).ok())
      << log.checks().back().detail;
  // Another AK: the certificate does not certify it.
  auto windows_ak = ParseAkTpmtPublic(
      testing::ReadFileOrDie(vectors / "tpm/quote-windows-gcp-shielded-vm/ak_pub.tpmt_public"));
  CheckLog log2;
  auto s = VerifyAkCertificate(*windows_ak, cert, cas, absl::Now(), log2);
  EXPECT_TRUE(IsVerificationFailure(s));
  EXPECT_NE(s.message().find("different public key"), absl::string_view::npos);
  // The wrong CA.
  CheckLog log3;
  auto wrong = VerifyAkCertificate(
      *ak, cert, {testing::ReadFileOrDie(vectors / "tpm/gce-ek-ak-ca/gcp_ek_ak_ca_root.crt")},
      absl::Now(), log3);
  EXPECT_TRUE(IsVerificationFailure(wrong)) << wrong;
}

TEST(TpmQuoteGolden, WrongNonceIsRejected) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto verifier = GceVerifier(vectors);
  GceQuote q = LoadGce(vectors, "sha256");
  QuoteVerifyOptions o;
  o.nonce = {0x90, 0x0a};
  CheckLog log;
  ExpectFailedCheck(verifier->Verify(q.attest, q.signature, SignatureFormat::kAuto, o, &log), log,
                    "tpm.quote.nonce", "but expected nonce '900a'");
}

TEST(TpmQuoteGolden, WindowsSha1QuoteNeedsAllowSha1) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto dir = vectors / "tpm/quote-windows-gcp-shielded-vm";
  auto ak = ParseAkTpmtPublic(testing::ReadFileOrDie(dir / "ak_pub.tpmt_public"));
  ASSERT_TRUE(ak.ok());
  EXPECT_EQ(HexEncode(*ak->name),
            "000b4ce9b151f75089d74c15dabe9d520cffafbcafd5d43be0aad2e2d88d54717e2e");
  auto verifier = QuoteVerifier::Create(*ak);
  auto attest = testing::ReadFileOrDie(dir / "quote.tpms_attest");
  auto sig = testing::ReadFileOrDie(dir / "quote.tpmt_signature");
  QuoteVerifyOptions o;  // empty nonce
  o.pcrs = *ParsePcrJson(ReadText(dir / "pcrs_sha1.json"), kAlgSha1);
  CheckLog log;
  ExpectFailedCheck((*verifier)->Verify(attest, sig, SignatureFormat::kAuto, o, &log), log,
                    "tpm.signature.hash", "SHA-1");
  o.allow_sha1 = true;
  CheckLog log2;
  auto r = (*verifier)->Verify(attest, sig, SignatureFormat::kAuto, o, &log2);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->quote.pcr_digest.size(), 20u) << "digested with the scheme's hash, SHA-1";
  auto elog = ParseEventLog(testing::ReadFileOrDie(dir / "event_log.bin"));
  ASSERT_TRUE(elog.ok());
  auto match = CheckLogAgainstQuote(*elog, *ReplayEventLog(*elog), r->quoted_pcrs, log2);
  ASSERT_TRUE(match.ok()) << match.status();
  EXPECT_EQ(match->explained[kAlgSha1], (std::set<uint32_t>{0, 4, 5, 7, 11, 12, 13, 14}));
}

TEST(TpmQuoteGolden, AzureQuoteWithJwkAkAndRawSignature) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto dir = vectors / "snp/genoa-azure-vtpm";
  auto ak = ParseAkJwk(ReadText(dir / "runtime_data.json"), "HCLAkPub");
  ASSERT_TRUE(ak.ok()) << ak.status();
  EXPECT_FALSE(ParseAkJwk(ReadText(dir / "runtime_data.json"), "NoSuchKey").ok());
  auto verifier = QuoteVerifier::Create(*ak);
  QuoteVerifyOptions o;
  o.nonce = *HexDecode(kAzureNonce);
  o.pcrs = *ParsePcrJson(ReadText(dir / "vtpm_pcrs_sha256.json"), kAlgSha256);
  auto attest = testing::ReadFileOrDie(dir / "vtpm_quote.tpms_attest");
  auto sig = testing::ReadFileOrDie(dir / "vtpm_quote.sig");
  auto r = (*verifier)->Verify(attest, sig, SignatureFormat::kAuto, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->signature.raw);
  EXPECT_FALSE((*verifier)->Verify(attest, sig, SignatureFormat::kTpmt, o).ok())
      << "a raw signature is not a TPMT";
  // A PCR value that does not match the digest.
  o.pcrs->at(kAlgSha256).at(7)[0] ^= 1;
  CheckLog log;
  ExpectFailedCheck((*verifier)->Verify(attest, sig, SignatureFormat::kAuto, o, &log), log,
                    "tpm.pcrs.digest", "but the quote's pcrDigest is");
  // A PCR the quote selects but the caller did not supply.
  o.pcrs->at(kAlgSha256).erase(23);
  CheckLog log2;
  ExpectFailedCheck((*verifier)->Verify(attest, sig, SignatureFormat::kAuto, o, &log2), log2,
                    "tpm.pcrs.digest", "no value was given");
}

TEST(TpmQuoteSoftware, EverySignatureScheme) {
  using S = testing::SoftwareTpmQuoter::Scheme;
  PcrBanks pcrs;
  for (uint32_t i = 0; i < 24; ++i)
    pcrs[kAlgSha256][i] = std::vector<uint8_t>(32, static_cast<uint8_t>(i));
  for (S scheme : {S::kRsassa, S::kRsapss, S::kEcdsaP256}) {
    for (uint16_t hash : {kAlgSha256, kAlgSha384}) {
      SCOPED_TRACE(static_cast<int>(scheme));
      auto quoter = testing::SoftwareTpmQuoter::Create(scheme, hash);
      ASSERT_TRUE(quoter.ok()) << quoter.status();
      auto q = (*quoter)->Quote(pcrs, {1, 2, 3});
      ASSERT_TRUE(q.ok()) << q.status();
      const std::string pem_text = (*quoter)->ak_pem();
      for (bool pem : {false, true}) {
        auto ak = pem ? ParseAkPem(std::vector<uint8_t>(pem_text.begin(), pem_text.end()))
                      : ParseAkTpmtPublic((*quoter)->ak_tpmt_public());
        ASSERT_TRUE(ak.ok()) << ak.status();
        auto v = QuoteVerifier::Create(*ak);
        QuoteVerifyOptions o;
        o.nonce = {1, 2, 3};
        o.pcrs = pcrs;
        auto r = (*v)->Verify(q->attest, q->signature, SignatureFormat::kAuto, o);
        ASSERT_TRUE(r.ok()) << r.status();
        EXPECT_EQ(r->quote.pcr_digest.size(), HashAlgSize(hash)) << "scheme hash, not bank hash";
        auto tampered = q->attest;
        tampered.back() ^= 1;
        EXPECT_FALSE((*v)->Verify(tampered, q->signature, SignatureFormat::kAuto, o).ok());
      }
    }
  }
}

TEST(TpmQuoteSoftware, SchemeMustMatchTheKey) {
  using S = testing::SoftwareTpmQuoter::Scheme;
  PcrBanks pcrs;
  pcrs[kAlgSha256][0] = std::vector<uint8_t>(32, 0);
  auto rsassa = testing::SoftwareTpmQuoter::Create(S::kRsassa);
  auto ecdsa = testing::SoftwareTpmQuoter::Create(S::kEcdsaP256);
  auto q = (*ecdsa)->Quote(pcrs, {});
  auto v = QuoteVerifier::Create(*ParseAkTpmtPublic((*rsassa)->ak_tpmt_public()));
  CheckLog log;
  ExpectFailedCheck(
      (*v)->Verify(q->attest, q->signature, SignatureFormat::kAuto, QuoteVerifyOptions{}, &log),
      log, "tpm.signature.scheme", "ECDSA");
}

TEST(TpmQuoteTamper, EveryByteOfQuoteSignatureAndAk) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto dir = vectors / "tpm/quote-gce-cos85-nonce9009";
  GceQuote q = LoadGce(vectors, "sha256");
  auto ak_bytes = testing::ReadFileOrDie(dir / "ak_pub.tpmt_public");
  QuoteVerifyOptions o;
  o.nonce = {0x90, 0x09};
  o.pcrs = GcePcrs(vectors);
  // The AK is pinned by its TPM Name, which covers every byte of its public area.
  o.expected_ak_name =
      *HexDecode("000bf175bdb57297b2b289973f819863d6c9d09c236725676914f4248c9a2404c2a4");
  auto verifier = GceVerifier(vectors);
  ASSERT_TRUE(verifier->Verify(q.attest, q.signature, SignatureFormat::kAuto, o).ok());
  for (size_t i = 0; i < q.attest.size(); ++i) {
    auto t = q.attest;
    t[i] ^= 0x01;
    CheckLog log;
    auto r = verifier->Verify(t, q.signature, SignatureFormat::kAuto, o, &log);
    ASSERT_FALSE(r.ok()) << "quote flip at " << i;
    EXPECT_FALSE(r.status().message().empty());
  }
  for (size_t i = 0; i < q.signature.size(); ++i) {
    auto t = q.signature;
    t[i] ^= 0x01;
    ASSERT_FALSE(verifier->Verify(q.attest, t, SignatureFormat::kAuto, o).ok())
        << "signature flip at " << i;
  }
  for (size_t i = 0; i < ak_bytes.size(); ++i) {
    auto t = ak_bytes;
    t[i] ^= 0x01;
    auto ak = ParseAkTpmtPublic(t);
    if (!ak.ok()) continue;  // rejected at parse
    auto v = QuoteVerifier::Create(*ak);
    if (!v.ok()) continue;
    CheckLog log;
    auto r = (*v)->Verify(q.attest, q.signature, SignatureFormat::kAuto, o, &log);
    ASSERT_FALSE(r.ok()) << "AK flip at " << i;
    ASSERT_NE(log.first_failure(), nullptr) << r.status();
  }
}

TEST(TpmQuoteAk, UnrestrictedKeysAreNotAks) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto bytes = testing::ReadFileOrDie(vectors / "tpm/quote-gce-cos85-nonce9009/ak_pub.tpmt_public");
  bytes[5] ^= 0x01;  // objectAttributes bit 16: restricted
  auto ak = ParseAkTpmtPublic(bytes);
  ASSERT_TRUE(ak.ok()) << ak.status();
  CheckLog log;
  EXPECT_TRUE(IsVerificationFailure(CheckAkAttributes(*ak, log)));
  EXPECT_NE(log.first_failure()->detail.find("not a restricted signing key"), std::string::npos);
}

TEST(TpmQuoteTruncation, EveryPrefixOfQuoteSignatureAndAk) {
  APPLIANCE_REQUIRE_VECTORS(vectors);
  auto dir = vectors / "tpm/quote-gce-cos85-nonce9009";
  GceQuote q = LoadGce(vectors, "sha1");
  auto ak_bytes = testing::ReadFileOrDie(dir / "ak_pub.tpmt_public");
  auto ak = ParseAkTpmtPublic(ak_bytes);
  for (size_t n = 0; n < q.attest.size(); ++n) {
    EXPECT_FALSE(ParseQuote(std::span<const uint8_t>(q.attest.data(), n)).ok()) << n;
  }
  for (size_t n = 0; n < q.signature.size(); ++n) {
    EXPECT_FALSE(ParseQuoteSignature(std::span<const uint8_t>(q.signature.data(), n),
                                     SignatureFormat::kTpmt, *ak)
                     .ok())
        << n;
  }
  for (size_t n = 0; n < ak_bytes.size(); ++n) {
    EXPECT_FALSE(ParseAkTpmtPublic(std::span<const uint8_t>(ak_bytes.data(), n)).ok()) << n;
  }
  auto extra = q.attest;
  extra.push_back(0);
  EXPECT_FALSE(ParseQuote(extra).ok()) << "offset must equal size";
}

TEST(TpmQuoteLimits, CraftedInputsAreBoundedBeforeWork) {
  std::vector<uint8_t> huge(20 * 1024, 0xff);  // a peer spent 4.7 s of CPU on a 20 KB quote
  auto q = ParseQuote(huge);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().message().find("limit"), absl::string_view::npos);
  AkPublicKey ak;
  ak.type = kAlgRsa;
  ak.bits = 2048;
  EXPECT_FALSE(ParseQuoteSignature(huge, SignatureFormat::kAuto, ak).ok());
  EXPECT_FALSE(ParseAkTpmtPublic(std::vector<uint8_t>(kMaxAkInputSize + 1)).ok());
  // A PCR selection byte count above the TPM's maximum is refused by the unmarshaller.
  std::vector<uint8_t> sel = {0xff, 0x54, 0x43, 0x47, 0x80, 0x18, 0, 0, 0, 0};
  sel.insert(sel.end(), 17 + 8, 0);
  sel.insert(sel.end(), {0, 0, 0, 1, 0, 0x0b, 0xff});  // count 1, sha256, sizeofSelect 255
  EXPECT_FALSE(ParseQuote(sel).ok());
}

}  // namespace
}  // namespace attest::tpm
