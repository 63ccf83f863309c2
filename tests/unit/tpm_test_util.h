// Shared helpers for the TPM, event log and Azure tests.
#ifndef TESTS_UNIT_TPM_TEST_UTIL_H_
#define TESTS_UNIT_TPM_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "attest/encoding.h"
#include "attest/tpm/hash_alg.h"
#include "test_support.h"

namespace attest::tpm {

inline std::string ReadText(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The GCE quote's PCR values, per bank, from the vector's quote_facts.json.
inline PcrBanks GcePcrs(const std::filesystem::path& vectors) {
  auto j =
      nlohmann::json::parse(ReadText(vectors / "tpm/quote-gce-cos85-nonce9009/quote_facts.json"));
  nlohmann::json banks;
  for (auto& [bank, q] : j["quotes"].items()) banks[bank] = q["pcrs"];
  auto pcrs = ParsePcrJson(banks.dump(), std::nullopt);
  EXPECT_TRUE(pcrs.ok()) << pcrs.status();
  return pcrs.ok() ? *pcrs : PcrBanks{};
}

inline const char kAzureNonce[] =
    "0218488bae25d2509232bf676f1a66a30d7372add909109b36016ef136f2938ca05475f8b46094de6b64270ea35d95"
    "0f";

}  // namespace attest::tpm

#endif  // TESTS_UNIT_TPM_TEST_UTIL_H_
