#pragma once

// A test of `pdv transform` on a fixture project (tests/fixtures/<name>): the project copied
// to a scratch folder, a database of its own per test on one PostgreSQL per suite, and the
// SHOP_PG_* variables its profiles.yml reads.

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "localsvc/local_postgres.h"
#include "localsvc/scratch_dir.h"
#include "test_support.h"

namespace pdv::testing {

class DbtProjectTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();

  // Copies tests/fixtures/<fixture> to <scratch>/<folder> and makes the test's database.
  void SetUpProject(const std::string& fixture, const std::string& folder);
  // Copies another fixture folder beside the project (a local package, say).
  void CopyBeside(const std::string& fixture, const std::string& folder);

  // `pdv transform <args> --project-dir <project>`.
  CommandResult Dbt(std::vector<std::string> args);
  void Write(const std::string& rel, const std::string& text);
  std::string Url() const { return pg_->Url(db_); }
  static void Exec(pg::Connection& conn, const std::string& sql);

  static localsvc::LocalPostgres* pg_;
  std::string db_;
  std::optional<localsvc::ScratchDir> dir_;
  std::filesystem::path project_;
};

}  // namespace pdv::testing
