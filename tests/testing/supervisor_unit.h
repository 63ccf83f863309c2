// The supervisor as the image runs it (issue 6): guest/systemd/appliance-supervisor.service and
// guest/systemd/appliance-tmpfiles.conf installed into a real systemd (NspawnSystemd), the
// launch configuration as a system credential (/run/credstore), a swtpm as another unit of that
// systemd, on fixed ports of the container's own network namespace. Only the binary's path and
// the options below differ from the shipped unit (a drop-in and the ExecStart line). Used by
// tests/integration/supervisor_unit_test.cc and bench/runner_bench.cc; torn down with the
// NspawnSystemd on destruction.
#ifndef TESTS_TESTING_SUPERVISOR_UNIT_H_
#define TESTS_TESTING_SUPERVISOR_UNIT_H_

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "appliance_fixture.h"
#include "nspawn_systemd.h"
#include "test_support.h"

namespace attest::testing {

class SupervisorUnit {
 public:
  static constexpr char kUnit[] = "appliance-supervisor.service";
  static constexpr int kSwtpmPort = 2321;  // inside the container's network: always free
  static constexpr int kListenPort = 8443;

  struct Options {
    std::string watchdog_sec = "5s";  // drop-in WatchdogSec= (the shipped unit says 30s)
    bool watchdog_hook = false;       // APPLIANCE_TEST_WATCHDOG_HOOK=1 (SIGUSR1 stops the pings)
    double requests_per_second = 100000;  // the launch configuration's client limits
    int burst = 100000;
  };

  // FailedPrecondition when this host cannot run a systemd (the caller skips with the reason);
  // any other error is a failure.
  static absl::StatusOr<std::unique_ptr<SupervisorUnit>> Create(const std::filesystem::path& dir,
                                                                const Options& options);
  ~SupervisorUnit();

  NspawnSystemd& systemd() { return *systemd_; }
  std::string bus_address() const { return systemd_->bus_address(); }
  // `systemctl start` (returns after READY=1) / `systemctl stop`.
  ProcessResult Start(int timeout_seconds = 180);
  ProcessResult Stop(int timeout_seconds = 90);
  // The supervisor's main process as the host sees it (-1 when not running).
  pid_t HostPid() const;
  // `appliance-verify connect` argv for the coordinator, to run in the container's network:
  // the test client certificate, the launch configuration, reference values for this build and
  // the software signer's current root (copied out of the state directory first).
  std::vector<std::string> ConnectArgv(const std::vector<std::string>& extra);
  const std::filesystem::path& config_path() const { return config_; }
  const IssuedCert& client() const { return client_; }
  std::filesystem::path journal_root() const { return systemd_->root() / "var/log/journal"; }
  // The whole journal of the supervisor's unit (for failure messages).
  std::string JournalText();

 private:
  SupervisorUnit() = default;
  std::filesystem::path dir_, config_, reference_;
  std::unique_ptr<NspawnSystemd> systemd_;
  std::unique_ptr<TestPki> pki_;
  IssuedCert client_;
};

}  // namespace attest::testing

#endif  // TESTS_TESTING_SUPERVISOR_UNIT_H_
