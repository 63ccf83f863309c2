// The launch configuration parser: a valid file, strictness (every required key, unknown keys,
// types, ranges), digests over the exact bytes, and truncation at every length.
#include "attest/launch_config.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <nlohmann/json.hpp>

#include "attest/encoding.h"
#include "tdx_signer.h"
#include "test_support.h"

namespace attest {
namespace {

nlohmann::json Valid() {
  static auto* signer = testing::SoftwareTdxSigner::Create()->release();  // an EC test root
  return {
      {"version", 1},
      {"listen", "127.0.0.1:0"},
      {"client_ca_pem", testing::CertificatesToPem({signer->root_der()})},
      {"allowed_clients",
       {{{"subject", "CN=coordinator,O=Competition"}}, {{"spki_sha256", std::string(64, 'a')}}}},
      {"limits", {{"requests_per_second", 50.5}, {"burst", 10}, {"query_budget", 100000}}},
      {"container",
       {{"image", "/var/lib/appliance/model.oci"},
        {"expected_digest", "sha256:" + std::string(64, '0')}}},
      {"platform", "software-snp"},
      {"tpm", {{"tcti", "swtpm:host=127.0.0.1,port=2321"}, {"trust", "host"}}},
  };
}

absl::StatusOr<LaunchConfig> Parse(const std::string& text) {
  return ParseLaunchConfig(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

TEST(LaunchConfig, ValidFileParsesAndIsDigestedAsBytes) {
  std::string text = Valid().dump(2);
  auto c = Parse(text);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen, "127.0.0.1:0");
  EXPECT_EQ(c->client_ca_der.size(), 1u);
  ASSERT_EQ(c->allowed_clients.size(), 2u);
  EXPECT_EQ(*c->allowed_clients[0].subject, "CN=coordinator,O=Competition");
  EXPECT_TRUE(c->allowed_clients[1].spki_sha256.has_value());
  EXPECT_DOUBLE_EQ(c->requests_per_second, 50.5);
  EXPECT_EQ(c->burst, 10u);
  EXPECT_EQ(c->query_budget, 100000u);
  EXPECT_TRUE(c->container_digest.has_value());
  EXPECT_EQ(c->tpm_trust, "host");
  std::array<uint8_t, 32> d256{};
  SHA256(reinterpret_cast<const uint8_t*>(text.data()), text.size(), d256.data());
  EXPECT_EQ(c->sha256, d256);
  // Same meaning, other bytes: another digest (the measurement is of the bytes).
  auto compact = Parse(Valid().dump());
  ASSERT_TRUE(compact.ok());
  EXPECT_NE(compact->sha256, c->sha256);
  EXPECT_NE(compact->sha384, c->sha384);
}

TEST(LaunchConfig, StrictSchemaNamesTheKey) {
  for (const char* key : {"version", "listen", "client_ca_pem", "allowed_clients", "limits",
                          "container", "platform", "tpm"}) {
    auto j = Valid();
    j.erase(key);
    auto r = Parse(j.dump());
    ASSERT_FALSE(r.ok()) << key;
    EXPECT_NE(r.status().message().find(std::string("'") + key + "' is required"),
              std::string::npos)
        << r.status();
  }
  struct Case {
    const char* pointer;
    nlohmann::json value;
    const char* expected;
  };
  for (const Case& c : std::vector<Case>{
           {"/version", 2, "'version' must be between 1 and 1"},
           {"/extra", true, "'extra' is not a known key"},
           {"/listen", "localhost", "'listen' must be host:port"},
           {"/listen", "127.0.0.1:70000", "'listen' must be host:port"},
           {"/client_ca_pem", "not pem", "'client_ca_pem' is not PEM"},
           {"/allowed_clients", nlohmann::json::array(), "'allowed_clients' must be a list"},
           {"/allowed_clients/0", nlohmann::json::object(), "needs 'subject' or 'spki_sha256'"},
           {"/allowed_clients/1/spki_sha256", "abc", "must be 64 hex digits"},
           {"/limits/requests_per_second", 0, "'limits.requests_per_second' must be a number"},
           {"/limits/burst", -1, "'limits.burst' must be a non-negative integer"},
           {"/limits/burst", 0, "'limits.burst' must be between 1"},
           {"/limits/colour", "red", "'limits.colour' is not a known key"},
           {"/container/expected_digest", std::string(64, '0'), "must start with 'sha256:'"},
           {"/platform", "sgx", "'platform' has an unknown value 'sgx'"},
           {"/tpm/trust", "maybe", "'tpm.trust' has an unknown value"},
           {"/tpm/tcti", 5, "'tpm.tcti' must be a string"},
       }) {
    auto j = Valid();
    j[nlohmann::json::json_pointer(c.pointer)] = c.value;
    auto r = Parse(j.dump());
    ASSERT_FALSE(r.ok()) << c.pointer;
    EXPECT_NE(r.status().message().find(c.expected), std::string::npos)
        << c.pointer << ": " << r.status();
  }
}

TEST(LaunchConfig, SealedModelReplacesTheContainerImage) {
  auto j = Valid();
  j["container"].erase("image");
  j["sealed_model"] = {{"path", "/var/lib/appliance/model.sealed"},
                       {"model_id", "example-model:v1"},
                       {"key_service", "keys.example:7443"},
                       {"key_service_spki_sha256", std::string(64, 'c')}};
  auto c = Parse(j.dump());
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->sealed_model.has_value());
  EXPECT_EQ(c->sealed_model->model_id, "example-model:v1");
  EXPECT_EQ(c->sealed_model->key_service, "keys.example:7443");
  EXPECT_EQ(c->sealed_model->key_service_spki_sha256[0], 0xcc);
  EXPECT_TRUE(c->container_image.empty());
  struct Case {
    const char* pointer;
    nlohmann::json value;
    const char* expected;
  };
  for (const Case& c : std::vector<Case>{
           {"/container/image", "/x.oci", "'container.image' must be absent with sealed_model"},
           {"/sealed_model/model_id", "a b", "'sealed_model.model_id' must"},
           {"/sealed_model/model_id", "", "'sealed_model.model_id' must"},
           {"/sealed_model/key_service", "keys.example", "'sealed_model.key_service' must be"},
           {"/sealed_model/key_service_spki_sha256", "00", "must be 64 hex digits"},
           {"/sealed_model/extra", 1, "'sealed_model.extra' is not a known key"},
       }) {
    auto k = j;
    k[nlohmann::json::json_pointer(c.pointer)] = c.value;
    auto r = Parse(k.dump());
    ASSERT_FALSE(r.ok()) << c.pointer;
    EXPECT_NE(r.status().message().find(c.expected), std::string::npos)
        << c.pointer << ": " << r.status();
  }
  auto missing = j;
  missing["sealed_model"].erase("key_service_spki_sha256");
  EXPECT_FALSE(Parse(missing.dump()).ok());
  auto neither = j;
  neither.erase("sealed_model");
  auto r = Parse(neither.dump());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'container.image' is required"), std::string::npos);
}

TEST(LaunchConfig, TruncationAndSizeLimit) {
  std::string text = Valid().dump();
  for (size_t n = 0; n < text.size(); ++n) {
    EXPECT_FALSE(Parse(text.substr(0, n)).ok()) << n;
  }
  std::string huge(kMaxLaunchConfigSize + 1, ' ');
  auto r = Parse(huge);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("at most"), std::string::npos);
}

}  // namespace
}  // namespace attest
