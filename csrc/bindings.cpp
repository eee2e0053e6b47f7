// pybind11 glue only: array checks, GIL release, conversions.  The Python layer
// (python/compactnn/formats.py) converts user input; here every shape is checked again so
// that no call from Python can make the C++ side read or write out of bounds.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "codebook.hpp"
#include "container.hpp"
#include "conv.hpp"
#include "ham.hpp"
#include "hcsr.hpp"
#include "index_map.hpp"
#include "kernels/dispatch.hpp"
#include "layout.hpp"
#include "parallel.hpp"
#include "runtime.hpp"

namespace py = pybind11;
using namespace cnn;

namespace {

template <class T>
using carray = py::array_t<T, py::array::c_style>;

void expect_shape(const py::array& a, std::initializer_list<uint64_t> shape, const char* name) {
  bool ok = uint64_t(a.ndim()) == shape.size();
  size_t d = 0;
  for (uint64_t s : shape) ok = ok && uint64_t(a.shape(d++)) == s;
  if (!ok) throw InvalidInput(std::string(name) + " has the wrong shape");
}

std::vector<float> to_codebook(const carray<float>& c) {
  if (c.ndim() != 1) throw InvalidInput("codebook must be 1-D");
  return std::vector<float>(c.data(), c.data() + c.size());
}

const uint32_t* index_matrix(const carray<uint32_t>& idx) {
  if (idx.ndim() != 2) throw InvalidInput("indices must be 2-D");
  return idx.data();
}

LayoutChoice parse_layout(const std::string& layout) {
  if (layout == "auto") return LayoutChoice::Auto;
  if (layout == "rows") return LayoutChoice::Rows;
  if (layout == "lanes") return LayoutChoice::Lanes;
  if (layout == "fixed") return LayoutChoice::Fixed;
  throw InvalidInput("layout must be 'auto', 'lanes', 'rows' or 'fixed', got '" + layout + "'");
}

using Ptr = std::shared_ptr<Format>;
using Matrix = py::class_<Format, Ptr>;

// HAM or HCSR from a codebook and a dense matrix of indices into it, in `layout`.
template <class F>
Ptr from_indices(const carray<float>& codebook, const carray<uint32_t>& idx,
                 const std::string& layout) {
  return std::make_shared<F>(idx.shape(0), idx.shape(1), to_codebook(codebook), index_matrix(idx),
                             parse_layout(layout));
}

// Matrix (every format): shape, counts and codebook.
void bind_properties(Matrix& c) {
  c.def_property_readonly("format_id", [](const Format& f) { return uint32_t(f.id()); });
  c.def_property_readonly("rows", &Format::rows);
  c.def_property_readonly("cols", &Format::cols);
  c.def_property_readonly("nnz", &Format::nnz);
  c.def_property_readonly("nbytes", &Format::nbytes);
  c.def_property_readonly("codebook", [](const Format& f) {
    const auto& codebook = f.codebook();
    return carray<float>(py::ssize_t(codebook.size()), codebook.data());
  });
}

// Matrix products; shapes checked here, the work done without the GIL.
void bind_products(Matrix& c) {
  c.def(
      "matvec",
      [](const Format& f, const carray<float>& x, carray<float>& y, unsigned threads) {
        expect_shape(x, {f.cols()}, "x");
        expect_shape(y, {f.rows()}, "out");
        const float* xp = x.data();
        float* yp = y.mutable_data();
        py::gil_scoped_release nogil;
        f.matvec(xp, yp, threads);
      },
      py::arg("x").noconvert(), py::arg("out").noconvert(), py::arg("threads") = 0);
  c.def(
      "matmat",
      [](const Format& f, const carray<float>& X, carray<float>& Y, unsigned threads) {
        if (X.ndim() != 2) throw InvalidInput("X must be 2-D");
        const uint64_t batch = X.shape(1);
        expect_shape(X, {f.cols(), batch}, "X");
        expect_shape(Y, {f.rows(), batch}, "out");
        const float* xp = X.data();
        float* yp = Y.mutable_data();
        py::gil_scoped_release nogil;
        f.matmat(xp, batch, yp, threads);
      },
      py::arg("X").noconvert(), py::arg("out").noconvert(), py::arg("threads") = 0);
  c.def(
      "linear",
      [](const Format& f, const carray<float>& X, carray<float>& Y, unsigned threads,
         std::optional<carray<float>> bias) {
        if (X.ndim() != 2) throw InvalidInput("X must be 2-D");
        const uint64_t batch = X.shape(0);
        expect_shape(X, {batch, f.cols()}, "X");
        expect_shape(Y, {batch, f.rows()}, "out");
        if (bias) expect_shape(*bias, {f.rows()}, "bias");
        const float* xp = X.data();
        const float* bp = bias ? bias->data() : nullptr;
        float* yp = Y.mutable_data();
        py::gil_scoped_release nogil;
        f.linear(xp, batch, yp, threads, bp);
      },
      py::arg("X").noconvert(), py::arg("out").noconvert(), py::arg("threads") = 0,
      py::arg("bias").noconvert() = py::none());
  c.def(
      "conv2d",
      [](const Format& f, const carray<float>& X, carray<float>& Y,
         std::array<uint64_t, 2> kernel, std::array<uint64_t, 2> stride,
         std::array<uint64_t, 2> padding, std::array<uint64_t, 2> dilation,
         std::optional<carray<float>> bias, unsigned threads) {
        if (X.ndim() != 4) throw InvalidInput("X must be 4-D (n, channels, height, width)");
        ConvShape s{uint64_t(X.shape(0)), uint64_t(X.shape(1)), uint64_t(X.shape(2)),
                    uint64_t(X.shape(3)), kernel[0], kernel[1], stride[0], stride[1],
                    padding[0], padding[1], dilation[0], dilation[1], 0, 0};
        check_conv(s);
        if (s.patch() != f.cols())
          throw InvalidInput("channels x kernel size (" + std::to_string(s.patch()) +
                             ") does not match the matrix's " + std::to_string(f.cols()) +
                             " columns");
        expect_shape(Y, {s.n, f.rows(), s.ho, s.wo}, "out");
        if (bias) expect_shape(*bias, {f.rows()}, "bias");
        const float* xp = X.data();
        const float* bp = bias ? bias->data() : nullptr;
        float* yp = Y.mutable_data();
        py::gil_scoped_release nogil;
        conv2d(f, xp, s, bp, yp, threads);
      },
      py::arg("X").noconvert(), py::arg("out").noconvert(), py::arg("kernel_size"),
      py::arg("stride"), py::arg("padding"), py::arg("dilation"),
      py::arg("bias").noconvert(), py::arg("threads") = 0);
}

// Matrix contents: indices, dense values, bytes, CSR arrays (HCSR), layout details.
void bind_conversions(Matrix& c) {
  c.def(
      "to_indices",
      [](const Format& f, carray<uint32_t>& out, uint32_t zero_index) {
        expect_shape(out, {f.rows(), f.cols()}, "out");
        uint32_t* p = out.mutable_data();
        py::gil_scoped_release nogil;
        f.to_indices(p, zero_index);
      },
      py::arg("out").noconvert(), py::arg("zero_index"));
  c.def(
      "to_dense",
      [](const Format& f, carray<float>& out) {
        expect_shape(out, {f.rows(), f.cols()}, "out");
        float* p = out.mutable_data();
        py::gil_scoped_release nogil;
        f.to_dense(p);
      },
      py::arg("out").noconvert());
  c.def("tobytes", [](const Format& f) {
    std::vector<uint8_t> b = serialize(f);
    return py::bytes(reinterpret_cast<const char*>(b.data()), b.size());
  });
  c.def("csr_arrays", [](const Format& f) {
    auto* h = dynamic_cast<const HCSR*>(&f);
    if (!h) throw InvalidInput("csr_arrays needs an HCSR matrix");
    std::vector<uint64_t> indptr, col;
    std::vector<uint32_t> vidx;
    h->to_csr(indptr, col, vidx);
    return py::make_tuple(carray<int64_t>(py::ssize_t(indptr.size()),
                                          reinterpret_cast<const int64_t*>(indptr.data())),
                          carray<int64_t>(py::ssize_t(col.size()),
                                          reinterpret_cast<const int64_t*>(col.data())),
                          carray<uint32_t>(py::ssize_t(vidx.size()), vidx.data()));
  });
  c.def("info", [](const Format& f) {
    py::dict d;
    if (auto* im = dynamic_cast<const IndexMap*>(&f)) d["index_bits"] = im->index_bits();
    if (auto* coded = dynamic_cast<const CodedFormat*>(&f)) {
      const Layout& layout = coded->layout();
      d["stream_bits"] = layout.stream_bits();
      d["layout"] = layout.name();
      for (const auto& [key, value] : layout.details()) d[key.c_str()] = value;
    }
    return d;
  });
}

void bind_index_map(py::module_& m) {
  m.def(
      "index_map",
      [](const carray<float>& codebook, const carray<uint32_t>& idx) -> Ptr {
        return std::make_shared<IndexMap>(idx.shape(0), idx.shape(1), to_codebook(codebook),
                                          index_matrix(idx));
      },
      py::arg("codebook").noconvert(), py::arg("indices").noconvert());
}

void bind_ham(py::module_& m) {
  m.def("ham", &from_indices<HAM>, py::arg("codebook").noconvert(),
        py::arg("indices").noconvert(), py::arg("layout") = "auto");
}

// HCSR from a dense matrix of indices, or from CSR arrays.
void bind_hcsr(py::module_& m) {
  m.def("hcsr_dense", &from_indices<HCSR>, py::arg("codebook").noconvert(),
        py::arg("indices").noconvert(), py::arg("layout") = "auto");
  m.def(
      "hcsr",
      [](uint64_t rows, uint64_t cols, const carray<float>& codebook,
         const carray<uint64_t>& indptr, const carray<uint64_t>& col,
         const carray<uint32_t>& vidx, const std::string& layout) -> Ptr {
        check_shape(rows, cols);  // before rows + 1, which must not wrap
        expect_shape(indptr, {rows + 1}, "indptr");
        uint64_t nnz = indptr.data()[rows];
        expect_shape(col, {nnz}, "indices");
        expect_shape(vidx, {nnz}, "value indices");
        return std::make_shared<HCSR>(rows, cols, to_codebook(codebook), indptr.data(), col.data(),
                                      vidx.data(), parse_layout(layout));
      },
      py::arg("rows"), py::arg("cols"), py::arg("codebook").noconvert(),
      py::arg("indptr").noconvert(), py::arg("indices").noconvert(),
      py::arg("value_indices").noconvert(), py::arg("layout") = "auto");
}

// A float matrix as its distinct values and an index matrix: the first step of any format.
void bind_codebook(py::module_& m) {
  m.def(
      "distinct_values",
      [](const carray<uint32_t>& bits) {
        if (bits.ndim() != 1) throw InvalidInput("bits must be 1-D");
        const uint64_t n = uint64_t(bits.size());
        carray<uint32_t> idx{py::ssize_t(n)};
        const uint32_t* in = bits.data();
        uint32_t* out = idx.mutable_data();
        std::vector<float> codebook;
        {
          py::gil_scoped_release nogil;
          codebook = distinct_values(in, n, out);
        }
        return py::make_tuple(carray<float>(py::ssize_t(codebook.size()), codebook.data()), idx);
      },
      py::arg("bits").noconvert());
}

// The kernel sets: which runs, which this CPU supports.
void bind_kernels(py::module_& m) {
  m.attr("avx512_emulated") = kernels::emulated_avx512;
  m.attr("arch") = kernels::arch;
  m.def("isa", [] { return std::string(kernels::active().name); });
  m.def("vbmi", &kernels::vbmi_available);
  m.def("set_isa", [](const std::string& name) { kernels::set_active(name); }, py::arg("name"));
  m.def("supported_isas", [] {
    std::vector<std::string> names;
    for (const auto* set : kernels::supported()) names.push_back(set->name);
    return names;
  });
}

// Threads, and a read-bandwidth probe run on them.
void bind_threads(py::module_& m) {
  m.def(
      "parallel_sum",
      [](const carray<float>& a, unsigned threads) {
        const float* p = a.data();
        const uint64_t n = uint64_t(a.size());
        py::gil_scoped_release nogil;
        return parallel_sum(p, n, threads);
      },
      py::arg("a").noconvert(), py::arg("threads") = 0);
  m.def("use_openmp", &use_openmp, py::arg("library"));
  m.def("using_openmp", &using_openmp);
  m.def("num_threads", [] { return default_threads(); });
  m.def("set_num_threads", [](unsigned n) { set_default_threads(n); }, py::arg("n"));
}

void bind_files(py::module_& m) {
  m.def(
      "frombytes",
      [](const py::buffer& b) -> Ptr {
        py::buffer_info info = b.request();
        if (info.ndim != 1 || info.itemsize != 1 || !PyBuffer_IsContiguous(info.view(), 'C'))
          throw InvalidInput("frombytes needs a contiguous bytes-like object");
        const uint8_t* p = static_cast<const uint8_t*>(info.ptr);
        size_t n = size_t(info.size);
        py::gil_scoped_release nogil;
        return Ptr(deserialize(p, n));
      },
      py::arg("data"));
}

// The model runtime's program: steps over an arena (compactnn/runtime plans them).  The
// arrays the steps point into are kept with the program.
struct Program {
  std::vector<runtime::Step> steps;
  uint64_t arena_size;
  py::list arrays;
};

void bind_runtime(py::module_& m) {
  using Weights = std::optional<carray<float>>;
  using StepArgs = std::tuple<uint32_t, std::vector<uint64_t>, uint64_t, std::vector<uint64_t>,
                              std::optional<Ptr>, Weights, Weights, bool, bool>;
  py::class_<Program>(m, "Program")
      .def(py::init([](const std::vector<StepArgs>& args, uint64_t arena_size) {
             auto program = std::make_unique<Program>();
             program->arena_size = arena_size;
             std::vector<uint64_t> weight_sizes, bias_sizes;
             for (const auto& [op, in, out, p, matrix, weight, bias, relu, pool] : args) {
               runtime::Step s{runtime::Op(op), in, out, p, matrix.value_or(nullptr)};
               s.relu = relu;
               s.max_pool2 = pool;
               if (weight) s.weight = weight->data(), program->arrays.append(*weight);
               if (bias) s.bias = bias->data(), program->arrays.append(*bias);
               weight_sizes.push_back(weight ? uint64_t(weight->size()) : 0);
               bias_sizes.push_back(bias ? uint64_t(bias->size()) : 0);
               program->steps.push_back(std::move(s));
             }
             runtime::check_steps(program->steps, arena_size, weight_sizes, bias_sizes);
             return program;
           }),
           py::arg("steps"), py::arg("arena_size"))
      .def_readonly("arena_size", &Program::arena_size)
      .def(
          "run",
          [](const Program& p, carray<float>& arena, unsigned threads) {
            if (arena.ndim() != 1 || uint64_t(arena.size()) < p.arena_size)
              throw InvalidInput("the arena is smaller than the program's");
            float* a = arena.mutable_data();
            py::gil_scoped_release nogil;
            runtime::run(p.steps, a, threads);
          },
          py::arg("arena").noconvert(), py::arg("threads") = 0);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "compactnn native core: compressed matrix formats and their products";
  py::register_exception<FormatError>(m, "FormatError", PyExc_ValueError);
  Matrix matrix(m, "Matrix");
  bind_properties(matrix);
  bind_products(matrix);
  bind_conversions(matrix);
  bind_index_map(m);
  bind_ham(m);
  bind_hcsr(m);
  bind_codebook(m);
  bind_kernels(m);
  bind_threads(m);
  bind_files(m);
  bind_runtime(m);
}
