// Private to libattest: OpenSSL digests for TPM algorithm ids, fetched once. Passing the legacy
// EVP_sha256() handles makes OpenSSL 3.0 fetch the implementation again on every digest init.
#ifndef ATTEST_TPM_MD_INTERNAL_H_
#define ATTEST_TPM_MD_INTERNAL_H_

#include <openssl/evp.h>

#include <cstdint>

namespace attest::tpm {

// nullptr for an algorithm this library does not compute.
const EVP_MD* TpmAlgMd(uint16_t alg);

}  // namespace attest::tpm

#endif  // ATTEST_TPM_MD_INTERNAL_H_
