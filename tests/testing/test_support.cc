#include "test_support.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/wait.h>
#include <tss2/tss2_mu.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "common/openssl_util.h"

namespace attest::testing {

std::optional<std::filesystem::path> VectorsDir() {
  std::filesystem::path dir;
  if (const char* env = std::getenv("APPLIANCE_VECTORS"); env != nullptr && *env != '\0') {
    dir = env;
  } else {
    dir = std::filesystem::path(APPLIANCE_SOURCE_DIR) / ".." / "shared" / "vectors";
  }
  if (!std::filesystem::is_directory(dir / "snp")) return std::nullopt;
  return std::filesystem::weakly_canonical(dir);
}

std::vector<uint8_t> ReadFileOrDie(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void WriteFileOrDie(const std::filesystem::path& path, std::span<const uint8_t> data) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

void WriteFileOrDie(const std::filesystem::path& path, const std::string& text) {
  WriteFileOrDie(
      path, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

std::string CertificatesToPem(const std::vector<std::vector<uint8_t>>& ders) {
  auto pem = ossl::CertificatesToPem(ders);
  if (!pem.ok()) throw std::runtime_error("CertificatesToPem: " + pem.status().ToString());
  return *pem;
}

ScopedTempDir::ScopedTempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "appliance-test-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

ScopedTempDir::~ScopedTempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

ProcessResult RunProcess(const std::vector<std::string>& argv, int timeout_seconds) {
  ScopedTempDir dir;
  auto out_path = dir.path() / "stdout";
  auto err_path = dir.path() / "stderr";
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  ProcessResult result;
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      status = -1;
      break;
    }
    // Short polls: benchmarks time whole processes with this, and a coarse poll would round them.
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  if (status != -1 && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  auto slurp = [](const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  result.out = slurp(out_path);
  result.err = slurp(err_path);
  return result;
}

ProcessResult RunReleaseTool(const std::string& tool, const std::vector<std::string>& args,
                             const std::string& passphrase, int timeout_seconds) {
  std::vector<std::string> argv = {"/usr/bin/env", "APPLIANCE_RELEASE_PASSPHRASE=" + passphrase,
                                   tool};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessResult r = RunProcess(argv, timeout_seconds);
  for (const std::string* s : {&r.out, &r.err}) {
    EXPECT_EQ(s->find("PRIVATE KEY"), std::string::npos) << *s;
    EXPECT_EQ(s->find(passphrase), std::string::npos) << *s;
  }
  return r;
}

std::vector<uint8_t> RsaSigningTpmt(uint16_t bits, std::span<const uint8_t> modulus,
                                    std::optional<uint32_t> attributes) {
  TPMT_PUBLIC pub{};
  pub.type = TPM2_ALG_RSA;
  pub.nameAlg = TPM2_ALG_SHA256;
  pub.objectAttributes = attributes.value_or(
      TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
      TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT);
  pub.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
  pub.parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
  pub.parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
  pub.parameters.rsaDetail.keyBits = bits;
  if (modulus.size() > sizeof(pub.unique.rsa.buffer)) {
    throw std::invalid_argument("RsaSigningTpmt: modulus too long");
  }
  pub.unique.rsa.size = static_cast<UINT16>(modulus.size());
  std::copy(modulus.begin(), modulus.end(), pub.unique.rsa.buffer);
  std::vector<uint8_t> out(sizeof(TPMT_PUBLIC));
  size_t off = 0;
  if (Tss2_MU_TPMT_PUBLIC_Marshal(&pub, out.data(), out.size(), &off) != TSS2_RC_SUCCESS) {
    throw std::runtime_error("RsaSigningTpmt: marshal failed");
  }
  out.resize(off);
  return out;
}

std::vector<uint8_t> RsaAkTemplate() { return RsaSigningTpmt(2048, {}); }

}  // namespace attest::testing
