// NMS / batched NMS / box IoU CUDA kernels as per-thread functors
// (common/cuda_grid.h), run on a GPU by nms_cuda.cu and over the whole grid on
// the host by the grid-emulation test hook. Pipeline (all on the device; the
// only device-to-host copy is the keep count at the end):
//   1. NmsKeys: order-preserving descending score keys; a stable radix sort
//      (CUB on the device, std::stable_sort in emulation) gives the visiting
//      order (rank -> box).
//   2. batched_nms: NmsCategoryKeys + a second stable sort by category group
//      the ranks by category, score order kept inside each category.
//   3. NmsGather: boxes, areas and categories in that grouped order.
//   4. NmsMask (phased, shared memory): for 64 x 64 blocks of (earlier row box,
//      later column box) the bit mask of suppressions, with nms_common.h's
//      `suppresses` (same category only). Blocks below the diagonal, or whose
//      rows all precede the columns' category, are skipped / zero.
//   5. NmsReduce (one block): the greedy pass over the mask, 64 rows at a time:
//      thread 0 resolves a row block against its diagonal word, then all
//      threads OR the kept rows' masks into the `removed` words ahead. Kept
//      boxes are flagged by their score rank.
//   6. NmsCompact (one block, phased): keep = boxes of the flagged ranks in
//      rank order, and the count.
#pragma once
#include <cstdint>
#include <type_traits>

#include "common/cuda_grid.h"
#include "common/tensor_view.h"
#include "ops/nms/nms_common.h"

namespace mn {
namespace nms_detail {

template <typename T>
using KeyOf = typename std::conditional<std::is_same<T, float>::value, uint32_t, uint64_t>::type;

constexpr int64_t kMaskBits = 64;
constexpr int64_t kCompactThreads = 1024;

template <typename T>
struct NmsKeys {
  const T* scores;
  int64_t n;
  KeyOf<T>* keys;
  int64_t* vals;
  MN_HOST_DEVICE void operator()(GridThread t) const {
    for (int64_t i = t.global(); i < n; i += t.stride()) {
      keys[i] = descending_key(scores[i]);
      vals[i] = i;
    }
  }
};

template <typename Idx>
struct NmsCategoryKeys {
  const Idx* idxs;
  const int64_t* order;  // rank -> box
  int64_t n;
  int64_t* keys;
  int64_t* vals;
  MN_HOST_DEVICE void operator()(GridThread t) const {
    for (int64_t r = t.global(); r < n; r += t.stride()) {
      keys[r] = static_cast<int64_t>(idxs[order[r]]);
      vals[r] = r;
    }
  }
};

// sorted: 5 arrays of n (x1, y1, x2, y2, area) in grouped order p.
template <typename T, typename Idx>
struct NmsGather {
  const T* boxes;
  const int64_t* order;  // rank -> box
  const int64_t* group;  // p -> rank (nullptr: identity, plain nms)
  const Idx* idxs;       // categories (nullptr: all 0)
  int64_t n;
  T* sorted;
  int64_t* cat;
  int64_t* rank;
  MN_HOST_DEVICE void operator()(GridThread t) const {
    for (int64_t p = t.global(); p < n; p += t.stride()) {
      const int64_t r = group ? group[p] : p;
      const int64_t b = order[r];
      const T* bx = boxes + b * 4;
      sorted[p] = bx[0];
      sorted[n + p] = bx[1];
      sorted[2 * n + p] = bx[2];
      sorted[3 * n + p] = bx[3];
      sorted[4 * n + p] = (bx[2] - bx[0]) * (bx[3] - bx[1]);
      cat[p] = idxs ? static_cast<int64_t>(idxs[b]) : 0;
      rank[p] = r;
    }
  }
};

MN_HOST_DEVICE int64_t mask_blocks(int64_t n) { return (n + kMaskBits - 1) / kMaskBits; }

// Launch: blocks = nb * nb, threads = 64.
template <typename T>
struct NmsMask {
  const T* sorted;
  const int64_t* cat;
  int64_t n, nb;
  T thr;
  uint64_t* mask;  // [n, nb]

  struct Shared {
    T x1[kMaskBits], y1[kMaskBits], x2[kMaskBits], y2[kMaskBits], area[kMaskBits];
    int64_t cat[kMaskBits];
  };
  static constexpr int kPhases = 2;

  MN_HOST_DEVICE void phase(int p, GridThread t, Shared& s) const {
    const int64_t rb = t.block / nb, cb = t.block % nb;
    if (cb < rb) return;  // never read by the reduction
    const int64_t col0 = cb * kMaskBits, row0 = rb * kMaskBits;
    const int64_t ncols = n - col0 < kMaskBits ? n - col0 : kMaskBits;
    const int64_t nrows = n - row0 < kMaskBits ? n - row0 : kMaskBits;
    if (p == 0) {
      if (t.thread < ncols) {
        const int64_t j = col0 + t.thread;
        s.x1[t.thread] = sorted[j];
        s.y1[t.thread] = sorted[n + j];
        s.x2[t.thread] = sorted[2 * n + j];
        s.y2[t.thread] = sorted[3 * n + j];
        s.area[t.thread] = sorted[4 * n + j];
        s.cat[t.thread] = cat[j];
      }
      return;
    }
    if (t.thread >= nrows) return;
    const int64_t i = row0 + t.thread;
    uint64_t bits = 0;
    // Categories ascend along the grouped order: rows of an earlier category
    // than every column cannot suppress any of them.
    if (!(cat[row0 + nrows - 1] < s.cat[0])) {
      const T x1 = sorted[i], y1 = sorted[n + i], x2 = sorted[2 * n + i], y2 = sorted[3 * n + i];
      const T area = sorted[4 * n + i];
      const int64_t ci = cat[i];
      const int64_t start = rb == cb ? t.thread + 1 : 0;
      for (int64_t j = start; j < ncols; ++j)
        if (s.cat[j] == ci && suppresses(x1, y1, x2, y2, area, s.x1[j], s.y1[j], s.x2[j],
                                         s.y2[j], s.area[j], thr))
          bits |= uint64_t(1) << j;
    }
    mask[i * nb + cb] = bits;
  }
};

// One block; see nms_cuda.cu's kernel and emulate_reduce for the phase order:
// init, then for every row block rb: pick (thread 0), spread (all threads).
struct NmsReduce {
  const uint64_t* mask;
  int64_t n, nb;
  uint64_t* removed;     // [nb]
  const int64_t* rank;   // p -> rank
  uint8_t* flags;        // [n] by rank

  struct Shared {
    uint64_t kept;
  };

  MN_HOST_DEVICE void init(GridThread t) const {
    for (int64_t w = t.thread; w < nb; w += t.block_dim) removed[w] = 0;
    for (int64_t r = t.thread; r < n; r += t.block_dim) flags[r] = 0;
  }
  MN_HOST_DEVICE void pick(GridThread t, int64_t rb, Shared& s) const {
    if (t.thread != 0) return;
    const int64_t row0 = rb * kMaskBits;
    const int64_t rows = n - row0 < kMaskBits ? n - row0 : kMaskBits;
    uint64_t cur = removed[rb], kept = 0;
    for (int64_t j = 0; j < rows; ++j) {
      if ((cur >> j) & 1u) continue;
      kept |= uint64_t(1) << j;
      flags[rank[row0 + j]] = 1;
      cur |= mask[(row0 + j) * nb + rb];
    }
    s.kept = kept;
  }
  MN_HOST_DEVICE void spread(GridThread t, int64_t rb, const Shared& s) const {
    const int64_t row0 = rb * kMaskBits;
    for (int64_t w = rb + 1 + t.thread; w < nb; w += t.block_dim) {
      uint64_t acc = removed[w];
      for (int64_t j = 0; j < kMaskBits; ++j)
        if ((s.kept >> j) & 1u) acc |= mask[(row0 + j) * nb + w];
      removed[w] = acc;
    }
  }
  // Host emulation: the phases in the device kernel's order.
  void run_host(int64_t threads) const {
    Shared s{0};
    for (int64_t t = 0; t < threads; ++t) init(GridThread{0, t, threads, 1});
    for (int64_t rb = 0; rb < nb; ++rb) {
      for (int64_t t = 0; t < threads; ++t) pick(GridThread{0, t, threads, 1}, rb, s);
      for (int64_t t = 0; t < threads; ++t) spread(GridThread{0, t, threads, 1}, rb, s);
    }
  }
#if defined(__CUDACC__)
  __device__ void run_device() const {
    __shared__ Shared s;
    const GridThread t{0, static_cast<int64_t>(threadIdx.x), static_cast<int64_t>(blockDim.x), 1};
    init(t);
    __syncthreads();
    for (int64_t rb = 0; rb < nb; ++rb) {
      pick(t, rb, s);
      __syncthreads();
      spread(t, rb, s);
      __syncthreads();
    }
  }
#endif
};


// One block of kCompactThreads threads.
struct NmsCompact {
  const uint8_t* flags;  // by rank
  const int64_t* order;  // rank -> box
  int64_t n;
  int64_t* keep;
  int64_t* count;

  struct Shared {
    int64_t cnt[kCompactThreads];
  };
  static constexpr int kPhases = 3;

  MN_HOST_DEVICE void phase(int p, GridThread t, Shared& s) const {
    const ThreadChunk ch = thread_chunk(n, t);
    if (p == 0) {
      int64_t c = 0;
      for (int64_t r = ch.beg; r < ch.end; ++r) c += flags[r] ? 1 : 0;
      s.cnt[t.thread] = c;
    } else if (p == 1) {
      if (t.thread == 0) *count = exclusive_scan(s.cnt, t.block_dim);
    } else {
      int64_t off = s.cnt[t.thread];
      for (int64_t r = ch.beg; r < ch.end; ++r)
        if (flags[r]) keep[off++] = order[r];
    }
  }
};

// torchvision.ops.box_iou, NaN-propagating like torch.max / torch.min.
template <typename T>
MN_HOST_DEVICE T nan_max(T u, T v) { return (u > v || u != u) ? u : v; }
template <typename T>
MN_HOST_DEVICE T nan_min(T u, T v) { return (u < v || u != u) ? u : v; }

template <typename T>
struct BoxIou {
  const T* a;
  const T* b;
  int64_t n, m;
  T* out;
  MN_HOST_DEVICE void operator()(GridThread t) const {
    for (int64_t e = t.global(); e < n * m; e += t.stride()) {
      const int64_t i = e / m, j = e % m;
      const T* r = a + i * 4;
      const T* q = b + j * 4;
      const T area = (r[2] - r[0]) * (r[3] - r[1]);
      const T barea = (q[2] - q[0]) * (q[3] - q[1]);
      T w = nan_min(r[2], q[2]) - nan_max(r[0], q[0]);
      T h = nan_min(r[3], q[3]) - nan_max(r[1], q[1]);
      w = w < T(0) ? T(0) : w;
      h = h < T(0) ? T(0) : h;
      const T inter = w * h;
      out[e] = inter / (area + barea - inter);
    }
  }
};

// One nms / batched_nms call (idxs == nullptr: plain nms). Returns the count;
// reading it is the only device-to-host copy (and synchronise) on CUDA.
template <typename T, typename Idx, class Exec>
int64_t nms_run(Exec& ex, const TensorView& boxes, const TensorView& scores, const Idx* idxs,
                double iou_threshold, const TensorView& keep, const char* op) {
  const int64_t n = boxes.size(0);
  if (n == 0) return 0;
  using K = KeyOf<T>;
  using I64 = typename Exec::template Buffer<int64_t>;
  typename Exec::template Buffer<K> keys(n, op), keys_sorted(n, op);
  I64 vals(n, op), order(n, op);
  ex.launch(launch_1d(n), NmsKeys<T>{scores.ptr<T>(), n, keys.get(), vals.get()}, op);
  ex.template sort_pairs<K>(keys.get(), keys_sorted.get(), vals.get(), order.get(), n, op);
  const size_t gn = idxs ? static_cast<size_t>(n) : 1;
  I64 ckeys(gn, op), ckeys_sorted(gn, op), ranks(gn, op), group(gn, op);
  if (idxs) {
    ex.launch(launch_1d(n), NmsCategoryKeys<Idx>{idxs, order.get(), n, ckeys.get(), ranks.get()}, op);
    ex.template sort_pairs<int64_t>(ckeys.get(), ckeys_sorted.get(), ranks.get(), group.get(), n, op);
  }
  typename Exec::template Buffer<T> sorted(static_cast<size_t>(5 * n), op);
  I64 cat(n, op), rank(n, op);
  ex.launch(launch_1d(n), NmsGather<T, Idx>{boxes.ptr<T>(), order.get(), idxs ? group.get() : nullptr,
                                            idxs, n, sorted.get(), cat.get(), rank.get()}, op);
  const int64_t nb = mask_blocks(n);
  typename Exec::template Buffer<uint64_t> mask(static_cast<size_t>(n * nb), op), removed(nb, op);
  ex.launch_phased(Launch{nb * nb, kMaskBits},
                   NmsMask<T>{sorted.get(), cat.get(), n, nb, threshold_for<T>(iou_threshold),
                              mask.get()}, op);
  typename Exec::template Buffer<uint8_t> flags(n, op);
  ex.launch_block(256, NmsReduce{mask.get(), n, nb, removed.get(), rank.get(), flags.get()}, op);
  I64 count(1, op);
  ex.launch_phased(Launch{1, kCompactThreads},
                   NmsCompact{flags.get(), order.get(), n, keep.ptr<int64_t>(), count.get()}, op);
  return ex.read_count(count.get(), op);
}

template <typename T, class Exec>
void box_iou_run(Exec& ex, const TensorView& boxes1, const TensorView& boxes2,
                 const TensorView& out, const char* op) {
  const int64_t n = boxes1.size(0), m = boxes2.size(0);
  if (n == 0 || m == 0) return;
  ex.launch(launch_1d(n * m), BoxIou<T>{boxes1.ptr<T>(), boxes2.ptr<T>(), n, m, out.ptr<T>()}, op);
}

}  // namespace nms_detail
}  // namespace mn
