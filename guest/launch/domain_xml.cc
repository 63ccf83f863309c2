#include "domain_xml.h"

#include <arpa/inet.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <openssl/evp.h>

#include <array>
#include <charconv>
#include <memory>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "attest/encoding.h"

namespace appliance::launch {
namespace {

constexpr char kQemuNs[] = "http://libvirt.org/schemas/domain/qemu/1.0";
constexpr size_t kMaxMetadataXml = 64 * 1024;
constexpr size_t kMaxCapsXml = 1024 * 1024;
constexpr uint64_t kTdxSeptVeDisable = 1ull << 28;  // TD attribute bit 28

const xmlChar* X(const char* s) { return reinterpret_cast<const xmlChar*>(s); }

struct DocFree {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
using Doc = std::unique_ptr<xmlDoc, DocFree>;
struct XPathCtxFree {
  void operator()(xmlXPathContext* c) const { xmlXPathFreeContext(c); }
};
struct XPathObjFree {
  void operator()(xmlXPathObject* o) const { xmlXPathFreeObject(o); }
};

// A small layer over libxml2's tree API: every text and attribute value goes through the library,
// which escapes it.
class Node {
 public:
  explicit Node(xmlNode* n) : n_(n) {}
  Node Child(const char* name, xmlNs* ns = nullptr) {
    return Node(xmlNewChild(n_, ns, X(name), nullptr));
  }
  Node Text(const char* name, const std::string& text, xmlNs* ns = nullptr) {
    return Node(xmlNewTextChild(n_, ns, X(name), X(text.c_str())));
  }
  Node& Attr(const char* name, const std::string& value) {
    xmlNewProp(n_, X(name), X(value.c_str()));
    return *this;
  }
  xmlNode* get() const { return n_; }

 private:
  xmlNode* n_;
};

std::string Digest(const EVP_MD* md, const std::vector<uint8_t>& bytes) {
  std::array<uint8_t, EVP_MAX_MD_SIZE> out{};
  unsigned len = 0;
  EVP_Digest(bytes.data(), bytes.size(), out.data(), &len, md, nullptr);
  return std::string(reinterpret_cast<const char*>(out.data()), len);
}
std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string Hex64(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%08llx", static_cast<unsigned long long>(v));
  return buf;
}

// The QEMU arguments of the passthrough form and of user-mode networking.
std::vector<std::string> QemuArgs(const DomainSpec& s) {
  std::vector<std::string> args;
  if (s.form == Form::kPassthrough && s.platform == Platform::kSevSnp) {
    nlohmann::ordered_json obj = {
        {"qom-type", "sev-snp-guest"},
        {"id", "sev0"},
        {"cbitpos", s.snp_cbitpos},
        {"reduced-phys-bits", s.snp_reduced_phys_bits},
        {"policy", s.snp_policy},
        {"kernel-hashes", true},
        {"host-data", attest::Base64Encode(Bytes(Digest(EVP_sha256(), s.launch_config)))}};
    args.insert(args.end(), {"-object", obj.dump(), "-machine", "confidential-guest-support=sev0"});
  }
  if (s.form == Form::kPassthrough && s.platform == Platform::kTdx) {
    nlohmann::ordered_json obj = {
        {"qom-type", "tdx-guest"},
        {"id", "tdx0"},
        {"sept-ve-disable", (s.tdx_attributes & kTdxSeptVeDisable) != 0},
        {"mrconfigid", attest::Base64Encode(Bytes(Digest(EVP_sha384(), s.launch_config)))},
        {"quote-generation-socket", {{"type", "unix"}, {"path", s.tdx_qgs_socket.string()}}}};
    args.insert(args.end(), {"-object", obj.dump(), "-machine", "confidential-guest-support=tdx0"});
  }
  if (s.net.network.empty()) {
    nlohmann::ordered_json dev = {
        {"driver", "virtio-net-pci"}, {"netdev", "appliance-net"}, {"id", "appliance-nic"}};
    if (s.platform != Platform::kVtpmOnly) {
      dev["iommu_platform"] = true;  // virtio through the guest's bounce buffers
      dev["disable-legacy"] = "on";
    }
    // restrict=on: the guest reaches nothing through this interface; only the forward comes in.
    args.insert(args.end(),
                {"-netdev",
                 absl::StrCat("user,id=appliance-net,restrict=on,hostfwd=tcp:", s.net.host_address,
                              ":", s.net.host_port, "-:", s.net.guest_port),
                 // JSON, as libvirt writes its own devices: QEMU creates JSON devices after the
                 // key=value ones, so a key=value device would take a slot libvirt assigned.
                 "-device", dev.dump()});
  }
  return args;
}

absl::Status CheckIpv4(const std::string& a) {
  in_addr x{};
  if (inet_pton(AF_INET, a.c_str(), &x) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("host address '", a, "' is not an IPv4 address"));
  }
  return absl::OkStatus();
}

absl::Status CheckSpec(const DomainSpec& s) {
  if (auto st = CheckName(s.name); !st.ok()) return st;
  if (!s.uuid.empty()) {
    bool ok = s.uuid.size() == 36;
    for (size_t i = 0; ok && i < s.uuid.size(); ++i) {
      ok = (i == 8 || i == 13 || i == 18 || i == 23) ? s.uuid[i] == '-'
                                                     : absl::ascii_isxdigit(s.uuid[i]);
    }
    if (!ok) return absl::InvalidArgumentError("uuid: not in 8-4-4-4-12 hex form");
  }
  for (const auto& [what, p] : std::initializer_list<std::pair<const char*, std::filesystem::path>>{
           {"state directory", s.state_dir},
           {"disk", s.disk},
           {"firmware", s.firmware},
           {"serial log", s.serial_log}}) {
    if (auto st = CheckPath(what, p); !st.ok()) return st;
  }
  if (s.platform == Platform::kVtpmOnly) {
    if (s.form != Form::kPlain)
      return absl::InvalidArgumentError("vtpm-only has no launch security form");
    if (auto st = CheckPath("nvram template", s.nvram_template); !st.ok()) return st;
    if (auto st = CheckPath("nvram", s.nvram); !st.ok()) return st;
  } else {
    if (s.form == Form::kPlain)
      return absl::InvalidArgumentError("sev-snp/tdx need a launch security form");
    if (!s.kvm) return absl::InvalidArgumentError("sev-snp/tdx domains run only on KVM");
    if (auto st = CheckPath("kernel", s.kernel); !st.ok()) return st;
    if (auto st = CheckPath("initrd", s.initrd); !st.ok()) return st;
    if (s.platform == Platform::kTdx) {
      if (auto st = CheckPath("quote generation socket", s.tdx_qgs_socket); !st.ok()) return st;
    }
    for (unsigned char c : s.cmdline) {
      if (c < 0x20 || c >= 0x7f) {
        return absl::InvalidArgumentError(
            "kernel command line: contains a control or non-ASCII byte");
      }
    }
  }
  if (s.memory_mib < 256 || s.memory_mib > (1u << 22)) {
    return absl::InvalidArgumentError(
        absl::StrCat("memory: ", s.memory_mib, " MiB is outside 256..4194304"));
  }
  if (s.vcpus < 1 || s.vcpus > 512) {
    return absl::InvalidArgumentError(absl::StrCat("vcpus: ", s.vcpus, " is outside 1..512"));
  }
  if (s.launch_config.empty()) return absl::InvalidArgumentError("launch configuration: empty");
  if (s.net.guest_port == 0) return absl::InvalidArgumentError("guest port: 0");
  if (s.net.network.empty()) {
    if (s.net.host_port == 0) return absl::InvalidArgumentError("host port: 0");
    if (auto st = CheckIpv4(s.net.host_address); !st.ok()) return st;
  } else if (auto st = CheckName(s.net.network); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("network ", st.message()));
  }
  return absl::OkStatus();
}

void AddMetadata(Node domain, const DomainSpec& s) {
  Node md = domain.Child("metadata");
  xmlNode* launch = xmlNewChild(md.get(), nullptr, X("launch"), nullptr);
  xmlNs* ns = xmlNewNs(launch, X(kMetadataNs), X(kMetadataPrefix));
  xmlSetNs(launch, ns);
  Node l(launch);
  l.Text("platform", std::string(PlatformName(s.platform)), ns);
  l.Text("form", std::string(FormName(s.form)), ns);
  l.Text("network", s.net.network, ns);
  l.Text("host-address", s.net.host_address, ns);
  l.Text("host-port", std::to_string(s.net.host_port), ns);
  l.Text("guest-port", std::to_string(s.net.guest_port), ns);
  l.Text("state-dir", s.state_dir.string(), ns);
  l.Text("serial-log", s.serial_log.string(), ns);
  l.Text("launch-config-sha256", attest::HexEncode(Bytes(Digest(EVP_sha256(), s.launch_config))),
         ns);
}

std::optional<std::string> XPathString(xmlXPathContext* ctx, const char* expr) {
  std::unique_ptr<xmlXPathObject, XPathObjFree> obj(xmlXPathEvalExpression(X(expr), ctx));
  if (!obj || obj->type != XPATH_NODESET || !obj->nodesetval || obj->nodesetval->nodeNr != 1) {
    return std::nullopt;
  }
  xmlChar* text = xmlNodeGetContent(obj->nodesetval->nodeTab[0]);
  if (!text) return std::string();
  std::string out(reinterpret_cast<const char*>(text));
  xmlFree(text);
  return out;
}

std::vector<std::string> XPathStrings(xmlXPathContext* ctx, const char* expr) {
  std::vector<std::string> out;
  std::unique_ptr<xmlXPathObject, XPathObjFree> obj(xmlXPathEvalExpression(X(expr), ctx));
  if (!obj || obj->type != XPATH_NODESET || !obj->nodesetval) return out;
  for (int i = 0; i < obj->nodesetval->nodeNr && i < 64; ++i) {
    xmlChar* text = xmlNodeGetContent(obj->nodesetval->nodeTab[i]);
    out.emplace_back(text ? reinterpret_cast<const char*>(text) : "");
    xmlFree(text);
  }
  return out;
}

// Parses untrusted XML: no network, no entity expansion, no DTD loading; bounded in size.
absl::StatusOr<Doc> ParseXml(absl::string_view xml, size_t max, const char* what) {
  if (xml.size() > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", xml.size(), " bytes (limit ", max, ")"));
  }
  Doc doc(xmlReadMemory(xml.data(), static_cast<int>(xml.size()), nullptr, nullptr,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING));
  if (!doc || !xmlDocGetRootElement(doc.get())) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not well-formed XML"));
  }
  return doc;
}

absl::StatusOr<uint16_t> ParsePort(const std::optional<std::string>& s, const char* what,
                                   bool zero_ok) {
  uint32_t v = 0;
  if (!s || !absl::SimpleAtoi(*s, &v) || v > 65535 || (!zero_ok && v == 0)) {
    return absl::InvalidArgumentError(absl::StrCat("launch metadata: bad ", what));
  }
  return static_cast<uint16_t>(v);
}

}  // namespace

absl::string_view PlatformName(Platform p) {
  switch (p) {
    case Platform::kVtpmOnly:
      return "vtpm-only";
    case Platform::kSevSnp:
      return "sev-snp";
    case Platform::kTdx:
      return "tdx";
  }
  return "?";
}

absl::StatusOr<Platform> ParsePlatform(absl::string_view name) {
  if (name == "vtpm-only") return Platform::kVtpmOnly;
  if (name == "sev-snp") return Platform::kSevSnp;
  if (name == "tdx") return Platform::kTdx;
  return absl::InvalidArgumentError(
      absl::StrCat("platform '", name, "' is not one of sev-snp, tdx, vtpm-only"));
}

absl::string_view LaunchConfigPlatform(Platform p) {
  switch (p) {
    case Platform::kVtpmOnly:
      return "vtpm-only";
    case Platform::kSevSnp:
      return "snp";
    case Platform::kTdx:
      return "tdx";
  }
  return "?";
}

absl::string_view FormName(Form f) {
  switch (f) {
    case Form::kPlain:
      return "plain";
    case Form::kPassthrough:
      return "qemu-commandline";
    case Form::kNative:
      return "native";
  }
  return "?";
}

Version Version::FromLibvirt(unsigned long encoded) {
  return Version{static_cast<uint32_t>(encoded / 1000000),
                 static_cast<uint32_t>(encoded / 1000 % 1000),
                 static_cast<uint32_t>(encoded % 1000)};
}

absl::StatusOr<Version> Version::Parse(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, '.');
  if (parts.size() < 2 || parts.size() > 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("version '", text, "': expected MAJOR.MINOR[.MICRO]"));
  }
  uint32_t v[3] = {0, 0, 0};
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!absl::SimpleAtoi(parts[i], &v[i]) || v[i] > 999 || parts[i].empty() ||
        !absl::ascii_isdigit(static_cast<unsigned char>(parts[i][0]))) {
      return absl::InvalidArgumentError(absl::StrCat("version '", text, "': bad number"));
    }
  }
  return Version{v[0], v[1], v[2]};
}

std::string Version::str() const { return absl::StrCat(major, ".", minor, ".", micro); }

absl::StatusOr<Form> ChooseForm(Platform platform, const HostVersions& v) {
  switch (platform) {
    case Platform::kVtpmOnly:
      return Form::kPlain;
    case Platform::kSevSnp:
      if (v.qemu < kQemuMinSnp) {
        return absl::FailedPreconditionError(absl::StrCat(
            "sev-snp: QEMU ", v.qemu.str(), " has no sev-snp-guest object (needs QEMU >= ",
            kQemuMinSnp.str(), "); libvirt ", v.libvirt.str()));
      }
      return v.libvirt >= kLibvirtNativeSnp ? Form::kNative : Form::kPassthrough;
    case Platform::kTdx:
      if (v.qemu < kQemuMinTdx) {
        return absl::FailedPreconditionError(
            absl::StrCat("tdx: QEMU ", v.qemu.str(), " has no tdx-guest object (needs QEMU >= ",
                         kQemuMinTdx.str(), "); libvirt ", v.libvirt.str()));
      }
      return v.libvirt >= kLibvirtNativeTdx ? Form::kNative : Form::kPassthrough;
  }
  return absl::InvalidArgumentError("unknown platform");
}

absl::Status CheckName(absl::string_view name) {
  if (name.empty() || name.size() > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("name: must be 1..64 characters, got ", name.size()));
  }
  if (!absl::ascii_isalnum(static_cast<unsigned char>(name[0]))) {
    return absl::InvalidArgumentError("name: must start with a letter or digit");
  }
  for (unsigned char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '.' && c != '+' && c != '-') {
      return absl::InvalidArgumentError(absl::StrCat(
          "name: character 0x", absl::Hex(c), " is not allowed (letters, digits, _ . + - only)"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckPath(absl::string_view what, const std::filesystem::path& path) {
  const std::string& s = path.native();
  if (s.empty() || s[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat(what, ": '", s, "' is not an absolute path"));
  }
  if (s.size() > 4096) return absl::InvalidArgumentError(absl::StrCat(what, ": path too long"));
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": path contains control character 0x", absl::Hex(c)));
    }
    // Non-ASCII bytes could be invalid UTF-8, which an XML document cannot carry.
    if (c >= 0x80) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": path contains a non-ASCII byte"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> DomainXml(const DomainSpec& s) {
  if (auto st = CheckSpec(s); !st.ok()) return st;
  Doc doc(xmlNewDoc(X("1.0")));
  xmlNode* root_node = xmlNewNode(nullptr, X("domain"));
  xmlDocSetRootElement(doc.get(), root_node);
  Node domain(root_node);
  domain.Attr("type", s.kvm ? "kvm" : "qemu");
  const std::vector<std::string> qemu_args = QemuArgs(s);
  xmlNs* qemu_ns = qemu_args.empty() ? nullptr : xmlNewNs(root_node, X(kQemuNs), X("qemu"));

  domain.Text("name", s.name);
  if (!s.uuid.empty()) domain.Text("uuid", s.uuid);
  AddMetadata(domain, s);
  domain.Text("memory", std::to_string(s.memory_mib)).Attr("unit", "MiB");
  if (s.platform == Platform::kSevSnp) {
    // Guest memory from memfd, shared: what QEMU's SNP support maps its private memory beside.
    Node mb = domain.Child("memoryBacking");
    mb.Child("source").Attr("type", "memfd");
    mb.Child("access").Attr("mode", "shared");
  }
  domain.Text("vcpu", std::to_string(s.vcpus));
  // The launch configuration as the systemd system credential appliance.launch-config (SMBIOS
  // type 11 OEM string; what scripts/boot-image passes with -smbios).
  Node sysinfo = domain.Child("sysinfo");
  sysinfo.Attr("type", "smbios");
  sysinfo.Child("oemStrings")
      .Text("entry", "io.systemd.credential.binary:appliance.launch-config=" +
                         attest::Base64Encode(s.launch_config));

  Node os = domain.Child("os");
  os.Text("type", "hvm").Attr("arch", "x86_64").Attr("machine", "q35");
  if (s.platform == Platform::kVtpmOnly) {
    os.Text("loader", s.firmware.string())
        .Attr("readonly", "yes")
        .Attr("secure", "no")
        .Attr("type", "pflash");
    os.Text("nvram", s.nvram.string()).Attr("template", s.nvram_template.string());
    os.Child("boot").Attr("dev", "hd");
  } else {
    // Measured direct boot: one-file firmware as ROM, the image's kernel, initrd and command line.
    os.Text("loader", s.firmware.string()).Attr("readonly", "yes").Attr("type", "rom");
    os.Text("kernel", s.kernel.string());
    os.Text("initrd", s.initrd.string());
    os.Text("cmdline", s.cmdline);
  }
  os.Child("smbios").Attr("mode", "sysinfo");

  Node features = domain.Child("features");
  features.Child("acpi");
  if (s.platform == Platform::kTdx)
    features.Child("ioapic").Attr("driver", "qemu");  // split irqchip
  if (s.platform == Platform::kVtpmOnly) {
    // -cpu max: every feature the accelerator offers (host-passthrough aborts QEMU on nested KVM
    // here; PLATFORM-NOTES).
    domain.Child("cpu").Attr("mode", "maximum").Attr("check", "none");
  } else {
    domain.Child("cpu").Attr("mode", "host-passthrough").Attr("check", "none");
  }
  domain.Child("clock").Attr("offset", "utc");
  domain.Text("on_poweroff", "destroy");
  domain.Text("on_reboot", "restart");  // an update reboots in place
  domain.Text("on_crash", "destroy");

  Node devices = domain.Child("devices");
  const bool cvm = s.platform != Platform::kVtpmOnly;
  {
    Node disk = devices.Child("disk");
    disk.Attr("type", "file").Attr("device", "disk");
    Node driver = disk.Child("driver");
    driver.Attr("name", "qemu").Attr("type", "raw").Attr("cache", "none").Attr("discard", "unmap");
    if (cvm) driver.Attr("iommu", "on");  // virtio through the guest's bounce buffers
    disk.Child("source").Attr("file", s.disk.string());
    disk.Child("target").Attr("dev", "vda").Attr("bus", "virtio");
  }
  if (!s.net.network.empty()) {
    Node iface = devices.Child("interface");
    iface.Attr("type", "network");
    iface.Child("source").Attr("network", s.net.network);
    iface.Child("model").Attr("type", "virtio");
    if (cvm) iface.Child("driver").Attr("iommu", "on");
  }
  {
    Node serial = devices.Child("serial");
    serial.Attr("type", "file");
    serial.Child("source").Attr("path", s.serial_log.string()).Attr("append", "off");
  }
  {
    Node tpm = devices.Child("tpm");
    tpm.Attr("model", "tpm-crb");
    tpm.Child("backend").Attr("type", "emulator").Attr("version", "2.0");
  }
  devices.Child("controller").Attr("type", "usb").Attr("model", "none");
  devices.Child("video").Child("model").Attr("type", "none");
  devices.Child("memballoon").Attr("model", "none");

  if (s.form == Form::kNative) {
    Node ls = domain.Child("launchSecurity");
    if (s.platform == Platform::kSevSnp) {
      ls.Attr("type", "sev-snp")
          .Attr("kernelHashes", "yes")
          .Attr("authorKey", "no")
          .Attr("vcek", "yes");
      ls.Text("cbitpos", std::to_string(s.snp_cbitpos));
      ls.Text("reducedPhysBits", std::to_string(s.snp_reduced_phys_bits));
      ls.Text("policy", Hex64(s.snp_policy));
      ls.Text("hostData", attest::Base64Encode(Bytes(Digest(EVP_sha256(), s.launch_config))));
    } else {
      ls.Attr("type", "tdx");
      ls.Text("policy", Hex64(s.tdx_attributes));
      ls.Text("mrConfigId", attest::Base64Encode(Bytes(Digest(EVP_sha384(), s.launch_config))));
      ls.Child("quoteGenerationService").Attr("path", s.tdx_qgs_socket.string());
    }
  }
  if (!qemu_args.empty()) {
    Node cl = domain.Child("commandline", qemu_ns);
    for (const auto& a : qemu_args) cl.Child("arg", qemu_ns).Attr("value", a);
  }

  xmlBuffer* buf = xmlBufferCreate();
  xmlSaveCtxt* save = xmlSaveToBuffer(buf, "UTF-8", XML_SAVE_FORMAT | XML_SAVE_NO_DECL);
  xmlSaveTree(save, root_node);
  xmlSaveClose(save);
  std::string out(reinterpret_cast<const char*>(xmlBufferContent(buf)),
                  static_cast<size_t>(xmlBufferLength(buf)));
  xmlBufferFree(buf);
  if (out.empty() || out.back() != '\n') out.push_back('\n');
  return out;
}

absl::StatusOr<LaunchMetadata> ParseLaunchMetadata(absl::string_view xml) {
  auto doc = ParseXml(xml, kMaxMetadataXml, "launch metadata");
  if (!doc.ok()) return doc.status();
  // libvirt hands the element back without its namespace (virDomainGetMetadata); a namespace,
  // if present, must be ours.
  xmlNode* root = xmlDocGetRootElement(doc->get());
  if (xmlStrcmp(root->name, X("launch")) != 0 ||
      (root->ns && xmlStrcmp(root->ns->href, X(kMetadataNs)) != 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("launch metadata: root is not <launch> (namespace ", kMetadataNs, ")"));
  }
  std::unique_ptr<xmlXPathContext, XPathCtxFree> ctx(xmlXPathNewContext(doc->get()));
  auto get = [&](const char* name) {
    return XPathString(
        ctx.get(), absl::StrCat("/*[local-name()='launch']/*[local-name()='", name, "']").c_str());
  };
  LaunchMetadata m;
  auto platform = get("platform");
  if (!platform) return absl::InvalidArgumentError("launch metadata: no platform");
  auto p = ParsePlatform(*platform);
  if (!p.ok())
    return absl::InvalidArgumentError(absl::StrCat("launch metadata: ", p.status().message()));
  m.platform = *p;
  auto form = get("form");
  if (form == "plain")
    m.form = Form::kPlain;
  else if (form == "qemu-commandline")
    m.form = Form::kPassthrough;
  else if (form == "native")
    m.form = Form::kNative;
  else
    return absl::InvalidArgumentError("launch metadata: bad form");
  auto network = get("network");
  if (!network) return absl::InvalidArgumentError("launch metadata: no network");
  m.net.network = *network;
  if (!m.net.network.empty()) {
    if (auto st = CheckName(m.net.network); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("launch metadata: network ", st.message()));
    }
  }
  auto host_address = get("host-address");
  if (!host_address || !CheckIpv4(*host_address).ok()) {
    return absl::InvalidArgumentError("launch metadata: bad host-address");
  }
  m.net.host_address = *host_address;
  auto host_port = ParsePort(get("host-port"), "host-port", !m.net.network.empty());
  if (!host_port.ok()) return host_port.status();
  auto guest_port = ParsePort(get("guest-port"), "guest-port", false);
  if (!guest_port.ok()) return guest_port.status();
  m.net.host_port = *host_port;
  m.net.guest_port = *guest_port;
  auto state_dir = get("state-dir");
  auto serial = get("serial-log");
  if (!state_dir || !serial)
    return absl::InvalidArgumentError("launch metadata: no state-dir or serial-log");
  if (auto st = CheckPath("launch metadata: state-dir", *state_dir); !st.ok()) return st;
  if (auto st = CheckPath("launch metadata: serial-log", *serial); !st.ok()) return st;
  m.state_dir = *state_dir;
  m.serial_log = *serial;
  auto digest = get("launch-config-sha256");
  if (!digest || digest->size() != 64 || !attest::HexDecode(*digest).ok()) {
    return absl::InvalidArgumentError("launch metadata: bad launch-config-sha256");
  }
  m.launch_config_sha256 = *digest;
  return m;
}

absl::StatusOr<DomainCaps> ParseDomainCapabilities(absl::string_view xml) {
  auto doc = ParseXml(xml, kMaxCapsXml, "domain capabilities");
  if (!doc.ok()) return doc.status();
  if (xmlStrcmp(xmlDocGetRootElement(doc->get())->name, X("domainCapabilities")) != 0) {
    return absl::InvalidArgumentError("domain capabilities: root is not <domainCapabilities>");
  }
  std::unique_ptr<xmlXPathContext, XPathCtxFree> ctx(xmlXPathNewContext(doc->get()));
  DomainCaps caps;
  caps.sev =
      XPathString(ctx.get(), "/domainCapabilities/features/sev[@supported='yes']").has_value();
  for (const auto& v : XPathStrings(ctx.get(),
                                    "/domainCapabilities/features/launchSecurity[@supported='yes']"
                                    "/enum[@name='sectype']/value")) {
    if (v == "sev") caps.sev = true;
    if (v == "sev-snp") caps.sev_snp = true;
    if (v == "tdx") caps.tdx = true;
  }
  for (const auto& v : XPathStrings(ctx.get(),
                                    "/domainCapabilities/devices/tpm[@supported='yes']"
                                    "/enum[@name='backendModel']/value")) {
    if (v == "emulator") caps.tpm_emulator = true;
  }
  auto number = [&](const char* expr) -> std::optional<uint32_t> {
    auto s = XPathString(ctx.get(), expr);
    uint32_t v = 0;
    if (!s || !absl::SimpleAtoi(*s, &v) || v > 63) return std::nullopt;
    return v;
  };
  caps.cbitpos = number("/domainCapabilities/features/sev[@supported='yes']/cbitpos");
  caps.reduced_phys_bits =
      number("/domainCapabilities/features/sev[@supported='yes']/reducedPhysBits");
  return caps;
}

}  // namespace appliance::launch
