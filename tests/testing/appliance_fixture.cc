#include "appliance_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "nlohmann/json.hpp"
#include "test_support.h"

namespace attest::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int LoopbackSocket(int port, bool bind_it) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto* addr = reinterpret_cast<sockaddr*>(&a);
  if ((bind_it ? bind(fd, addr, sizeof(a)) : connect(fd, addr, sizeof(a))) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

namespace {

bool PortFree(int port) {
  int fd = LoopbackSocket(port, /*bind_it=*/true);
  if (fd >= 0) close(fd);
  return fd >= 0;
}

bool CanConnect(int port) {
  int fd = LoopbackSocket(port, /*bind_it=*/false);
  if (fd >= 0) close(fd);
  return fd >= 0;
}

std::string Pem(EVP_PKEY* key) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* d = nullptr;
  long n = BIO_get_mem_data(b, &d);  // NOLINT(runtime/int)
  std::string s(d, static_cast<size_t>(n));
  BIO_free(b);
  return s;
}

std::string Pem(X509* cert) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, cert);
  char* d = nullptr;
  long n = BIO_get_mem_data(b, &d);  // NOLINT(runtime/int)
  std::string s(d, static_cast<size_t>(n));
  BIO_free(b);
  return s;
}

X509* MakeCert(const std::string& cn, const std::string& org, EVP_PKEY* key, X509* issuer,
               EVP_PKEY* issuer_key, bool ca) {
  X509* c = X509_new();
  X509_set_version(c, 2);
  uint64_t serial = 0;
  RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof(serial));
  ASN1_INTEGER_set_uint64(X509_get_serialNumber(c), serial >> 1);
  X509_gmtime_adj(X509_getm_notBefore(c), -3600);
  X509_gmtime_adj(X509_getm_notAfter(c), 30L * 24 * 3600);
  X509_NAME* name = X509_get_subject_name(c);
  if (!org.empty()) {
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(org.c_str()), -1, -1, 0);
  }
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name);
  X509_set_pubkey(c, key);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer : c, c, nullptr, nullptr, 0);
  auto add = [&](int nid, const char* value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    X509_add_ext(c, ext, -1);
    X509_EXTENSION_free(ext);
  };
  add(NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add(NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  if (!ca) add(NID_ext_key_usage, "clientAuth");
  X509_sign(c, issuer_key, EVP_sha256());
  return c;
}

}  // namespace

fs::path BinDir() { return APPLIANCE_BIN_DIR; }
fs::path ModelDir() { return APPLIANCE_MODEL_DIR; }

std::string ExampleModelDigest() {
  std::string d = Slurp(ModelDir() / "digest");
  while (!d.empty() && (d.back() == '\n' || d.back() == ' ')) d.pop_back();
  return d;
}

int PickFreePort(bool pair) {
  static std::mt19937 rng(static_cast<unsigned>(getpid()) ^ static_cast<unsigned>(time(nullptr)));
  for (int i = 0; i < 200; ++i) {
    int p = 20000 + static_cast<int>(rng() % 30000);
    if (PortFree(p) && (!pair || PortFree(p + 1))) return p;
  }
  throw std::runtime_error("no free port");
}

BackgroundProcess::BackgroundProcess(const std::vector<std::string>& argv, const fs::path& log,
                                     const std::map<std::string, std::string>& env) {
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int in = open("/dev/null", O_RDONLY);
    int out = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(in, 0);
    dup2(out, 1);
    dup2(out, 2);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
}

BackgroundProcess::~BackgroundProcess() { Stop(); }

bool BackgroundProcess::Running() {
  if (exit_code_) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return false;
  }
  return true;
}

int BackgroundProcess::Stop(int timeout_ms) {
  if (exit_code_ || pid_ <= 0) return exit_code_.value_or(-1);
  kill(pid_, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  int status = 0;
  for (;;) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) break;
    if (Clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return *exit_code_;
}

Swtpm::Swtpm(const fs::path& dir) {
  fs::create_directories(dir / "tpmstate");
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = PickFreePort(/*pair=*/true);
    proc_ = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{
            "swtpm", "socket", "--tpm2", "--server",
            "type=tcp,port=" + std::to_string(port_) + ",bindaddr=127.0.0.1", "--ctrl",
            "type=tcp,port=" + std::to_string(port_ + 1) + ",bindaddr=127.0.0.1", "--flags",
            "not-need-init,startup-clear", "--tpmstate", "dir=" + (dir / "tpmstate").string()},
        dir / "swtpm.log");
    for (int i = 0; i < 200 && proc_->Running(); ++i) {
      if (CanConnect(port_ + 1)) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    proc_->Stop();
  }
  throw std::runtime_error("swtpm did not start: " + Slurp(dir / "swtpm.log"));
}

std::string Swtpm::tcti() const { return "swtpm:host=127.0.0.1,port=" + std::to_string(port_); }

struct TestPki::Impl {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  ~Impl() {
    EVP_PKEY_free(key);
    X509_free(cert);
  }
};

TestPki::TestPki(const fs::path& dir, const std::string& ca_name)
    : impl_(std::make_unique<Impl>()), dir_(dir) {
  fs::create_directories(dir);
  impl_->key = EVP_EC_gen("P-256");
  impl_->cert = MakeCert(ca_name, "", impl_->key, nullptr, impl_->key, true);
  ca_pem_ = Pem(impl_->cert);
}

TestPki::~TestPki() = default;

IssuedCert TestPki::Issue(const std::string& cn, const std::string& name) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = MakeCert(cn, "Competition", key, impl_->cert, impl_->key, false);
  IssuedCert out{Pem(cert), Pem(key), dir_ / (name + ".pem"), dir_ / (name + ".key")};
  WriteFileOrDie(out.cert_path, out.cert_pem);
  WriteFileOrDie(out.key_path, out.key_pem);
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

std::vector<uint8_t> TestPki::IssueForKey(const std::string& cn,
                                          const std::vector<uint8_t>& spki_der) {
  const unsigned char* p = spki_der.data();
  EVP_PKEY* key = d2i_PUBKEY(nullptr, &p, static_cast<long>(spki_der.size()));
  if (key == nullptr) throw std::runtime_error("IssueForKey: not a SubjectPublicKeyInfo");
  X509* cert = MakeCert(cn, "Competition", key, impl_->cert, impl_->key, false);
  int n = i2d_X509(cert, nullptr);
  std::vector<uint8_t> der(static_cast<size_t>(n));
  unsigned char* out = der.data();
  i2d_X509(cert, &out);
  X509_free(cert);
  EVP_PKEY_free(key);
  return der;
}

std::string MakeLaunchConfig(const LaunchConfigSpec& s) {
  nlohmann::json allowed = nlohmann::json::array();
  for (const auto& a : s.allowed_subjects) allowed.push_back({{"subject", a}});
  nlohmann::json j = {
      {"version", 1},
      {"listen", s.listen},
      {"client_ca_pem", s.ca_pem},
      {"allowed_clients", allowed},
      {"limits", {{"requests_per_second", s.rps}, {"burst", s.burst}, {"query_budget", s.budget}}},
      {"container",
       {{"image", s.image.empty() ? (ModelDir() / "example-model.oci.tar").string() : s.image},
        {"runner", s.runner}}},
      {"platform", s.platform}};
  if (!s.tcti.empty()) j["tpm"] = {{"tcti", s.tcti}, {"trust", s.trust}};
  return j.dump(2) + "\n";
}

SupervisorProcess::SupervisorProcess(const fs::path& dir, const std::string& config_json,
                                     const std::vector<std::string>& extra_args,
                                     const std::map<std::string, std::string>& env)
    : dir_(dir),
      config_path_(dir / "launch-config.json"),
      state_dir_(dir / "state"),
      log_path_(dir / "supervisor.log") {
  fs::create_directories(dir);
  WriteFileOrDie(config_path_, config_json);
  std::vector<std::string> argv = {(BinDir() / "appliance-supervisor").string(), "--config",
                                   config_path_.string(), "--state-dir", state_dir_.string()};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  // Debugging aid: APPLIANCE_SUPERVISOR_WRAPPER="gdb -batch -ex run -ex bt --args" (split on
  // spaces).
  if (const char* wrapper = getenv("APPLIANCE_SUPERVISOR_WRAPPER"); wrapper && *wrapper) {
    std::vector<std::string> w;
    std::stringstream ss(wrapper);
    for (std::string part; ss >> part;) w.push_back(part);
    argv.insert(argv.begin(), w.begin(), w.end());
  }
  auto all_env = env;
  all_env["APPLIANCE_LOG_STDERR"] = "1";
  proc_ = std::make_unique<BackgroundProcess>(argv, log_path_, all_env);
}

SupervisorProcess::~SupervisorProcess() { proc_->Stop(); }

bool SupervisorProcess::WaitForLog(const std::string& text, int count, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    const std::string log = Slurp(log_path_);
    int n = 0;
    for (size_t pos = log.find(text); pos != std::string::npos; pos = log.find(text, pos + 1)) ++n;
    if (n >= count) return true;
    if (!proc_->Running()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

bool SupervisorProcess::WaitReady(int timeout_ms) {
  return WaitForLog("appliance-supervisor: ready:", 1, timeout_ms);
}

std::string SupervisorProcess::target() const {
  std::string t = Slurp(state_dir_ / "listen");
  while (!t.empty() && t.back() == '\n') t.pop_back();
  return t;
}

std::string SupervisorProcess::log() const { return Slurp(log_path_); }

namespace {

std::string HexDigest(const EVP_MD* md_type, const std::string& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &n, md_type, nullptr);
  std::string hex;
  for (unsigned i = 0; i < n; ++i) {
    char b[3];
    snprintf(b, sizeof(b), "%02x", md[i]);
    hex += b;
  }
  return hex;
}

}  // namespace

ProcessResult RunKeyd(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/env",
                                   std::string("APPLIANCE_KEYD_PASSPHRASE=") + kKeydTestPassphrase,
                                   (BinDir() / "appliance-keyd").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv, 120);
}

fs::path SealExampleModel(const fs::path& work_dir, const std::string& model_id,
                          const fs::path& out_dir) {
  const fs::path key = work_dir / (model_id + ".key.json");
  auto r =
      RunProcess({"/usr/bin/env", std::string("APPLIANCE_KEYD_PASSPHRASE=") + kKeydTestPassphrase,
                  (BinDir() / "appliance-release").string(), "seal-model", "--image",
                  (ModelDir() / "oci").string(), "--output", out_dir.string(), "--model-id",
                  model_id, "--key-out", key.string()});
  if (r.exit_code != 0) throw std::runtime_error("seal-model: " + r.out + r.err);
  return key;
}

std::string MakeSealedLaunchConfig(const LaunchConfigSpec& spec, const fs::path& sealed_dir,
                                   const std::string& model_id, const std::string& key_service,
                                   const std::string& key_service_spki_sha256) {
  nlohmann::json j = nlohmann::json::parse(MakeLaunchConfig(spec));
  j["container"].erase("image");
  j["sealed_model"] = {{"path", sealed_dir.string()},
                       {"model_id", model_id},
                       {"key_service", key_service},
                       {"key_service_spki_sha256", key_service_spki_sha256}};
  return j.dump(2) + "\n";
}

ProcessResult AddKeydModel(const fs::path& store, const fs::path& work_dir,
                           const std::string& model_id, const fs::path& key_file,
                           const std::string& config, const std::string& reference_json,
                           const nlohmann::json& policy_extra) {
  const std::string hex = HexDigest(EVP_sha256(), config);
  nlohmann::json policy = {{"version", 1},
                           {"model_id", model_id},
                           {"platforms", {"snp"}},
                           {"launch_config_sha256", {hex}}};
  policy.update(policy_extra);
  const fs::path p = work_dir / (model_id + ".policy.json");
  const fs::path ref = work_dir / (model_id + ".reference.json");
  WriteFileOrDie(p, policy.dump(2));
  WriteFileOrDie(ref, reference_json);
  return RunKeyd({"add-model", "--store", store.string(), "--key", key_file.string(), "--policy",
                  p.string(), "--reference", ref.string(), "--replace"});
}

std::string MakeReferenceValues(const std::vector<std::string>& container_digests,
                                bool allow_debug) {
  // The software platforms' launch digest / MRTD: SHA-384 of the supervisor executable.
  const std::string hex = HexDigest(EVP_sha384(), Slurp(BinDir() / "appliance-supervisor"));
  nlohmann::json j = {{"version", 1},
                      {"snp", {{"measurements", {hex}}, {"allow_debug", allow_debug}}},
                      {"tdx", {{"mrtd", {hex}}, {"allow_debug", allow_debug}}},
                      {"container_digests", container_digests}};
  return j.dump(2) + "\n";
}

namespace {

size_t CountEntries(const fs::path& dir) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    ++n;
  }
  return n;
}

}  // namespace

size_t CountFds(pid_t pid) { return CountEntries("/proc/" + std::to_string(pid) + "/fd"); }
size_t CountThreads(pid_t pid) { return CountEntries("/proc/" + std::to_string(pid) + "/task"); }

}  // namespace attest::testing
