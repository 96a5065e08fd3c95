// `headsplit chat`: usage errors; three turns from --turns (each turn prefilled from where the
// last stopped, only its new tokens; turn 3's answer equals one run over the whole conversation,
// computed with the engine); context full (the message, /reset), --drop-oldest, /stats; and the
// interactive mode through a pseudo-terminal (forkpty + the real binary), with timeouts so that
// a hang fails the test instead of blocking the suite.
//
// The artifact has a prefill AR length of 4 and a context of 96 (see tests/engine/engine_test.cpp:
// exact comparisons with one run, a context that fills within a few turns).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "headsplit/engine/engine.h"
#include "testing/cli_run.h"
#include "testing/stories_export.h"
#include "testing/testing.h"

namespace hs::cli {
namespace {

using hs::testing::CliRun;
using hs::testing::run_cli;

const std::string& model() {
  return hs::testing::exported({.prefill_ar = 4, .context_len = 96}).path;
}

std::string write_turns(const std::string& name, const std::vector<std::string>& lines) {
  const std::string path = hs::testing::temp_dir() + "/" + name;
  std::ofstream out(path);
  for (const std::string& line : lines) out << line << "\n";
  return path;
}

// The answers the engine gives to `turns` (greedy, -n `n`), and turn 3's single-run answer.
struct Expected {
  std::vector<std::string> answers;
  std::vector<int64_t> start_positions, prompt_tokens;
  std::string single_run;  // one run over the conversation before the last answer
};

Expected expected(const std::vector<std::string>& turns, int64_t n) {
  Expected e;
  auto engine = engine::Engine::load({.model_path = model(), .threads = 1});
  EXPECT_TRUE(engine.ok());
  if (!engine.ok()) return e;
  auto chat = (*engine)->chat({.max_new_tokens = n});
  EXPECT_TRUE(chat.ok());
  if (!chat.ok()) return e;
  size_t last_answer = 0;
  for (const std::string& turn : turns) {
    auto t = (*chat)->send(turn);
    EXPECT_TRUE(t.ok());
    if (!t.ok()) return e;
    e.answers.push_back(t->text);
    e.start_positions.push_back(t->generation.start_position);
    e.prompt_tokens.push_back(t->generation.stats.prompt_tokens);
    last_answer = t->generation.tokens.size();
  }
  std::vector<int32_t> all = (*chat)->session().tokens();
  all.resize(all.size() - last_answer);
  auto once = (*engine)->generate_tokens(all, {.max_new_tokens = n});
  EXPECT_TRUE(once.ok());
  if (once.ok()) e.single_run = once->text;
  return e;
}

TEST(CliChat, HelpAndUsageErrors) {
  CliRun help = run_cli({"chat", "--help"});
  EXPECT_EQ(help.code, 0);
  for (const char* option :
       {"--turns", "--lookahead", "--drop-oldest", "--chat-template", "/reset"}) {
    EXPECT_NE(help.out.find(option), std::string::npos) << option;
  }
  EXPECT_EQ(run_cli({"chat"}).code, 2);  // -m is required
  EXPECT_EQ(run_cli({"chat", "-m", "x", "--chat-template", "mistral"}).code, 2);
  CliRun missing = run_cli({"chat", "-m", "/nonexistent.hsa", "--turns", "/nonexistent-turns.txt"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_EQ(missing.err, "headsplit: error: --turns: cannot read '/nonexistent-turns.txt'\n");
  CliRun lookahead = run_cli({"chat", "-m", "x.hsa", "--lookahead", "3,8"});
  EXPECT_EQ(lookahead.code, 1);
  EXPECT_EQ(lookahead.err,
            "headsplit: error: --lookahead: lookahead: expected N,W,G (three integers, e.g. "
            "3,8,8), got '3,8'\n");
}

TEST(CliChat, ThreeTurnsReuseTheCacheAndEqualOneRun) {
  HS_REQUIRE_SHARED();
  const std::vector<std::string> turns = {"Once upon a time", "The dog barked.", "Then"};
  const Expected want = expected(turns, 16);
  ASSERT_EQ(want.answers.size(), 3u);
  const std::string file = write_turns("three.txt", turns);
  CliRun r =
      run_cli({"chat", "-m", model(), "--turns", file, "-n", "16", "--verbose", "--threads", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "> Once upon a time\n" + want.answers[0] + "\n> The dog barked.\n" +
                       want.answers[1] + "\n> Then\n" + want.answers[2] + "\n");
  // Turn 3's answer is what one prompt over the whole conversation generates.
  EXPECT_EQ(want.answers[2], want.single_run);
  // Each turn prefills its own tokens (and the previous answer's last token) from where the
  // previous turn stopped: positions 0, then prompt 1 + 16 - 1, ...
  EXPECT_EQ(want.start_positions[1], want.prompt_tokens[0] + 16 - 1);
  EXPECT_EQ(want.start_positions[2], want.start_positions[1] + want.prompt_tokens[1] + 16 - 1);
  for (size_t i = 0; i < 3; ++i) {
    const std::string line = "[turn " + std::to_string(i + 1) + ": prompt " +
                             std::to_string(want.prompt_tokens[i]) + " tokens from position " +
                             std::to_string(want.start_positions[i]) + ", 16 tokens";
    EXPECT_NE(r.err.find(line), std::string::npos) << line << "\n" << r.err;
  }
  EXPECT_NE(r.err.find("chat: stories260K (plain text), context 96 tokens\n"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("turns:        3 (3 in this conversation)"), std::string::npos) << r.err;
}

TEST(CliChat, ContextFullSaysSoUntilReset) {
  HS_REQUIRE_SHARED();
  const std::string file =
      write_turns("full.txt", {"Once upon a time", "The dog barked at the cat.", "Then", "/stats",
                               "/reset", "Once upon a time"});
  CliRun r = run_cli({"chat", "-m", model(), "--turns", file, "-n", "40", "--threads", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("(context full: the answer was cut; /reset to start a new conversation)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("context full: the conversation holds 96 tokens and this turn adds"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("(type /reset to start a new conversation, or run with --drop-oldest)"),
            std::string::npos);
  EXPECT_NE(r.out.find("> /stats\nturns:        2 (2 in this conversation), conversation 96 / 96"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("> /reset\n(conversation reset)\n> Once upon a time\n"), std::string::npos);
  // After the reset the first answer comes again (greedy).
  const size_t first = r.out.find("\n") + 1;
  const std::string answer1 = r.out.substr(first, r.out.find("\n", first) - first);
  EXPECT_FALSE(answer1.empty());
  EXPECT_EQ(r.out.substr(r.out.size() - answer1.size() - 1), answer1 + "\n");
}

TEST(CliChat, DropOldestKeepsGoing) {
  HS_REQUIRE_SHARED();
  const std::string file =
      write_turns("drop.txt", {"Once upon a time", "The dog", "The cat", "Lily smiled", "Then"});
  CliRun r = run_cli(
      {"chat", "-m", model(), "--turns", file, "-n", "20", "--drop-oldest", "--threads", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("(context full: dropped the 1 oldest turns and re-read "), std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("(type /reset"), std::string::npos);
  EXPECT_NE(r.err.find("dropped turns 1"), std::string::npos) << r.err;
}

// The interactive mode on a terminal: a pseudo-terminal runs the real binary (editline needs a
// tty); every read has a deadline and a hang kills the child and fails.
class Pty {
 public:
  explicit Pty(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    std::vector<std::string> copy = args;
    for (std::string& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = forkpty(&fd_, nullptr, nullptr, nullptr);
    if (pid_ == 0) {
      setenv("TERM", "dumb", 1);
      execv(HS_HEADSPLIT_BIN, argv.data());
      _exit(127);
    }
  }
  ~Pty() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
  }
  bool started() const { return pid_ > 0 && fd_ >= 0; }
  void send(const std::string& text) {
    ASSERT_EQ(write(fd_, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  }
  // Reads until `needle` is in the output (from `from`) or the deadline passes.
  bool wait_for(const std::string& needle, size_t from = 0, int seconds = 120) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (output.find(needle, from) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !read_some(static_cast<int>(left.count()))) {
        return output.find(needle, from) != std::string::npos;
      }
    }
    return true;
  }
  // The exit status, or -1 if the child does not exit within the deadline.
  int wait_exit(int seconds = 60) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        while (read_some(100)) {
        }
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      read_some(100);  // keep draining so the child never blocks on a full terminal
    }
    return -1;
  }
  std::string output;

 private:
  // Appends what arrives within `timeout_ms`; false on timeout or when the terminal closed.
  bool read_some(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    char buffer[4096];
    const ssize_t n = read(fd_, buffer, sizeof(buffer));
    if (n <= 0) return false;
    output.append(buffer, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  pid_t pid_ = -1;
  bool exited_ = false;
};

TEST(CliChat, InteractiveThroughAPseudoTerminal) {
  HS_REQUIRE_SHARED();
  const Expected want = expected({"Once upon a time", "The dog barked."}, 12);
  ASSERT_EQ(want.answers.size(), 2u);
  Pty pty({"headsplit", "chat", "-m", model(), "-n", "12", "--threads", "1"});
  ASSERT_TRUE(pty.started());
  ASSERT_TRUE(pty.wait_for("Ctrl-D to quit")) << pty.output;
  ASSERT_TRUE(pty.wait_for("> ")) << pty.output;
  pty.send("Once upon a time\n");
  // The answer streams back (the terminal turns "\n" into "\r\n": compare its first line), then
  // the next prompt.
  const std::string first = want.answers[0].substr(0, want.answers[0].find('\n'));
  ASSERT_TRUE(pty.wait_for(first)) << pty.output;
  size_t mark = pty.output.find(first) + first.size();
  ASSERT_TRUE(pty.wait_for("> ", mark)) << pty.output;
  pty.send("The dog barked.\n");
  const std::string second = want.answers[1].substr(0, want.answers[1].find('\n'));
  ASSERT_TRUE(pty.wait_for(second, mark)) << pty.output;
  mark = pty.output.find(second, mark) + second.size();
  ASSERT_TRUE(pty.wait_for("> ", mark)) << pty.output;
  pty.send("/stats\n");
  ASSERT_TRUE(pty.wait_for("turns:        2 (2 in this conversation)", mark)) << pty.output;
  pty.send("/reset\n");
  ASSERT_TRUE(pty.wait_for("(conversation reset)", mark)) << pty.output;
  mark = pty.output.find("(conversation reset)", mark);
  ASSERT_TRUE(pty.wait_for("> ", mark)) << pty.output;
  // /quit ends the session; the statistics follow on stderr. (Ctrl-D is the same exit from the
  // loop: editline returns no line, as a turns file's end does in the tests above. Sent through
  // this terminal it hung once on CI after editline echoed "^D", cause not found, so it is not
  // what this test relies on.)
  pty.send("/quit\n");
  const int code = pty.wait_exit(60);
  EXPECT_EQ(code, 0) << pty.output;
  EXPECT_NE(pty.output.find("resets 1", mark), std::string::npos) << pty.output;
}

}  // namespace
}  // namespace hs::cli
