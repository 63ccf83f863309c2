// The model container as a hardened transient systemd service, started over sd-bus
// (org.freedesktop.systemd1.Manager.StartTransientUnit) and watched through D-Bus signals
// (JobRemoved, PropertiesChanged), never by polling (issue 6 item 1). Every D-Bus call has a
// timeout; errors name the call and carry systemd's error name and message (NotFound for
// NoSuchUnit, FailedPrecondition for other systemd answers such as UnitExists, Unavailable when the
// bus is gone, DeadlineExceeded on a timeout).
//
// Properties set on the unit (docs/container-isolation.md explains each):
//   RootDirectory= the unpacked image, BindPaths= only the socket directory (at /run/model),
//   DynamicUser=yes, UMask=0000 (so that the supervisor can connect to the model's socket),
//   NoNewPrivileges=yes, ProtectSystem=strict, ProtectHome=yes,
//   PrivateDevices=yes, PrivateNetwork=yes, PrivateTmp=yes, CapabilityBoundingSet= (empty),
//   AmbientCapabilities= (empty), SystemCallFilter=@system-service,
//   RestrictAddressFamilies=AF_UNIX, RestrictNamespaces=yes, LockPersonality=yes,
//   MemoryDenyWriteExecute=no (the model may JIT), MemoryMax= / CPUQuotaPerSecUSec= when given,
//   Type=exec, Restart=no (the supervisor restarts, because it must re-measure first).
#ifndef SUPERVISOR_SYSTEMD_RUNNER_H_
#define SUPERVISOR_SYSTEMD_RUNNER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "supervisor/runner.h"

namespace appliance::supervisor {

struct SystemdRunnerOptions {
  std::string bus_address;  // empty: the system bus; e.g.
                            // "unix:path=/proc/PID/root/run/dbus/system_bus_socket"
  absl::Duration call_timeout = absl::Seconds(10);
  uint64_t memory_max_bytes = 0;   // 0: no MemoryMax=
  uint64_t cpu_quota_percent = 0;  // 0: no CPUQuota=
  // BindsTo= on every model unit: systemd stops the model when this unit (the supervisor's own)
  // stops, fails or is restarted by its watchdog. Empty: none.
  std::string bound_to;
};

// How a unit ended, from its ActiveState/Result/ExecMainCode/ExecMainStatus.
struct UnitExit {
  std::string active_state;  // "inactive" or "failed"
  std::string result;        // "success", "exit-code", "signal", "timeout", ...
  int32_t main_code = 0;     // CLD_EXITED / CLD_KILLED / ...
  int32_t main_status = 0;   // exit status or signal number
  std::string Describe() const;
};

class SystemdRunner {
 public:
  static absl::StatusOr<std::unique_ptr<SystemdRunner>> Connect(
      const SystemdRunnerOptions& options);
  ~SystemdRunner();
  SystemdRunner(const SystemdRunner&) = delete;
  SystemdRunner& operator=(const SystemdRunner&) = delete;

  // Starts `unit` (a name ending in .service) for `spec`; returns when systemd's start job is done
  // (JobRemoved), failing with the job's result when it is not "done".
  absl::Status Start(const std::string& unit, const ContainerSpec& spec);
  // Blocks until the unit is inactive or failed (PropertiesChanged signals), or `timeout`. A unit
  // that systemd already unloaded ended successfully (transient units are collected only then).
  absl::StatusOr<UnitExit> WaitForExit(const std::string& unit, absl::Duration timeout);
  // Stops the unit (StopUnit, mode "replace") and waits for its job.
  absl::Status Stop(const std::string& unit);
  // Manager.ListUnitsByPatterns([], [pattern]): names of the loaded units matching `pattern`.
  absl::StatusOr<std::vector<std::string>> ListUnits(const std::string& pattern);
  // Manager.KillUnit(unit, "main", signal).
  absl::Status Kill(const std::string& unit, int signal);
  // Reads string (s), boolean (b), integer (t, u, i) properties of the unit's Service/Unit
  // interfaces as text (for tests and status output): e.g. "PrivateNetwork" → "yes".
  absl::StatusOr<std::string> ReadProperty(const std::string& unit, const std::string& interface,
                                           const std::string& name, char type);

 private:
  struct Impl;
  explicit SystemdRunner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The ModelRunner over a SystemdRunner: units "<prefix><generation>.service". On creation it
// stops and resets every loaded "<prefix>*.service" left by an earlier supervisor process of this
// boot (their names are listed in `stale`), so that a restarted supervisor starts from a clean
// slate and never serves an unmeasured container.
absl::StatusOr<std::unique_ptr<ModelRunner>> MakeSystemdModelRunner(
    const SystemdRunnerOptions& options, std::vector<std::string>* stale = nullptr,
    const std::string& prefix = "appliance-model-");

}  // namespace appliance::supervisor

#endif  // SUPERVISOR_SYSTEMD_RUNNER_H_
