#include "nspawn_systemd.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

namespace attest::testing {
namespace {

namespace fs = std::filesystem;

// The cgroup directories to create for the container: both hierarchies on a hybrid host.
std::vector<fs::path> CgroupDirs(const std::string& name) {
  if (fs::exists("/sys/fs/cgroup/systemd") && fs::exists("/sys/fs/cgroup/unified")) {
    return {fs::path("/sys/fs/cgroup/systemd") / name, fs::path("/sys/fs/cgroup/unified") / name};
  }
  return {fs::path("/sys/fs/cgroup") / name};
}

void RemoveCgroupTree(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> dirs;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory()) dirs.push_back(it->path());
  }
  dirs.insert(dirs.begin(), dir);
  // The container's last processes may still be leaving their cgroups: retry for up to 5 s.
  for (int attempt = 0; attempt < 100; ++attempt) {
    bool all = true;
    for (auto d = dirs.rbegin(); d != dirs.rend(); ++d) {
      if (rmdir(d->c_str()) != 0 && errno != ENOENT) all = false;
    }
    if (all) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

pid_t FirstChild(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  pid_t child = -1;
  f >> child;
  return child;
}

}  // namespace

absl::StatusOr<std::unique_ptr<NspawnSystemd>> NspawnSystemd::Boot(
    const fs::path& bind_dir, const fs::path& log, const std::vector<fs::path>& bind_ro) {
  if (geteuid() != 0) return absl::FailedPreconditionError("needs root");
  if (access("/usr/bin/systemd-nspawn", X_OK) != 0) {
    return absl::FailedPreconditionError("systemd-nspawn is not installed (systemd-container)");
  }
  std::unique_ptr<NspawnSystemd> n(new NspawnSystemd());
  n->cgroups_ = CgroupDirs(absl::StrCat("appliance-nspawn-", getpid()));
  for (const auto& cg : n->cgroups_) {
    std::error_code ec;
    fs::create_directories(cg, ec);
    if (ec)
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create cgroup ", cg.string(), ": ", ec.message()));
  }
  n->nspawn_pid_ = fork();
  if (n->nspawn_pid_ < 0) return absl::InternalError("fork");
  if (n->nspawn_pid_ == 0) {
    for (const auto& cg : n->cgroups_) {
      std::ofstream(cg / "cgroup.procs") << getpid() << "\n";
    }
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<std::string> args = {"systemd-nspawn",
                                     "-D",
                                     "/",
                                     "--volatile=yes",
                                     "-b",
                                     "--register=no",
                                     "--keep-unit",
                                     "--private-network",
                                     "--bind=" + bind_dir.string(),
                                     "--console=pipe"};
    for (const auto& p : bind_ro) args.push_back("--bind-ro=" + p.string());
    args.push_back("systemd.firstboot=off");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv("/usr/bin/systemd-nspawn", argv.data());
    _exit(127);
  }
  // Wait for its systemd and its D-Bus socket.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(n->nspawn_pid_, &status, WNOHANG) == n->nspawn_pid_) {
      n->nspawn_pid_ = -1;
      std::ifstream f(log);
      std::stringstream ss;
      ss << f.rdbuf();
      return absl::FailedPreconditionError("systemd-nspawn exited: " + ss.str().substr(0, 600));
    }
    if (n->init_pid_ <= 0) n->init_pid_ = FirstChild(n->nspawn_pid_);
    if (n->init_pid_ > 0 &&
        fs::exists(absl::StrCat("/proc/", n->init_pid_, "/root/run/dbus/system_bus_socket"))) {
      return n;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return absl::DeadlineExceededError("systemd in the container did not bring up D-Bus in 90 s");
}

std::string NspawnSystemd::bus_address() const {
  return absl::StrCat("unix:path=/proc/", init_pid_, "/root/run/dbus/system_bus_socket");
}

fs::path NspawnSystemd::root() const { return absl::StrCat("/proc/", init_pid_, "/root"); }

std::vector<std::string> NspawnSystemd::Inside(const std::vector<std::string>& argv,
                                               bool all) const {
  std::vector<std::string> out = {"/usr/bin/nsenter", "-t", std::to_string(init_pid_)};
  out.push_back(all ? "-a" : "-n");
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

std::optional<fs::path> NspawnSystemd::FindCgroupFile(const std::string& suffix) const {
  for (auto cg = cgroups_.rbegin(); cg != cgroups_.rend(); ++cg) {  // unified is last
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(*cg, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_directory()) continue;
      const fs::path candidate = it->path() / suffix;
      if (fs::exists(candidate, ec)) return candidate;
    }
  }
  return std::nullopt;
}

bool NspawnSystemd::CanConnectInside(int port) const {
  const int ns = open(absl::StrCat("/proc/", init_pid_, "/ns/net").c_str(), O_RDONLY | O_CLOEXEC);
  if (ns < 0) return false;
  const pid_t child = fork();  // setns affects the calling thread only: do it in a child
  if (child == 0) {
    if (setns(ns, CLONE_NEWNET) != 0) _exit(2);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    _exit(fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 ? 0 : 1);
  }
  close(ns);
  int status = 0;
  if (child < 0 || waitpid(child, &status, 0) != child) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

NspawnSystemd::~NspawnSystemd() {
  if (nspawn_pid_ > 0) {
    kill(nspawn_pid_, SIGTERM);  // nspawn asks the container's systemd to halt
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    int status = 0;
    while (waitpid(nspawn_pid_, &status, WNOHANG) != nspawn_pid_) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(nspawn_pid_, SIGKILL);
        waitpid(nspawn_pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  for (const auto& cg : cgroups_) RemoveCgroupTree(cg);
}

}  // namespace attest::testing
