#include "attest/boot/boot_pcrs.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "attest/boot/pe.h"
#include "attest/encoding.h"
#include "attest/status.h"

namespace attest::boot {
namespace {

using tpm::kEvEfiAction;
using tpm::kEvEfiBootServicesApplication;
using tpm::kEvEfiVariableDriverConfig;
using tpm::kEvEventTag;
using tpm::kEvIpl;

// systemd 252's unified sections, in the order systemd-stub measures them (.pcrsig is skipped).
constexpr const char* kUkiSections[] = {".linux",  ".osrel", ".cmdline", ".initrd",
                                        ".splash", ".dtb",   ".pcrpkey"};

std::vector<uint8_t> Bytes(std::string_view s) { return std::vector<uint8_t>(s.begin(), s.end()); }

absl::StatusOr<ExpectedEvent> Measured(uint32_t pcr, uint32_t type, std::string what,
                                       std::span<const uint8_t> data,
                                       const std::vector<uint16_t>& banks) {
  ExpectedEvent e{pcr, type, std::move(what), {}};
  for (uint16_t alg : banks) {
    ASSIGN_OR_RETURN(e.digests[alg], tpm::Hash(alg, data));
  }
  return e;
}

absl::StatusOr<ExpectedEvent> Authenticode(uint32_t pcr, std::string what,
                                           std::span<const uint8_t> image,
                                           const std::vector<uint16_t>& banks) {
  ExpectedEvent e{pcr, kEvEfiBootServicesApplication, std::move(what), {}};
  for (uint16_t alg : banks) {
    auto digest = AuthenticodeDigest(image, alg);
    if (!digest.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(e.what, ": ", digest.status().message()));
    }
    e.digests[alg] = *std::move(digest);
  }
  return e;
}

// UEFI_VARIABLE_DATA: VariableName (GUID), UnicodeNameLength, VariableDataLength (UINT64 in
// characters and bytes), UnicodeName (UTF-16LE, no NUL), VariableData.
std::vector<uint8_t> VariableData(const uint8_t (&guid)[16], std::string_view name,
                                  std::span<const uint8_t> data) {
  std::vector<uint8_t> out(guid, guid + 16);
  auto u64 = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  u64(name.size());
  u64(data.size());
  for (char c : name) {
    out.push_back(static_cast<uint8_t>(c));
    out.push_back(0);
  }
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// EFI_GLOBAL_VARIABLE and EFI_IMAGE_SECURITY_DATABASE_GUID in their in-memory (mixed-endian) form.
constexpr uint8_t kGlobalVariable[16] = {0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11,
                                         0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c};
constexpr uint8_t kSecurityDatabase[16] = {0xcb, 0xb2, 0x19, 0xd7, 0x3a, 0x3d, 0x96, 0x45,
                                           0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f};

// The command line as systemd-boot passes it to the UKI and the Linux stub measures it: UTF-16LE
// with its terminating NUL. The appliance's command line is ASCII.
absl::StatusOr<std::vector<uint8_t>> LoadOptions(std::span<const uint8_t> cmdline) {
  std::vector<uint8_t> out;
  for (uint8_t c : cmdline) {
    if (c == 0) break;
    if (c >= 0x80) return absl::InvalidArgumentError(".cmdline: not ASCII");
    out.push_back(c);
    out.push_back(0);
  }
  out.push_back(0);
  out.push_back(0);
  return out;
}

// The Linux EFI stub's tagged events (EV_EVENT_TAG, TCG_PCClientTaggedEvent): tagged data with
// the event id; the digest is over the measured data only.
constexpr uint32_t kLoadOptionsTag = 0x8f3b22ed;
constexpr uint32_t kInitrdTag = 0x8f3b22ec;

}  // namespace

absl::StatusOr<std::vector<ExpectedEvent>> PredictUkiPcr11(std::span<const uint8_t> uki,
                                                           const std::vector<std::string>& phases,
                                                           const std::vector<uint16_t>& banks) {
  ASSIGN_OR_RETURN(auto pe, ParsePe(uki));
  std::vector<ExpectedEvent> out;
  for (const char* name : kUkiSections) {
    ASSIGN_OR_RETURN(auto data, PeSectionData(uki, pe, name));
    if (!data || data->empty()) continue;
    const std::string_view n(name);
    std::vector<uint8_t> with_nul(n.begin(), n.end());
    with_nul.push_back(0);
    ASSIGN_OR_RETURN(auto e1, Measured(11, kEvIpl, absl::StrCat(name, " (name)"), with_nul, banks));
    ASSIGN_OR_RETURN(auto e2,
                     Measured(11, kEvIpl, absl::StrCat(name, " (contents)"), *data, banks));
    out.push_back(std::move(e1));
    out.push_back(std::move(e2));
  }
  if (out.empty() || out.front().what != ".linux (name)") {
    return absl::InvalidArgumentError("uki: no .linux section: not a unified kernel image");
  }
  for (const auto& phase : phases) {
    ASSIGN_OR_RETURN(
        auto e, Measured(11, 0, absl::StrCat("systemd-pcrphase ", phase), Bytes(phase), banks));
    out.push_back(std::move(e));
  }
  return out;
}

absl::StatusOr<std::vector<uint8_t>> ExtendPcr11Phases(uint16_t alg, std::vector<uint8_t> value,
                                                       const std::vector<std::string>& phases) {
  for (const auto& phase : phases) {
    ASSIGN_OR_RETURN(auto d, tpm::Hash(alg, Bytes(phase)));
    ASSIGN_OR_RETURN(value, tpm::Extend(alg, value, d));
  }
  return value;
}

absl::StatusOr<std::optional<std::vector<std::string>>> Pcr11PhasesThatExplain(
    uint16_t alg, const std::vector<uint8_t>& firmware_pcr11, const std::vector<uint8_t>& quoted,
    const std::vector<std::string>& phases) {
  if (phases.size() > 10) return std::nullopt;
  for (uint32_t mask = 0; mask < (1u << phases.size()); ++mask) {
    std::vector<std::string> subset;
    for (size_t i = 0; i < phases.size(); ++i) {
      if (mask & (1u << i)) subset.push_back(phases[i]);
    }
    ASSIGN_OR_RETURN(auto v, ExtendPcr11Phases(alg, firmware_pcr11, subset));
    if (v == quoted) return subset;
  }
  return std::nullopt;
}

absl::StatusOr<BootPrediction> PredictBoot(const BootArtifacts& a,
                                           const std::vector<uint16_t>& banks) {
  BootPrediction p;
  auto add = [&](absl::StatusOr<ExpectedEvent> e) -> absl::Status {
    if (!e.ok()) return e.status();
    p.events.push_back(*std::move(e));
    return absl::OkStatus();
  };
  ASSIGN_OR_RETURN(auto uki, ParsePe(a.uki));
  ASSIGN_OR_RETURN(auto linux, PeSectionData(a.uki, uki, ".linux"));
  ASSIGN_OR_RETURN(auto cmdline, PeSectionData(a.uki, uki, ".cmdline"));
  ASSIGN_OR_RETURN(auto initrd, PeSectionData(a.uki, uki, ".initrd"));
  if (!linux || !cmdline || !initrd) {
    return absl::InvalidArgumentError("uki: needs .linux, .cmdline and .initrd sections");
  }
  ASSIGN_OR_RETURN(auto options, LoadOptions(*cmdline));
  const std::vector<uint8_t> separator(4, 0);

  // PCR 7: Secure Boot off, no keys enrolled (OVMF_VARS with an empty key store).
  const uint8_t secure_boot_off[1] = {0};
  RETURN_IF_ERROR(
      add(Measured(7, kEvEfiVariableDriverConfig, "SecureBoot = 0",
                   VariableData(kGlobalVariable, "SecureBoot", secure_boot_off), banks)));
  for (const char* var : {"PK", "KEK"}) {
    RETURN_IF_ERROR(add(Measured(7, kEvEfiVariableDriverConfig, absl::StrCat(var, " (empty)"),
                                 VariableData(kGlobalVariable, var, {}), banks)));
  }
  for (const char* var : {"db", "dbx"}) {
    RETURN_IF_ERROR(add(Measured(7, kEvEfiVariableDriverConfig, absl::StrCat(var, " (empty)"),
                                 VariableData(kSecurityDatabase, var, {}), banks)));
  }
  RETURN_IF_ERROR(add(Measured(7, tpm::kEvSeparator, "separator", separator, banks)));

  // PCR 4: the boot manager's action, the separator, then every EFI application started.
  RETURN_IF_ERROR(add(Measured(4, kEvEfiAction, "Calling EFI Application from Boot Option",
                               Bytes("Calling EFI Application from Boot Option"), banks)));
  RETURN_IF_ERROR(add(Measured(4, tpm::kEvSeparator, "separator", separator, banks)));
  RETURN_IF_ERROR(add(Authenticode(4, "systemd-boot \\EFI\\BOOT\\BOOTX64.EFI (Authenticode)",
                                   a.boot_loader, banks)));
  RETURN_IF_ERROR(add(Authenticode(4, "the UKI (Authenticode)", a.uki, banks)));
  RETURN_IF_ERROR(
      add(Authenticode(4, "the kernel, the UKI's .linux (Authenticode)", *linux, banks)));

  // PCR 12: systemd-boot passes the UKI's .cmdline as load options and measures them; the stub,
  // with Secure Boot off and load options present, measures them again.
  RETURN_IF_ERROR(add(Measured(12, kEvIpl, "load options (systemd-boot)", options, banks)));

  // PCR 11: systemd-stub's sections, then the boot phases.
  ASSIGN_OR_RETURN(auto pcr11, PredictUkiPcr11(a.uki, a.pcr11_phases, banks));
  p.events.insert(p.events.end(), pcr11.begin(), pcr11.end());
  RETURN_IF_ERROR(add(Measured(12, kEvIpl, "load options (systemd-stub)", options, banks)));

  // PCR 9: the Linux EFI stub measures its load options and the initrd it loads.
  RETURN_IF_ERROR(add(Measured(
      9, kEvEventTag, absl::StrFormat("LOADED_IMAGE::LoadOptions (tag 0x%08x)", kLoadOptionsTag),
      options, banks)));
  RETURN_IF_ERROR(add(Measured(
      9, kEvEventTag, absl::StrFormat("Linux initrd (tag 0x%08x)", kInitrdTag), *initrd, banks)));

  ASSIGN_OR_RETURN(p.pcrs, ReplayExpected(p.events, banks));
  return p;
}

std::string ExpectedEventTypeName(uint32_t type) {
  return type == 0 ? "systemd-pcrphase" : tpm::EventTypeName(type);
}

absl::StatusOr<uint32_t> ExpectedEventTypeFromName(const std::string& name) {
  if (name == "systemd-pcrphase") return 0;
  for (uint32_t base : {0x0u, 0x80000000u}) {
    for (uint32_t t = base == 0 ? 1 : base; t < base + 0x100; ++t) {
      if (tpm::EventTypeName(t) == name) return t;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown event type '", name, "'"));
}

absl::StatusOr<tpm::PcrBanks> ReplayExpected(const std::vector<ExpectedEvent>& events,
                                             const std::vector<uint16_t>& banks) {
  tpm::PcrBanks out;
  for (uint16_t alg : banks) {
    const size_t n = tpm::HashAlgSize(alg);
    if (n == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("hash algorithm ", tpm::HashAlgName(alg), " is not supported"));
    }
    for (uint32_t pcr : kBootPcrs) out[alg][pcr].assign(n, 0);
    for (const auto& e : events) {
      auto d = e.digests.find(alg);
      if (d == e.digests.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("event '", e.what, "' has no ", tpm::HashAlgName(alg), " digest"));
      }
      auto& value = out[alg][e.pcr];
      if (value.empty()) value.assign(n, 0);
      ASSIGN_OR_RETURN(value, tpm::Extend(alg, value, d->second));
    }
  }
  return out;
}

std::string ExplainPcrMismatch(const tpm::EventLog* log, uint32_t pcr, uint16_t alg,
                               const std::vector<ExpectedEvent>& expected) {
  std::vector<const ExpectedEvent*> want;
  for (const auto& e : expected) {
    if (e.pcr == pcr) want.push_back(&e);
  }
  if (log == nullptr) {
    return "the evidence carries no firmware event log to name the event";
  }
  std::vector<const tpm::UntrustedEvent*> have;
  for (const auto& e : log->events) {
    if (e.pcr == pcr && e.type != tpm::kEvNoAction) have.push_back(&e);
  }
  size_t wi = 0;
  for (const tpm::UntrustedEvent* h : have) {
    // Events systemd-pcrphase extends are not in the firmware log: they come last.
    if (wi >= want.size() || want[wi]->type == 0) {
      return absl::StrFormat("event #%u %s (%s) is not in the reference", h->index,
                             tpm::EventTypeName(h->type), tpm::DescribeEvent(*h));
    }
    const ExpectedEvent& w = *want[wi++];
    auto hd = h->digests.find(alg);
    auto wd = w.digests.find(alg);
    if (hd == h->digests.end() || wd == w.digests.end()) {
      return absl::StrFormat("event #%u has no %s digest", h->index, tpm::HashAlgName(alg));
    }
    if (h->type != w.type || hd->second != wd->second) {
      return absl::StrFormat("event #%u %s (%s) has %s %s where the reference expects '%s' %s",
                             h->index, tpm::EventTypeName(h->type), tpm::DescribeEvent(*h),
                             tpm::HashAlgName(alg), HexEncode(hd->second), w.what,
                             HexEncode(wd->second));
    }
  }
  if (wi < want.size() && want[wi]->type != 0) {
    return absl::StrFormat("the log lacks the expected event '%s'", want[wi]->what);
  }
  std::vector<std::string> phases;
  for (; wi < want.size(); ++wi) phases.push_back(want[wi]->what);
  if (!phases.empty()) {
    return absl::StrCat(
        "every firmware-logged event matches; the boot phases extended after them (",
        absl::StrJoin(phases, ", "), ") differ: a phase is missing or extra");
  }
  return "every logged event matches the reference: the quoted value was extended by events "
         "the firmware log does not record";
}

}  // namespace attest::boot
