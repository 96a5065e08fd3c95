// Where the shared data lives (models, tokenizers, sample text): the environment variable
// HEADSPLIT_SHARED_DIR if set, else the CMake cache variable of the same name (default
// "<source>/../shared"). Data files are read from there, never copied into the repository.
#pragma once

#include <string>

namespace hs {

std::string shared_dir();
// shared_dir() + "/" + relative.
std::string shared_path(const std::string& relative);

}  // namespace hs
