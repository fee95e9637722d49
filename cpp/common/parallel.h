// The one CPU thread pool. Sized by set_num_threads() (the Python layer
// defaults it to torch.get_num_threads()). Kernels parallelise over disjoint
// outputs only, so results do not depend on the thread count or schedule.
#pragma once
#include <cstdint>
#include <functional>

namespace mn {

void set_num_threads(int n);
int get_num_threads();

// Runs fn(lo, hi) over disjoint sub-ranges covering [begin, end). Ranges hold
// at least `grain` items (except the last). Reentrant: several callers may use
// the pool at once; a call from inside a pool task runs inline.
void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

}  // namespace mn
