// appliance-release's channel subcommands (init, add-target, sign, publish, rotate-root, status;
// image/release/channel.h).
#ifndef IMAGE_RELEASE_CHANNEL_CLI_H_
#define IMAGE_RELEASE_CHANNEL_CLI_H_

#include <CLI/CLI.hpp>

namespace appliance::release {

// Registers the subcommands; each sets `exit_code` (0 done, 1 a check or policy failed, 2 usage
// error or bad input).
void AddChannelCommands(CLI::App& app, int& exit_code);

}  // namespace appliance::release

#endif  // IMAGE_RELEASE_CHANNEL_CLI_H_
