#include "common/progress.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace pdv {
namespace {

TEST(ProgressTest, BarShowsTheFraction) {
  EXPECT_EQ(Progress::Bar(0, 100, 10), "[..........]   0%");
  EXPECT_EQ(Progress::Bar(50, 100, 10), "[#####.....]  50%");
  EXPECT_EQ(Progress::Bar(100, 100, 10), "[##########] 100%");
  EXPECT_EQ(Progress::Bar(7, 0, 4), "[####] 100%");
}

TEST(ProgressTest, PlainLinesWhenNotATerminal) {
  std::FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  Progress progress(out, "load", 1000);
  for (uint64_t done = 0; done <= 1000; done += 10) progress.Update(done);
  progress.Finish(1000);
  std::rewind(out);
  std::string text;
  for (int c; (c = std::fgetc(out)) != EOF;) text.push_back(static_cast<char>(c));
  std::fclose(out);
  EXPECT_EQ(text.find('\r'), std::string::npos) << "no bar redraws in a file";
  int lines = 0;
  for (char c : text) lines += c == '\n';
  EXPECT_EQ(lines, 12) << text;  // one per decile 0..100%, and the final line
  EXPECT_NE(text.find("progress=load done=1000 total=1000 pct=100"), std::string::npos) << text;
  EXPECT_NE(text.find("final=true"), std::string::npos);
}

}  // namespace
}  // namespace pdv
