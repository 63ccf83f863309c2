// Shared helpers for the SNP verifier tests.
#ifndef TESTS_UNIT_SNP_TEST_UTIL_H_
#define TESTS_UNIT_SNP_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include "attest/check.h"
#include "attest/files.h"
#include "attest/snp/verify.h"
#include "attest/status.h"
#include "test_support.h"

namespace attest::snp {

// Certificates from a file: a DER VEK, or a PEM bundle whose first certificate is the VEK.
inline Certificates CertsFromFile(const std::filesystem::path& path) {
  auto bytes = testing::ReadFileOrDie(path);
  auto certs = ParseCertificates(bytes, path.string());
  EXPECT_TRUE(certs.ok()) << certs.status();
  Certificates out;
  if (!certs.ok()) return out;
  out.vek_der = certs->front();
  out.chain_der.assign(certs->begin() + 1, certs->end());
  return out;
}

inline std::vector<std::vector<uint8_t>> ChainFromFile(const std::filesystem::path& path) {
  auto certs = ParseCertificates(testing::ReadFileOrDie(path), path.string());
  EXPECT_TRUE(certs.ok()) << certs.status();
  return certs.ok() ? *certs : std::vector<std::vector<uint8_t>>{};
}

inline bool Ran(const CheckLog& log, absl::string_view name) {
  return std::any_of(log.checks().begin(), log.checks().end(),
                     [&](const Check& c) { return c.name == name; });
}

// Asserts that `result` failed verification at check `name` and that the detail contains `needle`.
template <typename T>
void ExpectFailedCheck(const absl::StatusOr<T>& result, const CheckLog& log, absl::string_view name,
                       absl::string_view needle = "") {
  ASSERT_FALSE(result.ok()) << "expected failure at " << name;
  EXPECT_TRUE(IsVerificationFailure(result.status())) << result.status();
  ASSERT_NE(log.first_failure(), nullptr) << result.status();
  EXPECT_EQ(log.first_failure()->name, name) << result.status();
  EXPECT_NE(result.status().message().find(std::string(name)), absl::string_view::npos);
  EXPECT_NE(result.status().message().find(std::string(needle)), absl::string_view::npos)
      << result.status();
}

}  // namespace attest::snp

#endif  // TESTS_UNIT_SNP_TEST_UTIL_H_
