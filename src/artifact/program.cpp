// Names of the artifact's own enums and the size arithmetic shared by writer and reader.
#include "headsplit/artifact/program.h"

#include <algorithm>
#include <array>

#include "headsplit/artifact/int4.h"

namespace hs::artifact {

std::string_view tensor_role_name(TensorRole role) {
  static constexpr std::array<std::string_view, kNumTensorRoles> kNames = {
      "input", "output", "constant", "intermediate"};
  auto i = static_cast<size_t>(role);
  return i < kNames.size() ? kNames[i] : "unknown";
}

const GraphDesc* Program::find_graph(std::string_view name) const {
  for (const GraphDesc& graph : graphs) {
    if (graph.name == name) return &graph;
  }
  return nullptr;
}

Result<uint64_t> weight_storage_bytes(const WeightDesc& weight) {
  HS_ASSIGN_OR_RETURN(int64_t numel, opset::checked_num_elements(
                                         weight.shape, fmt::format("weight '{}'", weight.name)));
  if (weight.layout == WeightLayout::kInt4Packed) {
    return int4_packed_size(int4_rows(weight.shape));  // at most 2^53 elements: no overflow
  }
  return static_cast<uint64_t>(numel) * static_cast<uint64_t>(opset::dtype_size(weight.dtype));
}

bool params_in_data_section(const Quant& quant) {
  return (quant.kind == QuantKind::kPerAxis || quant.kind == QuantKind::kPerBlock) &&
         !quant.scales.empty();
}

uint64_t weight_params_bytes(const Quant& quant) {
  if (!params_in_data_section(quant)) return 0;
  const bool zero = std::all_of(quant.zero_points.begin(), quant.zero_points.end(),
                                [](int32_t z) { return z == 0; });
  return quant.scales.size() * (zero ? 4u : 8u);
}

}  // namespace hs::artifact
