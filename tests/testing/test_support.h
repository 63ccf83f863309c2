// Helpers shared by all tests: the real-vector directory, temporary directories, files and
// running a child process with captured output.
#ifndef TESTS_TESTING_TEST_SUPPORT_H_
#define TESTS_TESTING_TEST_SUPPORT_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace attest::testing {

// ../shared/vectors beside the source tree, or $APPLIANCE_VECTORS; nullopt if absent.
std::optional<std::filesystem::path> VectorsDir();

// Skips the current test with a clear message when the real vectors are not available, and
// otherwise declares `var` as the vectors directory.
#define APPLIANCE_REQUIRE_VECTORS(var)                                                           \
  auto var##_opt = ::attest::testing::VectorsDir();                                              \
  if (!var##_opt) {                                                                              \
    GTEST_SKIP() << "real hardware vectors not found (../shared/vectors or $APPLIANCE_VECTORS)"; \
  }                                                                                              \
  const std::filesystem::path var = *var##_opt

std::vector<uint8_t> ReadFileOrDie(const std::filesystem::path& path);
void WriteFileOrDie(const std::filesystem::path& path, std::span<const uint8_t> data);
void WriteFileOrDie(const std::filesystem::path& path, const std::string& text);

// PEM text of DER certificates, in order.
std::string CertificatesToPem(const std::vector<std::vector<uint8_t>>& ders);

// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class ScopedTempDir {
 public:
  ScopedTempDir();
  ~ScopedTempDir();
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct ProcessResult {
  int exit_code = -1;  // -1: killed by a signal or timed out
  std::string out;
  std::string err;
};

// Runs argv[0] with arguments, no shell, stdin from /dev/null; kills it after timeout_seconds.
ProcessResult RunProcess(const std::vector<std::string>& argv, int timeout_seconds = 60);

// `appliance-release` (the binary at `tool`) with the keys' passphrase in its environment, as an
// operator runs it; the calling test fails if its output shows a private key or the passphrase.
ProcessResult RunReleaseTool(const std::string& tool, const std::vector<std::string>& args,
                             const std::string& passphrase, int timeout_seconds = 60);

// A restricted RSASSA/SHA-256 signing key's marshalled TPMT_PUBLIC, RSA-`bits`, with `modulus`
// as its unique field (empty: a template); `attributes` (TPMA_OBJECT) default to an AK's.
std::vector<uint8_t> RsaSigningTpmt(uint16_t bits, std::span<const uint8_t> modulus,
                                    std::optional<uint32_t> attributes = std::nullopt);
// The same key's template (RSA-2048, unique field empty): what Google's vTPM keeps in NV
// 0x01c10001 for its AK.
std::vector<uint8_t> RsaAkTemplate();

}  // namespace attest::testing

#endif  // TESTS_TESTING_TEST_SUPPORT_H_
