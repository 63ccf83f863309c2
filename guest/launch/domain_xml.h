// libvirt domain XML for the appliance (issue 9, docs/launch.md): what `appliance-launch` defines.
// Three platforms: `vtpm-only` boots the image's disk (OVMF, systemd-boot, the UKI) with a vTPM
// emulator; `sev-snp` and `tdx` use measured direct boot (the image's kernel, initrd and command
// line, so that the launch digest / MRTD + RTMRs cover the boot chain), the launch configuration's
// SHA-256 as SNP HOST_DATA or its SHA-384 as TDX MRCONFIGID. SNP and TDX come in two forms chosen
// by the host's versions: libvirt's native <launchSecurity> (libvirt >= 10.5 for SNP, >= 11.0 for
// TDX) or a <qemu:commandline> passthrough for older libvirt on QEMU >= 9.1 (SNP) / 10.1 (TDX).
//
// The XML is written with libxml2 (every value escaped by the library); names must be plain
// (letters, digits, `_.+-`), paths absolute and free of control characters: anything else is
// refused before any XML exists. The parsers read what libvirt hands back (domain capabilities,
// our <metadata> element): bounded, strict, fuzzed (tests/fuzz/launch_xml_fuzz.cc).
#ifndef GUEST_LAUNCH_DOMAIN_XML_H_
#define GUEST_LAUNCH_DOMAIN_XML_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace appliance::launch {

enum class Platform { kVtpmOnly, kSevSnp, kTdx };
absl::string_view PlatformName(Platform p);  // "vtpm-only", "sev-snp", "tdx"
absl::StatusOr<Platform> ParsePlatform(absl::string_view name);
// The launch configuration's `platform` value a domain of this platform must carry.
absl::string_view LaunchConfigPlatform(Platform p);  // "vtpm-only", "snp", "tdx"

// A libvirt or QEMU version (libvirt encodes them as major * 1,000,000 + minor * 1,000 + micro).
struct Version {
  uint32_t major = 0, minor = 0, micro = 0;
  static Version FromLibvirt(unsigned long encoded);
  static absl::StatusOr<Version> Parse(absl::string_view text);  // "9.1" or "10.1.0"
  std::string str() const;
  auto operator<=>(const Version&) const = default;
};

// How launch security is expressed.
enum class Form {
  kPlain,        // vtpm-only: no launch security
  kPassthrough,  // <qemu:commandline> objects (libvirt too old for the native element)
  kNative,       // <launchSecurity type='sev-snp'|'tdx'>
};
absl::string_view FormName(Form f);

struct HostVersions {
  Version libvirt;
  Version qemu;
};

// The form for a platform on a host, or FailedPrecondition naming the versions when the host's
// QEMU cannot run it at all (QEMU 7.2 here: no sev-snp-guest / tdx-guest objects).
absl::StatusOr<Form> ChooseForm(Platform platform, const HostVersions& versions);

inline constexpr Version kQemuMinSnp{9, 1, 0};
inline constexpr Version kQemuMinTdx{10, 1, 0};
inline constexpr Version kLibvirtNativeSnp{10, 5, 0};
inline constexpr Version kLibvirtNativeTdx{11, 0, 0};

// The guest's network. `network` empty: QEMU user-mode networking (no route in or out but one
// forward of a loopback host port to the supervisor's port); otherwise a libvirt network by name
// (the host's firewall then decides what reaches the guest; docs/launch.md).
struct NetworkSpec {
  std::string network;
  std::string host_address = "127.0.0.1";  // user mode: host_address:host_port -> guest_port
  uint16_t host_port = 0;
  uint16_t guest_port = 0;  // the launch configuration's listen port
};

struct DomainSpec {
  std::string name;
  std::string uuid;  // empty: libvirt assigns one; a redefinition carries the domain's own
  Platform platform = Platform::kVtpmOnly;
  Form form = Form::kPlain;
  bool kvm = false;  // domain type kvm, else qemu (TCG); SNP and TDX always kvm
  uint64_t memory_mib = 2048;
  uint32_t vcpus = 2;
  std::filesystem::path disk;  // the domain's own copy of the image's disk
  // vtpm-only: OVMF code (pflash) + a variable store from a template; SNP/TDX: the one-file
  // firmware (AMD SEV / Intel TDX OVMF builds) and the direct-boot files.
  std::filesystem::path firmware;
  std::filesystem::path nvram_template, nvram;
  std::filesystem::path kernel, initrd;
  std::string cmdline;
  std::filesystem::path serial_log;
  std::vector<uint8_t> launch_config;  // exact bytes (SMBIOS credential, HOST_DATA, MRCONFIGID)
  NetworkSpec net;
  std::filesystem::path state_dir;
  // SNP: from the host's domain capabilities where it reports them.
  uint32_t snp_cbitpos = 51, snp_reduced_phys_bits = 1;
  uint64_t snp_policy = 0x30000;         // SMT allowed, reserved bit 17 set, debug off
  uint64_t tdx_attributes = 0x10000000;  // TD attributes: SEPT_VE_DISABLE (28); DEBUG (0) off
  std::filesystem::path tdx_qgs_socket = "/var/run/tdx-qgs/qgs.socket";
};

// Refusals for values that end up in XML, file names or QEMU arguments.
absl::Status CheckName(absl::string_view name);
absl::Status CheckPath(absl::string_view what, const std::filesystem::path& path);

// The domain XML (pretty-printed, no XML declaration), or InvalidArgument naming the bad value.
absl::StatusOr<std::string> DomainXml(const DomainSpec& spec);

// What appliance-launch keeps in the domain's <metadata> (namespace kMetadataNs) so that later
// commands (wait, status, undefine) know the domain without any other state.
inline constexpr char kMetadataNs[] = "https://appliance.invalid/launch/1";
inline constexpr char kMetadataPrefix[] = "appliance";
struct LaunchMetadata {
  Platform platform = Platform::kVtpmOnly;
  Form form = Form::kPlain;
  NetworkSpec net;
  std::filesystem::path state_dir;
  std::filesystem::path serial_log;
  std::string launch_config_sha256;  // hex
};
// Parses the element virDomainGetMetadata returns (at most 64 KiB).
absl::StatusOr<LaunchMetadata> ParseLaunchMetadata(absl::string_view xml);

// What libvirt's domain capabilities say about this host (at most 1 MiB of XML).
struct DomainCaps {
  bool sev = false;      // <features><sev supported='yes'>
  bool sev_snp = false;  // sev-snp among the launch security types (libvirt >= 10.5)
  bool tdx = false;      // tdx among the launch security types (libvirt >= 11)
  bool tpm_emulator = false;
  std::optional<uint32_t> cbitpos, reduced_phys_bits;
};
absl::StatusOr<DomainCaps> ParseDomainCapabilities(absl::string_view xml);

}  // namespace appliance::launch

#endif  // GUEST_LAUNCH_DOMAIN_XML_H_
