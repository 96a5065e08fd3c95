// Scheme names, rule syntax and matching, recipes, and rules checked against a graph.
#include "headsplit/quant/scheme.h"

#include <gtest/gtest.h>

#include "headsplit/frontend/builder.h"
#include "headsplit/quant/annotate.h"
#include "testing/testing.h"

namespace hs::quant {
namespace {

TEST(Scheme, ParsesTheNamesUsersKnow) {
  struct Case {
    const char* text;
    Scheme scheme;
  };
  const Case cases[] = {
      {"16a8w", {16, 8, 0}},
      {"16a4w", {16, 4, 0}},
      {"16a4w-block16", {16, 4, 16}},
      {"16a4w-block32", {16, 4, 32}},
      {"16a4w-block64", {16, 4, 64}},
      {"8a8w", {8, 8, 0}},
      {"8a4w", {8, 4, 0}},
  };
  for (const Case& c : cases) {
    HS_ASSERT_OK_AND_ASSIGN(Scheme s, parse_scheme(c.text));
    EXPECT_EQ(s, c.scheme) << c.text;
    EXPECT_EQ(scheme_name(s), c.text);
  }
}

TEST(Scheme, RejectsUnknownSchemesNamingThem) {
  for (const char* bad : {"", "16a", "a8w", "16a2w", "32a8w", "4a4w", "16a8w-block32",
                          "16a4w-block48", "16a4w-blk32", "16a4wx", "16x8w", "w16a8"}) {
    auto r = parse_scheme(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(r.error().message().find(std::string("'") + bad + "'"), std::string::npos)
        << r.error().message();
  }
}

TEST(Rule, ParsesAndMatchesLeadingSegments) {
  HS_ASSERT_OK_AND_ASSIGN(Rule w2, parse_rule("layers.{0-3}.ffn.w2=16a8w"));
  EXPECT_EQ(w2.pattern, "layers.{0-3}.ffn.w2");
  EXPECT_EQ(w2.scheme, (Scheme{16, 8, 0}));
  for (const char* yes : {"layers.0.ffn.w2", "layers.3.ffn.w2"})
    EXPECT_TRUE(w2.matches(yes)) << yes;
  for (const char* no : {"layers.4.ffn.w2", "layers.0.ffn.w1", "layers.10.ffn.w2",
                         "layers.x.ffn.w2", "output", "layers.0.ffn"}) {
    EXPECT_FALSE(w2.matches(no)) << no;
  }
  HS_ASSERT_OK_AND_ASSIGN(Rule list, parse_rule("layers.{1,5-6}=8a8w"));
  EXPECT_TRUE(list.matches("layers.1.attn.q"));
  EXPECT_TRUE(list.matches("layers.6.ffn.w3"));
  EXPECT_FALSE(list.matches("layers.2.attn.q"));
  HS_ASSERT_OK_AND_ASSIGN(Rule v, parse_rule("layers.*.attn.v=16a8w"));
  EXPECT_TRUE(v.matches("layers.7.attn.v"));
  EXPECT_TRUE(v.matches("layers.7.attn.v.2")) << "a per-head projection of SHA from source";
  EXPECT_FALSE(v.matches("layers.7.attn.o_proj"));
  HS_ASSERT_OK_AND_ASSIGN(Rule out, parse_rule("output=16a8w"));
  EXPECT_TRUE(out.matches("output"));
  EXPECT_FALSE(out.matches("outputs"));
}

TEST(Rule, LaterRulesWin) {
  QuantConfig c;
  c.scheme = Scheme{16, 4, 32};
  c.rules.push_back(parse_rule("layers.*=16a8w").value());
  c.rules.push_back(parse_rule("layers.1.ffn.w2=8a8w").value());
  EXPECT_EQ(c.scheme_for("layers.1.ffn.w2"), (Scheme{8, 8, 0}));
  EXPECT_EQ(c.scheme_for("layers.1.ffn.w1"), (Scheme{16, 8, 0}));
  EXPECT_EQ(c.scheme_for("output"), (Scheme{16, 4, 32}));
}

TEST(Rule, SyntaxErrorsNameTheRule) {
  const char* bad[] = {"output",
                       "=16a8w",
                       "output=",
                       "output=16a9w",
                       "layers..ffn=16a8w",
                       "layers.{3-1}=16a8w",
                       "layers.{}=16a8w",
                       "layers.{a}=16a8w",
                       "layers.{1=16a8w",
                       "lay-ers=16a8w",
                       ".output=16a8w",
                       "layers.{1,}=16a8w"};
  for (const char* text : bad) {
    auto r = parse_rule(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.kind(), ErrorKind::kInvalidArgument) << text;
    EXPECT_NE(r.error().message().find(std::string("rule '") + text + "'"), std::string::npos)
        << r.error().message();
  }
}

TEST(Recipe, MatchesTheReferenceTable) {
  HS_ASSERT_OK_AND_ASSIGN(QuantConfig stories, recipe_config("stories"));
  EXPECT_EQ(stories.scheme, (Scheme{16, 4, 0}));
  EXPECT_EQ(stories.kv_bits, 8);
  EXPECT_EQ(stories.scheme_for("output"), (Scheme{16, 8, 0}));
  EXPECT_EQ(stories.scheme_for("layers.0.attn.q"), (Scheme{16, 4, 0}));

  HS_ASSERT_OK_AND_ASSIGN(QuantConfig smollm2, recipe_config("smollm2"));
  EXPECT_EQ(smollm2.scheme, (Scheme{16, 8, 0}));
  EXPECT_EQ(smollm2.kv_bits, 16);
  EXPECT_TRUE(smollm2.rules.empty());

  HS_ASSERT_OK_AND_ASSIGN(QuantConfig llama3, recipe_config("llama3"));
  EXPECT_EQ(llama3.scheme, (Scheme{16, 4, 32}));
  EXPECT_EQ(llama3.kv_bits, 8);
  EXPECT_EQ(llama3.scheme_for("output"), (Scheme{16, 8, 0}));
  EXPECT_EQ(llama3.scheme_for("layers.3.ffn.w2"), (Scheme{16, 8, 0}));
  EXPECT_EQ(llama3.scheme_for("layers.4.ffn.w2"), (Scheme{16, 4, 32}));
  EXPECT_EQ(llama3.scheme_for("layers.0.ffn.w1"), (Scheme{16, 4, 32}));

  auto unknown = recipe_config("gemma");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(unknown.error().message().find("'gemma'"), std::string::npos);
}

TEST(Rule, ARuleMatchingNoProjectionIsAnErrorNamingIt) {
  frontend::LlamaModel m =
      frontend::make_random_llama(frontend::named_config("stories260k").value(), 3);
  frontend::BuildOptions o;
  o.context_len = 16;
  HS_ASSERT_OK_AND_ASSIGN(ir::Graph g, frontend::build_llama(m, o));
  QuantConfig c;
  c.rules.push_back(parse_rule("layers.{7-9}.ffn.w2=16a8w").value());  // L = 5
  auto a = annotate(g, c);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(a.error().message().find("rule 'layers.{7-9}.ffn.w2=16a8w'"), std::string::npos)
      << a.error().message();
  c.rules[0] = parse_rule("layers.{3-9}.ffn.w2=16a8w").value();  // matches layers 3 and 4
  HS_EXPECT_OK(annotate(g, c));
  c.kv_bits = 12;
  auto bad_kv = annotate(g, c);
  ASSERT_FALSE(bad_kv.ok());
  EXPECT_NE(bad_kv.error().message().find("kv bits must be 8 or 16, got 12"), std::string::npos);
}

}  // namespace
}  // namespace hs::quant
