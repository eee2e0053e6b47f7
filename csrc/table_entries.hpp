// The packed entries of every decode table, each kind defined once: the table builders
// write them with make(), the decoders and every kernel set (scalar, AVX2, AVX-512) read
// them with the accessors, and SIMD code takes its shifts and masks from the same named
// constants.  Accessors are static and constexpr on plain integers, so hot loops keep
// entries in registers and compile as with literal shifts.
#pragma once
#include <cstdint>

namespace cnn {

// huff::Decoder's first-level table entry, which decode() also returns: symbol << 5 |
// code length.  Length kSlow: the code is longer than the table (decode() looks further).
struct HuffEntry {
  static constexpr unsigned kLenBits = 5;  // lengths up to huff::kMaxLen = 24
  static constexpr uint32_t kLenMask = (1u << kLenBits) - 1;
  static constexpr uint32_t kSlow = kLenMask;
  static constexpr uint32_t kInvalid = 0xFFFFFFFFu;  // decode(): no code matches
  static constexpr uint32_t make(uint32_t symbol, uint32_t len) {
    return symbol << kLenBits | len;
  }
  static constexpr uint32_t len(uint32_t e) { return e & kLenMask; }
  static constexpr uint32_t symbol(uint32_t e) { return e >> kLenBits; }
};

// HAM's multi-symbol table entry (k <= 256): up to 3 symbols, one per byte from byte 0 |
// symbol count << 24 | their total code length << 27.  A lookup stores the entry whole, so
// its symbols land in order as bytes.  0: the code at the window is longer than the table.
struct HamMultiEntry {
  static constexpr unsigned kMaxSymbols = 3;
  static constexpr unsigned kCountShift = 24, kLenShift = 27;
  static constexpr uint32_t kCountMask = 3;
  static constexpr uint32_t symbol(unsigned i, uint32_t symbol) { return symbol << (8 * i); }
  static constexpr uint32_t make(uint32_t symbols, uint32_t count, uint32_t len) {
    return symbols | count << kCountShift | len << kLenShift;
  }
  static constexpr uint32_t count(uint32_t e) { return (e >> kCountShift) & kCountMask; }
  static constexpr uint32_t len(uint32_t e) { return e >> kLenShift; }
};

// HCSR's row-layout symbol: value index << gap_bits | gap field.  The largest gap field,
// escape(gap_bits), says that gap - escape follows the code as a raw field of esc_bits.
struct HcsrSymbol {
  static constexpr uint64_t make(uint64_t value, uint64_t gap_field, unsigned gap_bits) {
    return value << gap_bits | gap_field;
  }
  static constexpr uint32_t escape(unsigned gap_bits) { return (1u << gap_bits) - 1; }
  static constexpr uint32_t gap_field(uint32_t sym, unsigned gap_bits) {
    return sym & escape(gap_bits);
  }
  static constexpr uint32_t value(uint32_t sym, unsigned gap_bits) { return sym >> gap_bits; }
};

// HCSR's one-lookup table entry (meta; the entry's weight sits beside it in a float table):
//   plain:   code length | column step (gap + 1) << 5
//   escape:  the same | kEscape: the rest of the gap follows as a raw field
//   link:    kSlow | sub (sub > 0): a longer code, whose next `sub` bits index a second table
//            starting at the uint32 stored in the weight's place
//   slow:    kSlow alone: the general decoder takes the code
struct HcsrMetaEntry {
  static constexpr unsigned kLenBits = 5, kStepShift = kLenBits;
  static constexpr uint32_t kLenMask = (1u << kLenBits) - 1;
  static constexpr uint32_t kStepMask = 511;  // steps up to 2^8 (gap_bits <= 8)
  static constexpr uint16_t kEscape = 0x4000, kSlow = 0x8000;
  static_assert(kStepMask << kStepShift < kEscape, "the flags sit above every step");
  static constexpr uint16_t make(uint32_t len, uint32_t step, bool escape) {
    return uint16_t(len | step << kStepShift | (escape ? kEscape : 0));
  }
  static constexpr uint16_t link(unsigned sub) { return uint16_t(kSlow | sub); }
  static constexpr unsigned len(unsigned me) { return me & kLenMask; }
  // Plain entries (below kEscape) only: no flag above the step.
  static constexpr unsigned step(unsigned me) { return me >> kStepShift; }
  static constexpr unsigned escape_step(unsigned me) { return (me >> kStepShift) & kStepMask; }
  // Escape or slow: either flag (plain entries are below kEscape).
  static constexpr bool special(unsigned me) { return me >= kEscape; }
  static constexpr bool slow(unsigned me) { return me & kSlow; }
  static constexpr bool is_link(unsigned me) { return me > kSlow && me <= (kSlow | kLenMask); }
  static constexpr unsigned sub_bits(unsigned me) { return me & kLenMask; }
};

// A gap bucket of the lane layout (lane_layout.hpp): raw bit count | base << 5.  The
// bucket of a gap code's rank (LanesView::gap_by_rank), and the payload of a gap code's
// table entry (LaneCodeEntry).
struct LaneBucket {
  static constexpr unsigned kRawBits = 5;  // raw bit counts up to 18
  static constexpr uint32_t kRawMask = (1u << kRawBits) - 1;
  static constexpr uint32_t make(uint32_t base, uint32_t raw) { return base << kRawBits | raw; }
  static constexpr uint32_t raw(uint32_t b) { return b & kRawMask; }
  static constexpr uint32_t base(uint32_t b) { return b >> kRawBits; }
};

// An entry of the lane layout's code tables, indexed by the next kCodeBits bits of a lane:
// code length | payload << 3, the payload a gap code's bucket (LaneBucket) or a value
// code's codebook index; kBad where no code starts.
struct LaneCodeEntry {
  static constexpr unsigned kCodeBits = 7;  // longest code
  static constexpr uint32_t kTableSize = 1u << kCodeBits;
  static constexpr unsigned kLenBits = 3;
  static constexpr uint32_t kLenMask = (1u << kLenBits) - 1;
  // A gap code entry's bucket fields, read straight from the entry.
  static constexpr unsigned kRawShift = kLenBits, kBaseShift = kLenBits + LaneBucket::kRawBits;
  static constexpr uint32_t kBad = 0xFFFFFFFFu;
  static constexpr uint32_t make(uint32_t len, uint32_t payload) {
    return len | payload << kLenBits;
  }
  static constexpr uint32_t len(uint32_t e) { return e & kLenMask; }
  static constexpr uint32_t payload(uint32_t e) { return e >> kLenBits; }
  static constexpr uint32_t raw(uint32_t e) { return LaneBucket::raw(payload(e)); }
  static constexpr uint32_t base(uint32_t e) { return LaneBucket::base(payload(e)); }
};

}  // namespace cnn
