// Hostile inputs at the support layer (issue 16): non-regular files refused by name before
// open(), outputs that would destroy an input or a device node, the temporary file removed on
// SIGTERM, and bounded message quoting.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cfloat>
#include <csignal>
#include <filesystem>
#include <fstream>

#include "headsplit/support/buffer.h"
#include "headsplit/support/file.h"
#include "headsplit/support/message.h"
#include "testing/testing.h"

namespace hs {
namespace {

using ::testing::HasSubstr;

std::string make_file(const std::string& name, const std::string& text) {
  const std::string path = testing::temp_dir() + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// Class 3: a FIFO would block open() forever; it is refused at once, named.
TEST(HostileFiles, FifoIsRefusedWithoutBlocking) {
  const std::string fifo = testing::temp_dir() + "/in.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  ::alarm(20);  // a regression hangs: turn it into a failure
  auto mapped = MappedFile::open(fifo);
  EXPECT_EQ(mapped.kind(), ErrorKind::kInvalidArgument);
  EXPECT_THAT(mapped.error().message(),
              HasSubstr(fifo + ": is a FIFO (named pipe), expected a regular file"));
  auto text = read_text_file(fifo);
  EXPECT_THAT(text.error().message(), HasSubstr("is a FIFO"));
  ::alarm(0);
  EXPECT_THAT(MappedFile::open("/dev/zero").error().message(), HasSubstr("is a character device"));
  EXPECT_THAT(check_directory(make_file("plain.txt", "x")).error().message(),
              HasSubstr("is a regular file, expected a directory"));
  EXPECT_EQ(check_regular_file(testing::temp_dir() + "/absent").kind(), ErrorKind::kNotFound);
  HS_EXPECT_OK(check_regular_file(make_file("regular.txt", "x")));
}

// Class 5: an output that is an input (same inode, even through another name) or a device
// is refused before anything is written; the input is unchanged.
TEST(HostileWrites, OutputThatIsAnInputOrADeviceIsRefused) {
  const std::string input = make_file("model.bin", "weights");
  const std::string alias = testing::temp_dir() + "/alias.bin";
  ASSERT_EQ(::link(input.c_str(), alias.c_str()), 0);
  const std::vector<std::string> inputs = {input};
  auto w = AtomicFileWriter::create(alias, inputs);
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(w.error().message(), HasSubstr("is the same file as the input '" + input + "'"));
  EXPECT_EQ(*read_text_file(input), "weights");

  auto dev = AtomicFileWriter::create("/dev/null");
  ASSERT_FALSE(dev.ok());
  EXPECT_THAT(dev.error().message(), HasSubstr("output is a character device"));
  struct stat st {};
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));  // still the device

  // A different file is fine and leaves no temporary behind; nor does a refused one.
  const std::string dir = testing::temp_dir();
  HS_ASSERT_OK(write_file_atomic(dir + "/out.bin", std::string_view("x")));
  ASSERT_EQ(::mkfifo((dir + "/out.fifo").c_str(), 0600), 0);
  EXPECT_THAT(write_file_atomic(dir + "/out.fifo", std::string_view("x")).error().message(),
              HasSubstr("output is a FIFO (named pipe)"));
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    ++files;
    EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << e.path();
  }
  EXPECT_EQ(files, 2u);
}

// Class 5: SIGTERM (or SIGINT) during a write removes <out>.tmp-<pid>; the process still dies
// of the signal.
TEST(HostileWrites, SignalDuringWriteRemovesTheTemporaryFile) {
  for (int sig : {SIGTERM, SIGINT}) {
    const std::string out = testing::temp_dir() + "/signalled" + std::to_string(sig) + ".bin";
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      auto w = AtomicFileWriter::create(out);
      if (!w.ok()) ::_exit(3);
      (void)w->write(std::string_view("partial"));
      ::raise(sig);
      ::_exit(4);  // not reached
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "exit " << WEXITSTATUS(status);
    EXPECT_EQ(WTERMSIG(status), sig);
    EXPECT_FALSE(path_exists(out + ".tmp-" + std::to_string(child)));
    EXPECT_FALSE(path_exists(out));
  }
}

// Class 7: quoted input is clipped on a UTF-8 boundary; numbers are compact.
TEST(HostileMessages, ClippedQuotesAndCompactNumbers) {
  EXPECT_EQ(clip_for_message("short"), "short");
  const std::string big(1000, 'a');
  EXPECT_EQ(clip_for_message(big, 4), "aaaa... (1000 bytes)");
  EXPECT_EQ(clip_for_message("ab\xc3\xa9z", 3), "ab... (5 bytes)");  // é not split
  EXPECT_EQ(number_for_message(DBL_MAX), "1.79769e+308");
  EXPECT_EQ(number_for_message(0.5), "0.5");
  EXPECT_EQ(number_for_message(-3), "-3");
}

}  // namespace
}  // namespace hs
