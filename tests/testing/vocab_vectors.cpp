#include "testing/vocab_vectors.h"

#include <sstream>

#include "headsplit/support/file.h"
#include "testing/testing.h"

namespace hs::testing {

std::vector<VocabCase> read_vocab_vectors(const std::string& base) {
  auto inp = read_text_file(base + ".inp");
  auto out = read_text_file(base + ".out");
  HS_CHECK(inp.ok() && out.ok(), "cannot read " + base + ".inp/.out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0; pos < inp->size();) {
    const size_t next = inp->find(sep, pos);
    if (next == std::string::npos) {
      texts.push_back(inp->substr(pos));
      break;
    }
    texts.push_back(inp->substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<VocabCase> cases;
  std::istringstream lines(*out);
  for (std::string line; std::getline(lines, line);) {
    HS_CHECK(cases.size() < texts.size(), base + ": more .out lines than .inp strings");
    VocabCase c{texts[cases.size()], {}};
    std::istringstream ids(line);
    for (int32_t id = 0; ids >> id;) c.ids.push_back(id);
    cases.push_back(std::move(c));
  }
  HS_CHECK(cases.size() == texts.size(), base + ": fewer .out lines than .inp strings");
  return cases;
}

}  // namespace hs::testing
