#include "common/erasure_register_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/erasure.h"

namespace pdv {
namespace {

namespace fs = std::filesystem;

class ErasureRegisterFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("pdv-register-test-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  static ErasureRecord Record(const std::string& id, bool at_source) {
    return {.request_id = id,
            .requested_at = "2026-12-07 13:00:00.000000Z",
            .at_source = at_source,
            .subjects = {{"cliente_id", SubjectHmac("k", "cliente_id", id)},
                         {"email", SubjectHmac("k", "email", "a@b.c")}}};
  }
  static std::string ReadAll(const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  fs::path dir_;
};

TEST_F(ErasureRegisterFileTest, AppendedRecordsReadBackInOrderFromAnOwnerOnlyFile) {
  fs::path file = dir_ / "erasure-register";
  auto empty = ReadErasureRegisterFile(file);
  ASSERT_TRUE(empty.ok()) << empty.message();
  EXPECT_TRUE(empty->empty());
  ASSERT_TRUE(
      AppendErasureRegisterFile(file, Record("11111111-1111-4111-8111-111111111111", false)).ok());
  ASSERT_TRUE(
      AppendErasureRegisterFile(file, Record("22222222-2222-4222-8222-222222222222", true)).ok());
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto read = ReadErasureRegisterFile(file);
  ASSERT_TRUE(read.ok()) << read.message();
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].request_id, "11111111-1111-4111-8111-111111111111");
  EXPECT_FALSE((*read)[0].at_source);
  EXPECT_TRUE((*read)[1].at_source);
  EXPECT_EQ((*read)[1].subjects, Record("22222222-2222-4222-8222-222222222222", true).subjects);
  // One comment line, then one line per request.
  std::string text = ReadAll(file);
  EXPECT_EQ(text.front(), '#');
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3);
  // A file left readable by others is made owner-only by the next append.
  ASSERT_EQ(::chmod(file.c_str(), 0644), 0);
  ASSERT_TRUE(
      AppendErasureRegisterFile(file, Record("33333333-3333-4333-8333-333333333333", true)).ok());
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(ErasureRegisterFileTest, ABadLineIsAnErrorNamingFileAndLine) {
  fs::path file = dir_ / "erasure-register";
  ASSERT_TRUE(
      AppendErasureRegisterFile(file, Record("11111111-1111-4111-8111-111111111111", false)).ok());
  std::string good = ReadAll(file);
  const std::string id = "\"request_id\":\"11111111-1111-4111-8111-111111111111\"";
  const std::string rest = ",\"requested_at\":\"t\",\"at_source\":false,\"subjects\":";
  const std::string hmac(64, 'a');
  for (const auto& [line, error] : std::vector<std::pair<std::string, std::string>>{
           {"{not json", "not a JSON line"},
           {"[1,2]", "not a JSON object"},
           {"{\"request_id\":\"x\"" + rest + "[]}", "\"request_id\" is not a lowercase UUID"},
           {"{" + id + ",\"requested_at\":\"t\",\"subjects\":[]}",
            "\"at_source\" is not true/false"},
           {"{" + id + rest + "[{\"kind\":\"cpf\",\"hmac\":\"" + hmac + "\"}]}",
            "subject 1: kind \"cpf\" is not cliente_id, cpf_hash or email"},
           {"{" + id + rest + "[{\"kind\":\"email\",\"hmac\":\"12345678909\"}]}",
            "subject 1: \"hmac\" is not 64 lowercase hex characters"}}) {
    std::ofstream(file, std::ios::trunc) << good << line << "\n";
    auto r = ReadErasureRegisterFile(file);
    ASSERT_FALSE(r.ok()) << line;
    EXPECT_EQ(r.message(), "erasure register " + file.string() + ":3: " + error) << line;
  }
  // An append cut short: the last line has no newline.
  std::ofstream(file, std::ios::trunc) << good << "{\"request_id\":";
  auto cut = ReadErasureRegisterFile(file);
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.message().find(file.string() + ":3: the last line has no newline"),
            std::string::npos)
      << cut.message();
  // Not a file at all.
  auto dir = ReadErasureRegisterFile(dir_);
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.message().find("not a regular file"), std::string::npos) << dir.message();
  EXPECT_FALSE(
      AppendErasureRegisterFile(dir_, Record("11111111-1111-4111-8111-111111111111", false)).ok());
}

}  // namespace
}  // namespace pdv
