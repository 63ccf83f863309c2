// Issue 6's start-up figure: from asking a runner to start the model to its first answered
// Predict, the systemd runner (StartTransientUnit on a real systemd booted in a container) vs the
// namespace runner, as a ratio from one run (median of 5 starts each). Prints "skipped" with the
// reason where no systemd can be booted.
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "appliance/v1/service.grpc.pb.h"
#include "appliance_fixture.h"
#include "nspawn_systemd.h"
#include "supervisor/oci.h"
#include "supervisor/runner.h"
#include "supervisor/systemd_runner.h"
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

}  // namespace

int main() {
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
  return 0;
}
