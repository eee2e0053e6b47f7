#include "container.hpp"

#include <cstring>

#include "fixed_layout.hpp"

#include "ham.hpp"
#include "hcsr.hpp"
#include "index_map.hpp"

namespace cnn {

namespace {

constexpr uint8_t kMagic[8] = {0x89, 'C', 'N', 'N', '\r', '\n', 0x1a, '\n'};
// Version 2 added HCSR's lane layout (7 sections), version 3 HAM's (7 sections), version 4
// narrow row counts and row offsets (packed.hpp; before: 4 and 8 bytes each), version 5
// HCSR's fixed-width layout (6 sections).  Older files
// still load, converted to the lane layout where it serves: HCSR from version 1, HAM from
// versions 1 and 2.
constexpr uint32_t kVersion = 5;

// Byte offsets of the header's fields (docs/FORMAT.md); the checksum covers the bytes before
// it.  Then each section: a header of its payload's length and checksum, and the payload.
namespace header_field {
constexpr size_t kMagic = 0, kVersion = 8, kFormat = 12, kRows = 16, kCols = 24, kSections = 32,
                 kCrc = 36;
}
constexpr size_t kHeaderSize = 40;
namespace section_field {
constexpr size_t kLength = 0, kCrc = 8;
}
constexpr size_t kSectionHeaderSize = 12;

struct CrcTable {
  uint32_t t[256];
  CrcTable() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int b = 0; b < 8; ++b) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
      t[i] = c;
    }
  }
};

template <class T>
void set(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof(T));  // the file is little-endian, like every supported CPU
}

template <class T>
T get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

bool valid_section_count(FormatId id, uint32_t version, uint32_t n) {
  switch (id) {
    case FormatId::IndexMap: return n == 2;
    case FormatId::HAM: return n == 4 || (version >= 3 && n == 7);
    case FormatId::HCSR: return n == 5 || (version >= 2 && n == 7) || (version >= 5 && n == 6);
  }
  return false;
}

// A section as the file states it: where its payload lies and the checksum it claims.
struct Raw {
  const uint8_t* data;
  uint64_t size;
  uint32_t crc;
  size_t index;
};

// Fuzzing builds (tools/fuzz.sh) take any checksum, so that mutated inputs reach the
// decoders behind it, as zstd's and libpng's fuzzers do; no other build defines this.
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
constexpr bool kCheckCrc = false;
#else
constexpr bool kCheckCrc = true;
#endif

// The section's payload copied into its typed array, then checked: the checksum is
// computed on the copy, so a buffer that changes while it is read (another thread, a file
// mapped while it is rewritten) cannot pass the check with other bytes than it keeps.
template <class T>
std::vector<T> take(const Raw& raw, const char* what) {
  if (raw.size % sizeof(T))
    throw FormatError(std::string(what) + " section length " + std::to_string(raw.size) +
                      " is not a multiple of " + std::to_string(sizeof(T)));
  std::vector<T> v(raw.size / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), raw.data, raw.size);
  if (kCheckCrc && crc32(reinterpret_cast<const uint8_t*>(v.data()), raw.size) != raw.crc)
    throw FormatError("checksum mismatch in section " + std::to_string(raw.index));
  return v;
}

// The n integers of a section of n * w bytes (PackedInts::bytes): w is 1, 2, 4 or 8 from
// version 4 on, `old_width` before.
std::vector<uint64_t> take_ints(const Raw& raw, uint64_t n, uint32_t version, unsigned old_width,
                                const char* what) {
  const std::vector<uint8_t> bytes = take<uint8_t>(raw, what);
  const uint64_t w = n ? bytes.size() / n : 0;
  const bool width_ok = version >= 4 ? w == 1 || w == 2 || w == 4 || w == 8 : w == old_width;
  if (n ? bytes.size() != n * w || !width_ok : !bytes.empty())
    throw FormatError(std::string(what) + " section of " + std::to_string(bytes.size()) +
                      " bytes does not hold " + std::to_string(n) + " integers of " +
                      (version >= 4 ? std::string("1, 2, 4 or 8") : std::to_string(old_width)) +
                      " bytes");
  std::vector<uint64_t> v(n, 0);
  for (uint64_t i = 0; i < n; ++i)
    for (uint64_t b = 0; b < w; ++b) v[i] |= uint64_t(bytes[i * w + b]) << (8 * b);
  return v;
}

// HAM or HCSR from the lane layout's sections after the codebook (LaneLayout::sections).
template <class F>
std::unique_ptr<Format> lane_layout(uint64_t rows, uint64_t cols, std::vector<float> codebook,
                                    const std::vector<Raw>& s, uint32_t version) {
  return std::make_unique<F>(rows, cols, std::move(codebook), take<uint64_t>(s[1], "params"),
                             take<uint8_t>(s[2], "gap code lengths"),
                             take<uint8_t>(s[3], "value code lengths"),
                             take_ints(s[4], rows, version, 4, "row counts"),
                             take<uint64_t>(s[5], "group offsets"), take<uint32_t>(s[6], "words"));
}

}  // namespace

uint32_t crc32(const uint8_t* data, size_t size) {
  static const CrcTable table;
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) c = table.t[(c ^ data[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::vector<uint8_t> serialize(const Format& m) {
  std::vector<Section> sections = m.sections();
  uint8_t head[kHeaderSize];
  std::memcpy(head + header_field::kMagic, kMagic, sizeof(kMagic));
  set<uint32_t>(head + header_field::kVersion, kVersion);
  set<uint32_t>(head + header_field::kFormat, uint32_t(m.id()));
  set<uint64_t>(head + header_field::kRows, m.rows());
  set<uint64_t>(head + header_field::kCols, m.cols());
  set<uint32_t>(head + header_field::kSections, uint32_t(sections.size()));
  set<uint32_t>(head + header_field::kCrc, crc32(head, header_field::kCrc));
  std::vector<uint8_t> out(head, head + kHeaderSize);
  for (const Section& s : sections) {
    uint8_t sh[kSectionHeaderSize];
    set<uint64_t>(sh + section_field::kLength, s.size());
    set<uint32_t>(sh + section_field::kCrc, crc32(s.data(), s.size()));
    out.insert(out.end(), sh, sh + kSectionHeaderSize);
    out.insert(out.end(), s.begin(), s.end());
  }
  return out;
}

std::unique_ptr<Format> deserialize(const uint8_t* data, size_t size) {
  if (size < kHeaderSize)
    throw FormatError("file is " + std::to_string(size) + " bytes, shorter than the " +
                      std::to_string(kHeaderSize) + "-byte header");
  uint8_t head[kHeaderSize];  // checked and read from one copy
  std::memcpy(head, data, kHeaderSize);
  if (std::memcmp(head + header_field::kMagic, kMagic, sizeof(kMagic)) != 0)
    throw FormatError("not a compactnn file (bad magic)");
  if (kCheckCrc && get<uint32_t>(head + header_field::kCrc) != crc32(head, header_field::kCrc))
    throw FormatError("header checksum mismatch");
  uint32_t version = get<uint32_t>(head + header_field::kVersion);
  if (version < 1 || version > kVersion)
    throw FormatError("unsupported file version " + std::to_string(version) +
                      " (this build reads 1.." + std::to_string(kVersion) + ")");
  auto id = FormatId(get<uint32_t>(head + header_field::kFormat));
  if (id != FormatId::IndexMap && id != FormatId::HAM && id != FormatId::HCSR)
    throw FormatError("unknown format id " + std::to_string(uint32_t(id)));
  const uint64_t rows = get<uint64_t>(head + header_field::kRows);
  const uint64_t cols = get<uint64_t>(head + header_field::kCols);
  const uint32_t expected = get<uint32_t>(head + header_field::kSections);
  if (!valid_section_count(id, version, expected))
    throw FormatError("section count " + std::to_string(expected) + " does not match the format");
  try {
    check_shape(rows, cols);
  } catch (const InvalidInput& e) {
    throw FormatError(e.what());
  }

  std::vector<Raw> s;
  size_t pos = kHeaderSize;
  for (size_t i = 0; i < expected; ++i) {
    if (size - pos < kSectionHeaderSize)
      throw FormatError("file ends inside the header of section " + std::to_string(i));
    uint8_t sh[kSectionHeaderSize];
    std::memcpy(sh, data + pos, kSectionHeaderSize);
    uint64_t len = get<uint64_t>(sh + section_field::kLength);
    pos += kSectionHeaderSize;
    if (len > size - pos)
      throw FormatError("section " + std::to_string(i) + " claims " + std::to_string(len) +
                        " bytes but only " + std::to_string(size - pos) + " remain");
    s.push_back({data + pos, len, get<uint32_t>(sh + section_field::kCrc), i});
    pos += len;
  }
  if (pos != size) throw FormatError(std::to_string(size - pos) + " trailing bytes after the last section");

  std::vector<float> codebook = take<float>(s[0], "codebook");
  try {
    check_codebook(codebook);
  } catch (const InvalidInput& e) {
    throw FormatError(e.what());
  }
  switch (id) {
    case FormatId::IndexMap:
      return std::make_unique<IndexMap>(rows, cols, std::move(codebook),
                                        take<uint8_t>(s[1], "indices"));
    case FormatId::HAM:
      if (expected == 7) return lane_layout<HAM>(rows, cols, std::move(codebook), s, version);
      return std::make_unique<HAM>(rows, cols, std::move(codebook),
                                   take<uint8_t>(s[1], "code lengths"),
                                   take_ints(s[2], rows + 1, version, 8, "row offsets"),
                                   take<uint64_t>(s[3], "stream"), version < 3);
    case FormatId::HCSR:
      if (expected == 7) return lane_layout<HCSR>(rows, cols, std::move(codebook), s, version);
      if (expected == 6)
        return std::make_unique<HCSR>(
            rows, cols, std::move(codebook), take<uint64_t>(s[1], "params"),
            take_ints(s[2], rows, version, 8, "row order"),
            take_ints(s[3], (rows + FixedLayout::kLanes - 1) / FixedLayout::kLanes, version, 8,
                      "group steps"),
            take<uint8_t>(s[4], "steps"), take<uint8_t>(s[5], "slots"));
      return std::make_unique<HCSR>(rows, cols, std::move(codebook), take<uint64_t>(s[1], "params"),
                                    take<uint8_t>(s[2], "code lengths"),
                                    take_ints(s[3], rows + 1, version, 8, "row offsets"),
                                    take<uint64_t>(s[4], "stream"), version == 1);
  }
  throw FormatError("unknown format");
}

}  // namespace cnn
