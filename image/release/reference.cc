#include "reference.h"

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "attest/boot/boot_pcrs.h"
#include "attest/boot/pe.h"
#include "attest/encoding.h"
#include "attest/evidence.h"
#include "attest/files.h"
#include "attest/snp/launch_digest.h"
#include "attest/status.h"
#include "attest/tpm/hash_alg.h"

namespace appliance::release {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr size_t kMaxSmallFile = 64 * 1024;

absl::StatusOr<std::vector<uint8_t>> Read(const fs::path& path, size_t max) {
  auto bytes = attest::ReadFileBounded(path, max);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": ", bytes.status().message()));
  }
  return bytes;
}

std::string Text(const std::vector<uint8_t>& b) {
  return std::string(absl::StripAsciiWhitespace(std::string(b.begin(), b.end())));
}

absl::Status Inconsistent(absl::string_view what) {
  return absl::FailedPreconditionError(absl::StrCat("the image's artifacts disagree: ", what));
}

// The split artifacts for measured direct boot must be the UKI's own sections; returns the file's
// bytes (what the SNP launch digest measures).
absl::StatusOr<std::vector<uint8_t>> ReadSplitArtifact(const std::vector<uint8_t>& uki,
                                                       const attest::boot::PeImage& pe,
                                                       const char* section, const fs::path& file) {
  ASSIGN_OR_RETURN(auto data, attest::boot::PeSectionData(uki, pe, section));
  ASSIGN_OR_RETURN(auto split, Read(file, attest::boot::kMaxPeSize));
  if (!data || *data != split) {
    return Inconsistent(
        absl::StrCat(file.filename().string(), " is not the UKI's ", section, " section"));
  }
  return split;
}

}  // namespace

absl::StatusOr<std::string> BuildReference(const ReferenceArgs& a) {
  const fs::path& dir = a.image_dir;
  std::vector<uint16_t> banks =
      a.banks.empty() ? std::vector<uint16_t>{attest::tpm::kAlgSha256} : a.banks;
  auto disk = attest::Sha256OfFile(dir / "image.raw");
  if (!disk.ok()) return absl::InvalidArgumentError(std::string(disk.status().message()));
  ASSIGN_OR_RETURN(auto uki, Read(dir / "image.efi", attest::boot::kMaxPeSize));
  ASSIGN_OR_RETURN(auto loader, Read(dir / "image.bootx64.efi", attest::boot::kMaxPeSize));
  ASSIGN_OR_RETURN(auto roothash_file, Read(dir / "image.root.roothash", kMaxSmallFile));
  ASSIGN_OR_RETURN(auto containers_file, Read(dir / "image.containers", kMaxSmallFile));
  const std::string roothash = Text(roothash_file);
  auto roothash_bytes = attest::HexDecode(roothash);
  if (!roothash_bytes.ok() || roothash_bytes->size() != 32) {
    return absl::InvalidArgumentError("image.root.roothash: 32 bytes of hex expected");
  }

  auto pe = attest::boot::ParsePe(uki);
  if (!pe.ok())
    return absl::InvalidArgumentError(absl::StrCat("image.efi: ", pe.status().message()));
  ASSIGN_OR_RETURN(auto cmdline, attest::boot::PeSectionData(uki, *pe, ".cmdline"));
  if (!cmdline) return absl::InvalidArgumentError("image.efi: no .cmdline section");
  const std::string cmdline_text(cmdline->begin(), cmdline->end());
  if (!absl::StrContains(cmdline_text, absl::StrCat("roothash=", roothash))) {
    return Inconsistent(absl::StrCat("the UKI's command line does not carry roothash=", roothash));
  }
  ASSIGN_OR_RETURN(auto kernel, ReadSplitArtifact(uki, *pe, ".linux", dir / "image.vmlinuz"));
  ASSIGN_OR_RETURN(auto initrd, ReadSplitArtifact(uki, *pe, ".initrd", dir / "image.initrd"));
  RETURN_IF_ERROR(ReadSplitArtifact(uki, *pe, ".cmdline", dir / "image.cmdline").status());

  attest::boot::BootArtifacts artifacts;
  artifacts.boot_loader = loader;
  artifacts.uki = uki;
  auto boot = attest::boot::PredictBoot(artifacts, banks);
  if (!boot.ok()) return absl::InvalidArgumentError(std::string(boot.status().message()));

  json out = json::object();
  out["version"] = 1;
  out["comment"] = "appliance image reference values: appliance-release reference";
  ASSIGN_OR_RETURN(auto uki_sha, attest::tpm::Hash(attest::tpm::kAlgSha256, uki));
  out["image"] = {{"disk_sha256", attest::HexEncode(*disk)},
                  {"uki_sha256", attest::HexEncode(uki_sha)},
                  {"verity_root_hash", roothash}};
  json pcrs = json::object();
  for (const auto& [alg, values] : boot->pcrs) {
    json bank = json::object();
    for (const auto& [pcr, value] : values) {
      bank[std::to_string(pcr)] = json::array({attest::HexEncode(value)});
    }
    pcrs[attest::tpm::HashAlgName(alg)] = bank;
  }
  json events = json::array();
  for (const auto& e : boot->events) {
    json digests = json::object();
    for (const auto& [alg, d] : e.digests)
      digests[attest::tpm::HashAlgName(alg)] = attest::HexEncode(d);
    events.push_back({{"pcr", e.pcr},
                      {"type", attest::boot::ExpectedEventTypeName(e.type)},
                      {"what", e.what},
                      {"digests", digests}});
  }
  out["tpm"] = {{"pcrs", pcrs},
                {"pcr11_phases", attest::boot::DefaultPcr11Phases()},
                {"boot_events", events}};

  if (a.snp_ovmf) {
    ASSIGN_OR_RETURN(auto ovmf, Read(*a.snp_ovmf, 64u << 20));
    attest::snp::LaunchInputs in;
    in.mode = attest::snp::LaunchMode::kSnp;
    in.vmm = attest::snp::Vmm::kQemu;
    in.vcpus = a.snp_vcpus;
    auto sig = attest::snp::VcpuSignatureOfType(a.snp_vcpu_type);
    if (!sig.ok()) return absl::InvalidArgumentError(std::string(sig.status().message()));
    in.vcpu_signature = *sig;
    in.ovmf = ovmf;
    std::span<const uint8_t> initrd_span(initrd);
    in.kernel = attest::snp::HashesOf(kernel, initrd_span, absl::string_view(cmdline_text));
    auto digest = attest::snp::LaunchDigest(in);
    if (!digest.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--snp-ovmf: ", digest.status().message()));
    }
    out["snp"] = {{"measurements", json::array({attest::HexEncode(*digest)})}};
  }

  json digests = json::array();
  for (const auto& line : absl::StrSplit(Text(containers_file), '\n')) {
    std::string d(absl::StripAsciiWhitespace(line));
    if (d.empty()) continue;
    auto hex = attest::HexDecode(absl::StripPrefix(d, "sha256:"));
    if (!absl::StartsWith(d, "sha256:") || !hex.ok() || hex->size() != 32) {
      return absl::InvalidArgumentError(
          absl::StrCat("image.containers: '", d, "' is not sha256:<64 hex>"));
    }
    digests.push_back(d);
  }
  if (digests.empty()) return absl::InvalidArgumentError("image.containers: no container digest");
  out["container_digests"] = digests;
  if (a.launch_config) {
    ASSIGN_OR_RETURN(auto config, Read(*a.launch_config, 256 * 1024));
    ASSIGN_OR_RETURN(auto sha, attest::tpm::Hash(attest::tpm::kAlgSha256, config));
    out["launch_config_sha256"] = json::array({attest::HexEncode(sha)});
  }
  out["runtime_events"] = {attest::kEventLaunchConfig,     attest::kEventContainerManifest,
                           attest::kEventContainerRestart, attest::kEventSupervisorRestart,
                           attest::kEventRelease,          attest::kEventClientRevocations};
  return out.dump(2) + "\n";
}

}  // namespace appliance::release
