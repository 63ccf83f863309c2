// appliance-update: the appliance's updater (supervisor/updater.h, docs/release-channel.md).
//   appliance-update --metadata-dir D --metadata-url U --hardware H --disk DEV --esp DIR
//       [--trusted-root ROOT.json] [--targets-url B] [--image-name appliance] [--tcti T]
//       [--cmdline /proc/cmdline] [--work-dir DIR] [--tries 3] [--ca-file F]
//       [--signed-time TSR --tsa-ca PEM]
//       {status | install | commit}
//   appliance-update --metadata-dir D --metadata-url U --hardware H [--trusted-root ROOT.json]
//       [--targets-url B] [--ca-file F] revocations --output FILE
// Prints a JSON report. Exit 0 done (install: also when already up to date), 1 a check or policy
// refused the update (stderr names it and the values compared), 2 usage error or bad input.
#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "supervisor/updater.h"

int main(int argc, char** argv) {
  appliance::supervisor::UpdaterOptions o;
  std::string metadata_dir, trusted_root, disk, esp, cmdline = o.cmdline.string(), work_dir,
                                                     revocations_file;
  CLI::App app{"appliance-update: install releases from the signed channel into the A/B slots",
               "appliance-update"};
  app.add_option("--metadata-dir", metadata_dir, "trusted TUF metadata directory")->required();
  app.add_option("--trusted-root", trusted_root, "the image's root.json (first run)");
  app.add_option("--metadata-url", o.metadata_url, "the repository (http:// or a directory)")
      ->required();
  app.add_option("--targets-url", o.targets_url, "where targets are served (default URL/targets)");
  app.add_option("--hardware", o.hardware, "this appliance's hardware id")->required();
  app.add_option("--image-name", o.image_name, "the sysupdate name (default appliance)");
  app.add_option("--disk", disk, "the boot disk (GPT; status, install, commit)");
  app.add_option("--esp", esp, "the mounted EFI system partition (status, install, commit)");
  app.add_option("--cmdline", cmdline, "the booted kernel command line (default /proc/cmdline)");
  app.add_option("--work-dir", work_dir, "where downloads go (default: a fresh /var/tmp dir)");
  app.add_option("--tcti", o.tcti, "the vTPM for the release counter (e.g. device:/dev/tpmrm0)");
  app.add_option("--tries", o.tries, "boot tries of a new release (default 3)")
      ->check(CLI::Range(1, 9));
  app.add_option("--sfdisk", o.sfdisk, "sfdisk binary (default /usr/sbin/sfdisk)");
  app.add_option("--ca-file", o.ca_file, "HTTPS: trust these CA certificates (PEM)");
  std::string signed_time, tsa_ca;
  auto* signed_time_opt = app.add_option(
      "--signed-time", signed_time,
      "a coordinator-supplied RFC 3161 time-stamp response (DER): expiry is checked against it");
  auto* tsa_ca_opt =
      app.add_option("--tsa-ca", tsa_ca, "the TSA certificates trusted for --signed-time (PEM)");
  signed_time_opt->needs(tsa_ca_opt);
  tsa_ca_opt->needs(signed_time_opt);
  auto* status = app.add_subcommand("status", "the running, committed and available releases");
  auto* install = app.add_subcommand("install", "install the newest allowed release");
  auto* commit = app.add_subcommand("commit", "raise the vTPM counter to the running release");
  auto* revocations = app.add_subcommand(
      "revocations", "write the channel's client-revocation list for the supervisor");
  revocations->add_option("--output", revocations_file, "the supervisor's revocation list file")
      ->required();
  app.require_subcommand(1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  if (!*revocations && (disk.empty() || esp.empty())) {
    std::fprintf(stderr, "appliance-update: --disk and --esp are required for %s\n",
                 app.get_subcommands().front()->get_name().c_str());
    return 2;
  }
  o.metadata_dir = metadata_dir;
  o.revocations_file = revocations_file;
  o.signed_time = signed_time;
  o.tsa_ca = tsa_ca;
  o.trusted_root = trusted_root;
  o.disk = disk;
  o.esp = esp;
  o.cmdline = cmdline;
  o.work_dir = work_dir;
  auto report = *status        ? appliance::supervisor::UpdaterStatus(o)
                : *install     ? appliance::supervisor::UpdaterInstall(o)
                : *revocations ? appliance::supervisor::UpdaterRevocations(o)
                               : appliance::supervisor::UpdaterCommit(o);
  (void)commit;
  if (!report.ok()) {
    const absl::Status& st = report.status();
    const bool check = absl::IsFailedPrecondition(st) || absl::IsPermissionDenied(st) ||
                       absl::IsDataLoss(st) || absl::IsNotFound(st) || absl::IsUnavailable(st);
    std::fprintf(stderr, "appliance-update: %s%s\n",
                 check ? "" : "error: ", std::string(st.message()).c_str());
    return check ? 1 : 2;
  }
  std::printf("%s\n", report->dump(2).c_str());
  return 0;
}
