// ThreadPool: persistent worker threads for the fast kernels, driven by parallel_for.
//
//   pool.parallel_for(n, [&](int64_t begin, int64_t end) { ... });
//
// splits [0, n) into contiguous chunks and calls fn(begin, end) once per chunk, on the calling
// thread and on the workers; it returns when every chunk is done. Chunk boundaries depend only
// on n and num_threads() (see chunk_range); which thread runs which chunk does not matter to
// the kernels, which compute every output element with one fixed sequence of operations
// whatever chunk it lands in. So their results do not depend on the thread count.
//
// Cost: workers spin for `spin` after a call before they sleep on a condition variable, so
// the hundreds of back-to-back calls of a decode step each cost about a microsecond (measured
// in bench/kernels_bench).
// A pool of one thread runs fn inline. A call made from inside fn (nested) or while another
// thread is using the pool runs fn(0, n) inline on the caller. Nothing here throws: if the
// system refuses to start a worker, the pool keeps the threads it has.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <type_traits>

namespace hs::kernels {

struct ThreadPoolOptions {
  int threads = 0;  // total threads including the caller; <= 0: hardware concurrency
  // How long an idle worker polls for the next call before it sleeps.
  std::chrono::microseconds spin{200};
};

// Chunk `chunk` of [0, n) split into `chunks` contiguous near-equal parts (the first n % chunks
// parts are one longer).
struct ChunkRange {
  int64_t begin = 0;
  int64_t end = 0;
};
ChunkRange chunk_range(int64_t n, int64_t chunks, int64_t chunk);

class ThreadPool {
 public:
  explicit ThreadPool(const ThreadPoolOptions& options = {});
  explicit ThreadPool(int threads) : ThreadPool(ThreadPoolOptions{.threads = threads}) {}
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Workers plus the calling thread; at least 1.
  int num_threads() const;
  // How many chunks parallel_for(n, ...) makes: min(n, 4 * num_threads()), 0 for n <= 0.
  int64_t num_chunks(int64_t n) const;

  // Calls fn(begin, end) over disjoint chunks covering [0, n); nothing for n <= 0.
  // fn must not throw; it may call parallel_for (that call runs inline).
  template <typename Fn>
  void parallel_for(int64_t n, Fn&& fn) {
    using F = std::remove_reference_t<Fn>;
    run(
        n, [](void* ctx, int64_t b, int64_t e) { (*static_cast<F*>(ctx))(b, e); },
        const_cast<void*>(static_cast<const void*>(&fn)));
  }

 private:
  using Task = void (*)(void* ctx, int64_t begin, int64_t end);
  void run(int64_t n, Task task, void* ctx);

  struct State;
  std::unique_ptr<State> state_;
};

// parallel_for on `pool`, or fn(0, n) inline when pool is null.
template <typename Fn>
void parallel_for(ThreadPool* pool, int64_t n, Fn&& fn) {
  if (n <= 0) return;
  if (pool == nullptr) {
    fn(int64_t{0}, n);
    return;
  }
  pool->parallel_for(n, fn);
}

}  // namespace hs::kernels
