// Issue 6's figures, as ratios from one run:
// 1. start-up: from asking a runner to start the model to its first answered Predict, the systemd
//    runner (StartTransientUnit on a real systemd booted in a container) vs the namespace runner
//    (median of 5 starts each);
// 2. the supervisor's CPU time (user + system, /proc/PID/stat) per 10,000 proxied Predict calls
//    over attested mTLS: the supervisor as its guest/ unit inside that systemd (seccomp filter,
//    sandbox, systemd runner) vs the supervisor as a plain process on the host (namespace runner).
//    The client is this binary in `client` mode (in the container's network for the first).
// Prints "skipped" with the reason where no systemd can be booted.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "appliance/v1/service.grpc.pb.h"
#include "appliance_fixture.h"
#include "attest/client/attested_channel.h"
#include "attest/evidence.h"
#include "nspawn_systemd.h"
#include "supervisor/oci.h"
#include "supervisor/runner.h"
#include "supervisor/systemd_runner.h"
#include "supervisor_unit.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using appliance::supervisor::ContainerSpec;

// Waits until the model answers a Predict on `sock`; false after 20 s.
bool FirstAnswer(const fs::path& sock) {
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline) {
    if (fs::exists(sock)) {
      auto ch = grpc::CreateChannel("unix:" + sock.string(), grpc::InsecureChannelCredentials());
      auto stub = appliance::v1::Inference::NewStub(ch);
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      ctx.set_wait_for_ready(true);
      appliance::v1::PredictRequest req;
      req.set_input(R"({"instances": [[0.5, 0.1]]})");
      appliance::v1::PredictResponse resp;
      if (stub->Predict(&ctx, req, &resp).ok()) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

constexpr int kRequests = 10000;

// `runner_bench client TARGET CERT KEY LAUNCH_CONFIG REFERENCE ROOTS_DIR N`: attests, says
// "attested", waits for a line on stdin, sends N Predict calls one after another, says "done".
int ClientMain(char** argv) {
  attest::client::ConnectOptions o;
  o.target = argv[0];
  auto text = [](const char* path) {
    auto b = attest::testing::ReadFileOrDie(path);
    return std::string(b.begin(), b.end());
  };
  o.client_cert_pem = text(argv[1]);
  o.client_key_pem = text(argv[2]);
  o.launch_config = attest::testing::ReadFileOrDie(argv[3]);
  auto ref = attest::ParseReferenceValues(attest::testing::ReadFileOrDie(argv[4]));
  auto roots = attest::client::LoadRootsDir(argv[5]);
  if (!ref.ok() || !roots.ok()) return 2;
  o.reference = *ref;
  o.extra_snp_roots_der = roots->snp;
  const int n = std::atoi(argv[6]);
  attest::CheckLog log;
  auto conn = attest::client::ConnectAttested(o, log);
  if (!conn.ok()) {
    std::fprintf(stderr, "client: %s\n", std::string(conn.status().message()).c_str());
    return 1;
  }
  auto stub = appliance::v1::Inference::NewStub(conn->channel);
  std::printf("attested\n");
  std::fflush(stdout);
  char go = 0;
  if (read(0, &go, 1) != 1) return 1;
  appliance::v1::PredictRequest req;
  req.set_input(R"({"instances": [[0.5, 0.1]]})");
  for (int i = 0; i < n; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    appliance::v1::PredictResponse resp;
    if (!stub->Predict(&ctx, req, &resp).ok()) return 1;
  }
  std::printf("done\n");
  std::fflush(stdout);
  return 0;
}

// CPU time (user + system, all threads) of `pid` so far, in ms.
double CpuMs(pid_t pid) {
  auto bytes = attest::testing::ReadFileOrDie("/proc/" + std::to_string(pid) + "/stat");
  std::string stat(bytes.begin(), bytes.end());
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {  // fields 14 and 15: utime, stime
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return 1000.0 * static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct ProxyCpu {
  double cpu_ms = 0, wall_ms = 0;
};

// Runs the client (argv, e.g. prefixed by nsenter) and measures `supervisor`'s CPU time across
// its kRequests calls only (not its attestation).
std::optional<ProxyCpu> MeasureProxyCpu(const std::vector<std::string>& argv, pid_t supervisor) {
  int to_child[2], from_child[2];
  if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0) return std::nullopt;
  const pid_t child = fork();
  if (child == 0) {
    dup2(to_child[0], 0);
    dup2(from_child[1], 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(to_child[0]);
  close(from_child[1]);
  FILE* out = fdopen(from_child[0], "r");
  char line[64] = {0};
  std::optional<ProxyCpu> result;
  if (fgets(line, sizeof(line), out) != nullptr && std::string(line) == "attested\n") {
    const double cpu0 = CpuMs(supervisor);
    const auto t0 = Clock::now();
    (void)!write(to_child[1], "g", 1);
    if (fgets(line, sizeof(line), out) != nullptr && std::string(line) == "done\n") {
      result = ProxyCpu{CpuMs(supervisor) - cpu0,
                        std::chrono::duration<double, std::milli>(Clock::now() - t0).count()};
    }
  }
  close(to_child[1]);
  fclose(out);
  waitpid(child, nullptr, 0);
  return result;
}

std::vector<std::string> ClientArgv(const std::string& target, const attest::testing::IssuedCert& c,
                                    const fs::path& config, const fs::path& reference,
                                    const fs::path& roots) {
  return {fs::read_symlink("/proc/self/exe").string(),
          "client",
          target,
          c.cert_path.string(),
          c.key_path.string(),
          config.string(),
          reference.string(),
          roots.string(),
          std::to_string(kRequests)};
}

// Part 2: the supervisor's CPU per kRequests proxied calls, as its unit in a real systemd vs on
// the host.
void ProxyCpuFigure() {
  std::printf(
      "\nSupervisor CPU time per %d proxied Predict calls (attested mTLS, one client, "
      "one run):\n",
      kRequests);
  std::optional<ProxyCpu> host;
  {
    attest::testing::ScopedTempDir dir;
    attest::testing::TestPki pki(dir.path() / "pki", "Coordinator CA");
    auto client = pki.Issue("coordinator", "client");
    attest::testing::Swtpm swtpm(dir.path() / "swtpm");
    attest::testing::LaunchConfigSpec spec;
    spec.ca_pem = pki.ca_pem();
    spec.tcti = swtpm.tcti();
    attest::testing::SupervisorProcess sup(dir.path() / "appliance",
                                           attest::testing::MakeLaunchConfig(spec));
    if (!sup.WaitReady()) {
      std::printf("  host supervisor did not start:\n%s\n", sup.log().c_str());
      return;
    }
    const fs::path ref = dir.path() / "reference.json";
    attest::testing::WriteFileOrDie(
        ref, attest::testing::MakeReferenceValues({attest::testing::ExampleModelDigest()}));
    host = MeasureProxyCpu(
        ClientArgv(sup.target(), client, sup.config_path(), ref, sup.state_dir()), sup.pid());
  }
  if (!host) {
    std::printf("  host run failed\n");
    return;
  }
  std::printf(
      "  host (plain process, namespaces runner)   %7.0f ms CPU  (%.0f µs/request, "
      "wall %.0f ms)\n",
      host->cpu_ms, 1000 * host->cpu_ms / kRequests, host->wall_ms);
  attest::testing::ScopedTempDir dir;
  auto unit = attest::testing::SupervisorUnit::Create(dir.path(), {});
  if (!unit.ok()) {
    std::printf("  systemd unit skipped: %s\n", std::string(unit.status().message()).c_str());
    return;
  }
  if (auto started = (*unit)->Start(); started.exit_code != 0) {
    std::printf("  systemd unit did not start: %s\n%s\n", started.err.c_str(),
                (*unit)->JournalText().c_str());
    return;
  }
  std::vector<std::string> argv =
      (*unit)->systemd().Inside({"--"}, /*all=*/false);  // nsenter -t PID -n --
  auto client = ClientArgv(absl::StrCat("127.0.0.1:", attest::testing::SupervisorUnit::kListenPort),
                           (*unit)->client(), (*unit)->config_path(), dir.path() / "reference.json",
                           dir.path() / "roots");
  (void)(*unit)->ConnectArgv({});  // copies the software signer's root into dir/roots
  argv.insert(argv.end(), client.begin(), client.end());
  auto sd = MeasureProxyCpu(argv, (*unit)->HostPid());
  if (!sd) {
    std::printf("  systemd run failed\n%s\n", (*unit)->JournalText().c_str());
    return;
  }
  std::printf(
      "  systemd unit (sandboxed, systemd runner)  %7.0f ms CPU  (%.0f µs/request, "
      "wall %.0f ms)\n",
      sd->cpu_ms, 1000 * sd->cpu_ms / kRequests, sd->wall_ms);
  std::printf("  ratio systemd / host: %.2fx\n", sd->cpu_ms / host->cpu_ms);
  (void)(*unit)->Stop();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 9 && std::string(argv[1]) == "client") return ClientMain(argv + 2);
  attest::testing::ScopedTempDir dir;
  auto image = appliance::supervisor::LoadOciImage(attest::testing::ModelDir() / "oci", dir.path());
  if (!image.ok()) {
    std::fprintf(stderr, "%s\n", std::string(image.status().message()).c_str());
    return 1;
  }
  auto spec_for = [&](const std::string& name, appliance::supervisor::SocketDirAccess access) {
    ContainerSpec spec;
    spec.rootfs = dir.path() / ("rootfs-" + name);
    spec.socket_dir = dir.path() / ("socket-" + name);
    spec.argv = image->argv;
    spec.env = image->env;
    spec.working_dir = image->working_dir;
    if (!appliance::supervisor::UnpackLayers(*image, spec.rootfs).ok() ||
        !appliance::supervisor::PrepareContainerDirs(spec, access).ok()) {
      std::exit(1);
    }
    return spec;
  };

  std::vector<double> ns_ms, sd_ms;
  {
    auto spec = spec_for("ns", appliance::supervisor::SocketDirAccess::kHostId);
    auto runner = appliance::supervisor::MakeNamespaceRunner();
    for (int i = 0; i < 5; ++i) {
      fs::remove(spec.socket_dir / "model.sock");
      const auto t0 = Clock::now();
      auto pid = runner->Start(spec);
      if (!pid.ok() || !FirstAnswer(spec.socket_dir / "model.sock")) return 1;
      ns_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      runner->Stop(*pid, std::chrono::milliseconds(2000));
    }
  }
  std::printf("\nContainer start-up to first answer (one run, median of 5):\n");
  auto systemd = attest::testing::NspawnSystemd::Boot(dir.path(), dir.path() / "nspawn.log");
  if (!systemd.ok()) {
    std::printf("  namespaces runner %.1f ms; systemd runner skipped: %s\n", Median(ns_ms),
                std::string(systemd.status().message()).c_str());
    ProxyCpuFigure();
    return 0;
  }
  auto spec = spec_for("sd", appliance::supervisor::SocketDirAccess::kDynamicUser);
  appliance::supervisor::SystemdRunnerOptions options;
  options.bus_address = (*systemd)->bus_address();
  auto runner = appliance::supervisor::SystemdRunner::Connect(options);
  if (!runner.ok()) return 1;
  for (int i = 0; i < 5; ++i) {
    fs::remove(spec.socket_dir / "model.sock");
    const std::string unit = "appliance-bench-" + std::to_string(i) + ".service";
    const auto t0 = Clock::now();
    if (!(*runner)->Start(unit, spec).ok() || !FirstAnswer(spec.socket_dir / "model.sock"))
      return 1;
    sd_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    (void)(*runner)->Stop(unit);
  }
  std::printf(
      "  systemd runner (StartTransientUnit) %.1f ms  vs  namespaces runner %.1f ms: %.2fx\n",
      Median(sd_ms), Median(ns_ms), Median(sd_ms) / Median(ns_ms));
  systemd->reset();
  ProxyCpuFigure();
  return 0;
}
