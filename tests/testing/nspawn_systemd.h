// A real systemd for integration tests (issue 6): booted with systemd-nspawn over the host's own
// files (docs/development.md, "A real systemd for tests"), in a cgroup of its own, with one host
// directory bound at the same path. Tests talk to its system bus from the host through
// /proc/<its systemd>/root/run/dbus/system_bus_socket. Torn down (and its cgroups removed) on
// destruction.
#ifndef TESTS_TESTING_NSPAWN_SYSTEMD_H_
#define TESTS_TESTING_NSPAWN_SYSTEMD_H_

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace attest::testing {

class NspawnSystemd {
 public:
  // Fails with the reason (for a GTEST_SKIP) when this host cannot boot one.
  static absl::StatusOr<std::unique_ptr<NspawnSystemd>> Boot(const std::filesystem::path& bind_dir,
                                                             const std::filesystem::path& log);
  ~NspawnSystemd();
  pid_t init_pid() const { return init_pid_; }
  std::string bus_address() const;

 private:
  NspawnSystemd() = default;
  pid_t nspawn_pid_ = -1;
  pid_t init_pid_ = -1;
  std::vector<std::filesystem::path> cgroups_;
};

}  // namespace attest::testing

#endif  // TESTS_TESTING_NSPAWN_SYSTEMD_H_
