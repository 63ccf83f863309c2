// appliance-supervisor --config LAUNCH_CONFIG_JSON (issue 5's stable contract).
#include <cstdio>
#include <cstdlib>

#include "CLI/CLI.hpp"
#include "supervisor.h"

int main(int argc, char** argv) {
  appliance::supervisor::DaemonOptions o;
  std::string state_dir = o.state_dir.string(), roots_dir, event_log;
  CLI::App app{"appliance-supervisor: measures and serves the model container over attested mTLS"};
  app.add_option("--config", o.config_path, "launch configuration (JSON, docs/launch-config.md)")
      ->required();
  app.add_option("--state-dir", state_dir, "private working directory (created, mode 0700)");
  app.add_option("--software-roots-dir", roots_dir,
                 "software-snp only: where to write the test ARK (snp_ark.pem); default state dir");
  app.add_flag("--software-debug", o.software_debug,
               "software-snp only: sign reports with the DEBUG policy bit (for tests)");
  app.add_option("--software-rsa-bits", o.software_rsa_bits,
                 "software-snp only: RSA size of the test ARK/ASK (AMD's: 4096)")
      ->check(CLI::IsMember({2048, 3072, 4096}));
  app.add_flag("--software-vlek", o.software_vlek,
               "software-snp only: sign reports with a VLEK (ASVK chain; AWS's kind of key)");
  app.add_option("--firmware-event-log", event_log,
                 "TCG firmware event log sent with the evidence (default: the kernel's "
                 "binary_bios_measurements when tpm.tcti is a device)");
  std::string release_file;
  app.add_option("--release-file", release_file,
                 "the running release, {\"release_version\": N, \"target_sha256\": hex}: "
                 "logged and reported in the evidence");
  std::string client_revocations;
  app.add_option("--client-revocations", client_revocations,
                 "the release channel's client-revocation list (appliance-update revocations): "
                 "revoked client keys are refused; re-read when it changes");
  std::string azure_vcek = o.azure_vcek.string();
  app.add_option("--azure-vcek", azure_vcek,
                 "platform azure: the VCEK certificate sent with the HCL report (docs/cloud.md)");
  app.add_option("--azure-imds", o.azure_imds,
                 "platform azure: the Instance Metadata Service (THIM VCEK, TD quotes)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  o.state_dir = state_dir;
  o.azure_vcek = azure_vcek;
  o.firmware_event_log = event_log;
  // The image's drop-in names it through the environment (guest/appliance-release-info).
  if (release_file.empty()) {
    if (const char* env = std::getenv("APPLIANCE_RELEASE_FILE"); env != nullptr) release_file = env;
  }
  o.release_file = release_file;
  if (client_revocations.empty()) {
    if (const char* env = std::getenv("APPLIANCE_CLIENT_REVOCATIONS"); env != nullptr)
      client_revocations = env;
  }
  o.client_revocations = client_revocations;
  o.software_roots_dir = roots_dir.empty() ? o.state_dir : std::filesystem::path(roots_dir);
  return appliance::supervisor::RunDaemon(o);
}
