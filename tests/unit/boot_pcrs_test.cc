// The boot-measurement precompute (issue 7 item 3): PE parsing and Authenticode digests
// (cross-checked with osslsigncode on the host's systemd-boot and stub), PCR 11 of a UKI
// (cross-checked with the host's systemd-measure on a test UKI), the whole-boot prediction's
// structure, the reference-values schema for boot PCRs, and the PE parser's bounds: every
// truncation fails cleanly and every hashed byte changes the digest.
#include "attest/boot/boot_pcrs.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "attest/boot/pe.h"
#include "attest/encoding.h"
#include "attest/evidence.h"
#include "pe_builder.h"
#include "test_support.h"

namespace attest::boot {
namespace {

namespace fs = std::filesystem;
using testing::ReadFileOrDie;
using testing::RunProcess;
using testing::WriteFileOrDie;

constexpr char kOsslsigncode[] = "/usr/bin/osslsigncode";
constexpr char kSystemdMeasure[] = "/lib/systemd/systemd-measure";
const fs::path kHostEfi = "/usr/lib/systemd/boot/efi";

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 31 + (i >> 7));
  return v;
}

// osslsigncode's own Authenticode digest of a copy it signs with a throwaway key.
std::string OsslsigncodeDigest(const fs::path& in, const fs::path& dir, fs::path* signed_out) {
  const fs::path key = dir / "key.pem", cert = dir / "cert.pem";
  if (!fs::exists(key)) {
    auto r =
        RunProcess({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    key.string(), "-out", cert.string(), "-subj", "/CN=test", "-days", "1"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  *signed_out = dir / (in.filename().string() + ".signed");
  auto r = RunProcess({kOsslsigncode, "sign", "-certs", cert.string(), "-key", key.string(), "-h",
                       "sha256", "-in", in.string(), "-out", signed_out->string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  r = RunProcess({kOsslsigncode, "verify", "-in", signed_out->string()});
  std::smatch m;
  const std::string text = r.out + r.err;
  if (!std::regex_search(text, m, std::regex("Calculated message digest *: *([0-9A-Fa-f]{64})"))) {
    ADD_FAILURE() << text;
    return "";
  }
  return absl::AsciiStrToLower(m[1].str());
}

TEST(AuthenticodeTest, MatchesOsslsigncodeOnHostBootBinaries) {
  if (!fs::exists(kOsslsigncode)) GTEST_SKIP() << kOsslsigncode << " is not installed";
  testing::ScopedTempDir dir;
  int checked = 0;
  for (const char* name : {"systemd-bootx64.efi", "linuxx64.efi.stub"}) {
    const fs::path file = kHostEfi / name;
    if (!fs::exists(file)) continue;
    fs::path signed_file;
    const std::string expected = OsslsigncodeDigest(file, dir.path(), &signed_file);
    auto signed_bytes = ReadFileOrDie(signed_file);
    auto digest = AuthenticodeDigest(signed_bytes, tpm::kAlgSha256);
    ASSERT_TRUE(digest.ok()) << digest.status();
    EXPECT_EQ(HexEncode(*digest), expected) << name;
    auto pe = ParsePe(signed_bytes);
    ASSERT_TRUE(pe.ok());
    EXPECT_GT(pe->certificate_table_size, 0u)
        << "the signature is excluded as the certificate table";
    ++checked;
  }
  // A generated image with trailing data and an attached certificate, too.
  testing::PeSpec spec;
  spec.sections = {{".text", Pattern(1000, 1)}, {".data", Pattern(77, 2)}};
  spec.trailing_data = Pattern(24, 3);
  const fs::path built = dir.path() / "built.efi";
  WriteFileOrDie(built, testing::BuildPe(spec));
  fs::path signed_file;
  const std::string expected = OsslsigncodeDigest(built, dir.path(), &signed_file);
  auto digest = AuthenticodeDigest(ReadFileOrDie(signed_file), tpm::kAlgSha256);
  ASSERT_TRUE(digest.ok()) << digest.status();
  EXPECT_EQ(HexEncode(*digest), expected);
  std::printf("Authenticode equals osslsigncode's for %d host binaries and a generated image\n",
              checked);
}

TEST(AuthenticodeTest, CertificateAndChecksumAreNotHashedEverythingElseIs) {
  testing::PeSpec spec;
  spec.sections = {{".text", Pattern(1500, 4)}, {".cmdline", Pattern(40, 5)}};
  spec.trailing_data = Pattern(16, 6);
  auto plain = testing::BuildPe(spec);
  spec.certificate = Pattern(64, 7);
  auto with_cert = testing::BuildPe(spec);
  auto pe = ParsePe(with_cert);
  ASSERT_TRUE(pe.ok()) << pe.status();
  auto base = AuthenticodeDigest(with_cert, tpm::kAlgSha256);
  ASSERT_TRUE(base.ok());
  // Changing the certificate bytes or the CheckSum leaves the digest alone.
  auto changed = with_cert;
  changed[changed.size() - 1] ^= 0xff;
  changed[pe->checksum_offset] ^= 0x55;
  EXPECT_EQ(*AuthenticodeDigest(changed, tpm::kAlgSha256), *base);
  // Every other byte is covered: flipping it changes the digest or makes the image malformed.
  const size_t cert_start = with_cert.size() - pe->certificate_table_size;
  size_t flipped = 0;
  for (size_t i = 0; i < cert_start; ++i) {
    if (i >= pe->checksum_offset && i < pe->checksum_offset + 4) continue;
    if (i >= *pe->security_dir_offset && i < *pe->security_dir_offset + 8) continue;
    auto t = with_cert;
    t[i] ^= 0x01;
    auto d = AuthenticodeDigest(t, tpm::kAlgSha256);
    if (d.ok()) {
      ASSERT_NE(*d, *base) << "byte " << i << " is not covered";
    } else {
      EXPECT_TRUE(absl::StartsWith(d.status().message(), "pe: ")) << d.status();
    }
    ++flipped;
  }
  EXPECT_GT(flipped, plain.size() - 100);
}

TEST(PeTest, EveryTruncationFailsCleanly) {
  auto uki = testing::BuildTestUki("console=ttyS0 roothash=00", Pattern(900, 8));
  for (size_t n = 0; n < uki.size(); ++n) {
    auto pe = ParsePe(std::span(uki).first(n));
    ASSERT_FALSE(pe.ok()) << "prefix of " << n << " bytes parsed";
    EXPECT_EQ(pe.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(pe.status().message(), "pe")) << pe.status();
  }
  ASSERT_TRUE(ParsePe(uki).ok());
}

TEST(PeTest, RejectsHostileHeaders) {
  auto uki = testing::BuildTestUki("x", {1});
  auto bad = [&](size_t at, uint32_t v, const char* expect) {
    auto t = uki;
    for (int i = 0; i < 4; ++i) t[at + i] = static_cast<uint8_t>(v >> (8 * i));
    auto pe = ParsePe(t);
    ASSERT_FALSE(pe.ok()) << expect;
    EXPECT_TRUE(absl::StrContains(pe.status().message(), expect)) << pe.status();
  };
  bad(0x3c, 0xfffffff0, "e_lfanew");
  bad(0x40 + 4 + 2, 0x0000ffff, "sections");     // NumberOfSections (low half)
  bad(0x40 + 24 + 108, 17, "data directories");  // NumberOfRvaAndSizes
  bad(0x40 + 24 + 60, 0x7fffffff, "SizeOfHeaders");
  bad(0x40 + 24 + 240 + 20, 0x7ffffff0, "outside the");     // first section's raw offset
  bad(0x40 + 24 + 112 + 32 + 4, 100, "certificate table");  // [0, +100) is not the tail
}

TEST(UkiPcr11Test, MatchesSystemdMeasure) {
  if (!fs::exists(kSystemdMeasure)) GTEST_SKIP() << kSystemdMeasure << " is not installed";
  testing::ScopedTempDir dir;
  const std::string cmdline =
      "console=ttyS0 systemd.volatile=state roothash=" + std::string(64, 'a');
  auto uki_bytes = testing::BuildTestUki(cmdline, Pattern(10000, 9));
  auto pe = ParsePe(uki_bytes);
  ASSERT_TRUE(pe.ok()) << pe.status();
  std::vector<std::string> args = {kSystemdMeasure,
                                   "calculate",
                                   "--bank=sha256",
                                   "--bank=sha384",
                                   "--json=short",
                                   "--phase=:",
                                   "--phase=enter-initrd:leave-initrd:sysinit:ready"};
  for (const char* s : {".linux", ".osrel", ".cmdline", ".initrd"}) {
    auto data = PeSectionData(uki_bytes, *pe, s);
    ASSERT_TRUE(data.ok() && data->has_value());
    const fs::path f = dir.path() / (std::string(s + 1) + ".bin");
    WriteFileOrDie(f, **data);
    args.push_back(absl::StrCat("--", s + 1, "=", f.string()));
  }
  auto r = RunProcess(args);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out);
  for (auto [bank, alg] :
       {std::pair{"sha256", tpm::kAlgSha256}, std::pair{"sha384", tpm::kAlgSha384}}) {
    for (const auto& entry : j[bank]) {
      const bool with_phases = entry.contains("phase");
      auto events = PredictUkiPcr11(
          uki_bytes, with_phases ? DefaultPcr11Phases() : std::vector<std::string>{}, {alg});
      ASSERT_TRUE(events.ok()) << events.status();
      auto pcrs = ReplayExpected(*events, {alg});
      ASSERT_TRUE(pcrs.ok());
      EXPECT_EQ(HexEncode(pcrs->at(alg).at(11)), entry["hash"].get<std::string>())
          << bank << (with_phases ? " after the ready phase" : " before any phase");
    }
  }
}

TEST(BootPredictionTest, EventsAndKnownFirmwareValues) {
  testing::PeSpec loader_spec;
  loader_spec.sections = {{".text", Pattern(2000, 10)}};
  auto loader = testing::BuildPe(loader_spec);
  const std::string cmdline = "console=ttyS0 roothash=" + std::string(64, 'b');
  auto uki = testing::BuildTestUki(cmdline, Pattern(5000, 11));
  BootArtifacts a;
  a.boot_loader = loader;
  a.uki = uki;
  auto p = PredictBoot(a, {tpm::kAlgSha256, tpm::kAlgSha384});
  ASSERT_TRUE(p.ok()) << p.status();
  std::map<uint32_t, int> per_pcr;
  for (const auto& e : p->events) ++per_pcr[e.pcr];
  EXPECT_EQ(per_pcr[4], 5);    // action, separator, systemd-boot, UKI, kernel
  EXPECT_EQ(per_pcr[7], 6);    // SecureBoot, PK, KEK, db, dbx, separator
  EXPECT_EQ(per_pcr[9], 2);    // load options, initrd
  EXPECT_EQ(per_pcr[11], 12);  // 4 sections × (name, contents) + 4 phases
  EXPECT_EQ(per_pcr[12], 2);   // load options by systemd-boot and by the stub
  // PCR 7 with Secure Boot off and an empty key store is firmware-independent: this is the value
  // OVMF (Debian 12's ovmf) produced in the e2e boot.
  EXPECT_EQ(HexEncode(p->pcrs.at(tpm::kAlgSha256).at(7)),
            "65caf8dd1e0ea7a6347b635d2b379c93b9a1351edc2afc3ecda700e534eb3068");
  // The kernel's Authenticode digest is that of the .linux section, and PCR 9's initrd event
  // that of the .initrd section's bytes.
  auto pe = ParsePe(uki);
  auto linux = PeSectionData(uki, *pe, ".linux");
  EXPECT_EQ(p->events[10].digests.at(tpm::kAlgSha256),
            *AuthenticodeDigest(**linux, tpm::kAlgSha256));
  EXPECT_EQ(p->events.back().digests.at(tpm::kAlgSha256),
            *tpm::Hash(tpm::kAlgSha256, Pattern(5000, 11)));
  // Not a UKI: no .linux.
  a.uki = loader;
  auto bad = PredictBoot(a, {tpm::kAlgSha256});
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StrContains(bad.status().message(), ".linux")) << bad.status();
}

TEST(BootPredictionTest, ExplainNamesTheFirstDifferingEvent) {
  BootArtifacts a;
  testing::PeSpec loader_spec;
  loader_spec.sections = {{".text", Pattern(2000, 12)}};
  auto loader = testing::BuildPe(loader_spec);
  auto uki = testing::BuildTestUki("a=1", Pattern(100, 13));
  a.boot_loader = loader;
  a.uki = uki;
  auto p = PredictBoot(a, {tpm::kAlgSha256});
  ASSERT_TRUE(p.ok());
  // A "log" of the expected events for PCR 11 with the .cmdline contents changed.
  tpm::EventLog log;
  size_t index = 1;
  for (const auto& e : p->events) {
    if (e.type == 0) continue;  // phases are not logged
    tpm::UntrustedEvent u;
    u.index = index++;
    u.pcr = e.pcr;
    u.type = e.type;
    u.digests = e.digests;
    u.data = {'x'};
    if (e.what == ".cmdline (contents)") u.digests[tpm::kAlgSha256][0] ^= 1;
    log.events.push_back(u);
  }
  const std::string why = ExplainPcrMismatch(&log, 11, tpm::kAlgSha256, p->events);
  EXPECT_TRUE(absl::StrContains(why, "'.cmdline (contents)'")) << why;
  EXPECT_TRUE(absl::StrContains(why, "EV_IPL")) << why;
  // Same log, PCR 4 unchanged: the remaining difference must be after the logged events.
  const std::string why4 = ExplainPcrMismatch(&log, 4, tpm::kAlgSha256, p->events);
  EXPECT_TRUE(absl::StrContains(why4, "every logged event matches")) << why4;
  // An extra logged event on PCR 12.
  tpm::UntrustedEvent extra;
  extra.index = 99;
  extra.pcr = 12;
  extra.type = 0xd;
  extra.digests[tpm::kAlgSha256] = std::vector<uint8_t>(32, 7);
  log.events.push_back(extra);
  const std::string why12 = ExplainPcrMismatch(&log, 12, tpm::kAlgSha256, p->events);
  EXPECT_TRUE(absl::StrContains(why12, "#99")) << why12;
  EXPECT_TRUE(absl::StrContains(why12, "not in the reference")) << why12;
  EXPECT_TRUE(absl::StrContains(ExplainPcrMismatch(nullptr, 4, tpm::kAlgSha256, p->events),
                                "no firmware event log"));
}

TEST(BootPredictionTest, MissingPcr11PhasesAreFound) {
  // A firmware-logged PCR 11 value, then the four phases with "leave-initrd" not measured.
  const std::vector<uint8_t> firmware(32, 0x5a);
  const auto& all = DefaultPcr11Phases();
  for (uint16_t alg : {tpm::kAlgSha1, tpm::kAlgSha256}) {
    std::vector<uint8_t> base = firmware;
    base.resize(alg == tpm::kAlgSha1 ? 20 : 32);
    auto complete = ExtendPcr11Phases(alg, base, all);
    ASSERT_TRUE(complete.ok());
    auto found = Pcr11PhasesThatExplain(alg, base, *complete, all);
    ASSERT_TRUE(found.ok() && found->has_value());
    EXPECT_EQ(**found, all);
    const std::vector<std::string> gap = {"enter-initrd", "sysinit", "ready"};
    auto quoted = ExtendPcr11Phases(alg, base, gap);
    ASSERT_TRUE(quoted.ok());
    found = Pcr11PhasesThatExplain(alg, base, *quoted, all);
    ASSERT_TRUE(found.ok() && found->has_value());
    EXPECT_EQ(**found, gap);
    // Out of order, or an unknown extra phase: nothing explains it.
    auto reordered = ExtendPcr11Phases(alg, base, {"sysinit", "enter-initrd"});
    ASSERT_TRUE(reordered.ok());
    found = Pcr11PhasesThatExplain(alg, base, *reordered, all);
    ASSERT_TRUE(found.ok());
    EXPECT_FALSE(found->has_value());
    auto extra = ExtendPcr11Phases(
        alg, base, {"enter-initrd", "leave-initrd", "sysinit", "ready", "shutdown"});
    ASSERT_TRUE(extra.ok());
    found = Pcr11PhasesThatExplain(alg, base, *extra, all);
    ASSERT_TRUE(found.ok());
    EXPECT_FALSE(found->has_value());
  }
}

TEST(ReferenceBootSchemaTest, ParsesAndRejects) {
  const std::string digest(64, 'a');
  auto parse = [](const std::string& tpm) {
    const std::string text = R"({"version": 1, "container_digests": ["sha256:)" +
                             std::string(64, '0') + R"("], "tpm": )" + tpm + "}";
    return ParseReferenceValues(
        std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  };
  auto ok = parse(R"({"pcrs": {"sha256": {"4": [")" + digest + R"("]}},
                      "pcr11_phases": ["enter-initrd", "ready"],
                      "boot_events": [{"pcr": 4, "type": "EV_EFI_ACTION", "what": "w",
                                       "digests": {"sha256": ")" +
                  digest + R"("}},
                                      {"pcr": 11, "type": "systemd-pcrphase",
                                       "digests": {"sha256": ")" +
                  digest + R"("}}]})");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->tpm_pcrs.at(tpm::kAlgSha256).at(4).size(), 1u);
  EXPECT_EQ(ok->tpm_pcr11_phases, (std::vector<std::string>{"enter-initrd", "ready"}));
  ASSERT_EQ(ok->tpm_boot_events.size(), 2u);
  EXPECT_EQ(ok->tpm_boot_events[0].type, 0x80000007u);
  EXPECT_EQ(ok->tpm_boot_events[1].type, 0u);
  struct Bad {
    std::string tpm, names;
  } bad[] = {
      {R"({"pcrs": {"sha256": {"24": [")" + digest + R"("]}}})", "tpm.pcrs.sha256.24"},
      {R"({"pcrs": {"sha256": {"4": ["abcd"]}}})", "tpm.pcrs.sha256.4"},
      {R"({"pcrs": {"md5": {"4": [")" + digest + R"("]}}})", "tpm.pcrs.md5"},
      {R"({"pcrs": {"sha256": {"4": []}}})", "tpm.pcrs.sha256.4"},
      {R"({"boot_events": [{"pcr": 4, "type": "EV_NOPE", "digests": {"sha256": ")" + digest +
           R"("}}]})",
       "tpm.boot_events[0].type"},
      {R"({"boot_events": [{"pcr": 4, "type": "EV_IPL", "digests": {}}]})",
       "tpm.boot_events[0].digests"},
      {R"({"pcr11_phases": [""]})", "tpm.pcr11_phases"},
      {R"({"extra": 1})", "unknown key 'extra'"},
  };
  for (const auto& b : bad) {
    auto r = parse(b.tpm);
    ASSERT_FALSE(r.ok()) << b.tpm;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(r.status().message(), b.names)) << r.status() << " for " << b.tpm;
  }
}

}  // namespace
}  // namespace attest::boot
