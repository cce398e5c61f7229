#include "dbt_project_test.h"

#include <atomic>
#include <cstdlib>
#include <fstream>

namespace pdv::testing {

namespace fs = std::filesystem;

localsvc::LocalPostgres* DbtProjectTest::pg_ = nullptr;

void DbtProjectTest::SetUpTestSuite() {
  auto pg = localsvc::LocalPostgres::Start({});
  ASSERT_TRUE(pg.ok()) << pg.message();
  pg_ = pg->release();
}

void DbtProjectTest::TearDownTestSuite() {
  delete pg_;
  pg_ = nullptr;
}

void DbtProjectTest::SetUpProject(const std::string& fixture, const std::string& folder) {
  static std::atomic<int> counter{0};
  db_ = folder + "_" + std::to_string(counter++);
  ASSERT_TRUE(pg_->CreateDatabase(db_).ok());
  auto dir = localsvc::ScratchDir::Create("pdv-test-" + folder);
  ASSERT_TRUE(dir.ok()) << dir.message();
  dir_.emplace(std::move(*dir));
  project_ = dir_->path() / folder;
  CopyBeside(fixture, folder);
  ::setenv("SHOP_PG_HOST", "127.0.0.1", 1);
  ::setenv("SHOP_PG_PORT", std::to_string(pg_->port()).c_str(), 1);
  ::setenv("SHOP_PG_DB", db_.c_str(), 1);
  ::setenv("DBT_ENV_SECRET_SHOP_PG_PASSWORD", pg_->password().c_str(), 1);
}

void DbtProjectTest::CopyBeside(const std::string& fixture, const std::string& folder) {
  fs::path to = dir_->path() / folder;
  fs::create_directories(to.parent_path());
  fs::copy(fs::path(PDV_SOURCE_DIR) / "tests/fixtures" / fixture, to, fs::copy_options::recursive);
}

CommandResult DbtProjectTest::Dbt(std::vector<std::string> args) {
  std::vector<std::string> full = {"transform"};
  full.insert(full.end(), args.begin(), args.end());
  full.insert(full.end(), {"--project-dir", project_.string()});
  return RunPdv(full);
}

void DbtProjectTest::Write(const std::string& rel, const std::string& text) {
  fs::create_directories((project_ / rel).parent_path());
  std::ofstream(project_ / rel) << text;
}

void DbtProjectTest::Exec(pg::Connection& conn, const std::string& sql) {
  auto r = conn.Exec(sql);
  ASSERT_TRUE(r.ok()) << r.message();
}

}  // namespace pdv::testing
