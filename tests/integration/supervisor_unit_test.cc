// The supervisor as the image runs it (issue 6 item 2): guest/systemd/appliance-supervisor.service
// installed into a real systemd (booted in a container over the host's files), with its swtpm as
// another unit of that systemd and the coordinator's `appliance-verify connect` in the container's
// network namespace. Proves Type=notify readiness, the journal fields of every measurement, the
// watchdog (pings stopped by a test hook → systemd restarts the supervisor, which re-measures and
// serves), the model unit bound to the supervisor's, and clear sd-bus permission and bus-gone
// errors.
#include "supervisor_unit.h"

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "appliance_fixture.h"
#include "supervisor/systemd_runner.h"
#include "test_support.h"

namespace appliance::supervisor {
namespace {

namespace fs = std::filesystem;
using attest::testing::ProcessResult;
using attest::testing::RunProcess;
using attest::testing::ScopedTempDir;

constexpr const char* kUnit = attest::testing::SupervisorUnit::kUnit;
constexpr char kService[] = "org.freedesktop.systemd1.Service";
constexpr char kUnitIface[] = "org.freedesktop.systemd1.Unit";

std::string Text(const ProcessResult& r) { return absl::StrCat(r.out, r.err); }

// Prints how long each step took (the CI log shows where the time goes).
class Steps {
 public:
  void operator()(const char* what) {
    const auto now = std::chrono::steady_clock::now();
    std::printf("  %-44s %6lld ms\n", what,
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(now - last_).count()));
    last_ = now;
  }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// Entries of the container's journal whose APPLIANCE_EVENT is `event`: their fields.
std::vector<std::map<std::string, std::string>> JournalEvents(const fs::path& journal_root,
                                                              const std::string& event) {
  std::vector<std::map<std::string, std::string>> out;
  std::error_code ec;
  for (const auto& dir : fs::directory_iterator(journal_root, ec)) {
    sd_journal* j = nullptr;
    if (sd_journal_open_directory(&j, dir.path().c_str(), 0) < 0) continue;
    sd_journal_add_match(j, ("APPLIANCE_EVENT=" + event).c_str(), 0);
    SD_JOURNAL_FOREACH(j) {
      std::map<std::string, std::string> fields;
      const void* data = nullptr;
      size_t len = 0;
      SD_JOURNAL_FOREACH_DATA(j, data, len) {
        std::string f(static_cast<const char*>(data), len);
        const auto eq = f.find('=');
        if (eq != std::string::npos) fields[f.substr(0, eq)] = f.substr(eq + 1);
      }
      out.push_back(std::move(fields));
    }
    sd_journal_close(j);
  }
  return out;
}

class SupervisorUnitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    attest::testing::SupervisorUnit::Options o;
    o.watchdog_hook = true;
    auto unit = attest::testing::SupervisorUnit::Create(dir_.path(), o);
    if (absl::IsFailedPrecondition(unit.status())) GTEST_SKIP() << unit.status();
    ASSERT_TRUE(unit.ok()) << unit.status();
    unit_ = std::move(*unit);
    SystemdRunnerOptions bo;
    bo.bus_address = unit_->bus_address();
    auto bus = SystemdRunner::Connect(bo);
    ASSERT_TRUE(bus.ok()) << bus.status();
    bus_ = std::move(*bus);
  }

  // appliance-verify connect --predict from the container's network (with the host's files).
  nlohmann::json Connect() {
    const auto r = RunProcess(
        unit_->systemd().Inside(
            unit_->ConnectArgv({"--predict", R"({"instances": [[0.5, 0.1]]})", "--json"}),
            /*all=*/false),
        120);
    EXPECT_EQ(r.exit_code, 0) << Text(r);
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << Text(r);
    return j;
  }

  std::string Property(const std::string& unit, const char* iface, const char* name, char type) {
    auto v = bus_->ReadProperty(unit, iface, name, type);
    return v.ok() ? *v : absl::StrCat("<", v.status().message(), ">");
  }

  ProcessResult Systemctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"systemctl"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(unit_->systemd().Inside(argv));
  }

  ScopedTempDir dir_;
  std::unique_ptr<attest::testing::SupervisorUnit> unit_;
  std::unique_ptr<SystemdRunner> bus_;
};

TEST_F(SupervisorUnitTest, NotifyServiceServesAndSurvivesItsWatchdog) {
  Steps step;
  struct stat st {};
  ASSERT_EQ(stat((unit_->systemd().root() / "var/lib/appliance/model-socket").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0733u);
  // Type=notify: `systemctl start` returns only after READY=1, i.e. measured and serving.
  const auto start = unit_->Start();
  ASSERT_EQ(start.exit_code, 0) << Text(start) << unit_->JournalText();
  step("systemctl start (to READY=1)");
  EXPECT_EQ(Property(kUnit, kUnitIface, "ActiveState", 's'), "active");
  for (const auto& [name, type, want] : std::vector<std::tuple<const char*, char, std::string>>{
           {"Type", 's', "notify"},
           {"NotifyAccess", 's', "main"},
           {"Restart", 's', "on-failure"},
           {"WatchdogUSec", 't', "5000000"},
           {"NoNewPrivileges", 'b', "yes"},
           {"ProtectSystem", 's', "strict"},
           {"ProtectHome", 's', "yes"},
           {"PrivateTmp", 'b', "yes"},
           {"CapabilityBoundingSet", 't', std::to_string(1ull << 21)},  // CAP_SYS_ADMIN only
           {"DevicePolicy", 's', "closed"},
           {"LimitCORE", 't', "0"}}) {
    EXPECT_EQ(Property(kUnit, kService, name, type), want) << name;
  }
  EXPECT_TRUE(absl::StrContains(Property(kUnit, kService, "StatusText", 's'), "serving"));
  const std::string first_pid = Property(kUnit, kService, "MainPID", 'u');

  // The model runs as its own unit, bound to the supervisor's.
  const auto show = Systemctl({"show", "-p", "BindsTo", "appliance-model-1.service"});
  EXPECT_EQ(show.out, absl::StrCat("BindsTo=", kUnit, "\n")) << Text(show);

  nlohmann::json first = Connect();
  step("appliance-verify connect --predict");
  EXPECT_TRUE(first.value("verified", false)) << first.dump(2);
  EXPECT_TRUE(first.contains("prediction")) << first.dump(2);
  EXPECT_EQ(first["claims"]["runtime_events"],
            nlohmann::json::array({"launch-config", "container-manifest"}));

  // Every measurement is in the journal with its fields.
  auto manifests = JournalEvents(unit_->journal_root(), "container-manifest");
  ASSERT_EQ(manifests.size(), 1u);
  EXPECT_EQ(manifests[0]["CONTAINER_DIGEST"], attest::testing::ExampleModelDigest());
  EXPECT_EQ(manifests[0]["PCR"], "15");
  EXPECT_EQ(manifests[0]["_SYSTEMD_UNIT"], kUnit);
  auto configs = JournalEvents(unit_->journal_root(), "launch-config");
  ASSERT_EQ(configs.size(), 1u);
  EXPECT_EQ(configs[0]["PCR"], "15");
  EXPECT_EQ(configs[0]["LAUNCH_CONFIG_SHA256"].size(), 64u);

  // The test hook stops the watchdog pings; systemd must kill and restart the supervisor.
  step("journal checks");
  ASSERT_TRUE(bus_->Kill(kUnit, SIGUSR1).ok());
  bool restarted = false;
  for (int i = 0; i < 600 && !restarted; ++i) {  // ≤ 60 s: 5 s watchdog, 2 s RestartSec, start
    restarted = Property(kUnit, kService, "NRestarts", 'u') == "1" &&
                Property(kUnit, kUnitIface, "ActiveState", 's') == "active";
    if (!restarted) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(restarted) << unit_->JournalText();
  step("watchdog fired, supervisor restarted");
  EXPECT_NE(Property(kUnit, kService, "MainPID", 'u'), first_pid);
  EXPECT_EQ(JournalEvents(unit_->journal_root(), "watchdog-paused").size(), 1u);
  const std::string journal = unit_->JournalText();
  EXPECT_TRUE(absl::StrContains(journal, "Watchdog timeout")) << journal;

  // The new process continued this boot's runtime log, re-measured the model and serves it.
  EXPECT_EQ(JournalEvents(unit_->journal_root(), "supervisor-restart").size(), 1u);
  EXPECT_EQ(JournalEvents(unit_->journal_root(), "container-manifest").size(), 2u);
  nlohmann::json second = Connect();
  step("appliance-verify connect --predict");
  EXPECT_TRUE(second.value("verified", false)) << second.dump(2);
  EXPECT_TRUE(second.contains("prediction")) << second.dump(2);
  EXPECT_EQ(second["claims"]["runtime_events"],
            nlohmann::json::array({"launch-config", "container-manifest", "supervisor-restart",
                                   "container-manifest"}));
  EXPECT_NE(second["claims"]["server_spki_sha256"], first["claims"]["server_spki_sha256"]);

  // Stopping the supervisor stops its model (the unit it started, and BindsTo=).
  const auto stop = unit_->Stop();
  EXPECT_EQ(stop.exit_code, 0) << Text(stop);
  step("systemctl stop");
  auto left = bus_->ListUnits("appliance-model-*");
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_TRUE(left->empty()) << (*left)[0];
}

// An unprivileged caller gets a clear permission error; a vanished bus a clear Unavailable.
TEST_F(SupervisorUnitTest, PermissionAndBusErrorsAreClear) {
  // A child as nobody reaches the container's bus socket through an O_PATH descriptor opened
  // while still root (nobody may not resolve /proc/<its init>/root); the bus sees uid 65534.
  const fs::path socket = unit_->systemd().root() / "run/dbus/system_bus_socket";
  int report[2];
  ASSERT_EQ(pipe(report), 0);
  const pid_t child = fork();
  if (child == 0) {
    close(report[0]);
    const int fd = open(socket.c_str(), O_PATH | O_CLOEXEC);
    std::string out;
    if (fd < 0 || setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 ||
        setresuid(65534, 65534, 65534) != 0) {
      out = "setup failed";
    } else {
      SystemdRunnerOptions o;
      o.bus_address = absl::StrCat("unix:path=/proc/self/fd/", fd);
      o.call_timeout = absl::Seconds(10);
      auto runner = SystemdRunner::Connect(o);
      if (!runner.ok()) {
        out = absl::StrCat("connect: ", runner.status().ToString());
      } else {
        ContainerSpec spec;
        spec.rootfs = "/";
        spec.socket_dir = "/nonexistent";
        spec.argv = {"/bin/true"};
        out = (*runner)->Start("appliance-model-nobody.service", spec).ToString();
      }
    }
    (void)!write(report[1], out.data(), out.size());
    _exit(0);
  }
  close(report[1]);
  std::string got;
  char buf[512];
  for (ssize_t n; (n = read(report[0], buf, sizeof(buf))) > 0;) got.append(buf, n);
  close(report[0]);
  waitpid(child, nullptr, 0);
  EXPECT_TRUE(absl::StartsWith(got, "PERMISSION_DENIED")) << got;
  EXPECT_TRUE(absl::StrContains(got, "StartTransientUnit(appliance-model-nobody.service)")) << got;
  EXPECT_TRUE(absl::StrContains(got, "CAP_SYS_ADMIN")) << got;

  // The bus goes away under a connected runner: every call fails quickly, none hangs.
  unit_.reset();
  const auto t0 = std::chrono::steady_clock::now();
  auto units = bus_->ListUnits("appliance-model-*");
  ASSERT_FALSE(units.ok());
  EXPECT_TRUE(absl::IsUnavailable(units.status())) << units.status();
  auto exit = bus_->WaitForExit("appliance-model-1.service", absl::Seconds(30));
  ASSERT_FALSE(exit.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
}

}  // namespace
}  // namespace appliance::supervisor
