// The file format of a compressed matrix (docs/FORMAT.md): a fixed header, then sections,
// each with its length and CRC-32.  Parsing treats the bytes as hostile: every length is
// checked against what is left, every section's checksum is verified, and the matrix is
// rebuilt through the validating constructors of its format.
#pragma once
#include <memory>
#include <vector>

#include "format.hpp"

namespace cnn {

std::vector<uint8_t> serialize(const Format& m);
std::unique_ptr<Format> deserialize(const uint8_t* data, size_t size);

uint32_t crc32(const uint8_t* data, size_t size);

}  // namespace cnn
