// appliance-supervisor's daemon (DESIGN §6), private to the executable: gRPC stays out of every
// other header.
#ifndef SUPERVISOR_SRC_SUPERVISOR_H_
#define SUPERVISOR_SRC_SUPERVISOR_H_

#include <filesystem>
#include <string>

namespace appliance::supervisor {

struct DaemonOptions {
  std::filesystem::path config_path;
  // Private working directory (mode 0700): the extracted and unpacked model image, the model's
  // socket directory, the audit log, `listen` (the bound address). Never holds a key.
  std::filesystem::path state_dir = "/run/appliance-supervisor";
  // software-snp: where snp_ark.pem (the test root, public) is written; default state_dir.
  std::filesystem::path software_roots_dir;
  bool software_debug = false;  // software-snp: sign reports with the DEBUG policy bit
  int software_rsa_bits = 4096;
  bool software_vlek = false;  // software-snp: sign with a VLEK (AWS's kind of key), not a VCEK
  // The firmware's TCG event log, sent in every evidence bundle so that a verifier can replay the
  // boot PCRs of the quote. Empty: the kernel's (securityfs) when the vTPM is a device of this
  // machine (tcti "device:…"), none otherwise (a swtpm on a host is not the machine's TPM).
  std::filesystem::path firmware_event_log;
  // The running release (issue 8): {"release_version": N, "target_sha256": "<hex>"}, written by
  // the updater when it installs a release. Logged as the runtime event "release" and reported
  // as Evidence.release. Empty: no release is reported.
  std::filesystem::path release_file;
  // The release channel's client-revocation list (attest/tuf/client_revocations.h), written by
  // `appliance-update revocations`. Applied to every TLS handshake and call, logged as the
  // runtime event "client-revocations", re-read when it changes (then the TLS key is renewed so
  // that every connection re-handshakes). Absent file: an empty list. Empty path: no list.
  std::filesystem::path client_revocations;
  // platform azure (issue 11): the VCEK certificate (PEM or DER) sent with the HCL report, as
  // Azure's THIM endpoint serves it (docs/cloud.md). Absent file: the evidence carries none and
  // a verifier needs the VCEK from elsewhere.
  std::filesystem::path azure_vcek = "/run/appliance/azure-vcek.pem";
  // platform azure: Azure's Instance Metadata Service (THIM's VCEK chain when the file above is
  // absent; the TD quote on TDX). Tests give a loopback server.
  std::string azure_imds = "http://169.254.169.254";
};

// Runs until SIGTERM/SIGINT. Returns the process exit code.
int RunDaemon(const DaemonOptions& options);

}  // namespace appliance::supervisor

#endif  // SUPERVISOR_SRC_SUPERVISOR_H_
