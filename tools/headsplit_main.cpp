// The headsplit command-line tool: all logic lives in the cli library.
#include "headsplit/cli/cli.h"

int main(int argc, char** argv) { return hs::cli::main(argc, argv); }
