// NMS CPU kernels.
//
// 1. One stable sort of the scores (LSD radix sort on order-preserving
//    integer keys; NaN first, like torch.sort(descending=True, stable=True)).
// 2. Boxes are gathered into structure-of-arrays in that order, with their
//    areas computed once.
// 3. Greedy pass: each candidate is tested only against boxes already kept
//    (never against suppressed ones), in vectorised blocks with early exit.
//    This visits pairs in a different order than torchvision's kernel but
//    makes the same decision: a candidate is dropped iff some earlier kept box
//    has ovr > threshold, and ovr is computed with the same operations.
// 4. For threshold >= 0 the kept boxes live in a uniform grid of cells. Two
//    boxes can only suppress each other when their intersection is non-empty
//    (otherwise inter = 0 and ovr is 0, -0 or NaN, never > threshold), so a
//    candidate only looks at cells it overlaps. Each kept box is filed in every
//    cell it covers, in one of four lists by whether the cell is its first
//    column / first row; a candidate reads, per cell, only the lists whose
//    boxes have the intersection's top-left corner in that cell, so every
//    overlapping pair is tested exactly once. Boxes with a non-finite
//    coordinate or without positive width and height can neither suppress nor
//    be suppressed when threshold >= 0 (their ovr is 0, -0 or NaN), so they are
//    kept and never filed.
// batched_nms: one sort, a stable grouping by category, then each category's
// greedy pass in parallel (disjoint outputs, no atomics).
#include "ops/nms/nms_cpu.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <type_traits>
#include <vector>

#include "common/parallel.h"
#include "ops/nms/nms_common.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define MN_NMS_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define MN_NMS_CLONES
#endif

namespace mn {
namespace cpu {
namespace nms_impl {

using nms_detail::descending_key;
using nms_detail::suppresses;
using nms_detail::threshold_for;

// ------------------------------------------------------------------ sort ----

template <typename T>
using KeyOf = typename std::conditional<std::is_same<T, float>::value, uint32_t, uint64_t>::type;

// order[i] = index of the i-th box in descending, stable score order.
template <typename T>
void sort_descending(const T* scores, int64_t n, int64_t* order) {
  using K = KeyOf<T>;
  std::vector<K> key(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) key[i] = descending_key(scores[i]);
  if (n < 256) {
    std::iota(order, order + n, int64_t(0));
    std::stable_sort(order, order + n, [&](int64_t a, int64_t b) { return key[a] < key[b]; });
    return;
  }
  constexpr int kBits = 11;
  constexpr int kBuckets = 1 << kBits;
  constexpr int kPasses = (static_cast<int>(sizeof(K)) * 8 + kBits - 1) / kBits;
  std::vector<int64_t> hist(static_cast<size_t>(kPasses) * kBuckets, 0);
  for (int64_t i = 0; i < n; ++i)
    for (int p = 0; p < kPasses; ++p) ++hist[p * kBuckets + ((key[i] >> (p * kBits)) & (kBuckets - 1))];
  std::vector<int64_t> idx_a(static_cast<size_t>(n)), idx_b(static_cast<size_t>(n));
  std::vector<K> key_b(static_cast<size_t>(n));
  std::iota(idx_a.begin(), idx_a.end(), int64_t(0));
  K* kin = key.data();
  K* kout = key_b.data();
  int64_t* iin = idx_a.data();
  int64_t* iout = idx_b.data();
  for (int p = 0; p < kPasses; ++p) {
    int64_t* h = &hist[p * kBuckets];
    const int shift = p * kBits;
    // A digit shared by every key does not reorder anything.
    if (h[(kin[0] >> shift) & (kBuckets - 1)] == n) continue;
    int64_t sum = 0;
    for (int b = 0; b < kBuckets; ++b) {
      const int64_t c = h[b];
      h[b] = sum;
      sum += c;
    }
    for (int64_t i = 0; i < n; ++i) {
      const int64_t dst = h[(kin[i] >> shift) & (kBuckets - 1)]++;
      kout[dst] = kin[i];
      iout[dst] = iin[i];
    }
    std::swap(kin, kout);
    std::swap(iin, iout);
  }
  std::memcpy(order, iin, static_cast<size_t>(n) * sizeof(int64_t));
}

// ------------------------------------------------- vectorised inner test ----

template <typename T>
inline bool any_suppress_impl(const T* x1, const T* y1, const T* x2, const T* y2, const T* area, int64_t n, T cx1, T cy1, T cx2, T cy2,
    T carea, T thr) {
  constexpr int64_t kBlock = 32;
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    int hit = 0;
    for (int64_t k = 0; k < kBlock; ++k)
      hit |= suppresses(x1[i + k], y1[i + k], x2[i + k], y2[i + k], area[i + k], cx1, cy1, cx2,
                        cy2, carea, thr);
    if (hit) return true;
  }
  int hit = 0;
  for (; i < n; ++i)
    hit |= suppresses(x1[i], y1[i], x2[i], y2[i], area[i], cx1, cy1, cx2, cy2, carea, thr);
  return hit != 0;
}

MN_NMS_CLONES bool any_suppress(const float* x1, const float* y1, const float* x2, const float* y2,
                                const float* area, int64_t n, float cx1, float cy1, float cx2,
                                float cy2, float carea, float thr) {
  return any_suppress_impl<float>(x1, y1, x2, y2, area, n, cx1, cy1, cx2, cy2, carea, thr);
}

MN_NMS_CLONES bool any_suppress(const double* x1, const double* y1, const double* x2,
                                const double* y2, const double* area, int64_t n, double cx1,
                                double cy1, double cx2, double cy2, double carea, double thr) {
  return any_suppress_impl<double>(x1, y1, x2, y2, area, n, cx1, cy1, cx2, cy2, carea, thr);
}

// ------------------------------------------------------------ box arrays ----

template <typename T>
struct BoxArrays {
  std::vector<T> x1, y1, x2, y2, area;
  void resize(int64_t n) {
    const size_t s = static_cast<size_t>(n);
    x1.resize(s); y1.resize(s); x2.resize(s); y2.resize(s); area.resize(s);
  }
  void set(int64_t i, T a, T b, T c, T d, T ar) {
    x1[i] = a; y1[i] = b; x2[i] = c; y2[i] = d; area[i] = ar;
  }
  bool any_suppress_range(int64_t begin, int64_t count, int64_t p, const BoxArrays& c,
                          T thr) const {
    return any_suppress(x1.data() + begin, y1.data() + begin, x2.data() + begin,
                        y2.data() + begin, area.data() + begin, count, c.x1[p], c.y1[p],
                        c.x2[p], c.y2[p], c.area[p], thr);
  }
};

// Scratch reused across calls of one thread.
template <typename T>
struct Workspace {
  BoxArrays<T> boxes;   // candidates in visiting order
  BoxArrays<T> kept;    // simple path: kept boxes; grid path: cell lists
  std::vector<int32_t> cx0, cx1, cy0, cy1;
  std::vector<int64_t> list_start, list_size;
};

// Gathers boxes[idx[i]] (rows of 4) into ws.boxes, computing areas as
// torchvision does: (x2 - x1) * (y2 - y1).
template <typename T>
void gather(const T* b, const int64_t* idx, int64_t n, BoxArrays<T>& out) {
  out.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    const T* r = b + idx[i] * 4;
    out.set(i, r[0], r[1], r[2], r[3], (r[2] - r[0]) * (r[3] - r[1]));
  }
}

// ---------------------------------------------------------------- greedy ----

template <typename T>
int64_t greedy_simple(Workspace<T>& ws, int64_t n, T thr, uint8_t* keep) {
  const BoxArrays<T>& c = ws.boxes;
  BoxArrays<T>& k = ws.kept;
  k.resize(n);
  int64_t nk = 0;
  for (int64_t p = 0; p < n; ++p) {
    const bool drop = k.any_suppress_range(0, nk, p, c, thr);
    keep[p] = drop ? 0 : 1;
    if (!drop) {
      k.set(nk, c.x1[p], c.y1[p], c.x2[p], c.y2[p], c.area[p]);
      ++nk;
    }
  }
  return nk;
}

template <typename T>
inline bool finite_positive(T x1, T y1, T x2, T y2) {
  return std::isfinite(x1) && std::isfinite(y1) && std::isfinite(x2) && std::isfinite(y2) &&
         x2 > x1 && y2 > y1;
}

struct Axis {
  double lo = 0, scale = 0;
  int32_t cells = 1;
  int32_t cell(double v) const {
    const double d = (v - lo) * scale;
    if (!(d > 0)) return 0;
    if (d >= static_cast<double>(cells - 1)) return cells - 1;
    return static_cast<int32_t>(d);
  }
};

inline Axis make_axis(double lo, double hi, double mean_size, int32_t max_cells) {
  Axis a;
  a.lo = lo;
  const double extent = hi - lo;
  if (!(extent > 0) || !std::isfinite(extent) || !(mean_size > 0)) return a;
  const double want = std::ceil(extent / mean_size);
  a.cells = static_cast<int32_t>(std::max(1.0, std::min(want, static_cast<double>(max_cells))));
  a.scale = a.cells / extent;
  return a;
}

template <typename T>
int64_t greedy_grid(Workspace<T>& ws, int64_t n, T thr, uint8_t* keep) {
  const BoxArrays<T>& c = ws.boxes;
  // Extent and mean size of the boxes that can take part in suppression.
  double xlo = 0, xhi = 0, ylo = 0, yhi = 0, sw = 0, sh = 0;
  int64_t nv = 0;
  for (int64_t p = 0; p < n; ++p) {
    if (!finite_positive(c.x1[p], c.y1[p], c.x2[p], c.y2[p])) continue;
    const double a = c.x1[p], b = c.y1[p], d = c.x2[p], e = c.y2[p];
    if (nv == 0) {
      xlo = a; ylo = b; xhi = d; yhi = e;
    } else {
      xlo = std::min(xlo, a); ylo = std::min(ylo, b);
      xhi = std::max(xhi, d); yhi = std::max(yhi, e);
    }
    sw += d - a;
    sh += e - b;
    ++nv;
  }
  if (nv == 0) {
    std::fill(keep, keep + n, uint8_t(1));
    return n;
  }
  // Cells about the mean box size: each box covers ~4 cells and a candidate
  // meets only boxes filed near it. At most ~2 cells per box overall.
  int32_t max_axis = 256;
  Axis ax, ay;
  for (;;) {
    ax = make_axis(xlo, xhi, sw / nv, max_axis);
    ay = make_axis(ylo, yhi, sh / nv, max_axis);
    if (int64_t(ax.cells) * ay.cells <= std::max<int64_t>(16, 2 * nv) || max_axis == 1) break;
    max_axis = std::max(1, max_axis / 2);
  }
  const int64_t nlists = int64_t(ax.cells) * ay.cells * 4;
  ws.cx0.resize(n); ws.cx1.resize(n); ws.cy0.resize(n); ws.cy1.resize(n);
  ws.list_start.assign(static_cast<size_t>(nlists) + 1, 0);
  ws.list_size.assign(static_cast<size_t>(nlists), 0);
  int64_t* start = ws.list_start.data();
  for (int64_t p = 0; p < n; ++p) {
    if (!finite_positive(c.x1[p], c.y1[p], c.x2[p], c.y2[p])) {
      ws.cx0[p] = -1;
      continue;
    }
    const int32_t a0 = ax.cell(c.x1[p]), a1 = ax.cell(c.x2[p]);
    const int32_t b0 = ay.cell(c.y1[p]), b1 = ay.cell(c.y2[p]);
    ws.cx0[p] = a0; ws.cx1[p] = a1; ws.cy0[p] = b0; ws.cy1[p] = b1;
    // Capacity if this box is kept (counted for every box: an upper bound).
    for (int32_t cy = b0; cy <= b1; ++cy)
      for (int32_t cx = a0; cx <= a1; ++cx) {
        const int g = (cx != a0 ? 2 : 0) | (cy != b0 ? 1 : 0);
        ++start[(int64_t(cy) * ax.cells + cx) * 4 + g + 1];
      }
  }
  for (int64_t l = 0; l < nlists; ++l) start[l + 1] += start[l];
  BoxArrays<T>& grid = ws.kept;
  grid.resize(std::max<int64_t>(start[nlists], 1));
  int64_t* size = ws.list_size.data();

  int64_t nk = 0;
  for (int64_t p = 0; p < n; ++p) {
    const int32_t a0 = ws.cx0[p];
    if (a0 < 0) {
      keep[p] = 1;
      ++nk;
      continue;
    }
    const int32_t a1 = ws.cx1[p], b0 = ws.cy0[p], b1 = ws.cy1[p];
    bool drop = false;
    for (int32_t cy = b0; cy <= b1 && !drop; ++cy) {
      for (int32_t cx = a0; cx <= a1 && !drop; ++cx) {
        const int64_t base = (int64_t(cy) * ax.cells + cx) * 4;
        // Lists: 0 first column & first row of the kept box, 1 first column,
        // 2 first row, 3 neither. The pair's intersection corner lies in
        // this cell iff the box's first column is here or this is the
        // candidate's first column (same for rows).
        const bool any_col = cx == a0, any_row = cy == b0;
        for (int g = 0; g < 4 && !drop; ++g) {
          if ((g & 2) && !any_col) continue;
          if ((g & 1) && !any_row) continue;
          const int64_t l = base + g;
          if (size[l]) drop = grid.any_suppress_range(start[l], size[l], p, c, thr);
        }
      }
    }
    keep[p] = drop ? 0 : 1;
    if (drop) continue;
    ++nk;
    for (int32_t cy = b0; cy <= b1; ++cy)
      for (int32_t cx = a0; cx <= a1; ++cx) {
        const int g = (cx != a0 ? 2 : 0) | (cy != b0 ? 1 : 0);
        const int64_t l = (int64_t(cy) * ax.cells + cx) * 4 + g;
        grid.set(start[l] + size[l], c.x1[p], c.y1[p], c.x2[p], c.y2[p], c.area[p]);
        ++size[l];
      }
  }
  return nk;
}

// Greedy NMS over ws.boxes[0, n) (already in visiting order). keep[p] = 0/1.
template <typename T>
int64_t greedy(Workspace<T>& ws, int64_t n, double iou_threshold, uint8_t* keep) {
  if (n == 0) return 0;
  if (std::isnan(iou_threshold)) {  // ovr > NaN is always false
    std::fill(keep, keep + n, uint8_t(1));
    return n;
  }
  const T thr = threshold_for<T>(iou_threshold);
  if (iou_threshold >= 0 && n >= 32) return greedy_grid(ws, n, thr, keep);
  return greedy_simple(ws, n, thr, keep);
}

}  // namespace nms_impl

// ------------------------------------------------------------------- nms ----

template <typename T>
int64_t nms(const TensorView& boxes, const TensorView& scores, double iou_threshold,
            const TensorView& keep) {
  using namespace nms_impl;
  const int64_t n = boxes.size(0);
  if (n == 0) return 0;
  std::vector<int64_t> order(static_cast<size_t>(n));
  sort_descending(scores.ptr<T>(), n, order.data());
  Workspace<T> ws;
  gather(boxes.ptr<T>(), order.data(), n, ws.boxes);
  std::vector<uint8_t> flags(static_cast<size_t>(n));
  greedy(ws, n, iou_threshold, flags.data());
  int64_t* out = keep.ptr<int64_t>();
  int64_t count = 0;
  for (int64_t p = 0; p < n; ++p)
    if (flags[p]) out[count++] = order[p];
  return count;
}

template <typename T, typename Idx>
int64_t batched_nms(const TensorView& boxes, const TensorView& scores, const TensorView& idxs,
                    double iou_threshold, const TensorView& keep) {
  using namespace nms_impl;
  const int64_t n = boxes.size(0);
  if (n == 0) return 0;
  std::vector<int64_t> order(static_cast<size_t>(n));
  sort_descending(scores.ptr<T>(), n, order.data());
  const Idx* cls = idxs.ptr<Idx>();

  // Visiting positions grouped by category, visiting order kept inside a group.
  std::vector<int64_t> pos(static_cast<size_t>(n));
  std::vector<int64_t> group_start;
  int64_t lo = cls[0], hi = cls[0];
  for (int64_t i = 1; i < n; ++i) {
    lo = std::min<int64_t>(lo, cls[i]);
    hi = std::max<int64_t>(hi, cls[i]);
  }
  const uint64_t range = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  if (range < static_cast<uint64_t>(4 * n + 1024)) {
    // Counting sort on the category.
    std::vector<int64_t> count(static_cast<size_t>(range) + 2, 0);
    for (int64_t p = 0; p < n; ++p) ++count[static_cast<size_t>(cls[order[p]] - lo) + 1];
    for (size_t b = 0; b + 1 < count.size(); ++b) count[b + 1] += count[b];
    for (size_t b = 0; b + 1 < count.size(); ++b)
      if (count[b + 1] > count[b]) group_start.push_back(count[b]);
    for (int64_t p = 0; p < n; ++p) pos[count[static_cast<size_t>(cls[order[p]] - lo)]++] = p;
  } else {
    std::iota(pos.begin(), pos.end(), int64_t(0));
    std::stable_sort(pos.begin(), pos.end(),
                     [&](int64_t a, int64_t b) { return cls[order[a]] < cls[order[b]]; });
    for (int64_t i = 0; i < n; ++i)
      if (i == 0 || cls[order[pos[i]]] != cls[order[pos[i - 1]]]) group_start.push_back(i);
  }
  group_start.push_back(n);
  const int64_t ngroups = static_cast<int64_t>(group_start.size()) - 1;

  std::vector<uint8_t> flags(static_cast<size_t>(n), 0);
  const T* b = boxes.ptr<T>();
  parallel_for(0, ngroups, 1, [&](int64_t g0, int64_t g1) {
    Workspace<T> ws;
    std::vector<int64_t> idx;
    std::vector<uint8_t> local;
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t s = group_start[g], m = group_start[g + 1] - s;
      idx.resize(static_cast<size_t>(m));
      for (int64_t i = 0; i < m; ++i) idx[i] = order[pos[s + i]];
      gather(b, idx.data(), m, ws.boxes);
      local.resize(static_cast<size_t>(m));
      greedy(ws, m, iou_threshold, local.data());
      for (int64_t i = 0; i < m; ++i) flags[pos[s + i]] = local[i];
    }
  });
  int64_t* out = keep.ptr<int64_t>();
  int64_t count = 0;
  for (int64_t p = 0; p < n; ++p)
    if (flags[p]) out[count++] = order[p];
  return count;
}

// --------------------------------------------------------------- box_iou ----

template <typename T>
void box_iou(const TensorView& boxes1, const TensorView& boxes2, const TensorView& out) {
  const int64_t n = boxes1.size(0), m = boxes2.size(0);
  if (n == 0 || m == 0) return;
  const T* a = boxes1.ptr<T>();
  const T* b = boxes2.ptr<T>();
  T* o = out.ptr<T>();
  // torch.max / torch.min / clamp propagate NaN.
  auto tmax = [](T u, T v) { return (u > v || u != u) ? u : v; };
  auto tmin = [](T u, T v) { return (u < v || u != u) ? u : v; };
  std::vector<T> bx1(m), by1(m), bx2(m), by2(m), barea(m);
  for (int64_t j = 0; j < m; ++j) {
    const T* r = b + j * 4;
    bx1[j] = r[0]; by1[j] = r[1]; bx2[j] = r[2]; by2[j] = r[3];
    barea[j] = (r[2] - r[0]) * (r[3] - r[1]);
  }
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(m, 1));
  parallel_for(0, n, grain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const T* r = a + i * 4;
      const T x1 = r[0], y1 = r[1], x2 = r[2], y2 = r[3];
      const T area = (x2 - x1) * (y2 - y1);
      T* row = o + i * m;
      for (int64_t j = 0; j < m; ++j) {
        T w = tmin(x2, bx2[j]) - tmax(x1, bx1[j]);
        T h = tmin(y2, by2[j]) - tmax(y1, by1[j]);
        w = w < T(0) ? T(0) : w;
        h = h < T(0) ? T(0) : h;
        const T inter = w * h;
        row[j] = inter / (area + barea[j] - inter);
      }
    }
  });
}

#include "ops/nms/nms_instances.inc"

}  // namespace cpu
}  // namespace mn
