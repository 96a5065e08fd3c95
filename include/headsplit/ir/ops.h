// The IR's op set is the op set library's (opset/ops.h): op kinds, attributes, arity and the
// one shape/type rule per op. Re-exported under hs::ir so that IR code reads ir::OpKind,
// ir::Attrs, ir::infer_type, ... as before.
#pragma once

#include "headsplit/ir/types.h"
#include "headsplit/opset/ops.h"

namespace hs::ir {

using opset::all_ops;
using opset::attr_kind_name;
using opset::AttrKind;
using opset::Attrs;
using opset::AttrSpec;
using opset::AttrValue;
using opset::broadcast_shapes;
using opset::check_result_type;
using opset::check_signature;
using opset::infer_type;
using opset::is_known_op;
using opset::kNumOpKinds;
using opset::op_info;
using opset::op_name;
using opset::OpInfo;
using opset::OpKind;
using opset::parse_op_name;

}  // namespace hs::ir
