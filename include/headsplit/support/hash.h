// Content hashes (xxHash XXH3-64) for checksums and constant fingerprints.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace hs {

uint64_t hash64(std::span<const std::byte> bytes, uint64_t seed = 0);

// Streaming XXH3-64, for hashing data written piece by piece.
class Hasher {
 public:
  Hasher();
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void update(std::span<const std::byte> bytes);
  uint64_t digest() const;

 private:
  void* state_;
};

}  // namespace hs
