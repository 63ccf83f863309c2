// A test stand-in for Azure's Instance Metadata Service on 127.0.0.1 (TEST ONLY; issue 11):
// GET /metadata/THIM/amd/certification (needs "Metadata: true", as IMDS does) answers with the
// given VCEK chain as THIM's JSON; POST /acc/tdquote {"report": base64url(TDREPORT)} answers with
// {"quote": base64url(...)} from `td_quote` (the software TDX signer in tests). Anything else: 404.
#ifndef TESTS_TESTING_FAKE_IMDS_H_
#define TESTS_TESTING_FAKE_IMDS_H_

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace attest::testing {

class FakeImds {
 public:
  struct Options {
    std::vector<std::vector<uint8_t>> vcek_chain;  // VCEK, ASK, ARK (DER)
    std::function<absl::StatusOr<std::vector<uint8_t>>(std::span<const uint8_t>)> td_quote;
  };
  explicit FakeImds(Options options);
  ~FakeImds();
  FakeImds(const FakeImds&) = delete;
  FakeImds& operator=(const FakeImds&) = delete;
  std::string url() const;    // http://127.0.0.1:PORT
  int requests() const;       // every request answered
  int thim_requests() const;  // GET /metadata/THIM/amd/certification

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace attest::testing

#endif  // TESTS_TESTING_FAKE_IMDS_H_
