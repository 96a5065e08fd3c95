// Calibration: min/max observers keyed by value name on every graph of a GraphStepModel,
// driven window by window with the SmartMask loop of windows.cpp.
#include "headsplit/quant/calibrate.h"

#include <chrono>
#include <optional>

#include "headsplit/irexec/graph_step_model.h"
#include "headsplit/support/progress.h"

namespace hs::quant {

namespace {

// Installs one observer per graph and removes them all when it goes out of scope.
class Observers {
 public:
  Observers(irexec::GraphStepModel& model, CalibrationTable& table) : model_(model) {
    for (int64_t ar_len : model.info().ar_lens) {
      const ir::Graph* g = model.graph(ar_len);
      // slots[id]: the range of value id (real non-constant values only).
      std::vector<Range*> slots(static_cast<size_t>(g->num_values()), nullptr);
      for (ir::ValueId id = 0; id < g->num_values(); ++id) {
        const ir::Value& v = g->value(id);
        if (v.type.is_real() && !v.is_constant())
          slots[static_cast<size_t>(id)] = &table.at(v.name);
      }
      auto observe = [slots = std::move(slots)](ir::ValueId id, const ir::Tensor& t) {
        Range* r = slots[static_cast<size_t>(id)];
        if (r != nullptr && t.dtype == ir::DType::kF32) r->observe(t.f);
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

 private:
  irexec::GraphStepModel& model_;
};

}  // namespace

const Range* CalibrationTable::find(std::string_view name) const {
  auto it = ranges_.find(std::string(name));
  return it == ranges_.end() ? nullptr : &it->second;
}

Result<CalibrationTable> calibrate(irexec::GraphStepModel& model,
                                   std::span<const std::vector<int32_t>> samples,
                                   const CalibrationOptions& options, CalibrationStats* stats) {
  const auto start = std::chrono::steady_clock::now();
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

  CalibrationTable table;
  CalibrationStats st;
  {
    Observers observers(model, table);
    std::optional<Progress> progress;
    if (options.progress) progress.emplace("calibrate", total, "tokens");
    WindowStats ws;
    for (const auto& sample : samples) {
      if (sample.empty()) continue;
      ++st.samples;
      for (std::span<const int32_t> w : split_windows(sample, window)) {
        HS_TRY_CTX(run_window(model, w, options.decode_tokens, nullptr, &ws),
                   fmt::format("calibration sample {} window {}", st.samples - 1, st.windows));
        ++st.windows;
        if (progress) progress->advance(static_cast<int64_t>(w.size()));
      }
    }
    if (progress) progress->finish();
    st.prefill_tokens = ws.prefill_tokens;
    st.decode_tokens = ws.decode_tokens;
    st.prefill_steps = ws.prefill_steps;
    st.decode_steps = ws.decode_steps;
    st.tokens = ws.prefill_tokens + ws.decode_tokens;
  }
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (stats != nullptr) *stats = st;
  return table;
}

}  // namespace hs::quant
