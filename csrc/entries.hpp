// The stored entries of a matrix as HCSR's encoders read them: row by row, each entry as
// (gap, value index), the gap being the columns skipped since the row's previous entry.
// The gaps are derived as the entries are read, never stored: the encoders' memory stays at
// a few bytes per row on top of their input and output.
//   auto r = entries.row(i);  Entry e = r.next();  // row i's entries in column order
// The caller reads exactly as many entries as the row holds (indptr[i + 1] - indptr[i]).
#pragma once
#include <cstdint>

namespace cnn {

struct Entry {
  uint64_t gap;
  uint32_t value;
};

// CSR arrays as HCSR's constructor checked them (columns increasing within each row).
struct CsrEntries {
  const uint64_t* indptr;
  const uint64_t* col;
  const uint32_t* vidx;

  struct Row {
    const uint64_t* col;
    const uint32_t* vidx;
    uint64_t e, first;  // the next entry, and the first column it may take
    Entry next() {
      const Entry out{col[e] - first, vidx[e]};
      first = col[e++] + 1;
      return out;
    }
  };
  Row row(uint64_t i) const { return Row{col, vidx, indptr[i], 0}; }
};

// A dense row-major matrix of value indices; cells equal to `zero` are not stored (pass a
// value no cell holds to store every cell, as HAM does: then every gap is 0).
struct DenseEntries {
  const uint32_t* idx;
  uint64_t cols;
  uint32_t zero;

  struct Row {
    const uint32_t* cells;
    uint32_t zero;
    uint64_t j;  // the next column to look at
    Entry next() {
      const uint64_t from = j;
      while (cells[j] == zero) ++j;
      const Entry out{j - from, cells[j]};
      ++j;
      return out;
    }
  };
  Row row(uint64_t i) const { return Row{idx + i * cols, zero, 0}; }
};

}  // namespace cnn
