// appliance-release seal-model (issue 10, docs/sealed-model.md): seals a model's OCI image layout
// for the key release service.
#ifndef IMAGE_RELEASE_SEAL_CLI_H_
#define IMAGE_RELEASE_SEAL_CLI_H_

#include <CLI/CLI.hpp>

namespace appliance::release {

// Registers seal-model; it sets `exit_code` (0 done, 1 sealing failed, 2 usage error or bad input).
void AddSealCommands(CLI::App& app, int& exit_code);

}  // namespace appliance::release

#endif  // IMAGE_RELEASE_SEAL_CLI_H_
