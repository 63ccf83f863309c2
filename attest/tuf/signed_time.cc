#include "attest/tuf/signed_time.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/ts.h>
#include <openssl/x509_vfy.h>

#include "absl/strings/str_cat.h"
#include "attest/files.h"
#include "attest/status.h"
#include "common/openssl_util.h"

namespace attest::tuf {
namespace {

using TsRespPtr = std::unique_ptr<TS_RESP, ossl::Deleter<TS_RESP_free>>;
using TsVerifyCtxPtr = std::unique_ptr<TS_VERIFY_CTX, ossl::Deleter<TS_VERIFY_CTX_free>>;
using StorePtr = std::unique_ptr<X509_STORE, ossl::Deleter<X509_STORE_free>>;
void FreeX509StackAndCerts(STACK_OF(X509) * s) { sk_X509_pop_free(s, X509_free); }
using CertStackPtr = std::unique_ptr<STACK_OF(X509), ossl::Deleter<FreeX509StackAndCerts>>;

absl::Status Refused(const std::string& detail) {
  return VerificationFailed("time.signed", detail);
}

}  // namespace

absl::StatusOr<SignedTime> VerifySignedTime(std::span<const uint8_t> tsr_der,
                                            std::string_view tsa_roots_pem) {
  if (tsr_der.empty() || tsr_der.size() > kMaxTimeStampResponse) {
    return absl::InvalidArgumentError(absl::StrCat("time-stamp response: ", tsr_der.size(),
                                                   " bytes, 1 to ", kMaxTimeStampResponse));
  }
  const unsigned char* p = tsr_der.data();
  TsRespPtr resp(d2i_TS_RESP(nullptr, &p, static_cast<long>(tsr_der.size())));
  if (!resp || p != tsr_der.data() + tsr_der.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not one DER RFC 3161 TimeStampResp: ", ossl::LastError()));
  }
  const ASN1_INTEGER* status = TS_STATUS_INFO_get0_status(TS_RESP_get_status_info(resp.get()));
  const long code = status != nullptr ? ASN1_INTEGER_get(status) : -1;
  if (code != 0 && code != 1) {  // granted, grantedWithMods
    return Refused(absl::StrCat("the TSA did not grant the time stamp (status ", code, ")"));
  }
  TS_TST_INFO* info = TS_RESP_get_tst_info(resp.get());
  if (info == nullptr || TS_TST_INFO_get_time(info) == nullptr) {
    return absl::InvalidArgumentError("time-stamp response: no TSTInfo");
  }
  ASSIGN_OR_RETURN(absl::Time when, ossl::Asn1TimeToAbsl(TS_TST_INFO_get_time(info)));

  // The TSA certificates the caller trusts: trust anchors, and candidates for the signer when the
  // token does not carry its certificate.
  StorePtr store(X509_STORE_new());
  CertStackPtr certs(sk_X509_new_null());
  ossl::BioPtr bio(BIO_new_mem_buf(tsa_roots_pem.data(), static_cast<int>(tsa_roots_pem.size())));
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store.get(), cert);
    sk_X509_push(certs.get(), cert);
  }
  ERR_clear_error();
  if (sk_X509_num(certs.get()) == 0) {
    return absl::InvalidArgumentError("TSA certificates: no PEM certificate");
  }
  // The TSA's certificate must be valid when it signed (the token's own time: the host's clock is
  // exactly what we do not trust here).
  X509_VERIFY_PARAM_set_time(X509_STORE_get0_param(store.get()), ossl::ToTimeT(when));

  TsVerifyCtxPtr ctx(TS_VERIFY_CTX_new());
  TS_VERIFY_CTX_set_flags(ctx.get(), TS_VFY_SIGNATURE | TS_VFY_VERSION);
  TS_VERIFY_CTX_set_store(ctx.get(), store.release());  // owned by ctx from here
  TS_VERIFY_CTX_set_certs(ctx.get(), certs.release());  // owned by ctx from here
  if (TS_RESP_verify_response(ctx.get(), resp.get()) != 1) {
    return Refused(
        absl::StrCat("the time-stamp token does not verify against the TSA "
                     "certificates given: ",
                     ossl::LastError()));
  }
  SignedTime out;
  out.time = when;
  if (PKCS7* token = TS_RESP_get_token(resp.get()); token != nullptr) {
    STACK_OF(PKCS7_SIGNER_INFO)* signers = PKCS7_get_signer_info(token);
    if (signers != nullptr && sk_PKCS7_SIGNER_INFO_num(signers) == 1) {
      PKCS7_ISSUER_AND_SERIAL* ias = sk_PKCS7_SIGNER_INFO_value(signers, 0)->issuer_and_serial;
      if (ias != nullptr) out.tsa = absl::StrCat("issued by ", ossl::NameToString(ias->issuer));
    }
  }
  if (ASN1_OBJECT* policy = TS_TST_INFO_get_policy_id(info); policy != nullptr) {
    char oid[128];
    if (OBJ_obj2txt(oid, sizeof(oid), policy, 1) > 0) out.policy = oid;
  }
  return out;
}

absl::StatusOr<SignedTime> VerifySignedTimeFiles(const std::filesystem::path& tsr,
                                                 const std::filesystem::path& tsa_roots_pem) {
  ASSIGN_OR_RETURN(auto der, ReadFileBounded(tsr, kMaxTimeStampResponse));
  ASSIGN_OR_RETURN(auto roots, ReadFileBounded(tsa_roots_pem, 1 << 20));
  return VerifySignedTime(
      der, std::string_view(reinterpret_cast<const char*>(roots.data()), roots.size()));
}

}  // namespace attest::tuf
