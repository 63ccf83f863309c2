// appliance-release: the operator's release tool. Subcommands so far:
//   snp-digest  the SEV-SNP (and SEV / SEV-ES) launch digest of a firmware, kernel, initrd and
//               command line, for the reference values (issue 7 item 4; stable contract below).
//   reference   the reference values of a built image (reference-values.json, issue 7 item 3):
//               appliance-release reference IMAGE_DIR [--snp-ovmf F [--snp-vcpus N]
//               [--snp-vcpu-type T]] [--launch-config F] [--bank sha256 ...] [-o FILE]
//   log-init    --log DIR --name NAME --key-out KEY.pem      a transparency log and its key
//   log-append  --log DIR --key KEY.pem --entry FILE         append, sign a new checkpoint
//   log-prove   --log DIR (--index I [--size N] | --from M [--to N])   inclusion/consistency proof
//   init, add-target, sign, publish, rotate-root, status   the TUF release channel (channel.h,
//               docs/release-channel.md): appliance-release init --workdir W --name N [--key-type
//               ed25519|ecdsa] [--key ROLE=FILE]... [--keys ROLE=N]... [--threshold ROLE=N]...
//               [--expires ROLE=DAYS]...; add-target --workdir W FILE [--name T] [--hardware H]
//               [--release-version N] [--kind K] [--roothash HEX]; sign --workdir W
//               [--key FILE]... [--renew ROLE]... [--min-release-version N]
//               [--revoke-release N]...; publish --workdir W --repo R;
//               rotate-root --workdir W [--generate ROLE]... [--add-key ROLE=FILE]...
//               [--remove-key ROLE=KEYID]... [--threshold ROLE=N]...; status --workdir W [--json]
//   seal-model  --image LAYOUT --output DIR --model-id ID --key-out FILE [--passphrase-file F]
//               [--chunk-size N] [--json]: a sealed model for the key release service (issue 10,
//               docs/sealed-model.md); the key service's passphrase from
//               $APPLIANCE_KEYD_PASSPHRASE.
// Passphrases for keys come from $APPLIANCE_RELEASE_PASSPHRASE or --passphrase-file; never printed.
// Exit codes: 0 success, 1 a check failed, 2 usage error or bad input (stderr names it).
//
// appliance-release snp-digest --ovmf F [--kernel F --initrd F --append S] [--vcpus N]
//   [--vcpu-type T | --vcpu-sig N | --vcpu-family N --vcpu-model N --vcpu-stepping N]
//   --vmm qemu|ec2|gce [--guest-features N] [--mode snp|snp:ovmf-hash|snp:svsm|sev|seves]
//   [--svsm F --vars-size N] [--json]
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/snp/launch_digest.h"
#include "attest/tpm/hash_alg.h"
#include "channel_cli.h"
#include "keys.h"
#include "log.h"
#include "reference.h"
#include "seal_cli.h"
#include "vhd.h"

namespace {

constexpr size_t kMaxFirmwareFile = 64u << 20;
constexpr size_t kMaxBootBlob = 1u << 30;  // kernel, initrd

// A file's bytes, bounded; /dev/null (as other tools' examples pass for "empty") reads as empty.
absl::StatusOr<std::vector<uint8_t>> ReadInput(const std::string& path, size_t max) {
  if (path == "/dev/null") return std::vector<uint8_t>();
  return attest::ReadFileBounded(path, max);
}

int Bad(const std::string& what) {
  std::fprintf(stderr, "appliance-release snp-digest: error: %s\n", what.c_str());
  return 2;
}

// Decimal or 0x-hex, at most 64 bits.
std::optional<uint64_t> ParseNumber(const std::string& text) {
  uint64_t v = 0;
  if (text.size() > 2 && (text[0] == '0') && (text[1] == 'x' || text[1] == 'X')) {
    if (!absl::SimpleHexAtoi(text.substr(2), &v)) return std::nullopt;
    return v;
  }
  if (!absl::SimpleAtoi(text, &v)) return std::nullopt;
  return v;
}

struct SnpDigestArgs {
  std::string ovmf, kernel, initrd, svsm, vcpu_type, vcpu_sig, family, model, stepping, vmm;
  std::string append_text, guest_features = "0x1", mode = "snp", vars_size, vcpus = "1";
  bool json = false;
};

int RunSnpDigest(const SnpDigestArgs& a, const CLI::App& cmd) {
  using namespace attest::snp;
  LaunchInputs in;
  auto mode = ParseLaunchMode(a.mode);
  if (!mode.ok()) return Bad(std::string(mode.status().message()));
  in.mode = *mode;
  auto vmm = ParseVmm(a.vmm);
  if (!vmm.ok()) return Bad(std::string(vmm.status().message()));
  in.vmm = *vmm;
  auto vcpus = ParseNumber(a.vcpus);
  if (!vcpus || *vcpus == 0 || *vcpus > 1024) return Bad("--vcpus: expected 1 to 1024");
  in.vcpus = static_cast<uint32_t>(*vcpus);
  auto features = ParseNumber(a.guest_features);
  if (!features) return Bad("--guest-features: expected a number (decimal or 0x-hex)");
  in.guest_features = *features;

  // The vCPU signature: a type, a raw value, or family/model/stepping (one source only).
  const bool fms =
      cmd.count("--vcpu-family") + cmd.count("--vcpu-model") + cmd.count("--vcpu-stepping") > 0;
  const int sources = (cmd.count("--vcpu-type") > 0) + (cmd.count("--vcpu-sig") > 0) + fms;
  if (sources > 1) {
    return Bad(
        "give the vCPU signature once: --vcpu-type, --vcpu-sig or "
        "--vcpu-family/--vcpu-model/--vcpu-stepping");
  }
  if (cmd.count("--vcpu-type")) {
    auto sig = VcpuSignatureOfType(a.vcpu_type);
    if (!sig.ok()) return Bad(std::string(sig.status().message()));
    in.vcpu_signature = *sig;
  } else if (cmd.count("--vcpu-sig")) {
    auto sig = ParseNumber(a.vcpu_sig);
    if (!sig || *sig > 0xFFFFFFFFu) return Bad("--vcpu-sig: expected a 32-bit number");
    in.vcpu_signature = static_cast<uint32_t>(*sig);
  } else if (fms) {
    auto f = ParseNumber(a.family), m = ParseNumber(a.model), s = ParseNumber(a.stepping);
    if (!f || !m || !s || *f > 0xFF + 0xF || *m > 0xFF || *s > 0xF) {
      return Bad(
          "--vcpu-family/--vcpu-model/--vcpu-stepping: all three are needed, family <= "
          "270, model <= 255, stepping <= 15");
    }
    in.vcpu_signature = VcpuSignature(static_cast<uint32_t>(*f), static_cast<uint32_t>(*m),
                                      static_cast<uint32_t>(*s));
  }

  auto ovmf = attest::ReadFileBounded(a.ovmf, kMaxFirmwareFile);
  if (!ovmf.ok()) return Bad(absl::StrCat("--ovmf: ", ovmf.status().message()));
  in.ovmf = *ovmf;
  std::vector<uint8_t> kernel, initrd, svsm;
  if (!a.kernel.empty()) {
    auto k = ReadInput(a.kernel, kMaxBootBlob);
    if (!k.ok()) return Bad(absl::StrCat("--kernel: ", k.status().message()));
    kernel = std::move(*k);
    std::optional<std::span<const uint8_t>> initrd_span;
    if (!a.initrd.empty()) {
      auto i = ReadInput(a.initrd, kMaxBootBlob);
      if (!i.ok()) return Bad(absl::StrCat("--initrd: ", i.status().message()));
      initrd = std::move(*i);
      initrd_span = initrd;
    }
    std::optional<absl::string_view> append;
    if (cmd.count("--append")) append = a.append_text;
    in.kernel = HashesOf(kernel, initrd_span, append);
  } else if (!a.initrd.empty() || cmd.count("--append")) {
    return Bad("--initrd and --append need --kernel");
  }
  if (in.mode == LaunchMode::kSnpSvsm) {
    if (a.svsm.empty() || a.vars_size.empty()) return Bad("snp:svsm needs --svsm and --vars-size");
    auto s = attest::ReadFileBounded(a.svsm, kMaxFirmwareFile);
    if (!s.ok()) return Bad(absl::StrCat("--svsm: ", s.status().message()));
    svsm = std::move(*s);
    in.svsm = svsm;
    auto vars = ParseNumber(a.vars_size);
    if (!vars) return Bad("--vars-size: expected a number (decimal or 0x-hex)");
    in.vars_size = *vars;
  } else if (!a.svsm.empty() || !a.vars_size.empty()) {
    return Bad("--svsm and --vars-size belong to --mode snp:svsm");
  }

  auto digest = LaunchDigest(in);
  if (!digest.ok()) return Bad(std::string(digest.status().message()));
  const std::string hex = attest::HexEncode(*digest);
  if (a.json) {
    nlohmann::json out = {{"mode", LaunchModeName(in.mode)},
                          {"digest", hex},
                          {"vmm", VmmName(in.vmm)},
                          {"vcpus", in.vcpus},
                          {"guest_features", in.guest_features}};
    if (in.vcpu_signature) out["vcpu_signature"] = *in.vcpu_signature;
    if (in.kernel) {
      out["kernel_sha256"] = attest::HexEncode(in.kernel->kernel);
      out["initrd_sha256"] = attest::HexEncode(in.kernel->initrd);
      out["cmdline_sha256"] = attest::HexEncode(in.kernel->cmdline);
    }
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("%s\n", hex.c_str());
  }
  return 0;
}

struct ReferenceCliArgs {
  std::string image_dir, snp_ovmf, snp_vcpu_type = "EPYC-v4", launch_config, output;
  uint32_t snp_vcpus = 2;
  std::vector<std::string> banks;
};

int RunReference(const ReferenceCliArgs& c) {
  auto fail = [](int code, absl::string_view what) {
    std::fprintf(stderr, "appliance-release reference: %s: %s\n",
                 code == 1 ? "check failed" : "error", std::string(what).c_str());
    return code;
  };
  appliance::release::ReferenceArgs a;
  a.image_dir = c.image_dir;
  for (const auto& name : c.banks) {
    auto alg = attest::tpm::HashAlgFromName(name);
    if (!alg.ok() || attest::tpm::HashAlgSize(*alg) == 0) {
      return fail(2, absl::StrCat("--bank: unknown hash algorithm '", name, "'"));
    }
    a.banks.push_back(*alg);
  }
  if (!c.snp_ovmf.empty()) a.snp_ovmf = c.snp_ovmf;
  if (!c.launch_config.empty()) a.launch_config = c.launch_config;
  a.snp_vcpus = c.snp_vcpus;
  a.snp_vcpu_type = c.snp_vcpu_type;
  auto text = appliance::release::BuildReference(a);
  if (!text.ok()) {
    return fail(absl::IsFailedPrecondition(text.status()) ? 1 : 2, text.status().message());
  }
  if (c.output.empty() || c.output == "-") {
    std::fwrite(text->data(), 1, text->size(), stdout);
    return 0;
  }
  auto st = attest::WriteFileAtomically(c.output, *text);
  if (!st.ok()) return fail(2, st.message());
  return 0;
}

struct LogCliArgs {
  std::string log, name, key_out, key, entry, passphrase_file;
  uint64_t index = 0, size = 0, from = 0, to = 0;
};

absl::StatusOr<std::string> Passphrase(const std::string& file) {
  return appliance::release::ReadPassphrase(file);
}

int LogFail(const char* cmd, const absl::Status& st) {
  const bool check = absl::IsPermissionDenied(st);
  std::fprintf(stderr, "appliance-release %s: %s: %s\n", cmd, check ? "check failed" : "error",
               std::string(st.message()).c_str());
  return check ? 1 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"appliance-release: build and publish appliance releases", "appliance-release"};
  app.require_subcommand(1);
  SnpDigestArgs a;
  auto* cmd = app.add_subcommand(
      "snp-digest", "the SEV-SNP / SEV-ES / SEV launch digest a VM with these inputs reports");
  cmd->add_option("--ovmf", a.ovmf, "the firmware (OVMF.fd, an SEV-SNP capable build)")->required();
  cmd->add_option("--kernel", a.kernel, "kernel of a measured direct boot");
  cmd->add_option("--initrd", a.initrd, "initrd of a measured direct boot");
  cmd->add_option("--append", a.append_text, "kernel command line");
  cmd->add_option("--vcpus", a.vcpus, "number of vCPUs (default 1)");
  cmd->add_option("--vcpu-type", a.vcpu_type, "QEMU CPU model, e.g. EPYC-v4, EPYC-Milan");
  cmd->add_option("--vcpu-sig", a.vcpu_sig, "CPUID(1).EAX, decimal or 0x-hex");
  cmd->add_option("--vcpu-family", a.family, "CPU family");
  cmd->add_option("--vcpu-model", a.model, "CPU model");
  cmd->add_option("--vcpu-stepping", a.stepping, "CPU stepping");
  cmd->add_option("--vmm", a.vmm, "qemu, ec2 or gce")->required();
  cmd->add_option("--guest-features", a.guest_features, "SEV_FEATURES (default 0x1)");
  cmd->add_option("--mode", a.mode, "snp (default), snp:ovmf-hash, snp:svsm, sev, seves");
  cmd->add_option("--svsm", a.svsm, "snp:svsm: the SVSM image");
  cmd->add_option("--vars-size", a.vars_size, "snp:svsm: size of the OVMF_VARS file in bytes");
  cmd->add_flag("--json", a.json, "machine-readable output");
  int exit_code = 2;
  cmd->callback([&] { exit_code = RunSnpDigest(a, *cmd); });

  ReferenceCliArgs r;
  auto* ref = app.add_subcommand(
      "reference", "reference-values.json of a built image (boot PCRs, image hashes, SNP digest)");
  ref->add_option("IMAGE_DIR", r.image_dir, "scripts/build-image's output folder")->required();
  ref->add_option("--snp-ovmf", r.snp_ovmf,
                  "an SEV-SNP capable OVMF: adds the launch digest of the measured direct boot");
  ref->add_option("--snp-vcpus", r.snp_vcpus, "vCPUs of that launch (default 2)")
      ->check(CLI::Range(1, 1024));
  ref->add_option("--snp-vcpu-type", r.snp_vcpu_type, "QEMU CPU model (default EPYC-v4)");
  ref->add_option("--launch-config", r.launch_config, "pin this launch configuration");
  ref->add_option("--bank", r.banks, "TPM PCR bank(s) to precompute (default sha256)");
  ref->add_option("-o,--output", r.output, "write here (atomically) instead of stdout");
  ref->callback([&] { exit_code = RunReference(r); });

  LogCliArgs l;
  auto* log_init = app.add_subcommand("log-init", "create a transparency log and its signing key");
  log_init->add_option("--log", l.log, "log directory")->required();
  log_init->add_option("--name", l.name, "the log's name")->required();
  log_init->add_option("--key-out", l.key_out, "where the encrypted private key is written")
      ->required();
  log_init->add_option("--passphrase-file", l.passphrase_file,
                       "passphrase file (else the environment)");
  log_init->callback([&] {
    auto p = Passphrase(l.passphrase_file);
    absl::Status st =
        p.ok() ? appliance::release::LogInit(l.log, l.name, l.key_out, *p) : p.status();
    exit_code = st.ok() ? 0 : LogFail("log-init", st);
  });
  auto* log_append = app.add_subcommand("log-append", "append an entry and sign a new checkpoint");
  log_append->add_option("--log", l.log, "log directory")->required();
  log_append->add_option("--key", l.key, "the log's encrypted private key")->required();
  log_append->add_option("--entry", l.entry, "the entry (e.g. a targets version record)")
      ->required();
  log_append->add_option("--passphrase-file", l.passphrase_file,
                         "passphrase file (else the environment)");
  log_append->callback([&] {
    auto p = Passphrase(l.passphrase_file);
    if (!p.ok()) {
      exit_code = LogFail("log-append", p.status());
      return;
    }
    auto index = appliance::release::LogAppend(l.log, l.key, *p, l.entry);
    if (!index.ok()) {
      exit_code = LogFail("log-append", index.status());
      return;
    }
    std::printf("%llu\n", static_cast<unsigned long long>(*index));
    exit_code = 0;
  });
  auto* log_prove = app.add_subcommand("log-prove", "print an inclusion or consistency proof");
  log_prove->add_option("--log", l.log, "log directory")->required();
  auto* idx = log_prove->add_option("--index", l.index, "entry index (inclusion proof)");
  log_prove->add_option("--size", l.size, "tree size (default: the whole log)");
  auto* from = log_prove->add_option("--from", l.from, "older tree size (consistency proof)");
  log_prove->add_option("--to", l.to, "newer tree size (default: the whole log)");
  idx->excludes(from);
  log_prove->callback([&] {
    if (!log_prove->count("--index") && !log_prove->count("--from")) {
      exit_code = LogFail("log-prove", absl::InvalidArgumentError("give --index or --from"));
      return;
    }
    auto proof = log_prove->count("--index")
                     ? appliance::release::LogProveInclusion(l.log, l.index, l.size)
                     : appliance::release::LogProveConsistency(l.log, l.from, l.to);
    if (!proof.ok()) {
      exit_code = LogFail("log-prove", proof.status());
      return;
    }
    std::fputs(proof->c_str(), stdout);
    exit_code = 0;
  });
  std::string vhd_path;
  uint64_t vhd_epoch = 0;
  auto* vhd = app.add_subcommand(
      "vhd-footer", "append a fixed-VHD footer to a copy of the raw disk (Azure; docs/cloud.md)");
  vhd->add_option("FILE", vhd_path, "the copy of image.raw that becomes the VHD")->required();
  vhd->add_option("--source-date-epoch", vhd_epoch,
                  "the build's SOURCE_DATE_EPOCH (the footer's time and unique id)")
      ->required();
  vhd->callback([&] {
    absl::Status st = appliance::release::AppendVhdFooter(vhd_path, vhd_epoch);
    if (!st.ok())
      std::fprintf(stderr, "appliance-release vhd-footer: error: %s\n",
                   std::string(st.message()).c_str());
    exit_code = st.ok() ? 0 : 2;
  });

  appliance::release::AddChannelCommands(app, exit_code);
  appliance::release::AddSealCommands(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  return exit_code;
}
