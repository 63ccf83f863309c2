// The key release policy (attest/keyd/policy.h): the documented shape, strictness naming the key,
// truncation at every length, and the checks the key service makes beside VerifyEvidence.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "attest/encoding.h"
#include "attest/keyd/policy.h"
#include "common/openssl_util.h"

namespace attest::keyd {
namespace {

std::span<const uint8_t> View(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

const std::string kConfig = R"({"version": 1})";

nlohmann::json Valid() {
  return {{"version", 1},
          {"model_id", "example-model"},
          {"platforms", {"snp", "vtpm-only"}},
          {"launch_config_sha256", {HexEncode(ossl::Sha256(View(kConfig)))}},
          {"min_release_version", 3},
          {"revoked_releases", {4}}};
}

TEST(ModelPolicy, ParsesTheDocumentedShapeAndRoundTrips) {
  auto p = ParseModelPolicy(View(Valid().dump()));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->model_id, "example-model");
  EXPECT_EQ(p->platforms, (std::set<std::string>{"snp", "vtpm-only"}));
  EXPECT_EQ(*p->min_release_version, 3u);
  EXPECT_EQ(p->revoked_releases, std::set<uint64_t>{4});
  auto again = ParseModelPolicy(View(SerializeModelPolicy(*p)));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->launch_config_sha256, p->launch_config_sha256);

  ReferenceValues ref;
  auto e = ExpectationsFor(*p, ref, {1}, {2}, {3}, {4});
  EXPECT_TRUE(e.allow_vtpm_only);
  EXPECT_TRUE(e.before_container);
  EXPECT_EQ(e.key_request_spki_der, std::vector<uint8_t>{3});
  EXPECT_EQ(e.tls_spki_der, std::vector<uint8_t>{2});
  EXPECT_EQ(*e.min_release_version, 3u);
}

TEST(ModelPolicy, StrictSchemaNamesTheKey) {
  struct Case {
    const char* pointer;
    nlohmann::json value;
    const char* expected;
  };
  for (const Case& c : std::vector<Case>{
           {"/version", 2, "'version' must be 1"},
           {"/colour", "red", "'colour' is not a policy key"},
           {"/model_id", "a b", "'model_id'"},
           {"/platforms", nlohmann::json::array(), "'platforms' must list"},
           {"/platforms", {"sgx"}, "'platforms' must list"},
           {"/launch_config_sha256", nlohmann::json::array(), "'launch_config_sha256' must list"},
           {"/launch_config_sha256", {"abcd"}, "'launch_config_sha256' must list SHA-256"},
           {"/min_release_version", -1, "'min_release_version'"},
           {"/revoked_releases", {"x"}, "'revoked_releases'"},
       }) {
    auto j = Valid();
    j[nlohmann::json::json_pointer(c.pointer)] = c.value;
    auto r = ParseModelPolicy(View(j.dump()));
    ASSERT_FALSE(r.ok()) << c.pointer;
    EXPECT_NE(r.status().message().find(c.expected), std::string::npos)
        << c.pointer << ": " << r.status();
  }
  for (const char* key : {"version", "model_id", "platforms", "launch_config_sha256"}) {
    auto j = Valid();
    j.erase(key);
    auto r = ParseModelPolicy(View(j.dump()));
    ASSERT_FALSE(r.ok()) << key;
    EXPECT_NE(r.status().message().find("is missing"), std::string::npos) << r.status();
  }
  EXPECT_FALSE(ParseModelPolicy(View(std::string(kMaxPolicySize + 1, ' '))).ok());
}

TEST(ModelPolicy, EveryTruncationFails) {
  const std::string text = Valid().dump();
  for (size_t n = 0; n < text.size(); ++n) {
    EXPECT_FALSE(ParseModelPolicy(View(text.substr(0, n))).ok()) << n;
  }
}

TEST(ModelPolicy, LaunchConfigAndPlatformChecksNameWhatDiffers) {
  auto p = ParseModelPolicy(View(Valid().dump()));
  ASSERT_TRUE(p.ok());
  CheckLog log;
  EXPECT_TRUE(CheckLaunchConfig(*p, View(kConfig), log).ok());
  auto other = CheckLaunchConfig(*p, View(kConfig + " "), log);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(log.first_failure()->name, "policy.launch-config");
  EXPECT_NE(log.first_failure()->detail.find("does not list"), std::string::npos);
  VerifiedEvidence v;
  v.platform = "tdx";
  CheckLog log2;
  EXPECT_FALSE(CheckPlatform(*p, v, log2).ok());
  EXPECT_NE(log2.first_failure()->detail.find("'tdx'"), std::string::npos);
  v.platform = "snp";
  EXPECT_TRUE(CheckPlatform(*p, v, log2).ok());
}

}  // namespace
}  // namespace attest::keyd
