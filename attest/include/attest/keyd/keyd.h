// appliance-keyd (issue 10, docs/sealed-model.md): the key release service. It holds model keys
// (encrypted at rest under the store passphrase) and releases one only over TLS 1.3 with a client
// certificate, to evidence whose binding names a fresh challenge, the caller's certificate key
// (`tls-spki`) and the key the model key is wrapped to (`key-request`), and that satisfies the
// model's policy (attest/keyd/policy.h). Every release and refusal is appended to the store's
// release log (JSON lines: time, model, caller key, evidence SHA-256, result, failed check).
//
// The store (a directory, mode 0700):
//   tls-key.pem    the service's TLS key, encrypted PKCS#8 (never plain on disk)
//   tls-cert.pem   its self-signed certificate; appliances pin its SubjectPublicKeyInfo
//   models/ID/     key.json (attest/seal/key_file.h), policy.json, reference-values.json
//   release-log.jsonl
//
// No gRPC in this header.
#ifndef ATTEST_KEYD_KEYD_H_
#define ATTEST_KEYD_KEYD_H_

#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace attest::keyd {

// Creates the store with a new TLS identity; returns the SHA-256 (hex) of the service's
// SubjectPublicKeyInfo, which launch configurations pin. AlreadyExists if the store has one.
absl::StatusOr<std::string> InitStore(const std::filesystem::path& store,
                                      const std::string& passphrase);

// Adds (or, with `replace`, updates) a model: the key file must decrypt under the store passphrase
// for `model_id`; policy and reference values are parsed before anything is written.
absl::Status AddModel(const std::filesystem::path& store, const std::string& passphrase,
                      const std::filesystem::path& key_file,
                      const std::filesystem::path& policy_file,
                      const std::filesystem::path& reference_file, bool replace);

struct ServeOptions {
  std::filesystem::path store;
  std::string passphrase;
  std::string listen = "127.0.0.1:0";
  std::filesystem::path port_file;  // written with the port once listening
  // Extra trust anchors (client::LoadRootsDir: *.pem SEV-SNP, tdx_*.pem TDX, tdx-collateral/),
  // read at every release request, so that an anchor added to the directory (a software signer's
  // root in tests, a new Intel collateral) applies without a restart. Empty: the built-in roots.
  std::filesystem::path roots_dir;
  absl::Duration challenge_ttl = absl::Seconds(60);
};

// Loads every model (all keys decrypt, all policies parse, or nothing is served), listens, and
// serves until SIGTERM or SIGINT. Returns the process exit code (0 stopped, 1 failed).
int Serve(const ServeOptions& options);

}  // namespace attest::keyd

#endif  // ATTEST_KEYD_KEYD_H_
