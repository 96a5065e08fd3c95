// ThreadPool: persistent workers woken by an epoch counter, with a join/close protocol so a
// call never waits for a worker that has not started on it.
//
// A call (job) goes through:
//   caller: write the job, ctrl = {id, open, 0 inside}, epoch++ (wake sleepers if any),
//           run chunks, ctrl |= closed, wait until no worker is inside.
//   worker: see epoch change, CAS-join ctrl while it is open (inside + 1), run chunks, leave
//           (inside - 1). A worker that wakes after the job closed skips it.
// Chunks are claimed with one atomic counter. The job fields are written before ctrl is
// published (release) and read only after a successful join (acquire), and the caller
// rewrites them only after the previous job is closed with nobody inside.
// Idle workers spin on epoch for `spin`, then sleep on a condition variable: a worker counts
// itself in `sleepers` and re-checks epoch under the mutex; a caller bumps epoch, then, if it
// sees sleepers, takes the mutex and notifies, so a wake-up cannot be lost. Stop works the same
// way (set before the epoch bump).
#include "headsplit/kernels/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HS_CPU_RELAX() _mm_pause()
#else
#define HS_CPU_RELAX() std::this_thread::yield()
#endif

namespace hs::kernels {
namespace {

constexpr int64_t kChunksPerThread = 4;
// ctrl layout: [63:32] job id, bit 31 closed, [30:0] workers inside.
constexpr uint64_t kClosed = uint64_t{1} << 31;
constexpr uint64_t kInsideMask = kClosed - 1;

// True on pool workers and on a caller while it runs chunks: parallel_for runs inline there.
thread_local bool t_inside_pool = false;

using Clock = std::chrono::steady_clock;

}  // namespace

ChunkRange chunk_range(int64_t n, int64_t chunks, int64_t chunk) {
  const int64_t base = n / chunks, rem = n % chunks;
  const int64_t begin = chunk * base + std::min(chunk, rem);
  return {begin, begin + base + (chunk < rem ? 1 : 0)};
}

struct ThreadPool::State {
  // The current job (see the protocol above).
  Task task = nullptr;
  void* ctx = nullptr;
  int64_t n = 0;
  int64_t chunks = 0;
  std::atomic<int64_t> next_chunk{0};

  std::atomic<uint64_t> ctrl{kClosed};
  std::atomic<uint32_t> epoch{0};
  std::atomic<int> sleepers{0};
  std::mutex sleep_mutex;
  std::condition_variable wake;
  std::atomic<bool> stop{false};
  std::atomic<bool> busy{false};
  uint64_t job_id = 0;
  Clock::duration spin{};
  std::vector<std::thread> workers;

  void run_chunks() {
    for (int64_t c = next_chunk.fetch_add(1, std::memory_order_relaxed); c < chunks;
         c = next_chunk.fetch_add(1, std::memory_order_relaxed)) {
      const ChunkRange r = chunk_range(n, chunks, c);
      task(ctx, r.begin, r.end);
    }
  }

  // Waits until epoch differs from `seen` (or stop); returns the new epoch.
  uint32_t wait_for_epoch(uint32_t seen) {
    const Clock::time_point deadline = Clock::now() + spin;
    for (uint32_t i = 0;; ++i) {
      const uint32_t e = epoch.load(std::memory_order_acquire);
      if (e != seen || stop.load(std::memory_order_relaxed)) return e;
      if ((i & 63) == 63 && Clock::now() >= deadline) break;
      HS_CPU_RELAX();
    }
    std::unique_lock<std::mutex> lock(sleep_mutex);
    sleepers.fetch_add(1, std::memory_order_seq_cst);
    uint32_t e = epoch.load(std::memory_order_seq_cst);
    while (e == seen && !stop.load(std::memory_order_seq_cst)) {
      wake.wait(lock);
      e = epoch.load(std::memory_order_seq_cst);
    }
    sleepers.fetch_sub(1, std::memory_order_relaxed);
    return e;
  }

  // After epoch changed: wakes the sleeping workers, if any.
  void wake_sleepers() {
    if (sleepers.load(std::memory_order_seq_cst) == 0) return;
    { std::lock_guard<std::mutex> lock(sleep_mutex); }
    wake.notify_all();
  }

  void join_and_run() {
    uint64_t c = ctrl.load(std::memory_order_acquire);
    do {
      if ((c & kClosed) != 0) return;
    } while (!ctrl.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel,
                                         std::memory_order_acquire));
    run_chunks();
    ctrl.fetch_sub(1, std::memory_order_release);
  }

  // Workers start from epoch 0 (not from whatever it is when the thread gets to run), so a
  // stop or job published before then is not missed.
  void worker_loop() {
    t_inside_pool = true;
    uint32_t seen = 0;
    while (true) {
      seen = wait_for_epoch(seen);
      if (stop.load(std::memory_order_acquire)) return;
      join_and_run();
    }
  }
};

ThreadPool::ThreadPool(const ThreadPoolOptions& options) : state_(std::make_unique<State>()) {
  int threads = options.threads;
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  state_->spin = std::max(options.spin, std::chrono::microseconds{0});
  state_->workers.reserve(static_cast<size_t>(threads - 1));
  for (int i = 1; i < threads; ++i) {
    try {
      state_->workers.emplace_back([s = state_.get()] { s->worker_loop(); });
    } catch (...) {  // the system refused a thread: keep the ones we have
      break;
    }
  }
}

ThreadPool::~ThreadPool() {
  state_->stop.store(true, std::memory_order_release);
  state_->epoch.fetch_add(1, std::memory_order_seq_cst);
  state_->wake_sleepers();
  for (std::thread& t : state_->workers) t.join();
}

int ThreadPool::num_threads() const { return static_cast<int>(state_->workers.size()) + 1; }

int64_t ThreadPool::num_chunks(int64_t n) const {
  if (n <= 0) return 0;
  return std::min<int64_t>(n, kChunksPerThread * num_threads());
}

void ThreadPool::run(int64_t n, Task task, void* ctx) {
  if (n <= 0) return;
  State& s = *state_;
  if (s.workers.empty() || t_inside_pool || s.busy.exchange(true, std::memory_order_acquire)) {
    task(ctx, 0, n);
    return;
  }
  s.task = task;
  s.ctx = ctx;
  s.n = n;
  s.chunks = num_chunks(n);
  s.next_chunk.store(0, std::memory_order_relaxed);
  ++s.job_id;
  s.ctrl.store((s.job_id & 0xffffffffu) << 32, std::memory_order_release);
  s.epoch.fetch_add(1, std::memory_order_seq_cst);
  s.wake_sleepers();

  t_inside_pool = true;
  s.run_chunks();
  t_inside_pool = false;

  // Close the job; wait for the workers that joined it (they may still run a chunk).
  uint64_t c = s.ctrl.fetch_or(kClosed, std::memory_order_acq_rel) | kClosed;
  for (uint32_t i = 0; (c & kInsideMask) != 0; ++i) {
    if (i < 4096) {
      HS_CPU_RELAX();
    } else {
      std::this_thread::yield();
    }
    c = s.ctrl.load(std::memory_order_acquire);
  }
  s.busy.store(false, std::memory_order_release);
}

}  // namespace hs::kernels
