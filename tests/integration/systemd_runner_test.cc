// The sd-bus runner against a real systemd (booted in a container over the host's files): the
// example model as a hardened transient unit, its properties read back over D-Bus, inference over
// its socket, a killed main process observed through D-Bus signals, and clear errors.
#include "supervisor/systemd_runner.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <thread>

#include "appliance/v1/service.grpc.pb.h"
#include "appliance_fixture.h"
#include "attest/client/attested_channel.h"
#include "attest/evidence.h"
#include "nspawn_systemd.h"
#include "supervisor/oci.h"
#include "test_support.h"

namespace appliance::supervisor {
namespace {

namespace fs = std::filesystem;
using attest::testing::NspawnSystemd;
using attest::testing::ScopedTempDir;

TEST(SystemdRunnerTest, ModelRunsAsHardenedTransientUnit) {
  ScopedTempDir dir;
  auto systemd = NspawnSystemd::Boot(dir.path(), dir.path() / "nspawn.log");
  if (!systemd.ok()) GTEST_SKIP() << "no real systemd here: " << systemd.status();

  auto image = LoadOciImage(attest::testing::ModelDir() / "oci", dir.path());
  ASSERT_TRUE(image.ok()) << image.status();
  ContainerSpec spec;
  spec.rootfs = dir.path() / "rootfs";
  spec.socket_dir = dir.path() / "socket";
  spec.argv = image->argv;
  spec.env = image->env;
  spec.working_dir = image->working_dir;
  ASSERT_TRUE(UnpackLayers(*image, spec.rootfs).ok());
  ASSERT_TRUE(PrepareContainerDirs(spec, SocketDirAccess::kDynamicUser).ok());

  SystemdRunnerOptions options;
  options.bus_address = (*systemd)->bus_address();
  options.memory_max_bytes = 256 << 20;
  options.cpu_quota_percent = 50;
  auto runner = SystemdRunner::Connect(options);
  ASSERT_TRUE(runner.ok()) << runner.status();
  const std::string unit = "appliance-model-1.service";
  ASSERT_TRUE((*runner)->Start(unit, spec).ok());

  // Properties, read back over D-Bus.
  const std::string exec = "org.freedesktop.systemd1.Service";
  for (const auto& [name, type, want] : std::vector<std::tuple<std::string, char, std::string>>{
           {"PrivateNetwork", 'b', "yes"},
           {"DynamicUser", 'b', "yes"},
           {"NoNewPrivileges", 'b', "yes"},
           {"PrivateDevices", 'b', "yes"},
           {"ProtectSystem", 's', "strict"},
           {"ProtectHome", 's', "yes"},
           {"CapabilityBoundingSet", 't', "0"},
           {"RootDirectory", 's', spec.rootfs.string()},
           {"MemoryMax", 't', std::to_string(256 << 20)},
           {"CPUQuotaPerSecUSec", 't', "500000"}}) {
    auto got = (*runner)->ReadProperty(unit, exec, name, type);
    ASSERT_TRUE(got.ok()) << name << ": " << got.status();
    EXPECT_EQ(*got, want) << name;
  }

  // The model serves over the bound socket directory.
  const fs::path sock = spec.socket_dir / "model.sock";
  for (int i = 0; i < 200 && !fs::exists(sock); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto channel = grpc::CreateChannel("unix:" + sock.string(), grpc::InsecureChannelCredentials());
  auto stub = appliance::v1::Inference::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  appliance::v1::PredictRequest req;
  req.set_input(R"({"instances": [[0.5, 0.1]]})");
  appliance::v1::PredictResponse resp;
  grpc::Status s = stub->Predict(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_NE(resp.output().find("predictions"), std::string::npos);

  // A unit name that exists already is a clear error, not a hang.
  auto again = (*runner)->Start(unit, spec);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.message().find("StartTransientUnit"), std::string::npos) << again;

  // Kill the main process: the exit is observed through PropertiesChanged.
  ASSERT_TRUE((*runner)->Kill(unit, SIGKILL).ok());
  auto exit = (*runner)->WaitForExit(unit, absl::Seconds(30));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->result, "signal") << exit->Describe();
  EXPECT_EQ(exit->main_status, SIGKILL) << exit->Describe();
  EXPECT_TRUE((*runner)->Stop(unit).ok());

  // The isolation probe, from inside a unit with the same properties.
  fs::copy_file(ISOLATION_PROBE_BIN, spec.rootfs / "isolation-probe");
  chmod((spec.rootfs / "isolation-probe").c_str(), 0755);
  ContainerSpec probe = spec;
  probe.argv = {"/isolation-probe", "/run/model/probe.txt", dir.path().string()};
  const std::string probe_unit = "appliance-probe-1.service";
  ASSERT_TRUE((*runner)->Start(probe_unit, probe).ok());
  auto probe_exit = (*runner)->WaitForExit(probe_unit, absl::Seconds(30));
  ASSERT_TRUE(probe_exit.ok()) << probe_exit.status();
  const auto report = attest::testing::ReadFileOrDie(spec.socket_dir / "probe.txt");
  const std::string text(report.begin(), report.end());
  std::printf("isolation probe (inside the unit):\n%s", text.c_str());
  EXPECT_EQ(probe_exit->result, "success") << text;
  EXPECT_EQ(text.find("FAIL"), std::string::npos) << text;
  EXPECT_NE(text.find("ok net.interfaces lo,"), std::string::npos) << text;
  EXPECT_TRUE((*runner)->Stop(probe_unit).ok());
}

// The supervisor with `container.runner = systemd`: the model as a unit of a real systemd, its
// crash observed over D-Bus, re-measured and restarted, and the appliance re-attested.
TEST(SystemdRunnerTest, SupervisorRestartsAKilledUnitAndReattests) {
  ScopedTempDir dir;
  auto systemd = NspawnSystemd::Boot(dir.path(), dir.path() / "nspawn.log");
  if (!systemd.ok()) GTEST_SKIP() << "no real systemd here: " << systemd.status();
  attest::testing::TestPki pki(dir.path() / "pki", "Coordinator CA");
  auto client = pki.Issue("coordinator", "client");
  attest::testing::Swtpm swtpm(dir.path() / "swtpm");
  attest::testing::LaunchConfigSpec spec;
  spec.ca_pem = pki.ca_pem();
  spec.tcti = swtpm.tcti();
  spec.runner = "systemd";
  attest::testing::SupervisorProcess sup(
      dir.path() / "appliance", attest::testing::MakeLaunchConfig(spec),
      {"--software-rsa-bits", "2048"}, {{"APPLIANCE_SYSTEMD_BUS", (*systemd)->bus_address()}});
  ASSERT_TRUE(sup.WaitReady()) << sup.log();
  EXPECT_NE(sup.log().find("systemd runner, unit appliance-model-1.service"), std::string::npos)
      << sup.log();

  const fs::path ref = dir.path() / "reference.json";
  attest::testing::WriteFileOrDie(
      ref, attest::testing::MakeReferenceValues({attest::testing::ExampleModelDigest()}));
  attest::client::ConnectOptions o;
  o.target = sup.target();
  o.client_cert_pem = client.cert_pem;
  o.client_key_pem = client.key_pem;
  o.launch_config = attest::testing::ReadFileOrDie(sup.config_path());
  o.reference = *attest::ParseReferenceValues(attest::testing::ReadFileOrDie(ref));
  o.extra_snp_roots_der = attest::client::LoadRootsDir(sup.state_dir().string())->snp;
  attest::CheckLog log;
  auto conn = attest::client::ConnectAttested(o, log);
  ASSERT_TRUE(conn.ok()) << conn.status();
  auto predict = [](const std::shared_ptr<grpc::Channel>& ch) {
    auto stub = appliance::v1::Inference::NewStub(ch);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    appliance::v1::PredictRequest req;
    req.set_input(R"({"instances": [[0.5, 0.1]]})");
    appliance::v1::PredictResponse resp;
    return stub->Predict(&ctx, req, &resp);
  };
  ASSERT_TRUE(predict(conn->channel).ok());

  SystemdRunnerOptions options;
  options.bus_address = (*systemd)->bus_address();
  auto control = SystemdRunner::Connect(options);
  ASSERT_TRUE(control.ok()) << control.status();
  ASSERT_TRUE((*control)->Kill("appliance-model-1.service", SIGKILL).ok());
  ASSERT_TRUE(sup.WaitForLog("container-started:", 2, 60000)) << sup.log();
  EXPECT_NE(sup.log().find("unit appliance-model-1.service failed (result signal"),
            std::string::npos)
      << sup.log();
  EXPECT_NE(sup.log().find("systemd runner, unit appliance-model-2.service"), std::string::npos)
      << sup.log();
  ASSERT_TRUE(sup.WaitForLog("listening:", 2, 10000)) << sup.log();

  attest::CheckLog log2;
  auto again = attest::client::ConnectAttested(o, log2);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->claims.events.back(), "container-restart");
  EXPECT_TRUE(predict(again->channel).ok());

  EXPECT_EQ(sup.Stop(30000), 0) << sup.log();  // it stops the model's unit first
  auto state = (*control)->ReadProperty("appliance-model-2.service",
                                        "org.freedesktop.systemd1.Unit", "ActiveState", 's');
  EXPECT_TRUE(!state.ok() || *state == "inactive" || *state == "failed") << *state;
}

TEST(SystemdRunnerTest, MissingBusIsAClearError) {
  SystemdRunnerOptions options;
  options.bus_address = "unix:path=/nonexistent/bus";
  options.call_timeout = absl::Seconds(2);
  auto runner = SystemdRunner::Connect(options);
  ASSERT_FALSE(runner.ok());
  EXPECT_EQ(runner.status().code(), absl::StatusCode::kUnavailable) << runner.status();
}

}  // namespace
}  // namespace appliance::supervisor
