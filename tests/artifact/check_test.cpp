// The reader's semantic checks, on files built by hand around programs the writer refuses to
// write: each broken program is encoded, wrapped in a valid header with a correct checksum,
// and loaded. The error kind and the named field are checked.
#include <algorithm>
#include <filesystem>
#include <functional>

#include "artifact/artifact_testing.h"
#include "headsplit/artifact/reader.h"
#include "testing/testing.h"

namespace hs::artifact {
namespace {

struct Case {
  std::string name;
  std::function<void(Program&)> damage;
  ErrorKind kind;
  std::string fragment;  // must appear in the message
};

// The sample program with offsets assigned, and the data section that goes with it.
struct Sample {
  Program program;
  std::vector<std::byte> data;
  Sample() : program(testing::sample_program()) {
    EXPECT_TRUE(assign_weight_offsets(program.weights).ok());
    data = testing::data_section(program, testing::sample_weight_data(program, 3));
  }
};

std::vector<Case> all_cases() {
  return {
      {"weight_outside_data_section", [](Program& p) { p.weights[3].offset = 448; },
       ErrorKind::kOutOfRange,
       "weight #3 'norm': 8 bytes at data offset 448 go past the data "
       "section of 420 bytes"},
      {"weight_offset_overflows", [](Program& p) { p.weights[3].offset = UINT64_MAX - 63; },
       ErrorKind::kOutOfRange, "weight #3 'norm'"},
      {"misaligned_weight", [](Program& p) { p.weights[1].offset = 72; }, ErrorKind::kAlignment,
       "weight #1 'layers.0.attention.wq': data offset 72 is not a multiple of 64"},
      {"weight_size_wrong", [](Program& p) { p.weights[0].size_bytes = 64; }, ErrorKind::kCorrupt,
       "weight #0 'tok_embeddings': stores 64 bytes, expected 80 for f32[5,4]"},
      {"int4_size_unpacked", [](Program& p) { p.weights[2].size_bytes = 27; }, ErrorKind::kCorrupt,
       "stores 27 bytes, expected 15"},  // 3 rows of 9 packed: 3 * 5 bytes
      {"i4_plain_layout", [](Program& p) { p.weights[2].layout = WeightLayout::kPlain; },
       ErrorKind::kCorrupt, "element type i4 with layout plain"},
      {"unknown_element_type",
       [](Program& p) { p.weights[0].dtype = static_cast<ElementType>(40); },
       ErrorKind::kUnsupported, "weight #0 'tok_embeddings': unknown element type 40"},
      {"duplicate_weight_name", [](Program& p) { p.weights[1].name = "norm"; }, ErrorKind::kCorrupt,
       "weight #3 name 'norm' appears twice"},
      {"negative_dim",
       [](Program& p) {
         p.weights[0].shape = {-5, 4};
       },
       ErrorKind::kCorrupt, "shape [-5,4] has a negative dimension (-5 at axis 0)"},
      {"scale_count", [](Program& p) { p.weights[1].quant.scales.pop_back(); }, ErrorKind::kCorrupt,
       "weight #1 'layers.0.attention.wq': per_axis has 3 scales, expected 4 for shape [4,4]"},
      {"block_scale_count",
       [](Program& p) {
         p.weights[2].quant.scales.resize(6);  // as if the partial block were dropped
         p.weights[2].quant.zero_points.resize(6);
       },
       ErrorKind::kCorrupt, "per_block has 6 scales, expected 9 for shape [3,9]"},
      {"zero_point_count", [](Program& p) { p.weights[1].quant.zero_points.push_back(0); },
       ErrorKind::kCorrupt, "5 zero points for 4 scales"},
      {"quant_axis", [](Program& p) { p.weights[1].quant.axis = 2; }, ErrorKind::kCorrupt,
       "quant axis 2 out of range for rank 2"},
      {"negative_scale", [](Program& p) { p.weights[1].quant.scales[2] = -0.5f; },
       ErrorKind::kCorrupt, "scale[2] = -0.5 is not a positive finite number"},
      {"zero_point_range", [](Program& p) { p.weights[3].quant.zero_points[0] = 70000; },
       ErrorKind::kCorrupt, "zero_point[0] = 70000 outside [0,65535]"},
      {"qmax_beyond_type", [](Program& p) { p.weights[2].quant.qmax = 8; }, ErrorKind::kCorrupt,
       "integer range [-8,8] is empty or outside i4 [-8,7]"},
      {"quantized_float", [](Program& p) { p.weights[0].quant = p.weights[3].quant; },
       ErrorKind::kCorrupt, "quantized tensor has storage type f32"},
      {"integer_without_params", [](Program& p) { p.weights[1].quant = {}; }, ErrorKind::kCorrupt,
       "weight #1 'layers.0.attention.wq': i8 tensor has no quantization"},
      {"float_with_scales", [](Program& p) { p.weights[0].quant.scales = {1.0f}; },
       ErrorKind::kCorrupt, "not quantized but has 1 scales and 0 zero points"},
      {"node_input_out_of_range", [](Program& p) { p.graphs[1].nodes[2].inputs[1] = 99; },
       ErrorKind::kOutOfRange,
       "graph #1 'decode' node #2 (linear): input tensor index 99 outside [0, 9)"},
      {"node_output_out_of_range", [](Program& p) { p.graphs[0].nodes[0].outputs[0] = -3; },
       ErrorKind::kOutOfRange, "node #0 (gather): output tensor index -3 outside [0, 10)"},
      {"graph_input_out_of_range", [](Program& p) { p.graphs[0].inputs[0] = 10; },
       ErrorKind::kOutOfRange, "graph #0 'prefill': input tensor index 10 outside [0, 10)"},
      {"graph_output_out_of_range",
       [](Program& p) {
         p.graphs[1].outputs = {8, 1000};
       },
       ErrorKind::kOutOfRange, "output tensor index 1000"},
      {"input_not_listed", [](Program& p) { p.graphs[0].inputs.clear(); }, ErrorKind::kCorrupt,
       "tensor #0 'tokens' has role input but is not in the input list"},
      {"output_wrong_role", [](Program& p) { p.graphs[0].outputs = {7}; }, ErrorKind::kCorrupt,
       "output list names tensor #7 'p' (role intermediate) of the wrong role"},
      {"weight_index_out_of_range", [](Program& p) { p.graphs[1].tensors[1].weight = 4; },
       ErrorKind::kOutOfRange, "tensor #1 'tok_embeddings': weight index 4 outside [0, 4)"},
      {"constant_type_mismatch",
       [](Program& p) { p.graphs[0].tensors[3].dtype = ElementType::kI16; }, ErrorKind::kCorrupt,
       "is i16[4,4] but its weight #1 'layers.0.attention.wq' is i8[4,4]"},
      {"constant_shape_mismatch",
       [](Program& p) {
         p.graphs[0].tensors[1].shape = {4, 5};
       },
       ErrorKind::kCorrupt, "is f32[4,5] but its weight #0 'tok_embeddings' is f32[5,4]"},
      {"constant_quant_mismatch", [](Program& p) { p.graphs[0].tensors[3].quant.scales[0] = 2; },
       ErrorKind::kCorrupt, "quant params differ"},
      {"intermediate_with_weight", [](Program& p) { p.graphs[0].tensors[4].weight = 0; },
       ErrorKind::kCorrupt, "role intermediate with weight index 0"},
      {"arena_overflow", [](Program& p) { p.graphs[1].tensors[5].arena_offset = 128; },
       ErrorKind::kOutOfRange,
       "tensor #5 'xn': 16 bytes at arena offset 128 go past arena_bytes 128"},
      {"arena_offset_huge",
       [](Program& p) { p.graphs[1].tensors[5].arena_offset = INT64_MAX - 63; },
       ErrorKind::kOutOfRange, "go past arena_bytes 128"},
      {"arena_misaligned", [](Program& p) { p.graphs[1].tensors[5].arena_offset = 20; },
       ErrorKind::kAlignment, "tensor #5 'xn': arena offset 20 is not a multiple of 64"},
      // 4 bytes per element in the arena whatever the type: an i8 [1,1,4] intermediate at
      // offset 64 needs 16 bytes, 80 > 64.
      {"arena_four_bytes_per_element",
       [](Program& p) {
         GraphDesc& g = p.graphs[1];
         g.arena_bytes = 64 + 8;
         g.tensors[5].dtype = ElementType::kI8;
         g.tensors[5].quant = Quant{QuantKind::kPerTensor, 8, -128, 127, 0, 1, 0, {0.5f}, {0}};
         g.tensors[5].arena_offset = 64;
       },
       ErrorKind::kOutOfRange,
       "tensor #5 'xn': 16 bytes at arena offset 64 go past arena_bytes 72"},
      {"input_in_arena", [](Program& p) { p.graphs[0].tensors[0].arena_offset = 0; },
       ErrorKind::kCorrupt, "tensor #0 'tokens': graph input with arena offset 0, expected -1"},
      {"output_in_arena", [](Program& p) { p.graphs[0].tensors[8].arena_offset = 64; },
       ErrorKind::kCorrupt, "tensor #8 'logits': graph output with arena offset 64, expected -1"},
      {"unknown_op", [](Program& p) { p.graphs[0].nodes[3].op = static_cast<OpCode>(300); },
       ErrorKind::kUnsupported, "node #3 (unknown): unknown op code 300 (this build knows 0..26)"},
      {"read_before_write",
       [](Program& p) { std::swap(p.graphs[0].nodes[1], p.graphs[0].nodes[2]); },
       ErrorKind::kCorrupt, "node #1 (linear): reads tensor #5 'xn' before it is produced"},
      {"written_twice", [](Program& p) { p.graphs[0].nodes[2].outputs = {5}; }, ErrorKind::kCorrupt,
       "writes tensor #5 'xn' (role intermediate) that is an input, a constant or already "
       "produced"},
      {"output_never_produced", [](Program& p) { p.graphs[1].nodes.pop_back(); },
       ErrorKind::kCorrupt, "output tensor #8 'logits' is never produced"},
      {"duplicate_tensor_name",
       [](Program& p) { p.graphs[1].tensors[6].name = p.graphs[1].tensors[4].name; },
       ErrorKind::kCorrupt, "tensor #6 'x': name appears twice"},
      {"duplicate_graph_name", [](Program& p) { p.graphs[1].name = "prefill"; },
       ErrorKind::kCorrupt, "graph #1 name 'prefill' appears twice"},
      {"zero_ar_len", [](Program& p) { p.graphs[0].ar_len = 0; }, ErrorKind::kCorrupt, "ar_len 0"},
      {"tokenizer_bos", [](Program& p) { p.tokenizer.bos_id = 5; }, ErrorKind::kOutOfRange,
       "tokenizer bos id 5 outside [-1, 5)"},
      {"tokenizer_extra_eos", [](Program& p) { p.tokenizer.extra_eos_ids = {-1}; },
       ErrorKind::kOutOfRange, "tokenizer extra eos id -1 outside [0, 5)"},
      {"tokenizer_scores", [](Program& p) { p.tokenizer.scores.pop_back(); }, ErrorKind::kCorrupt,
       "tokenizer has 5 pieces, 4 scores and 5 types"},
      {"tokenizer_type",
       [](Program& p) { p.tokenizer.types[1] = static_cast<tokenizer::TokenType>(9); },
       ErrorKind::kCorrupt, "tokenizer token 1 has unknown type 9"},
      {"tokenizer_kind",
       [](Program& p) { p.tokenizer.kind = static_cast<tokenizer::TokenizerKind>(3); },
       ErrorKind::kUnsupported, "unknown tokenizer kind 3"},
  };
}

TEST(ArtifactChecks, SampleFileBuiltByHandLoads) {
  Sample s;
  std::string path = hs::testing::temp_dir() + "/by_hand.hsa";
  testing::write_bytes(path, testing::assemble_file(encode_program(s.program), s.data));
  HS_ASSERT_OK_AND_ASSIGN(LoadedArtifact loaded, load_artifact(path));
  EXPECT_EQ(loaded.program().weights, s.program.weights);
}

TEST(ArtifactChecks, ConstantsMayViewTheirWeightUnderAnotherShape) {
  // A tied LM head: the conv weight [V,D,1,1] over the embedding [V,D] (same count, same
  // leading dimension).
  Sample s;
  s.program.graphs[0].tensors[1].shape = {5, 4, 1, 1};
  std::string path = hs::testing::temp_dir() + "/view.hsa";
  testing::write_bytes(path, testing::assemble_file(encode_program(s.program), s.data));
  HS_ASSERT_OK_AND_ASSIGN(LoadedArtifact loaded, load_artifact(path));
  EXPECT_EQ(loaded.program().graphs[0].tensors[1].shape, (std::vector<int64_t>{5, 4, 1, 1}));
  // Same count, other leading dimension: the int4 rows would differ, so it is refused.
  s.program.graphs[0].tensors[1].shape = {4, 5};
  testing::write_bytes(path, testing::assemble_file(encode_program(s.program), s.data));
  auto refused = load_artifact(path);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.kind(), ErrorKind::kCorrupt);
  EXPECT_NE(refused.error().message().find("is f32[4,5] but its weight #0 'tok_embeddings' is "
                                           "f32[5,4]"),
            std::string::npos)
      << refused.error().message();
}

// Attrs cannot hold a name twice, so the file is patched: a second attribute "ep$" of the
// rms_norm node becomes a second "eps". The reader refuses it while decoding.
TEST(ArtifactChecks, DuplicateAttributeInTheFileIsCorrupt) {
  Sample s;
  s.program.graphs[0].nodes[1].attrs.set("ep$", 0.5);
  std::vector<std::byte> bytes = encode_program(s.program);
  const std::string_view from = "ep$";
  auto it = std::search(bytes.begin(), bytes.end(), from.begin(), from.end(),
                        [](std::byte b, char c) { return b == static_cast<std::byte>(c); });
  ASSERT_NE(it, bytes.end());
  it[2] = static_cast<std::byte>('s');
  const std::string path = hs::testing::temp_dir() + "/duplicate_attr.hsa";
  testing::write_bytes(path, testing::assemble_file(bytes, s.data));
  auto loaded = load_artifact(path);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.kind(), ErrorKind::kCorrupt);
  EXPECT_NE(loaded.error().message().find("graph #0 'prefill' node #1: attr 'eps' appears twice"),
            std::string::npos)
      << loaded.error().message();
}

TEST(ArtifactChecks, EachBrokenProgramIsRejectedByTheReaderAndTheWriter) {
  std::string dir = hs::testing::temp_dir();
  for (const Case& c : all_cases()) {
    SCOPED_TRACE(c.name);
    Sample s;
    c.damage(s.program);
    bool layout_damage = c.name.rfind("weight_outside", 0) == 0 ||
                         c.name.rfind("weight_offset", 0) == 0 || c.name == "misaligned_weight" ||
                         c.name == "weight_size_wrong" || c.name == "int4_size_unpacked";
    if (!layout_damage) {
      // Damaged quant params of a weight live in the data section (format 2): store them as
      // the writer would, at the same offsets.
      for (WeightDesc& w : s.program.weights) {
        if (w.params_size > 0) w.params_size = weight_params_bytes(w.quant);
      }
      s.data = testing::data_section(s.program, testing::sample_weight_data(s.program, 3));
    }
    std::string path = fmt::format("{}/{}.hsa", dir, c.name);
    testing::write_bytes(path, testing::assemble_file(encode_program(s.program), s.data));
    auto loaded = load_artifact(path);
    // A file stores one zero point per scale or none (all zero), and constants take their
    // weight's params: it cannot carry these two kinds of damage (the writer refuses them).
    if (c.name != "zero_point_count" && c.name != "constant_quant_mismatch") {
      ASSERT_FALSE(loaded.ok());
      EXPECT_EQ(loaded.kind(), c.kind) << loaded.error().message();
      EXPECT_EQ(loaded.error().message().rfind(path + ": ", 0), 0u) << loaded.error().message();
      EXPECT_NE(loaded.error().message().find(c.fragment), std::string::npos)
          << loaded.error().message() << "\n  expected: " << c.fragment;
    }

    // The writer runs the same checks; damage to offsets and sizes is repaired by the writer
    // (it assigns them), everything else is refused before a file is created.
    auto data = testing::sample_weight_data(s.program, 3);
    std::string out = fmt::format("{}/written_{}.hsa", dir, c.name);
    auto written = write_artifact(out, s.program, testing::memory_source(data));
    if (layout_damage) {
      EXPECT_TRUE(written.ok()) << written.error().message();
      continue;
    }
    ASSERT_FALSE(written.ok());
    EXPECT_EQ(written.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(written.error().message().find(c.fragment), std::string::npos)
        << written.error().message();
    EXPECT_FALSE(std::filesystem::exists(out));
  }
}

}  // namespace
}  // namespace hs::artifact
