// Integration-test parts (label `integration`): a real swtpm on free loopback ports, a test PKI
// for coordinator client certificates, launch configurations, and appliance-supervisor started as
// a real process. Everything started here is stopped by its destructor.
#ifndef TESTS_TESTING_APPLIANCE_FIXTURE_H_
#define TESTS_TESTING_APPLIANCE_FIXTURE_H_

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "test_support.h"

namespace attest::testing {

std::filesystem::path BinDir();    // build/bin
std::filesystem::path ModelDir();  // build/example-model (weights, oci/, archive, digest)
std::string ExampleModelDigest();  // "sha256:…" of the packed example model

// A TCP socket to or on 127.0.0.1:port: bound (`bind_it`) or connected; -1 when that fails.
int LoopbackSocket(int port, bool bind_it);

// A TCP port on 127.0.0.1 that was free a moment ago (and, with `pair`, port+1 too).
int PickFreePort(bool pair = false);

// A child process with stdout+stderr to `log`; SIGTERM (then SIGKILL) on Stop or destruction.
class BackgroundProcess {
 public:
  BackgroundProcess(const std::vector<std::string>& argv, const std::filesystem::path& log,
                    const std::map<std::string, std::string>& env = {});
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;
  pid_t pid() const { return pid_; }
  bool Running();
  // Returns the exit code (-1 when killed by a signal).
  int Stop(int timeout_ms = 5000);
  std::optional<int> exit_code() const { return exit_code_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

class Swtpm {
 public:
  explicit Swtpm(const std::filesystem::path& dir);
  std::string tcti() const;
  int port() const { return port_; }  // TPM commands; the control channel is port() + 1
  void Stop() { proc_->Stop(); }

 private:
  int port_ = 0;
  std::unique_ptr<BackgroundProcess> proc_;
};

struct IssuedCert {
  std::string cert_pem, key_pem;
  std::filesystem::path cert_path, key_path;  // written by Issue
};

// An EC P-256 CA and certificates it issues.
class TestPki {
 public:
  TestPki(const std::filesystem::path& dir, const std::string& ca_name);
  ~TestPki();
  const std::string& ca_pem() const { return ca_pem_; }
  IssuedCert Issue(const std::string& cn, const std::string& name);
  // A certificate (DER) for a public key given as SubjectPublicKeyInfo DER (e.g. a vTPM AK).
  std::vector<uint8_t> IssueForKey(const std::string& cn, const std::vector<uint8_t>& spki_der);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::filesystem::path dir_;
  std::string ca_pem_;
};

struct LaunchConfigSpec {
  std::string listen = "127.0.0.1:0";
  std::string ca_pem;
  std::vector<std::string> allowed_subjects = {"CN=coordinator,O=Competition"};
  double rps = 100000;
  int burst = 100000;
  uint64_t budget = 0;
  std::string image;                  // default: the example model's oci-archive
  std::string runner = "namespaces";  // "systemd" needs a systemd (NspawnSystemd in tests)
  std::string platform = "software-snp";
  std::string tcti;
  std::string trust = "host";
};
std::string MakeLaunchConfig(const LaunchConfigSpec& spec);

// appliance-supervisor --config … --state-dir … (APPLIANCE_LOG_STDERR=1, log to
// dir/supervisor.log).
class SupervisorProcess {
 public:
  SupervisorProcess(const std::filesystem::path& dir, const std::string& config_json,
                    const std::vector<std::string>& extra_args = {"--software-rsa-bits", "2048"},
                    const std::map<std::string, std::string>& env = {});
  ~SupervisorProcess();
  // Waits for "ready" in the log (true) or for the process to exit / the timeout (false).
  bool WaitReady(int timeout_ms = 60000);
  // Waits for `text` to appear in the log at least `count` times.
  bool WaitForLog(const std::string& text, int count, int timeout_ms);
  std::string target() const;  // host:port from state/listen
  std::string log() const;
  pid_t pid() const { return proc_->pid(); }
  bool Running() { return proc_->Running(); }
  int Stop(int timeout_ms = 5000) { return proc_->Stop(timeout_ms); }
  const std::filesystem::path& config_path() const { return config_path_; }
  const std::filesystem::path& state_dir() const { return state_dir_; }

 private:
  std::filesystem::path dir_, config_path_, state_dir_, log_path_;
  std::unique_ptr<BackgroundProcess> proc_;
};

// Reference values accepting the software platform of this build's supervisor and `digests`.
std::string MakeReferenceValues(const std::vector<std::string>& container_digests,
                                bool allow_debug = false);

// Sealed models (issue 10). `appliance-keyd ARGS` with the store passphrase in its environment.
inline constexpr char kKeydTestPassphrase[] = "keyd test passphrase";
ProcessResult RunKeyd(const std::vector<std::string>& args);
// Seals the example model's OCI layout as `model_id` into `out_dir`; returns the key file.
std::filesystem::path SealExampleModel(const std::filesystem::path& work_dir,
                                       const std::string& model_id,
                                       const std::filesystem::path& out_dir);
// `spec`'s launch configuration with `sealed_model` instead of container.image.
std::string MakeSealedLaunchConfig(const LaunchConfigSpec& spec,
                                   const std::filesystem::path& sealed_dir,
                                   const std::string& model_id, const std::string& key_service,
                                   const std::string& key_service_spki_sha256);
// Adds `model_id` to the key service store: a policy accepting `config` on platform snp (plus
// `policy_extra`), reference values `reference_json`. Returns the add-model result.
ProcessResult AddKeydModel(const std::filesystem::path& store,
                           const std::filesystem::path& work_dir, const std::string& model_id,
                           const std::filesystem::path& key_file, const std::string& config,
                           const std::string& reference_json,
                           const nlohmann::json& policy_extra = nlohmann::json::object());

// Counts of a process's open file descriptors and threads (from /proc).
size_t CountFds(pid_t pid);
size_t CountThreads(pid_t pid);

}  // namespace attest::testing

#endif  // TESTS_TESTING_APPLIANCE_FIXTURE_H_
