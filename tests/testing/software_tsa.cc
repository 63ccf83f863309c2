#include "software_tsa.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ts.h>
#include <openssl/x509v3.h>

#include <stdexcept>

#include "common/openssl_util.h"

namespace attest::testing {
namespace {

using ossl::EvpPkeyPtr;
using ossl::X509Ptr;

void Must(bool ok, const char* what) {
  if (!ok)
    throw std::runtime_error(std::string("software TSA: ") + what + ": " + ossl::LastError());
}

EvpPkeyPtr NewKey() {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  Must(key != nullptr, "EVP_EC_gen");
  return key;
}

void AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  Must(ext != nullptr && X509_add_ext(cert, ext, -1) == 1, "extension");
  X509_EXTENSION_free(ext);
}

X509Ptr MakeCert(const char* cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key, long serial,
                 absl::Time from, absl::Time to, bool ca) {
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Software TSA (tests)"), -1, -1,
                             0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), ossl::ToTimeT(from));
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), ossl::ToTimeT(to));
  X509_set_pubkey(cert.get(), key);
  X509* signer = issuer ? issuer : cert.get();
  AddExt(cert.get(), signer, NID_subject_key_identifier, "hash");
  if (ca) {
    AddExt(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    AddExt(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExt(cert.get(), signer, NID_authority_key_identifier, "keyid");
    AddExt(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    AddExt(cert.get(), signer, NID_key_usage, "critical,digitalSignature");
    AddExt(cert.get(), signer, NID_ext_key_usage, "critical,timeStamping");
  }
  Must(X509_sign(cert.get(), issuer_key, EVP_sha256()) > 0, "X509_sign");
  return cert;
}

struct StampTime {
  absl::Time time;
};

int TimeCallback(TS_RESP_CTX*, void* data, long* sec, long* usec) {
  const absl::Time t = static_cast<StampTime*>(data)->time;
  *sec = static_cast<long>(absl::ToUnixSeconds(t));
  *usec = 0;
  return 1;
}

}  // namespace

struct SoftwareTsa::Impl {
  EvpPkeyPtr ca_key, tsa_key;
  X509Ptr ca, tsa;
};

SoftwareTsa::SoftwareTsa(absl::Time valid_from, absl::Time valid_to)
    : impl_(std::make_unique<Impl>()) {
  impl_->ca_key = NewKey();
  impl_->tsa_key = NewKey();
  impl_->ca = MakeCert("Software TSA root", impl_->ca_key.get(), nullptr, impl_->ca_key.get(), 1,
                       valid_from - absl::Hours(24), valid_to + absl::Hours(24), true);
  impl_->tsa = MakeCert("Software TSA", impl_->tsa_key.get(), impl_->ca.get(), impl_->ca_key.get(),
                        2, valid_from, valid_to, false);
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), impl_->ca.get());
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  root_pem_.assign(data, static_cast<size_t>(n));
}

SoftwareTsa::~SoftwareTsa() = default;

std::vector<uint8_t> SoftwareTsa::Stamp(absl::Time time, const std::string& data,
                                        bool include_cert) const {
  // The request: SHA-256 of `data`, with or without the TSA's certificate.
  std::unique_ptr<TS_REQ, ossl::Deleter<TS_REQ_free>> req(TS_REQ_new());
  TS_REQ_set_version(req.get(), 1);
  std::unique_ptr<TS_MSG_IMPRINT, ossl::Deleter<TS_MSG_IMPRINT_free>> imprint(TS_MSG_IMPRINT_new());
  std::unique_ptr<X509_ALGOR, ossl::Deleter<X509_ALGOR_free>> alg(X509_ALGOR_new());
  X509_ALGOR_set_md(alg.get(), EVP_sha256());
  TS_MSG_IMPRINT_set_algo(imprint.get(), alg.get());
  const auto digest =
      ossl::Sha256(std::span(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
  TS_MSG_IMPRINT_set_msg(imprint.get(), const_cast<unsigned char*>(digest.data()),
                         static_cast<int>(digest.size()));
  TS_REQ_set_msg_imprint(req.get(), imprint.get());
  TS_REQ_set_cert_req(req.get(), include_cert ? 1 : 0);
  ossl::BioPtr req_bio(BIO_new(BIO_s_mem()));
  Must(i2d_TS_REQ_bio(req_bio.get(), req.get()) == 1, "i2d_TS_REQ_bio");

  std::unique_ptr<TS_RESP_CTX, ossl::Deleter<TS_RESP_CTX_free>> ctx(TS_RESP_CTX_new());
  Must(TS_RESP_CTX_set_signer_cert(ctx.get(), impl_->tsa.get()) == 1, "signer cert");
  Must(TS_RESP_CTX_set_signer_key(ctx.get(), impl_->tsa_key.get()) == 1, "signer key");
  Must(TS_RESP_CTX_set_signer_digest(ctx.get(), EVP_sha256()) == 1, "signer digest");
  ossl::Asn1ObjectPtr policy(OBJ_txt2obj("1.3.6.1.4.1.99999.1", 1));
  Must(TS_RESP_CTX_set_def_policy(ctx.get(), policy.get()) == 1, "policy");
  Must(TS_RESP_CTX_add_md(ctx.get(), EVP_sha256()) == 1, "md");
  StampTime when{time};
  TS_RESP_CTX_set_time_cb(ctx.get(), TimeCallback, &when);
  std::unique_ptr<TS_RESP, ossl::Deleter<TS_RESP_free>> resp(
      TS_RESP_create_response(ctx.get(), req_bio.get()));
  Must(resp != nullptr, "TS_RESP_create_response");
  unsigned char* der = nullptr;
  const int n = i2d_TS_RESP(resp.get(), &der);
  Must(n > 0, "i2d_TS_RESP");
  std::vector<uint8_t> out(der, der + n);
  OPENSSL_free(der);
  return out;
}

}  // namespace attest::testing
