// Calibration: min/max observers keyed by value name on every graph of a GraphStepModel,
// driven window by window with the SmartMask loop of windows.cpp.
#include "headsplit/ptq/calibrate.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "headsplit/irexec/graph_step_model.h"
#include "headsplit/support/progress.h"

namespace hs::ptq {

namespace {

// The SIMD loops' end: r takes the range of the lanes' minima `lo`, maxima `hi` and the `tail`
// the loop left, or NaN when a value was NaN (`nan`); a NaN range stays NaN.
[[maybe_unused]] void merge_lanes(quant::Range& r, std::span<const float> lo,
                                  std::span<const float> hi, std::span<const float> tail,
                                  bool nan) {
  quant::Range part;
  part.observe(lo);
  part.observe(hi);
  part.observe(tail);
  if (nan) part.min = part.max = std::numeric_limits<float>::quiet_NaN();
  if (std::isnan(r.min) || std::isnan(r.max)) return;  // already NaN: stays NaN
  r.merge(part);
}

// Range::observe with four independent SIMD accumulators (AVX2 or SSE2 where available): the
// observers see every activation of every step, so this loop is a visible part of calibration.
// Same result as Range::observe (min/max of the values, NaN when one is NaN) up to the sign
// of a zero extreme (-0 vs +0, which give equal params).
#if defined(__x86_64__) && defined(__GNUC__)
#define HS_OBSERVE_AVX2 1
// observe_fast's loop on 8-lane registers (32 values per iteration), for CPUs with AVX2.
__attribute__((target("avx2"))) void observe_avx2(quant::Range& r, std::span<const float> values) {
  const size_t n = values.size(), n32 = n - n % 32;
  const float* p = values.data();
  __m256 lo[4], hi[4], nan = _mm256_setzero_ps();
  for (int j = 0; j < 4; ++j) lo[j] = hi[j] = _mm256_loadu_ps(p + 8 * j);
  for (size_t i = 0; i < n32; i += 32) {
    for (int j = 0; j < 4; ++j) {
      const __m256 v = _mm256_loadu_ps(p + i + 8 * static_cast<size_t>(j));
      lo[j] = _mm256_min_ps(v, lo[j]);
      hi[j] = _mm256_max_ps(v, hi[j]);
      nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    }
  }
  alignas(32) float l[32], h[32];
  for (int j = 0; j < 4; ++j) {
    _mm256_store_ps(l + 8 * j, lo[j]);
    _mm256_store_ps(h + 8 * j, hi[j]);
  }
  merge_lanes(r, l, h, values.subspan(n32), _mm256_movemask_ps(nan) != 0);
}

bool has_avx2() {
  static const bool avx2 = __builtin_cpu_supports("avx2") != 0;
  return avx2;
}
#endif

void observe_fast(quant::Range& r, std::span<const float> values) {
#if defined(HS_OBSERVE_AVX2)
  if (values.size() >= 32 && has_avx2()) {
    observe_avx2(r, values);
    return;
  }
#endif
#if defined(__SSE2__)
  const size_t n = values.size(), n16 = n - n % 16;
  if (n16 == 0) {
    r.observe(values);
    return;
  }
  const float* p = values.data();
  __m128 lo[4], hi[4], nan = _mm_setzero_ps();
  for (int j = 0; j < 4; ++j) lo[j] = hi[j] = _mm_loadu_ps(p + 4 * j);
  for (size_t i = 0; i < n16; i += 16) {
    for (int j = 0; j < 4; ++j) {
      const __m128 v = _mm_loadu_ps(p + i + 4 * static_cast<size_t>(j));
      lo[j] = _mm_min_ps(v, lo[j]);
      hi[j] = _mm_max_ps(v, hi[j]);
      nan = _mm_or_ps(nan, _mm_cmpunord_ps(v, v));
    }
  }
  alignas(16) float l[16], h[16];
  for (int j = 0; j < 4; ++j) {
    _mm_store_ps(l + 4 * j, lo[j]);
    _mm_store_ps(h + 4 * j, hi[j]);
  }
  merge_lanes(r, l, h, values.subspan(n16), _mm_movemask_ps(nan) != 0);
#else
  r.observe(values);
#endif
}

// Ops whose output holds exactly the input's values (rearranged or repeated): their range
// is the input's, so they are not observed (the GQA expansion of the KV caches alone is G
// times a layer's cache per step) but take the input's range when calibration ends.
bool range_preserving(ir::OpKind op) {
  switch (op) {
    case ir::OpKind::kReshape:
    case ir::OpKind::kSqueeze:
    case ir::OpKind::kUnsqueeze:
    case ir::OpKind::kTranspose:
    case ir::OpKind::kExpand: return true;
    default: return false;
  }
}

// Captures the token rows of projection inputs (CalibrationOptions::capture) for SeqMSE and
// GPTQ. A step's tensors are copied as rows [R, I] when observed; the logits callback then
// says which rows were real (rows past the window's end are padding): each real row goes to
// `all` (when asked for) and the last one seen in a window to `last` at the window's end.
class Capture {
 public:
  static Result<std::unique_ptr<Capture>> create(irexec::GraphStepModel& model,
                                                 const CalibrationOptions& options,
                                                 quant::ActivationSamples& out) {
    auto c = std::unique_ptr<Capture>(new Capture(out, options.capture_all_tokens));
    std::unordered_map<std::string, int> slot_of;
    for (const std::string& name : options.capture) {
      slot_of.emplace(name, static_cast<int>(c->slots_.size()));
      c->slots_.push_back(Slot{name});
    }
    std::vector<bool> found(c->slots_.size(), false);
    for (int64_t ar_len : model.info().ar_lens) {
      const ir::Graph* g = model.graph(ar_len);
      std::vector<Layout>& layouts = c->by_graph_[ar_len];
      layouts.assign(static_cast<size_t>(g->num_values()), Layout{});
      for (ir::NodeId n = 0; n < g->num_nodes(); ++n) {
        const ir::Node& node = g->node(n);
        if (node.erased || node.inputs.size() < 2) continue;
        if (node.op != ir::OpKind::kConv2d && node.op != ir::OpKind::kLinear) continue;
        const ir::Value& x = g->value(node.inputs[0]);
        auto it = slot_of.find(x.name);
        if (it == slot_of.end() || x.is_constant() || x.type.dtype != ir::DType::kF32) continue;
        const ir::Shape& sh = x.type.shape;
        Layout l{it->second, node.op == ir::OpKind::kConv2d, 0};
        if (l.conv && sh.size() != 4) continue;
        l.dim = l.conv ? sh[1] : (sh.empty() ? 0 : sh.back());
        if (l.dim <= 0) continue;
        layouts[static_cast<size_t>(node.inputs[0])] = l;
        c->slots_[static_cast<size_t>(it->second)].dim = l.dim;
        found[static_cast<size_t>(it->second)] = true;
      }
    }
    for (size_t i = 0; i < found.size(); ++i) {
      if (!found[i]) {
        return errorf(ErrorKind::kInvalidArgument,
                      "calibrate: '{}' is not the float input of a conv2d or linear in any graph",
                      c->slots_[i].name);
      }
    }
    return c;
  }

  void observe(int64_t ar_len, ir::ValueId id, const ir::Tensor& t) {
    const std::vector<Layout>& layouts = by_graph_[ar_len];
    const Layout& l = layouts[static_cast<size_t>(id)];
    if (l.slot < 0 || t.dtype != ir::DType::kF32) return;
    Slot& s = slots_[static_cast<size_t>(l.slot)];
    const int64_t numel = t.numel();
    s.rows = numel / l.dim;
    s.pending.resize(static_cast<size_t>(numel));
    if (l.conv) {  // [N, I, H, W] -> rows (n, h, w) of I channels
      const int64_t hw = t.shape[2] * t.shape[3];
      for (int64_t b = 0; b < t.shape[0]; ++b)
        for (int64_t c = 0; c < l.dim; ++c)
          for (int64_t p = 0; p < hw; ++p)
            s.pending[static_cast<size_t>((b * hw + p) * l.dim + c)] =
                t.f[static_cast<size_t>((b * l.dim + c) * hw + p)];
    } else {
      std::copy(t.f.begin(), t.f.end(), s.pending.begin());
    }
    fresh_ = true;
  }

  // Row `position` of the window was real in the last step.
  void on_row(int64_t position) {
    if (fresh_) {
      base_ = position;
      fresh_ = false;
    }
    const int64_t row = position - base_;
    for (Slot& s : slots_) {
      if (row >= s.rows) continue;
      const auto begin = s.pending.begin() + row * s.dim;
      s.last.assign(begin, begin + s.dim);
      if (all_) {
        quant::ActivationRows& r = out_[s.name];
        r.dim = s.dim;
        r.all.insert(r.all.end(), begin, begin + s.dim);
      }
    }
  }

  void end_window() {
    for (Slot& s : slots_) {
      if (s.last.empty()) continue;
      quant::ActivationRows& r = out_[s.name];
      r.dim = s.dim;
      r.last.insert(r.last.end(), s.last.begin(), s.last.end());
      s.last.clear();
    }
  }

 private:
  struct Slot {
    std::string name;
    int64_t dim = 0;
    std::vector<float> pending;  // the last step's rows [rows, dim]
    int64_t rows = 0;
    std::vector<float> last;  // the last real row of the window so far
  };
  struct Layout {
    int slot = -1;
    bool conv = false;
    int64_t dim = 0;
  };
  Capture(quant::ActivationSamples& out, bool all) : out_(out), all_(all) {}
  quant::ActivationSamples& out_;
  bool all_;
  std::vector<Slot> slots_;
  std::unordered_map<int64_t, std::vector<Layout>> by_graph_;
  bool fresh_ = false;
  int64_t base_ = 0;
};

// Installs one observer per graph and removes them all when it goes out of scope.
class Observers {
 public:
  Observers(irexec::GraphStepModel& model, quant::CalibrationTable& table, Capture* capture)
      : model_(model) {
    for (int64_t ar_len : model.info().ar_lens) {
      const ir::Graph* g = model.graph(ar_len);
      // slots[id]: the range of value id (real non-constant values only).
      std::vector<quant::Range*> slots(static_cast<size_t>(g->num_values()), nullptr);
      for (ir::ValueId id = 0; id < g->num_values(); ++id) {
        const ir::Value& v = g->value(id);
        if (v.type.is_real() && !v.is_constant())
          slots[static_cast<size_t>(id)] = &table.at(v.name);
      }
      // Range-preserving nodes reading an observed node output (in topological order, so a
      // chain resolves front to back in finish()).
      const std::vector<quant::Range*> ranges = slots;  // slots loses the aliased values below
      std::vector<bool> produced(static_cast<size_t>(g->num_values()), false);
      for (ir::NodeId n = 0; n < g->num_nodes(); ++n) {
        const ir::Node& node = g->node(n);
        if (node.erased || node.inputs.empty()) continue;
        const auto o = static_cast<size_t>(node.outputs[0]);
        const auto i = static_cast<size_t>(node.inputs[0]);
        if (range_preserving(node.op) && ranges[o] != nullptr && ranges[i] != nullptr &&
            produced[i]) {
          aliases_.emplace_back(ranges[o], ranges[i]);
          slots[o] = nullptr;
        }
        produced[o] = true;
      }
      auto observe = [slots = std::move(slots), capture, ar_len](ir::ValueId id,
                                                                 const ir::Tensor& t) {
        if (capture != nullptr) capture->observe(ar_len, id, t);
        quant::Range* r = slots[static_cast<size_t>(id)];
        if (r != nullptr && t.dtype == ir::DType::kF32) observe_fast(*r, t.f);
      };
      // ar_len comes from info().ar_lens, so set_observer cannot fail.
      HS_CHECK(model.set_observer(ar_len, observe).ok(), "calibrate: set_observer failed");
    }
  }
  ~Observers() {
    for (int64_t ar_len : model_.info().ar_lens) (void)model_.set_observer(ar_len, nullptr);
  }
  Observers(const Observers&) = delete;
  Observers& operator=(const Observers&) = delete;

  // After the last step: the unobserved outputs of range-preserving ops get their input's
  // range (merged, as a value of another graph with the same name may be observed itself).
  // Repeated until nothing changes, for chains that cross graphs (the graphs of one model
  // alias the same names, so one pass normally suffices); NaN ranges compare unequal, hence
  // the bound on the passes.
  void finish() {
    for (size_t pass = 0; pass <= aliases_.size(); ++pass) {
      bool changed = false;
      for (auto& [out, in] : aliases_) {
        const quant::Range before = *out;
        out->merge(*in);
        changed |= !(before == *out);
      }
      if (!changed) break;
    }
  }

 private:
  irexec::GraphStepModel& model_;
  std::vector<std::pair<quant::Range*, quant::Range*>> aliases_;  // (output, input), in node order
};

// One window of the calibration text: tokens of sample `sample` (counting non-empty samples),
// the `index`-th window overall.
struct Window {
  std::span<const int32_t> tokens;
  int64_t sample = 0;
  int64_t index = 0;
};

// calibrate() on one or more step models over the same graphs: with several, the windows are
// handed out longest first to one thread per model (so that the last ones, which leave the
// other threads idle, are the shortest), each observing into its own table; the tables are
// merged at the end (min/max: the same ranges whatever thread saw which window, up to the sign
// of a zero extreme, which gives equal params). Capturing needs a single model (its rows are
// ordered by window), which takes them in order.
// last_one (or null): raised when a single thread is left working, whose models then run their
// kernels on the shared pool (ir::InterpreterOptions::pool_when) instead of leaving cores idle.
Result<quant::CalibrationTable> calibrate_models(std::span<irexec::GraphStepModel* const> models,
                                                 std::span<const std::vector<int32_t>> samples,
                                                 const CalibrationOptions& options,
                                                 CalibrationStats* stats,
                                                 quant::ActivationSamples* captured,
                                                 std::atomic<bool>* last_one = nullptr) {
  HS_CHECK(!models.empty(), "calibrate: no step model");
  const auto start = std::chrono::steady_clock::now();
  irexec::GraphStepModel& model = *models[0];
  int64_t total = 0;
  for (const auto& s : samples) total += static_cast<int64_t>(s.size());
  if (total == 0) {
    return Error(ErrorKind::kInvalidArgument,
                 "empty calibration input: no calibration tokens (no sample, or only empty ones)");
  }
  const int64_t window = window_length(model.info());
  if (window < 1) {
    return errorf(ErrorKind::kInvalidArgument,
                  "calibrate: context {} leaves no window for the prefill graph",
                  model.info().context_len);
  }
  std::vector<Window> windows;
  CalibrationStats st;
  for (const auto& sample : samples) {
    if (sample.empty()) continue;
    for (std::span<const int32_t> w : split_windows(sample, window))
      windows.push_back(Window{w, st.samples, static_cast<int64_t>(windows.size())});
    ++st.samples;
  }
  st.windows = static_cast<int64_t>(windows.size());

  std::unique_ptr<Capture> capture;
  if (captured != nullptr && !options.capture.empty()) {
    HS_CHECK(models.size() == 1, "calibrate: capturing activations needs a single step model");
    HS_ASSIGN_OR_RETURN(capture, Capture::create(model, options, *captured));
  }
  LogitsCallback on_logits;
  if (capture)
    on_logits = [&](int64_t position, std::span<const float>) { capture->on_row(position); };

  // tables[i]: what models[i] observed (tables[0] is the result).
  std::vector<quant::CalibrationTable> tables(models.size());
  {
    std::vector<std::unique_ptr<Observers>> observers;
    for (size_t i = 0; i < models.size(); ++i)
      observers.push_back(std::make_unique<Observers>(*models[i], tables[i], capture.get()));
    std::optional<Progress> progress;
    if (options.progress) progress.emplace("calibrate", total, "tokens");
    std::mutex mutex;  // guards progress and error
    std::atomic<size_t> next{0};
    std::optional<Error> error;  // the lowest failing window's
    std::vector<WindowStats> window_stats(models.size());
    std::vector<size_t> order(windows.size());
    std::iota(order.begin(), order.end(), size_t{0});
    if (models.size() > 1) {
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return windows[a].tokens.size() > windows[b].tokens.size();
      });
    }
    // The index of the lowest failing window so far (none: the largest int64_t).
    std::atomic<int64_t> lowest_failed{std::numeric_limits<int64_t>::max()};
    // Runs windows in `order` on models[i] until none is left. After a failure only windows
    // before the lowest failing one still run: the error reported is then the one a
    // sequential run meets first (every window before it ran, whatever the order).
    std::atomic<size_t> working{models.size()};
    auto work = [&](size_t i) {
      struct Done {  // on leaving: the last thread still working gets the pool
        std::atomic<size_t>& working;
        std::atomic<bool>* last_one;
        ~Done() {
          if (working.fetch_sub(1) == 2 && last_one != nullptr) last_one->store(true);
        }
      } done{working, last_one};
      for (size_t k = next.fetch_add(1); k < windows.size(); k = next.fetch_add(1)) {
        const Window& w = windows[order[k]];
        if (w.index > lowest_failed.load()) continue;
        Status s =
            run_window(*models[i], w.tokens, options.decode_tokens, on_logits, &window_stats[i]);
        const std::lock_guard<std::mutex> lock(mutex);
        if (!s.ok()) {
          if (w.index < lowest_failed.load()) {
            error = s.error().with_context(
                fmt::format("calibration sample {} window {}", w.sample, w.index));
            lowest_failed.store(w.index);
          }
          continue;
        }
        if (capture) capture->end_window();
        if (progress) progress->advance(static_cast<int64_t>(w.tokens.size()));
      }
    };
    if (models.size() == 1) {
      work(0);
    } else {
      std::vector<std::thread> threads;
      for (size_t i = 1; i < models.size(); ++i) threads.emplace_back(work, i);
      work(0);
      for (std::thread& t : threads) t.join();
    }
    if (error) return std::move(*error);
    if (progress) progress->finish();
    for (size_t i = 1; i < tables.size(); ++i) {
      for (const auto& [name, range] : tables[i].ranges()) tables[0].at(name).merge(range);
    }
    observers[0]->finish();  // after the merge: aliases read the merged ranges of tables[0]
    for (const WindowStats& ws : window_stats) {
      st.prefill_tokens += ws.prefill_tokens;
      st.decode_tokens += ws.decode_tokens;
      st.prefill_steps += ws.prefill_steps;
      st.decode_steps += ws.decode_steps;
    }
    st.tokens = st.prefill_tokens + st.decode_tokens;
  }
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (stats != nullptr) *stats = st;
  return std::move(tables[0]);
}

}  // namespace

Result<quant::CalibrationTable> calibrate(irexec::GraphStepModel& model,
                                          std::span<const std::vector<int32_t>> samples,
                                          const CalibrationOptions& options,
                                          CalibrationStats* stats,
                                          quant::ActivationSamples* captured) {
  irexec::GraphStepModel* const models[] = {&model};
  return calibrate_models(models, samples, options, stats, captured);
}

Result<quant::CalibrationTable> calibrate_graphs(std::span<const ir::Graph> graphs,
                                                 std::span<const std::vector<int32_t>> samples,
                                                 const CalibrationOptions& options,
                                                 ir::KernelSet kernels, CalibrationStats* stats,
                                                 quant::ActivationSamples* captured) {
  std::vector<std::shared_ptr<const ir::Graph>> shared;
  for (const ir::Graph& g : graphs) shared.push_back(std::make_shared<const ir::Graph>(g));
  irexec::GraphStepModelOptions step_options;
  step_options.interpreter.kernels = kernels;
  step_options.sliding_window = options.sliding_window;
  // Parallel windows: one step model (over the same graphs) per thread, each running its
  // kernels on its own thread; one model with the kernels on the shared pool when capturing.
  // By default, a thread per core on machines of up to kMaxWindowThreads cores (where a
  // parallel region per op costs about what it saves), one model on larger ones (the pool
  // scales with the cores, and the activations are held once); never more than the windows.
  constexpr unsigned kMaxWindowThreads = 4;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  size_t threads = options.threads > 0          ? static_cast<size_t>(options.threads)
                   : cores <= kMaxWindowThreads ? cores
                                                : 1;
  if (captured != nullptr && !options.capture.empty()) threads = 1;
  // bfloat16 projections: one store of weight copies for every thread's model (which stays
  // empty when the CPU has no AVX512_BF16: the interpreters then run float32).
  std::shared_ptr<ir::Bf16Weights> bf16;
  if (options.precision == CalibrationPrecision::kBf16 && kernels == ir::KernelSet::kFast &&
      options.capture.empty()) {
    bf16 = std::make_shared<ir::Bf16Weights>();
    step_options.interpreter.bf16_weights = bf16;
  }
  HS_ASSIGN_OR_RETURN(auto first, irexec::GraphStepModel::create(shared, step_options));
  if (const int64_t window = window_length(first->info()); window >= 1) {
    size_t windows = 0;
    for (const auto& s : samples) windows += split_windows(s, window).size();
    threads = std::clamp<size_t>(windows, 1, threads);
  }
  // The kernels of a model run on its own thread while other threads work, on the pool when
  // the others have finished (declared before the models, which point to it).
  std::atomic<bool> last_one{false};
  std::vector<std::unique_ptr<irexec::GraphStepModel>> owned;
  std::vector<irexec::GraphStepModel*> models;
  if (threads > 1) {  // made again below, with its kernels on its thread
    step_options.interpreter.threaded_kernels = false;
    step_options.interpreter.pool_when = &last_one;
    first.reset();
  } else {
    models.push_back(first.get());
    owned.push_back(std::move(first));
  }
  while (models.size() < threads) {
    HS_ASSIGN_OR_RETURN(auto step_model, irexec::GraphStepModel::create(shared, step_options));
    models.push_back(step_model.get());
    owned.push_back(std::move(step_model));
  }
  CalibrationStats st;
  HS_ASSIGN_OR_RETURN(quant::CalibrationTable table,
                      calibrate_models(models, samples, options, &st, captured, &last_one));
  st.bf16 = bf16 != nullptr && bf16->bytes() > 0;
  if (stats != nullptr) *stats = st;
  return table;
}

}  // namespace hs::ptq
