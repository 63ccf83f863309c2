// libFuzzer target: RFC 3161 time-stamp responses (attest/tuf/signed_time.h), which a coordinator
// supplies to `appliance-verify release` and `appliance-update`. The certificates the token carries
// are offered as the trusted TSA certificates, so that inputs derived from the seeds get past the
// parser into the signature and chain checks.
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/ts.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "attest/tuf/signed_time.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string pem;
  const unsigned char* p = data;
  if (TS_RESP* resp = d2i_TS_RESP(nullptr, &p, static_cast<long>(size)); resp != nullptr) {
    PKCS7* token = TS_RESP_get_token(resp);
    if (token != nullptr && PKCS7_type_is_signed(token) && token->d.sign != nullptr) {
      STACK_OF(X509)* certs = token->d.sign->cert;
      BIO* bio = BIO_new(BIO_s_mem());
      for (int i = 0; certs != nullptr && i < sk_X509_num(certs); ++i)
        PEM_write_bio_X509(bio, sk_X509_value(certs, i));
      char* text = nullptr;
      const long n = BIO_get_mem_data(bio, &text);
      if (n > 0) pem.assign(text, static_cast<size_t>(n));
      BIO_free(bio);
    }
    TS_RESP_free(resp);
  }
  (void)attest::tuf::VerifySignedTime(std::span<const uint8_t>(data, size), pem);
  return 0;
}
