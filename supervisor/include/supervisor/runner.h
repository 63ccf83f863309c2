// Container runner (issue 5 item 7): the interface the supervisor starts the model through, and
// its namespace backend for hosts without systemd as PID 1 (the systemd backend over sd-bus is
// issue 6). The namespace backend starts the model server from the unpacked root in new user,
// mount, PID, network, IPC and UTS namespaces:
//   - user: container uid/gid 1000 map to host `host_id` (default 100000), nothing else is mapped;
//   - mount: the root is the unpacked image, bind-mounted read-only (nosuid, nodev), with a tmpfs
//     /tmp, /dev/{null,zero,random,urandom} bound, /proc when the kernel allows it, and
//     `socket_dir` at /run/model as the only writable, shared directory;
//   - network: a new namespace with only `lo` (brought up); no other interface exists;
//   - no capabilities (bounding, effective, permitted, inheritable, ambient all empty),
//     PR_SET_NO_NEW_PRIVS, a fresh PID namespace in which the server is PID 1;
//   - no descriptor of the supervisor's but stdin, stdout and stderr.
#ifndef SUPERVISOR_RUNNER_H_
#define SUPERVISOR_RUNNER_H_

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace appliance::supervisor {

struct ContainerSpec {
  std::filesystem::path rootfs;      // unpacked image (read-only inside)
  std::filesystem::path socket_dir;  // mounted at /run/model, the only way in or out
  std::vector<std::string> argv;     // argv[0] is a path inside the root
  std::vector<std::string> env;
  std::string working_dir = "/";
  uid_t host_id = 100000;  // host uid and gid the container's uid/gid 1000 map to
};

// The namespace backend's process-level interface (benchmarks use it directly); the supervisor
// uses ModelRunner below.
class ContainerRunner {
 public:
  virtual ~ContainerRunner() = default;
  virtual std::string name() const = 0;
  // Starts the container; returns a pid the caller may waitpid() on.
  virtual absl::StatusOr<pid_t> Start(const ContainerSpec& spec) = 0;
  // SIGTERM, then SIGKILL after `grace`; reaps the process.
  virtual void Stop(pid_t pid, std::chrono::milliseconds grace) = 0;
};

std::unique_ptr<ContainerRunner> MakeNamespaceRunner();

// Who creates the model's socket in `socket_dir`.
enum class SocketDirAccess {
  kHostId,       // the namespace backend's mapped uid: owned by host_id, mode 0700
  kDynamicUser,  // a systemd DynamicUser= unknown in advance: root-owned, mode 0733 (write and
                 // search, no listing); its 0700 parent keeps everyone else out, and the unit
                 // sees only the bind mount
};

// What the supervisor runs the model through, whatever the backend (the launch configuration's
// `container.runner`): one container at a time, started, watched and stopped. Implementations:
// MakeNamespaceModelRunner() below, MakeSystemdModelRunner() in systemd_runner.h. Used from one
// thread at a time.
class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  virtual std::string name() const = 0;  // "namespaces", "systemd"
  // How the socket directory must be prepared for this backend's container user.
  virtual SocketDirAccess socket_access() const = 0;
  // Starts the container for `spec`; `generation` (1, 2, …) numbers the supervisor's starts.
  virtual absl::Status Start(const ContainerSpec& spec, uint32_t generation) = 0;
  // The running container, for logs: "pid 1234", "unit appliance-model-2.service".
  virtual std::string Describe() const = 0;
  // Blocks until the running container ends and says how, or fails with DeadlineExceeded after
  // `timeout` (zero: just look), NotFound when none was started; event-driven, not polling.
  virtual absl::StatusOr<std::string> WaitForExit(absl::Duration timeout) = 0;
  // Stops the running container, if any, and waits for it to end.
  virtual void Stop() = 0;
};

std::unique_ptr<ModelRunner> MakeNamespaceModelRunner();

// Prepares `rootfs` (mount points /proc, /dev/*, /tmp, /run/model) and `socket_dir`. Run before
// Start, as the supervisor.
absl::Status PrepareContainerDirs(const ContainerSpec& spec,
                                  SocketDirAccess access = SocketDirAccess::kHostId);

}  // namespace appliance::supervisor

#endif  // SUPERVISOR_RUNNER_H_
