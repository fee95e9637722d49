// The one CPU thread pool. Sized by set_num_threads() (the Python layer
// defaults it to torch.get_num_threads()). Where torch's OpenMP runtime is
// loaded (Linux), jobs run on its team instead of the pool's threads, so the
// ops and torch share one set of threads (parallel.cpp). Kernels parallelise
// over disjoint outputs only, so results do not depend on the thread count,
// the runtime or the schedule.
#pragma once
#include <cstdint>
#include <functional>

namespace mn {

void set_num_threads(int n);
int get_num_threads();

// Whether parallel_for may run on the process's OpenMP runtime (torch's
// libgomp) when one is loaded (default yes; MN_HOST_OPENMP=0 never), and
// whether it does now.
void set_host_openmp(bool allowed);
bool host_openmp_active();

// Runs fn(lo, hi) over disjoint sub-ranges covering [begin, end). Ranges hold
// at least `grain` items (except the last). Reentrant: several callers may use
// the pool at once; a call from inside a pool task runs inline.
void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

}  // namespace mn
