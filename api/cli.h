// The `giftcard` command line: subcommands and their flags (docs/CONTRACT.md, Command line).
#pragma once

namespace giftcard {

// Parses argv and runs the chosen subcommand; returns the exit code.
int run_cli(int argc, char** argv);

}  // namespace giftcard
