// Issue 11: what the supervisor reads from Google Cloud's vTPM NV indices before it uses them
// (supervisor/tpm.h: GceAkTemplate, GceAkCertificate). Both indices may be larger than their
// content: zero padding is accepted and cut off; every truncation, a byte after the content and a
// template that is not a restricted signing key's fail with a message naming the index.
#include <gtest/gtest.h>
#include <tss2/tss2_tpm2_types.h>

#include "snp_signer.h"
#include "supervisor/tpm.h"
#include "test_support.h"

namespace appliance::supervisor {
namespace {

constexpr TPMA_OBJECT kAkAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                      TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                                      TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;

// Google's RSA AK template (RSA-2048 RSASSA/SHA-256, unique field empty) with these attributes.
std::vector<uint8_t> Template(TPMA_OBJECT attributes) {
  return attest::testing::RsaSigningTpmt(2048, {}, attributes);
}

std::vector<uint8_t> Padded(std::vector<uint8_t> b, size_t zeros) {
  b.resize(b.size() + zeros, 0);
  return b;
}

TEST(GceAkNv, TemplateIsCutAtItsEndAndEveryTruncationFails) {
  const auto tmpl = Template(kAkAttributes);
  for (size_t zeros : {size_t{0}, size_t{1}, size_t{1024} - tmpl.size()}) {
    auto got = GceAkTemplate(Padded(tmpl, zeros));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, tmpl) << zeros << " bytes of padding";
  }
  for (size_t n = 0; n < tmpl.size(); ++n) {
    auto got = GceAkTemplate(std::span(tmpl).first(n));
    ASSERT_FALSE(got.ok()) << n;
    EXPECT_NE(got.status().message().find("0x1c10001"), std::string::npos) << got.status();
    EXPECT_NE(got.status().message().find("not a TPMT_PUBLIC"), std::string::npos) << n;
  }
}

TEST(GceAkNv, TemplateWithTrailingBytesOrNotARestrictedSigningKeyFails) {
  auto trailing = Padded(Template(kAkAttributes), 16);
  trailing[trailing.size() - 3] = 0x01;
  auto t = GceAkTemplate(trailing);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("non-zero bytes after its TPMT_PUBLIC"), std::string::npos)
      << t.status();
  for (TPMA_OBJECT drop :
       {TPMA_OBJECT_RESTRICTED, TPMA_OBJECT_SIGN_ENCRYPT, TPMA_OBJECT_FIXEDTPM}) {
    auto r = GceAkTemplate(Template(kAkAttributes & ~drop));
    ASSERT_FALSE(r.ok()) << drop;
    EXPECT_NE(r.status().message().find("not a restricted signing key"), std::string::npos)
        << r.status();
  }
  auto decrypt = GceAkTemplate(Template(kAkAttributes | TPMA_OBJECT_DECRYPT));
  EXPECT_FALSE(decrypt.ok()) << "a signing key that also decrypts is no AK";
}

TEST(GceAkNv, CertificateIsCutAtItsEndAndEveryTruncationFails) {
  auto signer = attest::testing::SoftwareSnpSigner::Create(attest::snp::Product::kMilan, 2048);
  ASSERT_TRUE(signer.ok());
  const auto cert = (*signer)->Chain(attest::snp::SigningKey::kVcek).front();
  for (size_t zeros : {size_t{0}, size_t{700}}) {
    auto got = GceAkCertificate(Padded(cert, zeros));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, cert);
  }
  for (size_t n = 0; n < cert.size(); ++n) {
    auto got = GceAkCertificate(std::span(cert).first(n));
    ASSERT_FALSE(got.ok()) << n;
    EXPECT_NE(got.status().message().find("does not start with a DER X.509 certificate"),
              std::string::npos)
        << got.status();
  }
  auto trailing = Padded(cert, 8);
  trailing.back() = 0x30;
  auto t = GceAkCertificate(trailing);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("non-zero bytes after its certificate"), std::string::npos)
      << t.status();
}

}  // namespace
}  // namespace appliance::supervisor
