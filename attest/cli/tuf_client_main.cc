// appliance-tuf-client: the release channel's TUF client with the three-command interface the
// upstream TUF conformance suite drives (issue 8's stable contract; exit 0 success, 1 failure):
//   appliance-tuf-client --metadata-dir D init TRUSTED_ROOT
//   appliance-tuf-client --metadata-dir D --metadata-url U refresh
//   appliance-tuf-client --metadata-dir D --metadata-url U --target-name T --target-base-url B
//                        --target-dir O download
// Trusted metadata lives in D under unversioned names (root.json, timestamp.json, ...).
// Repositories: https:// (TLS 1.3; the system's trust store, or --ca-file), http://, a directory
// or a file:// URL.
#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "attest/files.h"
#include "attest/tuf/client.h"

namespace {

int Fail(const std::string& what) {
  std::fprintf(stderr, "appliance-tuf-client: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"appliance-tuf-client: TUF client of the appliance release channel"};
  std::string metadata_dir, metadata_url, target_name, target_base_url, target_dir, trusted_root;
  app.add_option("--metadata-dir", metadata_dir, "trusted metadata directory")->required();
  app.add_option("--metadata-url", metadata_url, "repository metadata URL or directory");
  app.add_option("--target-name", target_name, "target to download");
  app.add_option("--target-base-url", target_base_url, "where targets are served");
  app.add_option("--target-dir", target_dir, "where the downloaded target is written");
  std::string ca_file;
  app.add_option("--ca-file", ca_file,
                 "HTTPS: trust these CA certificates (PEM) instead of the "
                 "system's");
  auto* init = app.add_subcommand("init", "trust TRUSTED_ROOT (root.json) from now on");
  init->add_option("TRUSTED_ROOT", trusted_root, "the initial trusted root metadata")->required();
  auto* refresh = app.add_subcommand("refresh", "update root, timestamp, snapshot and targets");
  auto* download = app.add_subcommand("download", "refresh, then download and verify one target");
  app.require_subcommand(1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 1;  // the conformance protocol: any failure is 1
  }
  if (*init) {
    auto bytes = attest::ReadFileBounded(trusted_root, 512 * 1024);
    if (!bytes.ok()) return Fail(std::string(bytes.status().message()));
    auto st = attest::tuf::Client::Init(metadata_dir, *bytes);
    return st.ok() ? 0 : Fail(std::string(st.message()));
  }
  if (metadata_url.empty()) return Fail("--metadata-url is required");
  auto fetcher = attest::tuf::MakeHttpFetcher(absl::Seconds(30), ca_file);
  attest::tuf::Client client(metadata_dir, metadata_url, fetcher.get());
  auto st = client.Refresh();
  if (!st.ok()) return Fail(std::string(st.message()));
  if (*refresh) return 0;
  if (*download) {
    if (target_name.empty() || target_base_url.empty() || target_dir.empty()) {
      return Fail("download needs --target-name, --target-base-url and --target-dir");
    }
    auto tf = client.Download(target_name, target_base_url, target_dir);
    if (!tf.ok()) return Fail(std::string(tf.status().message()));
  }
  return 0;
}
