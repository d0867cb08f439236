// giftcard: the one executable (docs/CONTRACT.md, Command line). Thin: all work is in giftcard_api.
#include "api/cli.h"

int main(int argc, char** argv) { return giftcard::run_cli(argc, argv); }
