// ThreadPool: every index visited exactly once, chunking, nested and zero-size calls,
// concurrent callers, sleeping workers, and the null-pool helper.
#include "headsplit/kernels/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

namespace hs::kernels {
namespace {

// Counts how often each index of [0, n) was visited by pool.parallel_for(n, ...).
std::vector<int> visit_counts(ThreadPool& pool, int64_t n) {
  std::vector<std::atomic<int>> counts(static_cast<size_t>(n));
  pool.parallel_for(n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) counts[static_cast<size_t>(i)].fetch_add(1);
  });
  std::vector<int> out;
  for (auto& c : counts) out.push_back(c.load());
  return out;
}

TEST(ChunkRange, SplitsEvenlyWithTheRemainderFirst) {
  // 10 items in 4 chunks: 3, 3, 2, 2.
  EXPECT_EQ(chunk_range(10, 4, 0).begin, 0);
  EXPECT_EQ(chunk_range(10, 4, 0).end, 3);
  EXPECT_EQ(chunk_range(10, 4, 1).begin, 3);
  EXPECT_EQ(chunk_range(10, 4, 1).end, 6);
  EXPECT_EQ(chunk_range(10, 4, 2).begin, 6);
  EXPECT_EQ(chunk_range(10, 4, 2).end, 8);
  EXPECT_EQ(chunk_range(10, 4, 3).begin, 8);
  EXPECT_EQ(chunk_range(10, 4, 3).end, 10);
}

TEST(ThreadPool, NumThreadsAndChunks) {
  ThreadPool one(1), three(3);
  EXPECT_EQ(one.num_threads(), 1);
  EXPECT_EQ(three.num_threads(), 3);
  EXPECT_EQ(three.num_chunks(0), 0);
  EXPECT_EQ(three.num_chunks(5), 5);
  EXPECT_EQ(three.num_chunks(1000), 12);  // 4 per thread
  ThreadPool automatic;
  EXPECT_GE(automatic.num_threads(), 1);
}

TEST(ThreadPool, VisitsEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 2, 3, 7, 8, 100, 1000, 12345}) {
      const std::vector<int> counts = visit_counts(pool, n);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(counts[static_cast<size_t>(i)], 1)
            << "threads " << threads << " n " << n << " i " << i;
      }
    }
  }
}

TEST(ThreadPool, ChunksAreTheDocumentedRanges) {
  ThreadPool pool(2);
  std::mutex mu;
  std::set<std::pair<int64_t, int64_t>> seen;
  pool.parallel_for(1001, [&](int64_t b, int64_t e) {
    std::lock_guard<std::mutex> lock(mu);
    seen.insert({b, e});
  });
  std::set<std::pair<int64_t, int64_t>> expected;
  const int64_t chunks = pool.num_chunks(1001);
  for (int64_t c = 0; c < chunks; ++c) {
    expected.insert({chunk_range(1001, chunks, c).begin, chunk_range(1001, chunks, c).end});
  }
  EXPECT_EQ(seen, expected);
}

TEST(ThreadPool, ZeroAndNegativeSizesNeverCallFn) {
  ThreadPool pool(2);
  int calls = 0;
  pool.parallel_for(0, [&](int64_t, int64_t) { ++calls; });
  pool.parallel_for(-5, [&](int64_t, int64_t) { ++calls; });
  parallel_for(nullptr, 0, [&](int64_t, int64_t) { ++calls; });
  parallel_for(&pool, 0, [&](int64_t, int64_t) { ++calls; });
  EXPECT_EQ(calls, 0);
}

TEST(ThreadPool, NullPoolRunsInlineAsOneChunk) {
  std::vector<std::pair<int64_t, int64_t>> ranges;
  parallel_for(nullptr, 17, [&](int64_t b, int64_t e) { ranges.push_back({b, e}); });
  ASSERT_EQ(ranges.size(), 1u);
  EXPECT_EQ(ranges[0], std::make_pair(int64_t{0}, int64_t{17}));
}

TEST(ThreadPool, SingleThreadPoolRunsOnTheCaller) {
  ThreadPool pool(1);
  const std::thread::id caller = std::this_thread::get_id();
  bool all_on_caller = true;
  pool.parallel_for(100, [&](int64_t, int64_t) {
    all_on_caller = all_on_caller && std::this_thread::get_id() == caller;
  });
  EXPECT_TRUE(all_on_caller);
}

TEST(ThreadPool, NestedCallsRunInlineAndCoverTheirRange) {
  ThreadPool pool(2);
  constexpr int64_t kOuter = 16, kInner = 50;
  std::vector<std::atomic<int>> counts(kOuter * kInner);
  std::atomic<int> inner_calls{0};
  pool.parallel_for(kOuter, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      pool.parallel_for(kInner, [&](int64_t ib, int64_t ie) {
        inner_calls.fetch_add(1);
        for (int64_t j = ib; j < ie; ++j) counts[static_cast<size_t>(i * kInner + j)].fetch_add(1);
      });
    }
  });
  for (auto& c : counts) ASSERT_EQ(c.load(), 1);
  EXPECT_EQ(inner_calls.load(), kOuter);  // inline: one chunk per nested call
}

TEST(ThreadPool, ManyBackToBackCallsAndSleepingWorkers) {
  // spin 0: workers go to sleep right after each call, exercising the futex wake path.
  for (auto spin : {std::chrono::microseconds{0}, std::chrono::microseconds{200}}) {
    ThreadPool pool(ThreadPoolOptions{.threads = 3, .spin = spin});
    int64_t total = 0;
    for (int call = 0; call < 3000; ++call) {
      std::atomic<int64_t> sum{0};
      const int64_t n = 1 + call % 37;
      pool.parallel_for(n, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) sum.fetch_add(i + 1);
      });
      ASSERT_EQ(sum.load(), n * (n + 1) / 2) << "call " << call;
      total += sum.load();
    }
    EXPECT_GT(total, 0);
    // After a pause the workers sleep; the next call must still wake them and finish.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const std::vector<int> counts = visit_counts(pool, 500);
    for (int c : counts) ASSERT_EQ(c, 1);
  }
}

TEST(ThreadPool, UsesTheWorkers) {
  // With 2 threads and chunks that wait for each other, both threads must take part: the first
  // chunk blocks until another thread has started a chunk.
  ThreadPool pool(2);
  std::atomic<int> started{0};
  std::set<std::thread::id> ids;
  std::mutex mu;
  pool.parallel_for(2, [&](int64_t, int64_t) {
    {
      std::lock_guard<std::mutex> lock(mu);
      ids.insert(std::this_thread::get_id());
    }
    started.fetch_add(1);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (started.load() < 2 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
  });
  EXPECT_EQ(ids.size(), 2u);
}

TEST(ThreadPool, ConcurrentCallersFromTwoThreads) {
  // A second caller while the pool is busy runs inline; both get every index once.
  ThreadPool pool(2);
  std::atomic<bool> ok{true};
  auto caller = [&] {
    for (int call = 0; call < 500; ++call) {
      const std::vector<int> counts = visit_counts(pool, 64 + call % 5);
      for (int c : counts) {
        if (c != 1) ok = false;
      }
    }
  };
  std::thread a(caller), b(caller);
  a.join();
  b.join();
  EXPECT_TRUE(ok.load());
}

}  // namespace
}  // namespace hs::kernels
