// The headsplit CLI: parses arguments, calls the libraries, prints. The only place that turns
// an Error into an exit code.
#pragma once

namespace hs::cli {

int main(int argc, char** argv);

}  // namespace hs::cli
