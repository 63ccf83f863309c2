// appliance-verify: the coordinator's verifier. Exit codes: 0 verified, 1 a verification or
// policy check failed, 2 usage error or malformed input.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "log_command.h"
#include "release_command.h"
#include "snp_command.h"
#include "tdx_command.h"
#include "tpm_command.h"

int main(int argc, char** argv) {
  // `connect` speaks gRPC and `evidence` links protobuf: they live in appliance-verify-connect
  // and appliance-verify-evidence next to this binary, so that the offline verifier keeps its
  // small start-up cost.
  for (const char* sub : {"connect", "evidence"}) {
    if (argc < 2 || std::string_view(argv[1]) != sub) continue;
    const std::string exe = std::string("appliance-verify-") + sub;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
      self[n] = '\0';
      std::string path = std::filesystem::path(self).parent_path() / exe;
      std::vector<char*> args{path.data()};
      for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
      args.push_back(nullptr);
      execv(path.c_str(), args.data());
    }
    std::fprintf(stderr, "appliance-verify %s: error: cannot run %s: %s\n", sub, exe.c_str(),
                 std::strerror(errno));
    return 2;
  }
  CLI::App app{"appliance-verify: verify confidential-VM attestation evidence offline",
               "appliance-verify"};
  app.require_subcommand(1);
  int exit_code = 2;
  attest::cli::AddSnpCommand(app, &exit_code);
  attest::cli::AddTpmQuoteCommand(app, &exit_code);
  attest::cli::AddEventLogCommand(app, &exit_code);
  attest::cli::AddAzureCommand(app, &exit_code);
  attest::cli::AddTdxCommand(app, &exit_code);
  attest::cli::AddLogCommand(app, &exit_code);
  attest::cli::AddReleaseCommand(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  return exit_code;
}
