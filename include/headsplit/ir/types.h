// The IR's tensor types are the op set's (opset/types.h): element types, shapes and
// quantization parameters, real = scale[c] * (q - zero_point[c]). Re-exported under hs::ir so
// that IR code reads ir::TensorType, ir::DType, ... as before.
#pragma once

#include "headsplit/opset/types.h"

namespace hs::ir {

using opset::check_quant;
using opset::check_type;
using opset::DType;
using opset::dtype_is_integer_storage;
using opset::dtype_max;
using opset::dtype_min;
using opset::dtype_name;
using opset::dtype_size;
using opset::normalize_axis;
using opset::num_elements;
using opset::parse_dtype;
using opset::quant_kind_name;
using opset::QuantKind;
using opset::QuantParams;
using opset::Shape;
using opset::shape_str;
using opset::slice_type;
using opset::TensorType;
using opset::type_str;

}  // namespace hs::ir
