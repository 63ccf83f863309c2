#include "supervisor/systemd_runner.h"

#include <signal.h>
#include <systemd/sd-bus.h>

#include <map>

#include "absl/strings/str_cat.h"
#include "attest/status.h"

namespace appliance::supervisor {
namespace {

constexpr char kDest[] = "org.freedesktop.systemd1";
constexpr char kPath[] = "/org/freedesktop/systemd1";
constexpr char kManager[] = "org.freedesktop.systemd1.Manager";

struct BusError {
  sd_bus_error e = SD_BUS_ERROR_NULL;
  ~BusError() { sd_bus_error_free(&e); }
};

struct Msg {
  sd_bus_message* m = nullptr;
  ~Msg() { sd_bus_message_unref(m); }
};

absl::Status Fail(absl::string_view call, int r, const sd_bus_error* e = nullptr) {
  const bool named = e != nullptr && sd_bus_error_is_set(e);
  std::string detail =
      named ? absl::StrCat(e->name, ": ", e->message ? e->message : "") : std::string(strerror(-r));
  if (named && (sd_bus_error_has_name(e, SD_BUS_ERROR_DISCONNECTED) ||
                sd_bus_error_has_name(e, SD_BUS_ERROR_NO_REPLY))) {  // synthesized by sd-bus
    return sd_bus_error_has_name(e, SD_BUS_ERROR_NO_REPLY)
               ? absl::DeadlineExceededError(absl::StrCat("sd-bus ", call, ": no reply: ", detail))
               : absl::UnavailableError(absl::StrCat("sd-bus ", call, ": bus gone: ", detail));
  }
  if (named) {  // an answer from systemd: say what it said
    if (sd_bus_error_has_name(e, "org.freedesktop.systemd1.NoSuchUnit")) {
      return absl::NotFoundError(absl::StrCat("sd-bus ", call, ": ", detail));
    }
    // Without polkit, systemd answers an unprivileged caller with AccessDenied or
    // InteractiveAuthorizationRequired.
    if (r == -EACCES || r == -EPERM ||
        sd_bus_error_has_name(e, "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired")) {
      return absl::PermissionDeniedError(
          absl::StrCat("sd-bus ", call, ": permission denied (", detail,
                       "); starting units needs root with CAP_SYS_ADMIN or a polkit rule"));
    }
    return absl::FailedPreconditionError(absl::StrCat("sd-bus ", call, ": ", detail));
  }
  if (r == -ETIMEDOUT)
    return absl::DeadlineExceededError(absl::StrCat("sd-bus ", call, ": timed out"));
  if (r == -ECONNREFUSED || r == -ENOENT || r == -ECONNRESET || r == -ENOTCONN) {
    return absl::UnavailableError(absl::StrCat("sd-bus ", call, ": bus gone: ", detail));
  }
  if (r == -EACCES || r == -EPERM) {
    return absl::PermissionDeniedError(absl::StrCat("sd-bus ", call, ": ", detail));
  }
  return absl::InternalError(absl::StrCat("sd-bus ", call, ": ", detail));
}

#define BUS_OK(expr, call)               \
  do {                                   \
    int _r = (expr);                     \
    if (_r < 0) return Fail((call), _r); \
  } while (0)

}  // namespace

struct SystemdRunner::Impl {
  sd_bus* bus = nullptr;
  sd_bus_slot* job_slot = nullptr;
  SystemdRunnerOptions options;
  std::map<std::string, std::string> finished_jobs;  // job path → result, from JobRemoved

  ~Impl() {
    sd_bus_slot_unref(job_slot);
    sd_bus_flush_close_unref(bus);
  }

  uint64_t TimeoutUsec() const {
    return static_cast<uint64_t>(absl::ToInt64Microseconds(options.call_timeout));
  }

  static int OnJobRemoved(sd_bus_message* m, void* userdata, sd_bus_error*) {
    uint32_t id = 0;
    const char *path = nullptr, *unit = nullptr, *result = nullptr;
    if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) >= 0 && path && result) {
      static_cast<Impl*>(userdata)->finished_jobs[path] = result;
    }
    return 0;
  }

  // Processes bus traffic until `done()` or the deadline.
  template <typename Done>
  absl::Status Pump(Done done, absl::Time deadline, absl::string_view what) {
    while (!done()) {
      int r = sd_bus_process(bus, nullptr);
      if (r < 0) return Fail(absl::StrCat("process (", what, ")"), r);
      if (r > 0) continue;
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        return absl::DeadlineExceededError(absl::StrCat("sd-bus: timed out waiting for ", what));
      }
      r = sd_bus_wait(bus, static_cast<uint64_t>(absl::ToInt64Microseconds(left)));
      if (r < 0 && r != -EINTR) return Fail(absl::StrCat("wait (", what, ")"), r);
    }
    return absl::OkStatus();
  }

  absl::Status WaitJob(const std::string& job, absl::string_view what) {
    RETURN_IF_ERROR(Pump([&] { return finished_jobs.count(job) > 0; },
                         absl::Now() + options.call_timeout, what));
    std::string result = finished_jobs[job];
    finished_jobs.erase(job);
    if (result != "done") {
      return absl::FailedPreconditionError(absl::StrCat("systemd job for ", what, ": ", result));
    }
    return absl::OkStatus();
  }

  // Unloads a failed unit so that its name is free again (best effort: nothing to do otherwise).
  void ResetFailed(const std::string& unit) {
    sd_bus_call_method(bus, kDest, kPath, kManager, "ResetFailedUnit", nullptr, nullptr, "s",
                       unit.c_str());
  }

  absl::StatusOr<std::string> UnitPath(const std::string& unit) {
    BusError err;
    Msg reply;
    int r = sd_bus_call_method(bus, kDest, kPath, kManager, "GetUnit", &err.e, &reply.m, "s",
                               unit.c_str());
    if (r < 0) return Fail(absl::StrCat("GetUnit(", unit, ")"), r, &err.e);
    const char* path = nullptr;
    BUS_OK(sd_bus_message_read(reply.m, "o", &path), "GetUnit reply");
    return std::string(path);
  }
};

std::string UnitExit::Describe() const {
  return absl::StrCat(active_state, " (result ", result, ", code ", main_code, ", status ",
                      main_status, ")");
}

SystemdRunner::SystemdRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SystemdRunner::~SystemdRunner() = default;

absl::StatusOr<std::unique_ptr<SystemdRunner>> SystemdRunner::Connect(
    const SystemdRunnerOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (options.bus_address.empty()) {
    BUS_OK(sd_bus_open_system(&impl->bus), "open system bus");
  } else {
    BUS_OK(sd_bus_new(&impl->bus), "new");
    BUS_OK(sd_bus_set_address(impl->bus, options.bus_address.c_str()), "set address");
    BUS_OK(sd_bus_set_bus_client(impl->bus, 1), "bus client");
    BUS_OK(sd_bus_start(impl->bus), absl::StrCat("connect to ", options.bus_address));
  }
  BUS_OK(sd_bus_set_method_call_timeout(impl->bus, impl->TimeoutUsec()), "call timeout");
  BUS_OK(sd_bus_match_signal(impl->bus, &impl->job_slot, kDest, kPath, kManager, "JobRemoved",
                             &Impl::OnJobRemoved, impl.get()),
         "match JobRemoved");
  BusError err;
  int r = sd_bus_call_method(impl->bus, kDest, kPath, kManager, "Subscribe", &err.e, nullptr, "");
  if (r < 0) return Fail("Subscribe", r, &err.e);
  return std::unique_ptr<SystemdRunner>(new SystemdRunner(std::move(impl)));
}

absl::Status SystemdRunner::Start(const std::string& unit, const ContainerSpec& spec) {
  if (spec.argv.empty()) return absl::InvalidArgumentError("systemd runner: no command");
  sd_bus* bus = impl_->bus;
  Msg m;
  BUS_OK(sd_bus_message_new_method_call(bus, &m.m, kDest, kPath, kManager, "StartTransientUnit"),
         "new call");
  BUS_OK(sd_bus_message_append(m.m, "ss", unit.c_str(), "fail"), "append name");
  BUS_OK(sd_bus_message_open_container(m.m, 'a', "(sv)"), "properties");
  auto str = [&](const char* k, const std::string& v) {
    return sd_bus_message_append(m.m, "(sv)", k, "s", v.c_str());
  };
  auto boolean = [&](const char* k, bool v) {
    return sd_bus_message_append(m.m, "(sv)", k, "b", v ? 1 : 0);
  };
  auto u64 = [&](const char* k, uint64_t v) {
    return sd_bus_message_append(m.m, "(sv)", k, "t", v);
  };
  BUS_OK(str("Description", "appliance model container (measured)"), "Description");
  BUS_OK(str("Type", "exec"), "Type");
  BUS_OK(str("Restart", "no"), "Restart");
  BUS_OK(str("RootDirectory", spec.rootfs.string()), "RootDirectory");
  BUS_OK(str("WorkingDirectory", spec.working_dir.empty() ? "/" : spec.working_dir),
         "WorkingDirectory");
  BUS_OK(boolean("DynamicUser", true), "DynamicUser");
  // The supervisor (root without CAP_DAC_OVERRIDE) must be able to connect to the socket the
  // dynamic user creates: no umask. Only the two of them can reach /run/model (0700 parent).
  BUS_OK(sd_bus_message_append(m.m, "(sv)", "UMask", "u", 0u), "UMask");
  BUS_OK(boolean("NoNewPrivileges", true), "NoNewPrivileges");
  BUS_OK(str("ProtectSystem", "strict"), "ProtectSystem");
  BUS_OK(str("ProtectHome", "yes"), "ProtectHome");
  BUS_OK(boolean("PrivateDevices", true), "PrivateDevices");
  BUS_OK(boolean("PrivateNetwork", true), "PrivateNetwork");
  BUS_OK(boolean("PrivateTmp", true), "PrivateTmp");
  BUS_OK(boolean("LockPersonality", true), "LockPersonality");
  BUS_OK(u64("CapabilityBoundingSet", 0), "CapabilityBoundingSet");
  BUS_OK(u64("AmbientCapabilities", 0), "AmbientCapabilities");
  BUS_OK(u64("RestrictNamespaces", 0), "RestrictNamespaces");  // no namespace type allowed
  BUS_OK(sd_bus_message_append(m.m, "(sv)", "SystemCallFilter", "(bas)", 1, 1, "@system-service"),
         "SystemCallFilter");
  BUS_OK(sd_bus_message_append(m.m, "(sv)", "RestrictAddressFamilies", "(bas)", 1, 1, "AF_UNIX"),
         "RestrictAddressFamilies");
  BUS_OK(sd_bus_message_append(m.m, "(sv)", "BindPaths", "a(ssbt)", 1, spec.socket_dir.c_str(),
                               "/run/model", 0, static_cast<uint64_t>(0)),
         "BindPaths");
  if (!impl_->options.bound_to.empty()) {
    BUS_OK(sd_bus_message_append(m.m, "(sv)", "BindsTo", "as", 1, impl_->options.bound_to.c_str()),
           "BindsTo");
  }
  if (impl_->options.memory_max_bytes)
    BUS_OK(u64("MemoryMax", impl_->options.memory_max_bytes), "MemoryMax");
  if (impl_->options.cpu_quota_percent) {
    BUS_OK(u64("CPUQuotaPerSecUSec", impl_->options.cpu_quota_percent * 10000), "CPUQuota");
  }
  {  // Environment (as) and ExecStart (a(sasb)), built element by element.
    std::vector<char*> env;
    for (const auto& e : spec.env) env.push_back(const_cast<char*>(e.c_str()));
    env.push_back(nullptr);
    BUS_OK(sd_bus_message_open_container(m.m, 'r', "sv"), "Environment");
    BUS_OK(sd_bus_message_append(m.m, "s", "Environment"), "Environment");
    BUS_OK(sd_bus_message_open_container(m.m, 'v', "as"), "Environment");
    BUS_OK(sd_bus_message_append_strv(m.m, env.data()), "Environment");
    BUS_OK(sd_bus_message_close_container(m.m), "Environment");
    BUS_OK(sd_bus_message_close_container(m.m), "Environment");
    std::vector<char*> argv;
    for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    BUS_OK(sd_bus_message_open_container(m.m, 'r', "sv"), "ExecStart");
    BUS_OK(sd_bus_message_append(m.m, "s", "ExecStart"), "ExecStart");
    BUS_OK(sd_bus_message_open_container(m.m, 'v', "a(sasb)"), "ExecStart");
    BUS_OK(sd_bus_message_open_container(m.m, 'a', "(sasb)"), "ExecStart");
    BUS_OK(sd_bus_message_open_container(m.m, 'r', "sasb"), "ExecStart");
    BUS_OK(sd_bus_message_append(m.m, "s", spec.argv[0].c_str()), "ExecStart");
    BUS_OK(sd_bus_message_append_strv(m.m, argv.data()), "ExecStart");
    BUS_OK(sd_bus_message_append(m.m, "b", 0), "ExecStart");
    for (int i = 0; i < 4; ++i) BUS_OK(sd_bus_message_close_container(m.m), "ExecStart");
  }
  BUS_OK(sd_bus_message_close_container(m.m), "properties");
  BUS_OK(sd_bus_message_append(m.m, "a(sa(sv))", 0), "aux units");
  BusError err;
  Msg reply;
  int r = sd_bus_call(bus, m.m, impl_->TimeoutUsec(), &err.e, &reply.m);
  if (r < 0) return Fail(absl::StrCat("StartTransientUnit(", unit, ")"), r, &err.e);
  const char* job = nullptr;
  BUS_OK(sd_bus_message_read(reply.m, "o", &job), "StartTransientUnit reply");
  absl::Status started = impl_->WaitJob(job, absl::StrCat("starting ", unit));
  if (absl::IsFailedPrecondition(started)) {
    // The start job failed (e.g. status 200/CHDIR): say how, and unload the failed unit so that
    // its name is free again.
    std::string how;
    auto result = ReadProperty(unit, "org.freedesktop.systemd1.Service", "Result", 's');
    auto status = ReadProperty(unit, "org.freedesktop.systemd1.Service", "ExecMainStatus", 'i');
    if (result.ok() && status.ok())
      how = absl::StrCat(" (result ", *result, ", status ", *status, ")");
    impl_->ResetFailed(unit);
    return absl::FailedPreconditionError(absl::StrCat(started.message(), how));
  }
  return started;
}

absl::StatusOr<UnitExit> SystemdRunner::WaitForExit(const std::string& unit,
                                                    absl::Duration timeout) {
  // systemd unloads a transient unit that ended successfully (CollectMode=inactive); a failed
  // one stays loaded until reset. Not loaded therefore means: exited with status 0.
  const UnitExit collected{"inactive", "success", CLD_EXITED, 0};
  auto path_or = impl_->UnitPath(unit);
  if (absl::IsNotFound(path_or.status())) return collected;
  if (!path_or.ok()) return path_or.status();
  const std::string path = *path_or;
  bool changed = true;
  sd_bus_slot* slot = nullptr;
  BUS_OK(sd_bus_match_signal(
             impl_->bus, &slot, kDest, path.c_str(), "org.freedesktop.DBus.Properties",
             "PropertiesChanged",
             [](sd_bus_message*, void* flag, sd_bus_error*) {
               *static_cast<bool*>(flag) = true;
               return 0;
             },
             &changed),
         "match PropertiesChanged");
  std::unique_ptr<sd_bus_slot, decltype(&sd_bus_slot_unref)> slot_ref(slot, sd_bus_slot_unref);
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (changed) {  // re-read only when systemd said something changed
      changed = false;
      auto state_or = ReadProperty(unit, "org.freedesktop.systemd1.Unit", "ActiveState", 's');
      if (absl::IsNotFound(state_or.status())) return collected;
      if (!state_or.ok()) return state_or.status();
      const std::string state = *state_or;
      if (state == "inactive" || state == "failed") {
        UnitExit exit;
        exit.active_state = state;
        auto result = ReadProperty(unit, "org.freedesktop.systemd1.Service", "Result", 's');
        auto code = ReadProperty(unit, "org.freedesktop.systemd1.Service", "ExecMainCode", 'i');
        auto status = ReadProperty(unit, "org.freedesktop.systemd1.Service", "ExecMainStatus", 'i');
        for (const auto* r : {&result, &code, &status}) {
          if (absl::IsNotFound(r->status())) return collected;
          RETURN_IF_ERROR(r->status());
        }
        exit.result = *result;
        exit.main_code = std::stoi(*code);
        exit.main_status = std::stoi(*status);
        return exit;
      }
    }
    RETURN_IF_ERROR(impl_->Pump([&] { return changed; }, deadline, absl::StrCat(unit, " to stop")));
  }
}

absl::Status SystemdRunner::Stop(const std::string& unit) {
  BusError err;
  Msg reply;
  int r = sd_bus_call_method(impl_->bus, kDest, kPath, kManager, "StopUnit", &err.e, &reply.m, "ss",
                             unit.c_str(), "replace");
  if (r < 0) {
    if (sd_bus_error_has_name(&err.e, "org.freedesktop.systemd1.NoSuchUnit"))
      return absl::OkStatus();
    return Fail(absl::StrCat("StopUnit(", unit, ")"), r, &err.e);
  }
  const char* job = nullptr;
  BUS_OK(sd_bus_message_read(reply.m, "o", &job), "StopUnit reply");
  RETURN_IF_ERROR(impl_->WaitJob(job, absl::StrCat("stopping ", unit)));
  // A failed unit stays loaded until reset; reset it so that its name can be reused.
  impl_->ResetFailed(unit);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> SystemdRunner::ListUnits(const std::string& pattern) {
  BusError err;
  Msg reply;
  Msg call;
  BUS_OK(sd_bus_message_new_method_call(impl_->bus, &call.m, kDest, kPath, kManager,
                                        "ListUnitsByPatterns"),
         "new call");
  BUS_OK(sd_bus_message_append(call.m, "as", 0), "states");
  BUS_OK(sd_bus_message_append(call.m, "as", 1, pattern.c_str()), "patterns");
  int r = sd_bus_call(impl_->bus, call.m, impl_->TimeoutUsec(), &err.e, &reply.m);
  if (r < 0) return Fail(absl::StrCat("ListUnitsByPatterns(", pattern, ")"), r, &err.e);
  std::vector<std::string> names;
  BUS_OK(sd_bus_message_enter_container(reply.m, 'a', "(ssssssouso)"), "ListUnits reply");
  for (;;) {
    const char* name = nullptr;
    r = sd_bus_message_read(reply.m, "(ssssssouso)", &name, nullptr, nullptr, nullptr, nullptr,
                            nullptr, nullptr, nullptr, nullptr, nullptr);
    if (r < 0) return Fail("ListUnits reply", r);
    if (r == 0) break;
    names.emplace_back(name);
  }
  return names;
}

absl::Status SystemdRunner::Kill(const std::string& unit, int signal) {
  BusError err;
  int r = sd_bus_call_method(impl_->bus, kDest, kPath, kManager, "KillUnit", &err.e, nullptr, "ssi",
                             unit.c_str(), "main", signal);
  if (r < 0) return Fail(absl::StrCat("KillUnit(", unit, ")"), r, &err.e);
  return absl::OkStatus();
}

absl::StatusOr<std::string> SystemdRunner::ReadProperty(const std::string& unit,
                                                        const std::string& interface,
                                                        const std::string& name, char type) {
  ASSIGN_OR_RETURN(std::string path, impl_->UnitPath(unit));
  BusError err;
  Msg reply;
  const char sig[2] = {type, 0};
  int r = sd_bus_get_property(impl_->bus, kDest, path.c_str(), interface.c_str(), name.c_str(),
                              &err.e, &reply.m, sig);
  if (r < 0) return Fail(absl::StrCat("Get(", unit, ".", name, ")"), r, &err.e);
  switch (type) {
    case 's': {
      const char* v = nullptr;
      BUS_OK(sd_bus_message_read(reply.m, "s", &v), name);
      return std::string(v ? v : "");
    }
    case 'b': {
      int v = 0;
      BUS_OK(sd_bus_message_read(reply.m, "b", &v), name);
      return std::string(v ? "yes" : "no");
    }
    case 't': {
      uint64_t v = 0;
      BUS_OK(sd_bus_message_read(reply.m, "t", &v), name);
      return std::to_string(v);
    }
    case 'u': {
      uint32_t v = 0;
      BUS_OK(sd_bus_message_read(reply.m, "u", &v), name);
      return std::to_string(v);
    }
    case 'i': {
      int32_t v = 0;
      BUS_OK(sd_bus_message_read(reply.m, "i", &v), name);
      return std::to_string(v);
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat("property type ", sig));
  }
}

namespace {

class SystemdModelRunner : public ModelRunner {
 public:
  SystemdModelRunner(std::unique_ptr<SystemdRunner> runner, std::string prefix)
      : runner_(std::move(runner)), prefix_(std::move(prefix)) {}
  ~SystemdModelRunner() override { Stop(); }
  std::string name() const override { return "systemd"; }
  SocketDirAccess socket_access() const override { return SocketDirAccess::kDynamicUser; }

  absl::Status Start(const ContainerSpec& spec, uint32_t generation) override {
    Stop();
    const std::string unit = absl::StrCat(prefix_, generation, ".service");
    RETURN_IF_ERROR(runner_->Start(unit, spec));
    unit_ = unit;
    return absl::OkStatus();
  }

  std::string Describe() const override { return absl::StrCat("unit ", unit_); }

  absl::StatusOr<std::string> WaitForExit(absl::Duration timeout) override {
    if (unit_.empty()) return absl::NotFoundError("no model unit was started");
    auto exit = runner_->WaitForExit(unit_, timeout);
    if (absl::IsDeadlineExceeded(exit.status())) return exit.status();
    std::string how = exit.ok() ? absl::StrCat("unit ", unit_, " ", exit->Describe())
                                : absl::StrCat("unit ", unit_, " lost: ", exit.status().message());
    (void)runner_->Stop(unit_);  // unloads a failed unit
    unit_.clear();
    return how;
  }

  void Stop() override {
    if (!unit_.empty()) (void)runner_->Stop(unit_);
    unit_.clear();
  }

 private:
  std::unique_ptr<SystemdRunner> runner_;
  std::string prefix_;
  std::string unit_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ModelRunner>> MakeSystemdModelRunner(
    const SystemdRunnerOptions& options, std::vector<std::string>* stale,
    const std::string& prefix) {
  ASSIGN_OR_RETURN(auto runner, SystemdRunner::Connect(options));
  ASSIGN_OR_RETURN(auto leftovers, runner->ListUnits(prefix + "*.service"));
  for (const auto& unit : leftovers) {
    RETURN_IF_ERROR(runner->Stop(unit));
    if (stale != nullptr) stale->push_back(unit);
  }
  return std::unique_ptr<ModelRunner>(new SystemdModelRunner(std::move(runner), prefix));
}

}  // namespace appliance::supervisor
