#include "tools/progress.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

namespace regfs::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// What the display wrote, through a memory stream, with a clock the test moves.
class ProgressTest : public ::testing::Test {
 protected:
  void SetUp() override { out_ = open_memstream(&buf_, &len_); }
  void TearDown() override {
    if (out_) std::fclose(out_);
    std::free(buf_);
  }
  std::string Written() {
    std::fflush(out_);
    return std::string(buf_, len_);
  }
  ProgressDisplay::Clock::time_point Now() const { return now_; }
  void Advance(int ms) { now_ += std::chrono::milliseconds(ms); }

  FILE* out_ = nullptr;
  char* buf_ = nullptr;
  size_t len_ = 0;
  ProgressDisplay::Clock::time_point now_{};
};

TEST(HumanBytesTest, AsSkopeoPrintsThem) {
  EXPECT_EQ(HumanBytes(0), "0B");
  EXPECT_EQ(HumanBytes(1023), "1023B");
  EXPECT_EQ(HumanBytes(1536), "1.5KiB");
  EXPECT_EQ(HumanBytes(40.0 * 1024 * 1024), "40.0MiB");
  EXPECT_EQ(HumanBytes(3.25 * 1024 * 1024 * 1024), "3.2GiB");
}

TEST_F(ProgressTest, ABlobInFlightShowsBytesTotalAndRateThenADoneLine) {
  {
    ProgressDisplay p(out_, [this] { return Now(); });
    p.BlobStarted("sha256:0123456789abcdef0000", 4 << 20);
    Advance(1000);
    p.BlobAdvanced("sha256:0123456789abcdef0000", 1 << 20);
    std::string live = Written();
    EXPECT_THAT(live, HasSubstr("Copying blob 0123456789ab [======>"));
    EXPECT_THAT(live, HasSubstr("1.0MiB / 4.0MiB | 1.0MiB/s"));
    EXPECT_THAT(live, HasSubstr("Copying 0 blobs done, 1 in flight, 1.0MiB"));
    // Redrawn in place: the cursor goes back up over the live lines.
    EXPECT_THAT(live, HasSubstr("\x1b[2A\r\x1b[J"));
    p.BlobFinished("sha256:0123456789abcdef0000", false);
    p.BlobStarted("sha256:fedcba9876543210ffff", 10);
    p.BlobFinished("sha256:fedcba9876543210ffff", true);
  }
  std::string all = Written();
  EXPECT_THAT(all, HasSubstr("Copying blob 0123456789ab done\n"));
  EXPECT_THAT(all, HasSubstr("Copying blob fedcba987654 skipped: already exists\n"));
  EXPECT_THAT(all, HasSubstr("Copying 2 blobs done (1 skipped)"));
  // The live lines are gone at the end: the last thing written clears them.
  EXPECT_EQ(all.substr(all.size() - 3), "\x1b[J");
}

TEST_F(ProgressTest, RedrawsAreThrottled) {
  ProgressDisplay p(out_, [this] { return Now(); });
  p.BlobStarted("sha256:aa", -1);
  size_t after_start = Written().size();
  for (int i = 0; i < 50; ++i) p.BlobAdvanced("sha256:aa", 100);  // no time passes
  EXPECT_EQ(Written().size(), after_start);
  Advance(150);
  p.BlobAdvanced("sha256:aa", 100);
  EXPECT_GT(Written().size(), after_start);
  EXPECT_THAT(Written(), HasSubstr("Copying blob aa 5.0KiB |"));  // no total: no bar
}

TEST_F(ProgressTest, MessagesAndLabelsArePermanentAndLive) {
  {
    ProgressDisplay p(out_, [this] { return Now(); });
    p.SetLabel("Syncing image 3/10:");
    p.Message("Writing manifest to image destination");
  }
  std::string all = Written();
  EXPECT_THAT(all, HasSubstr("Syncing image 3/10: 0 blobs done"));
  EXPECT_THAT(all, HasSubstr("Writing manifest to image destination\n"));
  EXPECT_THAT(all, Not(HasSubstr("Copying 0 blobs")));
}

}  // namespace
}  // namespace regfs::cli
