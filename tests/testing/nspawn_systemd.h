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
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace attest::testing {

class NspawnSystemd {
 public:
  // Fails with the reason (for a GTEST_SKIP) when this host cannot boot one.
  // `bind_dir` is shared read-write, `bind_ro` read-only, each at the same path inside.
  static absl::StatusOr<std::unique_ptr<NspawnSystemd>> Boot(
      const std::filesystem::path& bind_dir, const std::filesystem::path& log,
      const std::vector<std::filesystem::path>& bind_ro = {});
  ~NspawnSystemd();
  pid_t init_pid() const { return init_pid_; }
  std::string bus_address() const;
  // The container's root as the host sees it (/proc/<its systemd>/root).
  std::filesystem::path root() const;
  // `argv` prefixed to run in the container's namespaces (`all`: mount, PID, … as well; else only
  // its network, keeping the host's files): nsenter -t <init> ….
  std::vector<std::string> Inside(const std::vector<std::string>& argv, bool all = true) const;
  // A file in the container's cgroup tree (e.g. "foo.service/cgroup.procs"), as the host sees it;
  // the unified hierarchy first.
  std::optional<std::filesystem::path> FindCgroupFile(const std::string& suffix) const;
  // Whether a TCP connection to 127.0.0.1:port succeeds inside the container's network.
  bool CanConnectInside(int port) const;

 private:
  NspawnSystemd() = default;
  pid_t nspawn_pid_ = -1;
  pid_t init_pid_ = -1;
  std::vector<std::filesystem::path> cgroups_;
};

}  // namespace attest::testing

#endif  // TESTS_TESTING_NSPAWN_SYSTEMD_H_
