// appliance-verify: the coordinator's verifier. Exit codes: 0 verified, 1 a verification or
// policy check failed, 2 usage error or malformed input.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "snp_command.h"
#include "tdx_command.h"
#include "tpm_command.h"

int main(int argc, char** argv) {
  CLI::App app{"appliance-verify: verify confidential-VM attestation evidence offline",
               "appliance-verify"};
  app.require_subcommand(1);
  int exit_code = 2;
  attest::cli::AddSnpCommand(app, &exit_code);
  attest::cli::AddTpmQuoteCommand(app, &exit_code);
  attest::cli::AddEventLogCommand(app, &exit_code);
  attest::cli::AddAzureCommand(app, &exit_code);
  attest::cli::AddTdxCommand(app, &exit_code);
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
