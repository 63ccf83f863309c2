#include "supervisor/runner.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "attest/status.h"

namespace appliance::supervisor {
namespace {

namespace fs = std::filesystem;

constexpr uid_t kContainerId = 1000;
constexpr size_t kStackSize = 256 * 1024;

// Everything the child needs, prepared before clone(): the child only makes system calls.
struct ChildArgs {
  std::string rootfs, socket_mount, proc, tmp, dev_null, dev_zero, dev_random, dev_urandom;
  std::string socket_dir, working_dir;
  std::vector<std::string> argv_s, env_s;
  std::vector<char*> argv, env;
  int sync_read = -1;    // parent → child: maps written
  int error_write = -1;  // child → parent: {step, errno} on failure (CLOEXEC: EOF on exec)
};

enum Step : int {
  kWaitMaps = 1,
  kSetIds,
  kPrivate,
  kBindRoot,
  kBindSocket,
  kTmp,
  kDev,
  kProc,
  kRemountRo,
  kPivot,
  kLo,
  kCaps,
  kChdir,
  kExec,
};

const char* StepName(int step) {
  switch (step) {
    case kWaitMaps:
      return "wait for uid/gid maps";
    case kSetIds:
      return "setresuid/setresgid";
    case kPrivate:
      return "make mounts private";
    case kBindRoot:
      return "bind the root";
    case kBindSocket:
      return "bind the socket directory";
    case kTmp:
      return "mount /tmp";
    case kDev:
      return "bind /dev nodes";
    case kProc:
      return "mount /proc";
    case kRemountRo:
      return "remount the root read-only";
    case kPivot:
      return "pivot_root";
    case kLo:
      return "bring up lo";
    case kCaps:
      return "drop capabilities";
    case kChdir:
      return "chdir";
    case kExec:
      return "execve";
    default:
      return "?";
  }
}

[[noreturn]] void ChildFail(const ChildArgs* a, int step) {
  int msg[2] = {step, errno};
  (void)!write(a->error_write, msg, sizeof(msg));
  _exit(127);
}

// Closes every descriptor but stdio and the two pipes to the parent. clone() copies the
// supervisor's descriptor table, and not every library opens with O_CLOEXEC (tpm2-tss's swtpm TCTI
// does not): without this the model would inherit the supervisor's vTPM connection, sockets and
// files, and even before exec a copy of the vTPM connection kept swtpm, which serves one
// connection at a time, from answering the supervisor's next command until the child ended.
void CloseInheritedDescriptors(const ChildArgs* a) {
  int keep[2] = {std::min(a->sync_read, a->error_write), std::max(a->sync_read, a->error_write)};
  unsigned from = 3;
  for (int fd : keep) {
    if (fd < static_cast<int>(from)) continue;
    if (static_cast<unsigned>(fd) > from) (void)close_range(from, static_cast<unsigned>(fd) - 1, 0);
    from = static_cast<unsigned>(fd) + 1;
  }
  (void)close_range(from, ~0U, 0);
}

int ChildMain(void* arg) {
  const ChildArgs* a = static_cast<const ChildArgs*>(arg);
  CloseInheritedDescriptors(a);
  char c;
  if (read(a->sync_read, &c, 1) != 1) ChildFail(a, kWaitMaps);
  close(a->sync_read);
  if (setgroups(0, nullptr) != 0 && errno != EPERM) ChildFail(a, kSetIds);
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ChildFail(a, kPrivate);
  if (mount(a->rootfs.c_str(), a->rootfs.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    ChildFail(a, kBindRoot);
  }
  if (mount(a->socket_dir.c_str(), a->socket_mount.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    ChildFail(a, kBindSocket);
  }
  if (mount("tmpfs", a->tmp.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777") != 0) {
    ChildFail(a, kTmp);
  }
  const std::pair<const char*, const char*> devs[] = {{"/dev/null", a->dev_null.c_str()},
                                                      {"/dev/zero", a->dev_zero.c_str()},
                                                      {"/dev/random", a->dev_random.c_str()},
                                                      {"/dev/urandom", a->dev_urandom.c_str()}};
  for (const auto& [src, dst] : devs) {
    if (mount(src, dst, nullptr, MS_BIND, nullptr) != 0) ChildFail(a, kDev);
  }
  // /proc of the new PID namespace. Kernels refuse it where the outer /proc is partly masked
  // (e.g. inside some containers); the model server does not need it, so its absence is not fatal.
  (void)mount("proc", a->proc.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  if (mount(nullptr, a->rootfs.c_str(), nullptr,
            MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0) {
    ChildFail(a, kRemountRo);
  }
  if (chdir(a->rootfs.c_str()) != 0 || syscall(SYS_pivot_root, ".", ".") != 0 ||
      umount2(".", MNT_DETACH) != 0 || chdir("/") != 0) {
    ChildFail(a, kPivot);
  }
  {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0) ChildFail(a, kLo);
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);  // NOLINT(runtime/int)
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) ChildFail(a, kLo);
    close(s);
  }
  (void)sethostname("model", 5);
  if (setresgid(kContainerId, kContainerId, kContainerId) != 0 ||
      setresuid(kContainerId, kContainerId, kContainerId) != 0) {
    ChildFail(a, kSetIds);
  }
  // No capabilities, none to regain.
  for (int cap = 0; cap <= 63; ++cap) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) ChildFail(a, kCaps);
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    ChildFail(a, kCaps);
  }
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capset, &hdr, data) != 0) ChildFail(a, kCaps);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ChildFail(a, kCaps);
  // If the supervisor dies, the model dies with it (set after the last credential change, which
  // would clear it). The parent is outside this PID namespace, so getppid() cannot tell whether it
  // died before this line; the window is the few system calls since the sync pipe was read.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) ChildFail(a, kCaps);
  if (chdir(a->working_dir.c_str()) != 0) ChildFail(a, kChdir);
  execve(a->argv[0], a->argv.data(), a->env.data());
  ChildFail(a, kExec);
}

class NamespaceRunner : public ContainerRunner {
 public:
  std::string name() const override { return "namespaces"; }

  absl::StatusOr<pid_t> Start(const ContainerSpec& spec) override {
    if (spec.argv.empty()) return absl::InvalidArgumentError("container: no command");
    ChildArgs a;
    a.rootfs = spec.rootfs.string();
    a.socket_dir = spec.socket_dir.string();
    a.socket_mount = (spec.rootfs / "run/model").string();
    a.proc = (spec.rootfs / "proc").string();
    a.tmp = (spec.rootfs / "tmp").string();
    a.dev_null = (spec.rootfs / "dev/null").string();
    a.dev_zero = (spec.rootfs / "dev/zero").string();
    a.dev_random = (spec.rootfs / "dev/random").string();
    a.dev_urandom = (spec.rootfs / "dev/urandom").string();
    a.working_dir = spec.working_dir.empty() ? "/" : spec.working_dir;
    a.argv_s = spec.argv;
    a.env_s = spec.env;
    for (auto& s : a.argv_s) a.argv.push_back(s.data());
    a.argv.push_back(nullptr);
    for (auto& s : a.env_s) a.env.push_back(s.data());
    a.env.push_back(nullptr);

    int sync[2], err[2];
    if (pipe2(sync, O_CLOEXEC) != 0) return absl::InternalError("pipe");
    if (pipe2(err, O_CLOEXEC) != 0) {
      close(sync[0]);
      close(sync[1]);
      return absl::InternalError("pipe");
    }
    a.sync_read = sync[0];
    a.error_write = err[1];
    std::vector<char> stack(kStackSize);
    const int flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
                      CLONE_NEWUTS | SIGCHLD;
    pid_t pid = clone(ChildMain, stack.data() + stack.size(), flags, &a);
    const int clone_errno = errno;
    close(sync[0]);
    close(err[1]);
    if (pid < 0) {
      close(sync[1]);
      close(err[0]);
      return absl::FailedPreconditionError(absl::StrCat(
          "container: clone(new user/mount/pid/net namespaces): ", std::strerror(clone_errno)));
    }
    absl::Status status = WriteMaps(pid, spec.host_id);
    if (status.ok()) {
      (void)!write(sync[1], "x", 1);
    }
    close(sync[1]);
    int msg[2] = {0, 0};
    ssize_t n = read(err[0], msg, sizeof(msg));  // EOF: exec succeeded
    close(err[0]);
    if (!status.ok() || n > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      if (!status.ok()) return status;
      return absl::FailedPreconditionError(
          absl::StrCat("container: ", StepName(msg[0]), " failed: ", std::strerror(msg[1])));
    }
    return pid;
  }

  void Stop(pid_t pid, std::chrono::milliseconds grace) override {
    if (pid <= 0) return;
    kill(pid, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (std::chrono::steady_clock::now() < deadline) {
      if (waitpid(pid, nullptr, WNOHANG) != 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }

 private:
  static absl::Status WriteMaps(pid_t pid, uid_t host_id) {
    const std::string map = absl::StrCat(kContainerId, " ", host_id, " 1\n");
    for (const char* file : {"uid_map", "gid_map"}) {
      const std::string path = absl::StrCat("/proc/", pid, "/", file);
      int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || write(fd, map.data(), map.size()) != static_cast<ssize_t>(map.size())) {
        int e = errno;
        if (fd >= 0) close(fd);
        return absl::FailedPreconditionError(
            absl::StrCat("container: write ", path, ": ", std::strerror(e)));
      }
      close(fd);
    }
    return absl::OkStatus();
  }
};

// ModelRunner over NamespaceRunner: the container is our child; its end is seen through a pidfd
// (poll), then reaped.
class NamespaceModelRunner : public ModelRunner {
 public:
  ~NamespaceModelRunner() override { Stop(); }
  std::string name() const override { return runner_.name(); }
  SocketDirAccess socket_access() const override { return SocketDirAccess::kHostId; }

  absl::Status Start(const ContainerSpec& spec, uint32_t) override {
    Stop();
    ASSIGN_OR_RETURN(pid_, runner_.Start(spec));
    pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
    if (pidfd_ < 0) {
      const int e = errno;
      Stop();
      return absl::InternalError(absl::StrCat("container: pidfd_open: ", std::strerror(e)));
    }
    return absl::OkStatus();
  }

  std::string Describe() const override { return absl::StrCat("pid ", pid_); }

  absl::StatusOr<std::string> WaitForExit(absl::Duration timeout) override {
    if (pid_ <= 0) return absl::NotFoundError("no model container was started");
    pollfd p{pidfd_, POLLIN, 0};
    const int ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
    int r;
    do {
      r = poll(&p, 1, ms);
    } while (r < 0 && errno == EINTR);
    if (r == 0) return absl::DeadlineExceededError("model container still running");
    int status = 0;
    pid_t got;
    do {
      got = waitpid(pid_, &status, 0);
    } while (got < 0 && errno == EINTR);
    Forget();
    if (got < 0) return std::string("gone");
    return WIFSIGNALED(status) ? absl::StrCat("killed by signal ", WTERMSIG(status))
                               : absl::StrCat("exited with status ", WEXITSTATUS(status));
  }

  void Stop() override {
    if (pid_ > 0) runner_.Stop(pid_, std::chrono::milliseconds(2000));
    Forget();
  }

 private:
  void Forget() {
    if (pidfd_ >= 0) close(pidfd_);
    pidfd_ = -1;
    pid_ = -1;
  }
  NamespaceRunner runner_;
  pid_t pid_ = -1;
  int pidfd_ = -1;
};

}  // namespace

std::unique_ptr<ContainerRunner> MakeNamespaceRunner() {
  return std::make_unique<NamespaceRunner>();
}

std::unique_ptr<ModelRunner> MakeNamespaceModelRunner() {
  return std::make_unique<NamespaceModelRunner>();
}

absl::Status PrepareContainerDirs(const ContainerSpec& spec, SocketDirAccess access) {
  std::error_code ec;
  for (const char* d : {"proc", "dev", "tmp", "run", "run/model"}) {
    fs::path p = spec.rootfs / d;
    if (fs::is_symlink(p, ec)) fs::remove(p, ec);  // the image's own links must not redirect mounts
    const bool created = fs::create_directories(p, ec);
    if (ec || !fs::is_directory(fs::symlink_status(p))) {
      return absl::FailedPreconditionError(
          absl::StrCat("container root: ", p.string(), " is not a directory"));
    }
    if (created) chmod(p.c_str(), 0755);  // not the supervisor's UMask=0077
  }
  for (const char* n : {"dev/null", "dev/zero", "dev/random", "dev/urandom"}) {
    fs::path p = spec.rootfs / n;
    fs::remove(p, ec);
    int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("container root: create ", p.string(), ": ", std::strerror(errno)));
    }
    close(fd);
  }
  fs::create_directories(spec.socket_dir, ec);
  const bool dynamic = access == SocketDirAccess::kDynamicUser;
  const uid_t owner = dynamic ? 0 : spec.host_id;
  if (chown(spec.socket_dir.c_str(), owner, owner) != 0 ||
      chmod(spec.socket_dir.c_str(), dynamic ? 0733 : 0700) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("socket directory ", spec.socket_dir.string(), ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace appliance::supervisor
