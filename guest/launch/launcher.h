// appliance-launch's commands over the libvirt C API (issue 9, docs/launch.md): probe, define,
// start, wait, stop, undefine, status. Each command returns a JSON result or a status whose code
// the CLI maps to its exit code (InvalidArgument: 2, usage or malformed input; anything else: 1,
// the domain or the host failed, with libvirt's own message). libvirt stays out of this header.
#ifndef GUEST_LAUNCH_LAUNCHER_H_
#define GUEST_LAUNCH_LAUNCHER_H_

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "domain_xml.h"

namespace appliance::launch {

struct LaunchOptions {
  std::string connect;  // libvirt URI; empty: libvirt's default (LIBVIRT_DEFAULT_URI, ...)
  std::string name;
  std::filesystem::path image_dir;      // the image build's output folder
  std::filesystem::path launch_config;  // the launch configuration file
  std::optional<Platform> platform;     // default: what the probe chooses
  std::optional<bool> kvm;              // --accel kvm|tcg; default: the probe's answer
  uint64_t memory_mib = 2048;
  uint32_t vcpus = 2;
  std::chrono::seconds timeout{0};         // 0: the command's default
  std::filesystem::path state_dir;         // default: per URI (docs/launch.md)
  std::string network;                     // a libvirt network; empty: user-mode with a forward
  std::string host_address = "127.0.0.1";  // user mode: where the forward listens
  uint16_t host_port = 0;                  // user mode: 0 picks a free port at define
  std::filesystem::path firmware;          // default per platform (docs/launch.md)
  std::filesystem::path nvram_template;
  std::filesystem::path tdx_qgs_socket = "/var/run/tdx-qgs/qgs.socket";
  // Generate for a host with these versions instead of the connected one's (--dump-xml needs
  // no connection when both are given).
  std::optional<Version> libvirt_version, qemu_version;
  bool dump_xml = false;
  bool force = false;  // stop: destroy at once instead of an ACPI shutdown first
};

class Host;  // a libvirt connection (launcher.cc)

class Launcher {
 public:
  // Opens the connection (bounded by the caller's watchdog; libvirt's errors become statuses).
  static absl::StatusOr<std::unique_ptr<Launcher>> Open(const std::string& uri);
  ~Launcher();

  absl::StatusOr<nlohmann::ordered_json> Probe(const LaunchOptions& o);
  // The XML that define would write (no libvirt state touched), and define itself.
  absl::StatusOr<std::string> Xml(const LaunchOptions& o);
  absl::StatusOr<nlohmann::ordered_json> Define(const LaunchOptions& o);
  absl::StatusOr<nlohmann::ordered_json> Start(const LaunchOptions& o);
  absl::StatusOr<nlohmann::ordered_json> Wait(const LaunchOptions& o);
  absl::StatusOr<nlohmann::ordered_json> Stop(const LaunchOptions& o);
  absl::StatusOr<nlohmann::ordered_json> Undefine(const LaunchOptions& o);
  absl::StatusOr<nlohmann::ordered_json> Status(const LaunchOptions& o);

 private:
  explicit Launcher(std::unique_ptr<Host> host);
  absl::StatusOr<DomainSpec> Spec(const LaunchOptions& o, bool for_define);
  std::unique_ptr<Host> host_;
};

// The XML for a host described only by versions (no connection): --dump-xml with both
// --libvirt-version and --qemu-version, and the golden tests.
absl::StatusOr<std::string> OfflineXml(const LaunchOptions& o);

// Copies a (sparse) disk image: only its data extents are read and written; the copy has the
// same size and holes. Writes DST.part and renames it, so a copy is whole or absent.
absl::Status CopySparse(const std::filesystem::path& src, const std::filesystem::path& dst);

// The console text without colour escapes (ESC [ ... letter) and carriage returns.
std::string ConsoleText(absl::string_view serial);

}  // namespace appliance::launch

#endif  // GUEST_LAUNCH_LAUNCHER_H_
