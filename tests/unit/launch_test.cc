// appliance-launch (issue 9): the domain XML (golden per platform and host version, regenerated
// through the CLI), libvirt 9.0's schema and lifecycle on the test driver (test:///default, in
// process and through the CLI), hostile values, the parsers of what libvirt hands back, and the
// sparse disk copy. The real QEMU domain is tests/e2e/launch_e2e_test.cc.
#include <gtest/gtest.h>
#include <libvirt/libvirt.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "domain_xml.h"
#include "launcher.h"
#include "test_support.h"

namespace appliance::launch {
namespace {

namespace fs = std::filesystem;
using attest::testing::ReadFileOrDie;
using attest::testing::RunProcess;
using attest::testing::WriteFileOrDie;

const fs::path kGolden = fs::path(APPLIANCE_SOURCE_DIR) / "tests/golden/launch";
const fs::path kLaunch = APPLIANCE_LAUNCH_BIN;

std::string Text(const fs::path& p) {
  auto b = ReadFileOrDie(p);
  return std::string(b.begin(), b.end());
}

// An image folder with the files appliance-launch reads (contents do not matter to the XML but
// the command line, which is fixed here).
class LaunchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    image_ = tmp_.path() / "image";
    fs::create_directories(image_);
    for (const char* f : {"image.raw", "image.vmlinuz", "image.initrd"}) {
      WriteFileOrDie(image_ / f, std::string("x"));
    }
    WriteFileOrDie(image_ / "image.cmdline",
                   "console=ttyS0 systemd.volatile=state roothash=" + std::string(64, 'a') + "\n");
  }
  static fs::path Config(const char* platform) {
    return kGolden / absl::StrCat("launch-config-", platform, ".json");
  }
  LaunchOptions Options(const std::string& name, Platform p) const {
    LaunchOptions o;
    o.connect = "test:///default";
    o.name = name;
    o.image_dir = image_;
    o.launch_config = Config(std::string(LaunchConfigPlatform(p)).c_str());
    o.platform = p;
    o.kvm = false;
    o.state_dir = fs::path("/srv/appliance") / name;
    return o;
  }
  attest::testing::ProcessResult Cli(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {kLaunch.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv, 120);
  }

  attest::testing::ScopedTempDir tmp_;
  fs::path image_;
};

struct GoldenCase {
  const char* platform;
  const char* config;
  const char* libvirt;
  const char* qemu;
  const char* form;
};
constexpr GoldenCase kGoldenCases[] = {
    {"vtpm-only", "vtpm-only", "9.0.0", "7.2.0", "plain"},
    {"sev-snp", "snp", "9.0.0", "9.1.0", "qemu-commandline"},
    {"sev-snp", "snp", "10.5.0", "9.1.0", "native"},
    {"tdx", "tdx", "9.0.0", "10.1.0", "qemu-commandline"},
    {"tdx", "tdx", "11.0.0", "10.1.0", "native"},
};

// The XML for each platform and host version equals the checked-in file (docs/launch.md shows
// them). APPLIANCE_UPDATE_GOLDEN=1 rewrites the files instead.
TEST_F(LaunchTest, GoldenXmlPerPlatformAndHostVersion) {
  const bool update = std::getenv("APPLIANCE_UPDATE_GOLDEN") != nullptr;
  for (const auto& c : kGoldenCases) {
    SCOPED_TRACE(absl::StrCat(c.platform, " libvirt ", c.libvirt, " qemu ", c.qemu));
    auto r = Cli({"define",
                  "--name",
                  "appliance-1",
                  "--image",
                  image_.string(),
                  "--launch-config",
                  Config(c.config).string(),
                  "--platform",
                  c.platform,
                  "--state-dir",
                  "/srv/appliance/appliance-1",
                  "--host-port",
                  "40443",
                  "--libvirt-version",
                  c.libvirt,
                  "--qemu-version",
                  c.qemu,
                  "--accel",
                  "tcg",
                  "--dump-xml"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(
        absl::StrContains(r.out, absl::StrCat("<appliance:form>", c.form, "</appliance:form>")));
    const fs::path golden =
        kGolden / absl::StrCat(c.platform, "_libvirt-", c.libvirt, "_qemu-", c.qemu, ".xml");
    if (update) {
      WriteFileOrDie(golden, r.out);
      continue;
    }
    EXPECT_EQ(r.out, Text(golden))
        << "regenerate with APPLIANCE_UPDATE_GOLDEN=1 after a deliberate change";
  }
}

// What the measured values are: HOST_DATA = SHA-256 and MRCONFIGID = SHA-384 of the launch
// configuration's exact bytes (base64, as QEMU and libvirt take them).
TEST_F(LaunchTest, MeasuredLaunchValuesAreTheConfigurationDigests) {
  const std::string snp = Text(kGolden / "sev-snp_libvirt-10.5.0_qemu-9.1.0.xml");
  const std::string tdx = Text(kGolden / "tdx_libvirt-11.0.0_qemu-10.1.0.xml");
  auto r = RunProcess({"/bin/sh", "-c",
                       absl::StrCat("openssl dgst -sha256 -binary ", Config("snp").string(),
                                    " | base64 -w0; echo; openssl dgst -sha384 -binary ",
                                    Config("tdx").string(), " | base64 -w0")});
  ASSERT_EQ(r.exit_code, 0);
  const std::string sha256 = r.out.substr(0, r.out.find('\n'));
  const std::string sha384 = r.out.substr(r.out.find('\n') + 1);
  EXPECT_TRUE(absl::StrContains(snp, "<hostData>" + sha256 + "</hostData>")) << sha256;
  EXPECT_TRUE(absl::StrContains(tdx, "<mrConfigId>" + sha384 + "</mrConfigId>")) << sha384;
  EXPECT_TRUE(absl::StrContains(Text(kGolden / "sev-snp_libvirt-9.0.0_qemu-9.1.0.xml"),
                                "&quot;host-data&quot;:&quot;" + sha256 + "&quot;"));
  EXPECT_TRUE(absl::StrContains(Text(kGolden / "tdx_libvirt-9.0.0_qemu-10.1.0.xml"),
                                "&quot;mrconfigid&quot;:&quot;" + sha384 + "&quot;"));
}

TEST(LaunchFormTest, FormFollowsTheHostVersions) {
  auto v = [](const char* l, const char* q) {
    return HostVersions{*Version::Parse(l), *Version::Parse(q)};
  };
  EXPECT_EQ(*ChooseForm(Platform::kVtpmOnly, v("9.0", "7.2")), Form::kPlain);
  EXPECT_EQ(*ChooseForm(Platform::kSevSnp, v("9.0", "9.1")), Form::kPassthrough);
  EXPECT_EQ(*ChooseForm(Platform::kSevSnp, v("10.4.0", "9.2")), Form::kPassthrough);
  EXPECT_EQ(*ChooseForm(Platform::kSevSnp, v("10.5.0", "9.1")), Form::kNative);
  EXPECT_EQ(*ChooseForm(Platform::kTdx, v("10.10", "10.1")), Form::kPassthrough);
  EXPECT_EQ(*ChooseForm(Platform::kTdx, v("11.0", "10.1")), Form::kNative);
  auto snp = ChooseForm(Platform::kSevSnp, v("9.0.0", "7.2.0"));
  ASSERT_FALSE(snp.ok());
  EXPECT_TRUE(absl::StrContains(snp.status().message(), "QEMU 7.2.0 has no sev-snp-guest"));
  auto tdx = ChooseForm(Platform::kTdx, v("11.0", "10.0.2"));
  ASSERT_FALSE(tdx.ok());
  EXPECT_TRUE(absl::StrContains(tdx.status().message(), "needs QEMU >= 10.1.0"));
  EXPECT_EQ(Version::FromLibvirt(9000000).str(), "9.0.0");
  EXPECT_EQ(Version::FromLibvirt(7002022).str(), "7.2.22");
  for (const char* bad : {"", "9", "9.", "9.x", "1.2.3.4", "-1.0", "1000.0", " 9.0"}) {
    EXPECT_FALSE(Version::Parse(bad).ok()) << bad;
  }
}

// The XML libvirt 9.0 knows validates against its schema (VIR_DOMAIN_DEFINE_VALIDATE), and each
// lifecycle step is idempotent, on the test driver.
TEST_F(LaunchTest, LifecycleOnTheTestDriverForEachPlatform) {
  auto launcher = Launcher::Open("test:///default");
  ASSERT_TRUE(launcher.ok()) << launcher.status();
  for (Platform p : {Platform::kVtpmOnly, Platform::kSevSnp, Platform::kTdx}) {
    SCOPED_TRACE(PlatformName(p));
    LaunchOptions o = Options(absl::StrCat("lifecycle-", PlatformName(p)), p);
    o.qemu_version = *Version::Parse(p == Platform::kTdx ? "10.1" : "9.1");
    auto d = (*launcher)->Define(o);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ((*d)["redefined"], false);
    EXPECT_EQ((*d)["form"], p == Platform::kVtpmOnly ? "plain" : "qemu-commandline");
    d = (*launcher)->Define(o);  // again: the same domain (its UUID), redefined
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ((*d)["redefined"], true);
    auto s = (*launcher)->Start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ((*s)["started"], true);
    s = (*launcher)->Start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ((*s)["started"], false);
    auto st = (*launcher)->Status(o);
    ASSERT_TRUE(st.ok()) << st.status();
    EXPECT_EQ((*st)["state"], "running");
    EXPECT_EQ((*st)["platform"], std::string(PlatformName(p)));
    auto u = (*launcher)->Undefine(o);  // running: refused
    ASSERT_FALSE(u.ok());
    EXPECT_TRUE(absl::StrContains(u.status().message(), "stop it first"));
    o.force = true;
    auto stop = (*launcher)->Stop(o);
    ASSERT_TRUE(stop.ok()) << stop.status();
    EXPECT_EQ((*stop)["stopped"], true);
    stop = (*launcher)->Stop(o);
    ASSERT_TRUE(stop.ok()) << stop.status();
    EXPECT_EQ((*stop)["stopped"], false);
    u = (*launcher)->Undefine(o);
    ASSERT_TRUE(u.ok()) << u.status();
    EXPECT_EQ((*u)["undefined"], true);
    u = (*launcher)->Undefine(o);
    ASSERT_TRUE(u.ok()) << u.status();
    EXPECT_EQ((*u)["undefined"], false);
    EXPECT_TRUE(absl::IsNotFound((*launcher)->Status(o).status()));
  }
}

// The native forms are for newer libvirt: libvirt 9.0's schema refuses them, naming the element.
TEST_F(LaunchTest, NativeFormsNeedANewerLibvirt) {
  auto launcher = Launcher::Open("test:///default");
  ASSERT_TRUE(launcher.ok()) << launcher.status();
  for (Platform p : {Platform::kSevSnp, Platform::kTdx}) {
    LaunchOptions o = Options(absl::StrCat("native-", PlatformName(p)), p);
    o.qemu_version = *Version::Parse("10.1");
    o.libvirt_version = *Version::Parse("11.0");
    auto d = (*launcher)->Define(o);
    ASSERT_FALSE(d.ok());
    EXPECT_TRUE(absl::StrContains(d.status().message(), "launchSecurity")) << d.status();
  }
}

// A domain appliance-launch did not define is not touched.
TEST_F(LaunchTest, ForeignDomainsAreLeftAlone) {
  auto launcher = Launcher::Open("test:///default");
  ASSERT_TRUE(launcher.ok());
  LaunchOptions o = Options("test", Platform::kVtpmOnly);  // the test driver's own domain
  auto s = (*launcher)->Status(o);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.status().message(), "not defined by appliance-launch"))
      << s.status();
  EXPECT_FALSE((*launcher)->Define(o).ok());
  EXPECT_FALSE((*launcher)->Undefine(o).ok());
}

// Values with quotes, '<', '&' survive libvirt's parser exactly (escaped by libxml2); names
// and values with control characters are refused before any XML exists.
TEST_F(LaunchTest, HostileValuesAreEscapedOrRefused) {
  auto launcher = Launcher::Open("test:///default");
  ASSERT_TRUE(launcher.ok());
  LaunchOptions o = Options("hostile-paths", Platform::kVtpmOnly);
  o.state_dir = "/srv/a\"b'<c>&d e/</domain><devices>";
  auto d = (*launcher)->Define(o);
  ASSERT_TRUE(d.ok()) << d.status();
  auto st = (*launcher)->Status(o);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ((*st)["state_dir"], o.state_dir.string());
  EXPECT_EQ((*st)["serial_log"], (o.state_dir / "serial.log").string());
  auto xml = (*launcher)->Xml(o);
  ASSERT_TRUE(xml.ok());
  EXPECT_TRUE(absl::StrContains(
      *xml, "/srv/a&quot;b'&lt;c&gt;&amp;d e/&lt;/domain&gt;&lt;devices&gt;/disk.raw"))
      << *xml;
  ASSERT_TRUE((*launcher)->Undefine(o).ok());

  for (const char* name : {"a\"b", "a<b", "a\nb", "../x", "", "-x", "a b", "a/b", "é"}) {
    auto r = Cli({"-c", "test:///default", "define", "--name", name, "--image", image_.string(),
                  "--launch-config", Config("vtpm-only").string(), "--platform", "vtpm-only",
                  "--accel", "tcg"});
    EXPECT_EQ(r.exit_code, 2) << name << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, "name")) << r.err;
  }
  for (const char* dir : {"/srv/a\nb", "/srv/a\rb", "/srv/\x01", "/srv/\xc3\xa9"}) {
    o.state_dir = dir;
    auto bad = (*launcher)->Define(o);
    ASSERT_FALSE(bad.ok()) << dir;
    EXPECT_TRUE(absl::IsInvalidArgument(bad.status())) << bad.status();
    EXPECT_TRUE(absl::StrContains(bad.status().message(), "state directory")) << bad.status();
  }
  o = Options("hostile-network", Platform::kVtpmOnly);
  o.network = "default'/><interface type='bridge";
  auto bad = (*launcher)->Define(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "network")) << bad.status();
  // A command line with a newline cannot reach <cmdline>.
  WriteFileOrDie(image_ / "image.cmdline", std::string("console=ttyS0\nrd.break roothash=1\n"));
  o = Options("hostile-cmdline", Platform::kSevSnp);
  o.qemu_version = *Version::Parse("9.1");
  bad = (*launcher)->Define(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "command line")) << bad.status();
}

TEST_F(LaunchTest, CliExitCodes) {
  // Usage errors: 2.
  EXPECT_EQ(Cli({}).exit_code, 2);
  EXPECT_EQ(Cli({"define"}).exit_code, 2);  // --name is required
  auto r = Cli({"-c", "test:///default", "define", "--name", "x", "--platform", "sgx"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(r.err, "platform 'sgx'")) << r.err;
  r = Cli({"-c", "test:///default", "define", "--name", "x", "--image", image_.string(),
           "--launch-config", Config("snp").string(), "--platform", "vtpm-only", "--accel", "tcg"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(r.err, "its platform is 'snp'")) << r.err;
  r = Cli({"-c", "test:///default", "define", "--name", "x", "--image",
           (tmp_.path() / "none").string(), "--launch-config", Config("vtpm-only").string(),
           "--platform", "vtpm-only", "--accel", "tcg"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(r.err, "image.raw is missing")) << r.err;
  // The host cannot run it, or the domain is missing: 1, with the reason.
  r = Cli({"-c", "test:///default", "define", "--name", "x", "--image", image_.string(),
           "--launch-config", Config("snp").string(), "--platform", "sev-snp"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "has no sev-snp-guest object")) << r.err;
  r = Cli({"-c", "test:///default", "status", "--name", "absent"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "no domain 'absent'")) << r.err;
  r = Cli({"-c", "test:///nonexistent-file.xml", "status", "--name", "absent"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "connect to")) << r.err;
  // Stop and undefine of an absent domain are done (idempotent): 0. --json is JSON.
  r = Cli({"-c", "test:///default", "stop", "--name", "absent", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["state"], "not defined");
  r = Cli({"-c", "test:///default", "probe", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto probe = nlohmann::json::parse(r.out);
  EXPECT_EQ(probe["platform"], "vtpm-only");
  EXPECT_EQ(probe["sev_snp"]["usable"], false);
  EXPECT_FALSE(probe["sev_snp"]["why"].empty());
}

constexpr char kMetadata[] =
    "<launch xmlns='https://appliance.invalid/launch/1'><platform>sev-snp</platform>"
    "<form>native</form><network></network><host-address>127.0.0.1</host-address>"
    "<host-port>40443</host-port><guest-port>8443</guest-port><state-dir>/srv/a</state-dir>"
    "<serial-log>/srv/a/serial.log</serial-log><launch-config-sha256>"
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff</launch-config-sha256></"
    "launch>";

TEST(LaunchMetadataTest, ParsesWhatLibvirtReturnsAndRefusesTheRest) {
  auto m = ParseLaunchMetadata(kMetadata);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->platform, Platform::kSevSnp);
  EXPECT_EQ(m->form, Form::kNative);
  EXPECT_EQ(m->net.host_port, 40443);
  EXPECT_EQ(m->state_dir, "/srv/a");
  // libvirt returns the element without its namespace: accepted.
  std::string plain = kMetadata;
  plain.replace(plain.find(" xmlns='https://appliance.invalid/launch/1'"), 43, "");
  EXPECT_TRUE(ParseLaunchMetadata(plain).ok());
  // Every truncation fails.
  const std::string full = kMetadata;
  for (size_t n = 0; n < full.size(); ++n) {
    EXPECT_FALSE(ParseLaunchMetadata(full.substr(0, n)).ok()) << n;
  }
  // Tampered values fail, naming the field.
  const std::pair<const char*, const char*> tampers[] = {
      {"https://appliance.invalid/launch/1", "https://example.com/x"},
      {"<platform>sev-snp", "<platform>sgx"},
      {"<form>native", "<form>other"},
      {"<host-port>40443", "<host-port>70000"},
      {"<guest-port>8443", "<guest-port>0"},
      {"<host-address>127.0.0.1", "<host-address>localhost"},
      {"<state-dir>/srv/a", "<state-dir>srv/a"},
      {"<launch-config-sha256>00", "<launch-config-sha256>zz"},
      {"<network></network>", "<network>a b</network>"},
  };
  for (const auto& [from, to] : tampers) {
    std::string t = full;
    t.replace(t.find(from), std::strlen(from), to);
    EXPECT_FALSE(ParseLaunchMetadata(t).ok()) << to;
  }
  EXPECT_FALSE(ParseLaunchMetadata(std::string(70 * 1024, ' ')).ok());
  EXPECT_FALSE(ParseLaunchMetadata(
                   "<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><launch>&e;</launch>")
                   .ok());
}

TEST(LaunchCapsTest, ReadsSevTdxAndTheTpmEmulator) {
  auto caps = ParseDomainCapabilities(
      "<domainCapabilities><devices><tpm supported='yes'><enum name='backendModel'>"
      "<value>passthrough</value><value>emulator</value></enum></tpm></devices><features>"
      "<sev supported='yes'><cbitpos>51</cbitpos><reducedPhysBits>1</reducedPhysBits></sev>"
      "<launchSecurity supported='yes'><enum "
      "name='sectype'><value>sev</value><value>sev-snp</value>"
      "</enum></launchSecurity></features></domainCapabilities>");
  ASSERT_TRUE(caps.ok()) << caps.status();
  EXPECT_TRUE(caps->sev);
  EXPECT_TRUE(caps->sev_snp);
  EXPECT_FALSE(caps->tdx);
  EXPECT_TRUE(caps->tpm_emulator);
  EXPECT_EQ(caps->cbitpos, 51u);
  caps = ParseDomainCapabilities(
      "<domainCapabilities><features><sev supported='no'/></features></domainCapabilities>");
  ASSERT_TRUE(caps.ok());
  EXPECT_FALSE(caps->sev);
  EXPECT_FALSE(caps->tpm_emulator);
  EXPECT_FALSE(ParseDomainCapabilities("<capabilities/>").ok());
  EXPECT_FALSE(ParseDomainCapabilities("<domainCapabilities>").ok());
}

TEST(LaunchCopyTest, SparseCopyKeepsHolesAndBytes) {
  attest::testing::ScopedTempDir tmp;
  const fs::path src = tmp.path() / "src.raw", dst = tmp.path() / "dst.raw";
  {
    std::ofstream out(src, std::ios::binary);
    out << "head";
    out.seekp(64 << 20);
    out << "tail";
  }
  ASSERT_TRUE(CopySparse(src, dst).ok());
  struct stat a {
  }, b{};
  ASSERT_EQ(stat(src.c_str(), &a), 0);
  ASSERT_EQ(stat(dst.c_str(), &b), 0);
  EXPECT_EQ(a.st_size, b.st_size);
  EXPECT_LT(b.st_blocks * 512, 16 << 20) << "the copy is not sparse";
  EXPECT_EQ(ReadFileOrDie(src), ReadFileOrDie(dst));
  EXPECT_FALSE(fs::exists(tmp.path() / "dst.raw.part"));
  EXPECT_FALSE(CopySparse(tmp.path() / "missing", dst).ok());
}

}  // namespace
}  // namespace appliance::launch
