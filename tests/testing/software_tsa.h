// A software RFC 3161 time-stamping authority for tests (the signed time of issue 8 item 6): an EC
// P-256 root CA and a TSA certificate (extended key usage timeStamping, critical) it issues, and
// time-stamp responses with any genTime, made by OpenSSL's TS_RESP_CTX. Clearly not a real TSA:
// its keys live in this process.
#ifndef TESTS_TESTING_SOFTWARE_TSA_H_
#define TESTS_TESTING_SOFTWARE_TSA_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace attest::testing {

class SoftwareTsa {
 public:
  // `valid_from`/`valid_to`: the TSA certificate's validity (the CA's spans it).
  explicit SoftwareTsa(absl::Time valid_from = absl::Now() - absl::Hours(24 * 365),
                       absl::Time valid_to = absl::Now() + absl::Hours(24 * 365));
  ~SoftwareTsa();
  const std::string& root_pem() const { return root_pem_; }
  // A DER TimeStampResp (status granted) stamping SHA-256 of `data` at `time`; with
  // `include_cert` the token carries the TSA certificate.
  std::vector<uint8_t> Stamp(absl::Time time, const std::string& data = "appliance",
                             bool include_cert = true) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string root_pem_;
};

}  // namespace attest::testing

#endif  // TESTS_TESTING_SOFTWARE_TSA_H_
