#include "launcher.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/launch_config.h"

namespace appliance::launch {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kReadyLine[] = "appliance-supervisor: ready";
constexpr char kFailedLine[] = "appliance-supervisor: startup-failed";
constexpr size_t kMaxSerialRead = 16u << 20;
constexpr size_t kMaxCmdline = 4096;

// Files appliance-launch keeps in a domain's state directory; undefine removes exactly these.
constexpr const char* kStateFiles[] = {"disk.raw", "disk.raw.part", "OVMF_VARS.fd", "serial.log",
                                       "vmlinuz",  "initrd",        "vmlinuz.part", "initrd.part"};

absl::Status LibvirtError(absl::string_view what) {
  const char* msg = virGetLastErrorMessage();
  return absl::InternalError(absl::StrCat(what, ": ", msg ? msg : "unknown libvirt error"));
}

std::string StateName(int state) {
  switch (state) {
    case VIR_DOMAIN_NOSTATE:
      return "no state";
    case VIR_DOMAIN_RUNNING:
      return "running";
    case VIR_DOMAIN_BLOCKED:
      return "blocked";
    case VIR_DOMAIN_PAUSED:
      return "paused";
    case VIR_DOMAIN_SHUTDOWN:
      return "shutting down";
    case VIR_DOMAIN_SHUTOFF:
      return "shut off";
    case VIR_DOMAIN_CRASHED:
      return "crashed";
    case VIR_DOMAIN_PMSUSPENDED:
      return "suspended";
    default:
      return "unknown";
  }
}

std::string ShutoffReason(int reason) {
  switch (reason) {
    case VIR_DOMAIN_SHUTOFF_SHUTDOWN:
      return "the guest shut down";
    case VIR_DOMAIN_SHUTOFF_DESTROYED:
      return "destroyed";
    case VIR_DOMAIN_SHUTOFF_CRASHED:
      return "the guest crashed";
    case VIR_DOMAIN_SHUTOFF_FAILED:
      return "QEMU failed to start or died";
    case VIR_DOMAIN_SHUTOFF_DAEMON:
      return "stopped by libvirt";
    default:
      return "never started or stopped";
  }
}

struct DomainFree {
  void operator()(virDomainPtr d) const { virDomainFree(d); }
};
using Domain = std::unique_ptr<virDomain, DomainFree>;

// A TCP connect to host:port within `timeout`.
bool TcpAnswers(const std::string& host, uint16_t port, std::chrono::milliseconds timeout) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) return false;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  absl::Cleanup close_fd = [fd] { close(fd); };
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return true;
  if (errno != EINPROGRESS) return false;
  pollfd p{fd, POLLOUT, 0};
  if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
  int err = 0;
  socklen_t len = sizeof err;
  return getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
}

absl::StatusOr<uint16_t> FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  absl::Cleanup close_fd = [fd] { close(fd); };
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return absl::InternalError(absl::StrCat("no free loopback port: ", std::strerror(errno)));
  }
  return ntohs(addr.sin_port);
}

std::string ReadText(const fs::path& p, size_t max) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const auto size = static_cast<size_t>(std::max<std::streamoff>(in.tellg(), 0));
  const size_t from = size > max ? size - max : 0;
  in.seekg(static_cast<std::streamoff>(from));
  std::string out(size - from, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

// The last `lines` lines of `text`.
std::string Tail(const std::string& text, size_t lines) {
  size_t start = text.size();
  if (start > 0 && text[start - 1] == '\n') --start;  // a final newline ends the last line
  for (size_t n = 0; n < lines && start > 0; ++n) {
    const size_t nl = text.rfind('\n', start - 1);
    start = nl == std::string::npos ? 0 : nl;
  }
  return text.substr(start < text.size() && text[start] == '\n' ? start + 1 : start);
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The host part of a libvirt URI ("qemu+ssh://user@host:22/system" -> "host"); empty if local.
std::string UriHost(absl::string_view uri) {
  const size_t scheme = uri.find("://");
  if (scheme == absl::string_view::npos) return "";
  absl::string_view rest = uri.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?"));
  if (auto at = rest.rfind('@'); at != absl::string_view::npos) rest = rest.substr(at + 1);
  if (!rest.empty() && rest[0] == '[') return std::string(rest.substr(1, rest.find(']') - 1));
  return std::string(rest.substr(0, rest.find(':')));
}

// qemu:///embed?root=DIR -> DIR.
std::string EmbedRoot(absl::string_view uri) {
  if (!absl::StartsWith(uri, "qemu:///embed?")) return "";
  const size_t at = uri.find("root=");
  if (at == absl::string_view::npos) return "";
  absl::string_view root = uri.substr(at + 5);
  return std::string(root.substr(0, root.find('&')));
}

fs::path DefaultStateDir(const std::string& uri, const std::string& name) {
  if (std::string root = EmbedRoot(uri); !root.empty()) return fs::path(root) / "appliance" / name;
  if (geteuid() == 0) return fs::path("/var/lib/appliance-launch") / name;
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x == '/') {
    return fs::path(x) / "appliance-launch" / name;
  }
  const char* home = std::getenv("HOME");
  return fs::path(home && *home == '/' ? home : "/tmp") / ".local/state/appliance-launch" / name;
}

fs::path DefaultFirmware(Platform p) {
  switch (p) {
    case Platform::kVtpmOnly:
      return "/usr/share/OVMF/OVMF_CODE_4M.fd";
    case Platform::kSevSnp:
      return "/usr/share/ovmf/OVMF.amdsev.fd";
    case Platform::kTdx:
      return "/usr/share/ovmf/OVMF.inteltdx.fd";
  }
  return "";
}

absl::Status Bad(absl::string_view what) { return absl::InvalidArgumentError(what); }

// The image's files for a platform, checked to exist.
struct ImageFiles {
  fs::path disk, kernel, initrd;
  std::string cmdline;
};
absl::StatusOr<ImageFiles> ReadImage(const fs::path& dir, Platform p) {
  if (dir.empty()) return Bad("--image: the image build's output folder is required");
  const fs::path abs = fs::absolute(dir).lexically_normal();
  ImageFiles f{abs / "image.raw", abs / "image.vmlinuz", abs / "image.initrd", ""};
  std::vector<fs::path> need = {f.disk};
  if (p != Platform::kVtpmOnly)
    need.insert(need.end(), {f.kernel, f.initrd, abs / "image.cmdline"});
  for (const auto& n : need) {
    std::error_code ec;
    if (!fs::is_regular_file(n, ec)) {
      return Bad(absl::StrCat("--image: ", n.string(),
                              " is missing (an image build's output folder holds ",
                              "image.raw, image.vmlinuz, image.initrd, image.cmdline)"));
    }
  }
  if (p != Platform::kVtpmOnly) {
    auto bytes = attest::ReadFileBounded(abs / "image.cmdline", kMaxCmdline);
    if (!bytes.ok()) return Bad(absl::StrCat("--image: image.cmdline: ", bytes.status().message()));
    f.cmdline.assign(bytes->begin(), bytes->end());
    while (!f.cmdline.empty() && (f.cmdline.back() == '\n' || f.cmdline.back() == ' ')) {
      f.cmdline.pop_back();
    }
  }
  return f;
}

absl::StatusOr<uint16_t> ListenPort(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  uint32_t port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port == 0 || port > 65535) {
    return Bad(
        absl::StrCat("--launch-config: listen '", listen,
                     "' has no fixed port (a VM's supervisor port must be known to forward it)"));
  }
  return static_cast<uint16_t>(port);
}

struct LoadedConfig {
  std::vector<uint8_t> bytes;
  uint16_t guest_port = 0;
};
absl::StatusOr<LoadedConfig> LoadLaunchConfig(const fs::path& path, Platform p) {
  if (path.empty()) return Bad("--launch-config: required");
  auto bytes = attest::ReadFileBounded(path, attest::kMaxLaunchConfigSize);
  if (!bytes.ok()) return Bad(absl::StrCat("--launch-config: ", bytes.status().message()));
  auto cfg = attest::ParseLaunchConfig(*bytes);
  if (!cfg.ok()) return Bad(absl::StrCat("--launch-config: ", cfg.status().message()));
  if (cfg->platform != LaunchConfigPlatform(p)) {
    return Bad(absl::StrCat("--launch-config: its platform is '", cfg->platform, "', a ",
                            PlatformName(p), " domain needs '", LaunchConfigPlatform(p), "'"));
  }
  auto port = ListenPort(cfg->listen);
  if (!port.ok()) return port.status();
  return LoadedConfig{std::move(*bytes), *port};
}

absl::StatusOr<DomainSpec> BuildSpec(const LaunchOptions& o, Platform platform, bool kvm,
                                     const fs::path& state_dir, uint16_t host_port) {
  if (auto st = CheckName(o.name); !st.ok()) return st;
  auto image = ReadImage(o.image_dir, platform);
  if (!image.ok()) return image.status();
  auto cfg = LoadLaunchConfig(o.launch_config, platform);
  if (!cfg.ok()) return cfg.status();
  DomainSpec s;
  s.name = o.name;
  s.platform = platform;
  s.kvm = kvm || platform != Platform::kVtpmOnly;
  s.memory_mib = o.memory_mib;
  s.vcpus = o.vcpus;
  s.state_dir = state_dir;
  s.disk = state_dir / "disk.raw";
  s.serial_log = state_dir / "serial.log";
  s.firmware = o.firmware.empty() ? DefaultFirmware(platform) : fs::absolute(o.firmware);
  if (platform == Platform::kVtpmOnly) {
    s.nvram_template = o.nvram_template.empty() ? fs::path("/usr/share/OVMF/OVMF_VARS_4M.fd")
                                                : fs::absolute(o.nvram_template);
    s.nvram = state_dir / "OVMF_VARS.fd";
  } else {
    // The domain's own copies: the measured direct boot must use exactly the image's files.
    s.kernel = state_dir / "vmlinuz";
    s.initrd = state_dir / "initrd";
    s.cmdline = image->cmdline;
  }
  s.launch_config = std::move(cfg->bytes);
  s.net.network = o.network;
  s.net.host_address = o.host_address;
  s.net.host_port = o.network.empty() ? host_port : 0;
  s.net.guest_port = cfg->guest_port;
  s.tdx_qgs_socket = o.tdx_qgs_socket;
  return s;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The libvirt connection.
class Host {
 public:
  static absl::StatusOr<std::unique_ptr<Host>> Open(const std::string& uri) {
    static const bool initialized = [] {
      // The embedded driver logs to stderr (its errors reach us through virGetLastError): quiet
      // unless the operator sets LIBVIRT_LOG_OUTPUTS.
      setenv("LIBVIRT_LOG_OUTPUTS", "4:file:/dev/null", 0);
      virInitialize();
      // libvirt prints every error to stderr by default; we report them ourselves.
      virSetErrorFunc(nullptr, [](void*, virErrorPtr) {});
      // An event loop, as the embedded driver (qemu:///embed) and keepalives need: libvirt's
      // default implementation, run by a thread for the life of the process.
      if (virEventRegisterDefaultImpl() == 0) {
        std::thread([] {
          while (virEventRunDefaultImpl() == 0) {
          }
        }).detach();
      }
      return true;
    }();
    (void)initialized;
    virConnectPtr c = virConnectOpen(uri.empty() ? nullptr : uri.c_str());
    if (!c) return LibvirtError(absl::StrCat("connect to '", uri.empty() ? "(default)" : uri, "'"));
    auto host = std::unique_ptr<Host>(new Host(c));
    // A remote host that dies mid-command is noticed within 15 s (5 s interval, 3 misses).
    if (!host->local()) virConnectSetKeepAlive(c, 5, 3);
    return host;
  }
  ~Host() { virConnectClose(conn_); }

  // The connection's canonical URI, asked once (for a remote host each ask is a round trip).
  const std::string& uri() const { return uri_; }
  bool local() const { return local_; }
  bool is_test() const { return absl::StartsWith(uri_, "test:"); }

  HostVersions versions() const {
    HostVersions v;
    unsigned long lib = 0, hv = 0;
    if (virConnectGetLibVersion(conn_, &lib) == 0) v.libvirt = Version::FromLibvirt(lib);
    if (!is_test() && virConnectGetVersion(conn_, &hv) == 0) v.qemu = Version::FromLibvirt(hv);
    return v;
  }

  absl::StatusOr<std::string> DomainCapabilities(bool kvm) const {
    char* xml =
        virConnectGetDomainCapabilities(conn_, nullptr, "x86_64", "q35", kvm ? "kvm" : "qemu", 0);
    if (!xml) return LibvirtError("domain capabilities");
    std::string out(xml);
    free(xml);
    return out;
  }

  absl::StatusOr<Domain> Find(const std::string& name) const {
    virDomainPtr d = virDomainLookupByName(conn_, name.c_str());
    if (!d) {
      const virError* e = virGetLastError();
      if (e && e->code == VIR_ERR_NO_DOMAIN)
        return absl::NotFoundError(absl::StrCat("no domain '", name, "'"));
      return LibvirtError(absl::StrCat("look up domain '", name, "'"));
    }
    return Domain(d);
  }

  absl::Status Define(const std::string& xml) {
    virDomainPtr d = virDomainDefineXMLFlags(conn_, xml.c_str(), VIR_DOMAIN_DEFINE_VALIDATE);
    if (!d) return LibvirtError("define");
    virDomainFree(d);
    return absl::OkStatus();
  }

  absl::StatusOr<Domain> CreateTransient(const std::string& xml) {
    // Not VIR_DOMAIN_START_AUTODESTROY: the embedded driver refuses it; the caller destroys it.
    virDomainPtr d = virDomainCreateXML(conn_, xml.c_str(), 0);
    if (!d) return LibvirtError("start a probe domain");
    return Domain(d);
  }

  static std::pair<int, int> State(virDomainPtr d) {
    int state = VIR_DOMAIN_NOSTATE, reason = 0;
    if (virDomainGetState(d, &state, &reason, 0) != 0) return {-1, 0};
    return {state, reason};
  }

  static absl::StatusOr<LaunchMetadata> Metadata(virDomainPtr d, const std::string& name) {
    char* xml =
        virDomainGetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, kMetadataNs, VIR_DOMAIN_AFFECT_CONFIG);
    if (!xml) {
      return absl::FailedPreconditionError(
          absl::StrCat("domain '", name, "' was not defined by appliance-launch (no <metadata> in ",
                       kMetadataNs, ")"));
    }
    std::string s(xml);
    free(xml);
    return ParseLaunchMetadata(s);
  }

  static std::string Ipv4Lease(virDomainPtr d) {
    virDomainInterfacePtr* ifaces = nullptr;
    int n = virDomainInterfaceAddresses(d, &ifaces, VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, 0);
    std::string out;
    for (int i = 0; i < n; ++i) {
      for (unsigned j = 0; j < ifaces[i]->naddrs && out.empty(); ++j) {
        if (ifaces[i]->addrs[j].type == VIR_IP_ADDR_TYPE_IPV4) out = ifaces[i]->addrs[j].addr;
      }
      virDomainInterfaceFree(ifaces[i]);
    }
    free(ifaces);
    return out;
  }

 private:
  explicit Host(virConnectPtr c) : conn_(c) {
    char* u = virConnectGetURI(conn_);
    uri_ = u ? u : "";
    free(u);
    local_ = UriHost(uri_).empty();
  }
  virConnectPtr conn_;
  std::string uri_;
  bool local_ = true;
};

// ---------------------------------------------------------------------------------------------

std::string ConsoleText(absl::string_view serial) {
  std::string text;
  text.reserve(serial.size());
  for (size_t i = 0; i < serial.size(); ++i) {
    if (serial[i] == 0x1b && i + 1 < serial.size() && serial[i + 1] == '[') {
      for (i += 2; i < serial.size() && !absl::ascii_isalpha(static_cast<unsigned char>(serial[i]));
           ++i) {
      }
      continue;
    }
    if (serial[i] != '\r') text.push_back(serial[i]);
  }
  return text;
}

absl::Status CopySparse(const fs::path& src, const fs::path& dst) {
  const int in = open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return absl::NotFoundError(absl::StrCat(src.string(), ": ", std::strerror(errno)));
  absl::Cleanup close_in = [in] { close(in); };
  struct stat st {};
  if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(src.string(), ": not a regular file"));
  }
  const fs::path part = dst.string() + ".part";
  const int out = open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) return absl::InternalError(absl::StrCat(part.string(), ": ", std::strerror(errno)));
  absl::Cleanup close_out = [out] { close(out); };
  auto fail = [&](absl::string_view what) {
    const std::string msg = absl::StrCat("copy ", src.string(), " -> ", dst.string(), ": ", what,
                                         ": ", std::strerror(errno));
    unlink(part.c_str());
    return absl::InternalError(msg);
  };
  if (ftruncate(out, st.st_size) != 0) return fail("truncate");
  off_t at = 0;
  while (at < st.st_size) {
    off_t data = lseek(in, at, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole is left
      return fail("seek data");
    }
    off_t hole = lseek(in, data, SEEK_HOLE);
    if (hole < 0) return fail("seek hole");
    off_t in_off = data, out_off = data;
    while (in_off < hole) {
      ssize_t n =
          copy_file_range(in, &in_off, out, &out_off, static_cast<size_t>(hole - in_off), 0);
      if (n < 0) return fail("copy");
      if (n == 0) break;
    }
    at = hole;
  }
  if (fsync(out) != 0) return fail("fsync");
  if (rename(part.c_str(), dst.c_str()) != 0) return fail("rename");
  return absl::OkStatus();
}

absl::StatusOr<std::string> OfflineXml(const LaunchOptions& o) {
  if (!o.platform) return Bad("--platform: required without a connection");
  if (!o.libvirt_version || !o.qemu_version)
    return Bad("--libvirt-version and --qemu-version: required");
  auto form = ChooseForm(*o.platform, {*o.libvirt_version, *o.qemu_version});
  if (!form.ok()) return form.status();
  if (o.network.empty() && o.host_port == 0)
    return Bad("--host-port: required without a connection");
  const fs::path state =
      o.state_dir.empty() ? DefaultStateDir("", o.name) : fs::absolute(o.state_dir);
  auto spec = BuildSpec(o, *o.platform, o.kvm.value_or(false), state, o.host_port);
  if (!spec.ok()) return spec.status();
  spec->form = *form;
  return DomainXml(*spec);
}

Launcher::Launcher(std::unique_ptr<Host> host) : host_(std::move(host)) {}
Launcher::~Launcher() = default;

absl::StatusOr<std::unique_ptr<Launcher>> Launcher::Open(const std::string& uri) {
  auto host = Host::Open(uri);
  if (!host.ok()) return host.status();
  return std::unique_ptr<Launcher>(new Launcher(std::move(*host)));
}

absl::StatusOr<nlohmann::ordered_json> Launcher::Probe(const LaunchOptions& o) {
  nlohmann::ordered_json out;
  const HostVersions v = host_->versions();
  out["uri"] = host_->uri();
  out["libvirt_version"] = v.libvirt.str();
  out["hypervisor_version"] = host_->is_test() ? "test driver" : v.qemu.str();
  const bool local = host_->local();

  // KVM: libvirt's view, then a probe boot of OVMF (only a boot tells: here /dev/kvm exists but
  // is a nested implementation on which OVMF does not run).
  nlohmann::ordered_json kvm = {{"usable", false}};
  std::optional<DomainCaps> caps_kvm, caps_tcg;
  if (auto xml = host_->DomainCapabilities(true); xml.ok()) {
    if (auto c = ParseDomainCapabilities(*xml); c.ok()) caps_kvm = *c;
  } else {
    kvm["why"] = std::string(xml.status().message());
  }
  if (auto xml = host_->DomainCapabilities(false); xml.ok()) {
    if (auto c = ParseDomainCapabilities(*xml); c.ok()) caps_tcg = *c;
  }
  if (caps_kvm && local && !host_->is_test()) {
    const fs::path dir =
        fs::temp_directory_path() / absl::StrCat("appliance-launch-probe-", getpid());
    fs::create_directories(dir);
    absl::Cleanup rm = [dir] {
      std::error_code ec;
      fs::remove_all(dir, ec);
    };
    fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
    const fs::path serial = dir / "serial.log";
    const std::string probe_name = absl::StrCat("appliance-launch-probe-", getpid());
    const std::string xml = absl::StrCat(
        "<domain type='kvm'><name>", probe_name,
        "</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>",
        "<os><type arch='x86_64' machine='q35'>hvm</type><loader readonly='yes' type='pflash'>",
        DefaultFirmware(Platform::kVtpmOnly).string(),
        "</loader><nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>", (dir / "vars.fd").string(),
        "</nvram></os><features><acpi/></features><cpu mode='maximum' check='none'/>",
        "<devices><serial type='file'><source path='", serial.string(), "'/></serial>",
        "<memballoon model='none'/></devices></domain>");
    auto dom = host_->CreateTransient(xml);
    if (!dom.ok()) {
      kvm["why"] = absl::StrCat("a probe boot of OVMF under KVM failed: ", dom.status().message());
    } else {
      absl::Cleanup destroy = [&dom] { virDomainDestroy(dom->get()); };
      const auto deadline = Clock::now() + std::chrono::seconds(20);
      bool booted = false;
      while (Clock::now() < deadline && !booted) {
        const std::string text = ReadText(serial, 1 << 20);
        booted = absl::StrContains(text, "BdsDxe") || absl::StrContains(text, "Shell>") ||
                 absl::StrContains(text, "UEFI Interactive Shell");
        if (Host::State(dom->get()).first != VIR_DOMAIN_RUNNING) break;
        if (!booted) std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
      kvm["usable"] = booted;
      if (!booted) {
        kvm["why"] =
            "/dev/kvm is there and libvirt offers KVM, but OVMF printed nothing under KVM "
            "within 20 s (a probe boot); guests run with TCG";
      }
    }
  } else if (caps_kvm) {
    kvm["usable"] = true;
    kvm["why"] =
        host_->is_test() ? "test driver" : "remote host: libvirt offers KVM (no probe boot)";
  }
  out["kvm"] = kvm;

  auto read_param = [&](const char* path) -> std::string {
    if (!local) return "";
    std::string s = ReadText(path, 64);
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  };
  // SEV-SNP: the host kernel, QEMU and libvirt must all support it.
  {
    std::vector<std::string> why;
    const std::string param = read_param("/sys/module/kvm_amd/parameters/sev_snp");
    if (local && param != "Y" && param != "1") {
      why.push_back(param.empty()
                        ? "/sys/module/kvm_amd/parameters/sev_snp is absent (not an AMD host "
                          "with SEV-SNP enabled in KVM)"
                        : absl::StrCat("kvm_amd sev_snp=", param));
    }
    if (auto f = ChooseForm(Platform::kSevSnp, v); !f.ok())
      why.push_back(std::string(f.status().message()));
    if (!caps_kvm || !(caps_kvm->sev_snp || (caps_kvm->sev && v.libvirt < kLibvirtNativeSnp))) {
      why.push_back("libvirt's domain capabilities offer no SEV");
    }
    if (!kvm["usable"].get<bool>()) why.push_back("no usable KVM");
    out["sev_snp"] = {{"usable", why.empty()}, {"why", why}};
  }
  {
    std::vector<std::string> why;
    const std::string param = read_param("/sys/module/kvm_intel/parameters/tdx");
    if (local && param != "Y" && param != "1") {
      why.push_back(param.empty()
                        ? "/sys/module/kvm_intel/parameters/tdx is absent (not an Intel host "
                          "with TDX enabled in KVM)"
                        : absl::StrCat("kvm_intel tdx=", param));
    }
    if (auto f = ChooseForm(Platform::kTdx, v); !f.ok())
      why.push_back(std::string(f.status().message()));
    if (v.libvirt >= kLibvirtNativeTdx && (!caps_kvm || !caps_kvm->tdx)) {
      why.push_back("libvirt's domain capabilities offer no TDX");
    }
    if (!kvm["usable"].get<bool>()) why.push_back("no usable KVM");
    out["tdx"] = {{"usable", why.empty()}, {"why", why}};
  }
  {
    const std::optional<DomainCaps>& c = caps_kvm ? caps_kvm : caps_tcg;
    bool usable = c && c->tpm_emulator;
    std::string why = usable ? "libvirt offers the TPM emulator backend (swtpm)"
                             : "libvirt's domain capabilities offer no TPM emulator backend";
    if (!c && host_->is_test()) {
      usable = true;
      why = "test driver";
    }
    out["vtpm"] = {{"usable", usable}, {"why", why}};
  }
  std::string platform = "none";
  if (out["sev_snp"]["usable"].get<bool>())
    platform = "sev-snp";
  else if (out["tdx"]["usable"].get<bool>())
    platform = "tdx";
  else if (out["vtpm"]["usable"].get<bool>())
    platform = "vtpm-only";
  out["platform"] = platform;
  out["accel"] = kvm["usable"].get<bool>() ? "kvm" : "tcg";
  (void)o;
  return out;
}

absl::StatusOr<DomainSpec> Launcher::Spec(const LaunchOptions& o, bool for_define) {
  if (auto st = CheckName(o.name); !st.ok()) return st;
  std::optional<Platform> platform = o.platform;
  std::optional<bool> kvm = o.kvm;
  if (!platform || (!kvm && platform == Platform::kVtpmOnly)) {
    auto probe = Probe(o);
    if (!probe.ok()) return probe.status();
    if (!platform) {
      if ((*probe)["platform"] == "none") {
        return absl::FailedPreconditionError(
            absl::StrCat("probe: no platform usable on this host: ", probe->dump()));
      }
      platform = *ParsePlatform((*probe)["platform"].get<std::string>());
    }
    if (!kvm) kvm = (*probe)["accel"] == "kvm";
  }
  HostVersions v = host_->versions();
  if (o.libvirt_version) v.libvirt = *o.libvirt_version;
  if (o.qemu_version) v.qemu = *o.qemu_version;
  auto form = ChooseForm(*platform, v);
  if (!form.ok()) return form.status();
  const fs::path state =
      o.state_dir.empty() ? DefaultStateDir(host_->uri(), o.name) : fs::absolute(o.state_dir);
  uint16_t port = o.host_port;
  if (o.network.empty() && port == 0) {
    // An existing domain keeps its port; a new one gets a free one (on this machine: for a remote
    // host pass --host-port).
    if (auto d = host_->Find(o.name); d.ok()) {
      if (auto m = Host::Metadata(d->get(), o.name); m.ok()) port = m->net.host_port;
    }
    if (port == 0) {
      if (!host_->local() && for_define) return Bad("--host-port: required for a remote host");
      auto free_port = FreeLoopbackPort();
      if (!free_port.ok()) return free_port.status();
      port = *free_port;
    }
  }
  auto spec = BuildSpec(o, *platform, kvm.value_or(false), state, port);
  if (!spec.ok()) return spec.status();
  spec->form = *form;
  if (*platform == Platform::kSevSnp) {
    if (auto xml = host_->DomainCapabilities(true); xml.ok()) {
      if (auto c = ParseDomainCapabilities(*xml); c.ok()) {
        if (c->cbitpos) spec->snp_cbitpos = *c->cbitpos;
        if (c->reduced_phys_bits) spec->snp_reduced_phys_bits = *c->reduced_phys_bits;
      }
    }
  }
  return spec;
}

absl::StatusOr<std::string> Launcher::Xml(const LaunchOptions& o) {
  auto spec = Spec(o, false);
  if (!spec.ok()) return spec.status();
  return DomainXml(*spec);
}

absl::StatusOr<nlohmann::ordered_json> Launcher::Define(const LaunchOptions& o) {
  auto spec = Spec(o, true);
  if (!spec.ok()) return spec.status();
  nlohmann::ordered_json out = {{"name", spec->name},
                                {"platform", PlatformName(spec->platform)},
                                {"form", FormName(spec->form)},
                                {"accel", spec->kvm ? "kvm" : "tcg"},
                                {"state_dir", spec->state_dir.string()}};
  bool was_defined = false;
  if (auto d = host_->Find(o.name); d.ok()) {
    if (auto m = Host::Metadata(d->get(), o.name); !m.ok()) {
      return m.status();  // not ours: hands off
    }
    was_defined = true;
    char uuid[VIR_UUID_STRING_BUFLEN] = {};
    if (virDomainGetUUIDString(d->get(), uuid) == 0) spec->uuid = uuid;
  } else if (!absl::IsNotFound(d.status())) {
    return d.status();
  }
  // The domain's files. Its disk is its own (the A/B updater writes the inactive slot and the
  // boot counters there), copied once from the image; a redefine keeps it.
  nlohmann::ordered_json files = nlohmann::ordered_json::array();
  if (host_->local() && !host_->is_test()) {
    std::error_code ec;
    fs::create_directories(spec->state_dir, ec);
    if (ec)
      return absl::InternalError(
          absl::StrCat("state directory ", spec->state_dir.string(), ": ", ec.message()));
    const fs::path image = fs::absolute(o.image_dir).lexically_normal();
    std::vector<std::pair<fs::path, fs::path>> copies = {{image / "image.raw", spec->disk}};
    if (spec->platform != Platform::kVtpmOnly) {
      copies.push_back({image / "image.vmlinuz", spec->kernel});
      copies.push_back({image / "image.initrd", spec->initrd});
    }
    for (const auto& [from, to] : copies) {
      const bool keep = fs::exists(to, ec) && (to == spec->disk);
      if (!keep) {
        if (auto st = CopySparse(from, to); !st.ok()) return st;
      }
      files.push_back({{"path", to.string()}, {"from", from.string()}, {"kept", keep}});
    }
  } else if (!host_->local()) {
    out["remote_files_needed"] = {spec->disk.string()};
    if (spec->platform != Platform::kVtpmOnly) {
      out["remote_files_needed"].push_back(spec->kernel.string());
      out["remote_files_needed"].push_back(spec->initrd.string());
    }
  }
  auto xml = DomainXml(*spec);
  if (!xml.ok()) return xml.status();
  if (auto st = host_->Define(*xml); !st.ok()) return st;
  out["files"] = files;
  out["redefined"] = was_defined;
  if (spec->net.network.empty()) {
    out["forward"] = absl::StrCat(spec->net.host_address, ":", spec->net.host_port,
                                  " -> guest:", spec->net.guest_port);
  } else {
    out["network"] = spec->net.network;
  }
  return out;
}

absl::StatusOr<nlohmann::ordered_json> Launcher::Start(const LaunchOptions& o) {
  auto d = host_->Find(o.name);
  if (!d.ok()) return d.status();
  if (auto m = Host::Metadata(d->get(), o.name); !m.ok()) return m.status();
  nlohmann::ordered_json out = {{"name", o.name}};
  if (virDomainIsActive(d->get()) == 1) {
    out["started"] = false;
    out["state"] = "running";
    return out;
  }
  if (virDomainCreate(d->get()) != 0) return LibvirtError(absl::StrCat("start '", o.name, "'"));
  out["started"] = true;
  out["state"] = "running";
  return out;
}

absl::StatusOr<nlohmann::ordered_json> Launcher::Wait(const LaunchOptions& o) {
  auto d = host_->Find(o.name);
  if (!d.ok()) return d.status();
  auto m = Host::Metadata(d->get(), o.name);
  if (!m.ok()) return m.status();
  const auto start = Clock::now();
  const auto deadline = start + (o.timeout.count() > 0 ? o.timeout : std::chrono::seconds(600));
  const bool read_serial = host_->local();
  if (!read_serial && m->net.network.empty() && m->net.host_address == "127.0.0.1") {
    // Nothing of the guest is observable from here: its console is a file on that host and its
    // forward listens on that host's loopback.
    return absl::InvalidArgumentError(
        "wait: on a remote host a forward on 127.0.0.1 cannot be observed from here: define the "
        "domain with --host-address 0.0.0.0 (or an address of that host) or --network NET");
  }
  std::string last_console;
  std::string why = "the supervisor has not said ready on the console";
  while (true) {
    auto [state, reason] = Host::State(d->get());
    if (state != VIR_DOMAIN_RUNNING && state != VIR_DOMAIN_BLOCKED) {
      std::string msg = absl::StrCat("domain '", o.name, "' is ", StateName(state));
      if (state == VIR_DOMAIN_SHUTOFF) absl::StrAppend(&msg, " (", ShutoffReason(reason), ")");
      if (read_serial) {
        absl::StrAppend(&msg, "; console:\n",
                        Tail(ConsoleText(ReadText(m->serial_log, kMaxSerialRead)), 25));
      }
      return absl::FailedPreconditionError(msg);
    }
    bool ready = !read_serial;
    if (read_serial) {
      last_console = ConsoleText(ReadText(m->serial_log, kMaxSerialRead));
      ready = absl::StrContains(last_console, kReadyLine);
      if (Count(last_console, kFailedLine) >= 3) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the supervisor failed to start (3 times); console:\n", Tail(last_console, 25)));
      }
    }
    std::string address;
    uint16_t port = 0;
    if (m->net.network.empty()) {
      address = m->net.host_address == "0.0.0.0"
                    ? (host_->local() ? "127.0.0.1" : UriHost(host_->uri()))
                    : m->net.host_address;
      port = m->net.host_port;
    } else {
      address = Host::Ipv4Lease(d->get());
      port = m->net.guest_port;
    }
    if (ready) {
      if (address.empty()) {
        why = absl::StrCat("no DHCP lease for the guest on network '", m->net.network, "' yet");
      } else if (TcpAnswers(address, port, std::chrono::milliseconds(1000))) {
        const double s = std::chrono::duration<double>(Clock::now() - start).count();
        nlohmann::ordered_json out = {{"name", o.name},
                                      {"target", absl::StrCat(address, ":", port)},
                                      {"platform", PlatformName(m->platform)},
                                      {"waited_s", std::round(s * 10) / 10}};
        return out;
      } else {
        why =
            absl::StrCat("the supervisor said ready but ", address, ":", port, " does not answer");
      }
    }
    if (Clock::now() >= deadline) {
      std::string msg = absl::StrCat(
          "wait: timed out after ",
          std::chrono::duration_cast<std::chrono::seconds>(deadline - start).count(), " s: ", why);
      if (read_serial) absl::StrAppend(&msg, "; console:\n", Tail(last_console, 25));
      return absl::DeadlineExceededError(msg);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

absl::StatusOr<nlohmann::ordered_json> Launcher::Stop(const LaunchOptions& o) {
  nlohmann::ordered_json out = {{"name", o.name}};
  auto d = host_->Find(o.name);
  if (absl::IsNotFound(d.status())) {
    out["stopped"] = false;
    out["state"] = "not defined";
    return out;
  }
  if (!d.ok()) return d.status();
  if (virDomainIsActive(d->get()) != 1) {
    out["stopped"] = false;
    out["state"] = "shut off";
    return out;
  }
  std::string how = "destroyed";
  if (!o.force) {
    // ACPI power button first; the appliance keeps no state that a hard stop would lose (its
    // root is read-only, /var volatile), so the grace period is short.
    const auto grace = std::min<std::chrono::seconds>(
        o.timeout.count() > 0 ? o.timeout / 2 : std::chrono::seconds(30), std::chrono::seconds(30));
    if (virDomainShutdownFlags(d->get(), VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN) == 0) {
      const auto deadline = Clock::now() + grace;
      while (Clock::now() < deadline && virDomainIsActive(d->get()) == 1) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
      }
      if (virDomainIsActive(d->get()) != 1) how = "shut down";
    }
  }
  if (virDomainIsActive(d->get()) == 1 && virDomainDestroy(d->get()) != 0) {
    // The embedded driver may finish the domain from its monitor's EOF handler while destroy
    // waits for its job, and then reports "domain is not running": stopped is stopped.
    if (virDomainIsActive(d->get()) != 0)
      return LibvirtError(absl::StrCat("destroy '", o.name, "'"));
  }
  out["stopped"] = true;
  out["how"] = how;
  out["state"] = "shut off";
  return out;
}

absl::StatusOr<nlohmann::ordered_json> Launcher::Undefine(const LaunchOptions& o) {
  nlohmann::ordered_json out = {{"name", o.name}};
  auto d = host_->Find(o.name);
  if (absl::IsNotFound(d.status())) {
    out["undefined"] = false;
    out["state"] = "not defined";
    return out;
  }
  if (!d.ok()) return d.status();
  auto m = Host::Metadata(d->get(), o.name);
  if (!m.ok()) return m.status();
  if (virDomainIsActive(d->get()) == 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("domain '", o.name, "' is running: stop it first"));
  }
  // The vTPM's state and the firmware variables go with the domain.
  const unsigned flags = VIR_DOMAIN_UNDEFINE_NVRAM | VIR_DOMAIN_UNDEFINE_TPM |
                         VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA;
  bool tpm_removed = true;
  if (virDomainUndefineFlags(d->get(), flags) != 0) {
    // A driver without NVRAM/TPM support (the test driver) refuses those flags: undefine
    // without them and say so.
    const virError* e = virGetLastError();
    if (!e || e->code != VIR_ERR_INVALID_ARG ||
        virDomainUndefineFlags(d->get(), VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                                             VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA) != 0) {
      return LibvirtError(absl::StrCat("undefine '", o.name, "'"));
    }
    tpm_removed = false;
  }
  std::vector<std::string> removed;
  if (host_->local() && !host_->is_test()) {
    for (const char* f : kStateFiles) {
      std::error_code ec;
      if (fs::remove(m->state_dir / f, ec)) removed.push_back(f);
    }
    std::error_code ec;
    fs::remove(m->state_dir, ec);  // only if now empty
  }
  out["undefined"] = true;
  out["removed"] = removed;
  out["vtpm_state_removed"] = tpm_removed;
  return out;
}

absl::StatusOr<nlohmann::ordered_json> Launcher::Status(const LaunchOptions& o) {
  auto d = host_->Find(o.name);
  if (!d.ok()) return d.status();
  auto m = Host::Metadata(d->get(), o.name);
  if (!m.ok()) return m.status();
  auto [state, reason] = Host::State(d->get());
  nlohmann::ordered_json out = {{"name", o.name},
                                {"state", StateName(state)},
                                {"platform", PlatformName(m->platform)},
                                {"form", FormName(m->form)},
                                {"state_dir", m->state_dir.string()},
                                {"serial_log", m->serial_log.string()},
                                {"launch_config_sha256", m->launch_config_sha256}};
  if (state == VIR_DOMAIN_SHUTOFF) out["reason"] = ShutoffReason(reason);
  if (m->net.network.empty()) {
    std::string address = m->net.host_address;
    if (address == "0.0.0.0") address = host_->local() ? "127.0.0.1" : UriHost(host_->uri());
    out["target"] = absl::StrCat(address, ":", m->net.host_port);
  } else {
    out["network"] = m->net.network;
    const std::string ip = Host::Ipv4Lease(d->get());
    if (!ip.empty()) out["target"] = absl::StrCat(ip, ":", m->net.guest_port);
  }
  if (host_->local() && state == VIR_DOMAIN_RUNNING) {
    out["supervisor_ready"] =
        absl::StrContains(ReadText(m->serial_log, kMaxSerialRead), kReadyLine);
  }
  return out;
}

}  // namespace appliance::launch
