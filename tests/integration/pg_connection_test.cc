// pg::Connection::ExecPrepared on a real PostgreSQL: a statement is prepared once per
// connection and reused, with new parameters each time, and prepared again when the
// session lost it (DEALLOCATE ALL).

#include <gtest/gtest.h>

#include "localsvc/local_postgres.h"
#include "pg/connection.h"
#include "pg/scram_verifier.h"
#include "test_support.h"

namespace pdv::testing {
namespace {

TEST(PgConnectionTest, ExecPreparedPreparesOnceAndSurvivesDeallocate) {
  auto pg = localsvc::LocalPostgres::Start({});
  ASSERT_TRUE(pg.ok()) << pg.message();
  auto conn = Connect((*pg)->Url());
  const std::string sql = "select $1::int + 1";
  auto prepared_count = [&] {
    return ScalarInt(conn, "select count(*) from pg_prepared_statements");
  };
  for (int i = 0; i < 3; ++i) {
    auto r = conn.ExecPrepared(sql, {std::to_string(i)});
    ASSERT_TRUE(r.ok()) << r.message();
    EXPECT_EQ(r->str(0, 0), std::to_string(i + 1));
  }
  EXPECT_EQ(prepared_count(), 1);  // one statement for the three runs
  auto other = conn.ExecPrepared("select $1::text || 'x'", {std::string("a")});
  ASSERT_TRUE(other.ok()) << other.message();
  EXPECT_EQ(other->str(0, 0), "ax");
  EXPECT_EQ(prepared_count(), 2);

  ASSERT_TRUE(conn.Exec("DEALLOCATE ALL").ok());
  auto again = conn.ExecPrepared(sql, {std::string("41")});
  ASSERT_TRUE(again.ok()) << again.message();
  EXPECT_EQ(again->str(0, 0), "42");
  EXPECT_EQ(prepared_count(), 1);

  // A statement PostgreSQL refuses is an error naming it, and nothing is kept.
  auto bad = conn.ExecPrepared("select no_such_column from pg_class where oid = $1", {"1"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("no_such_column"), std::string::npos) << bad.message();
  EXPECT_EQ(prepared_count(), 1);
}

}  // namespace
}  // namespace pdv::testing

namespace pdv::testing {
namespace {

// Issue 30 (8): a role's password is set from a verifier built here; the server stores
// it as sent (it never saw the password), and the password, and only it, logs in.
TEST(PgConnectionTest, ScramVerifierBuiltClientSideIsStoredAsSentAndLogsIn) {
  auto pg = localsvc::LocalPostgres::Start({});
  ASSERT_TRUE(pg.ok()) << pg.message();
  auto admin = Connect((*pg)->Url());
  auto verifier = pg::ScramSha256Verifier("s3cret-Pass.word");
  ASSERT_TRUE(verifier.ok()) << verifier.message();
  EXPECT_TRUE(verifier->starts_with("SCRAM-SHA-256$4096:")) << *verifier;
  auto again = pg::ScramSha256Verifier("s3cret-Pass.word");
  ASSERT_TRUE(again.ok());
  EXPECT_NE(*again, *verifier) << "a fresh salt each time";
  ASSERT_TRUE(
      admin.Exec("CREATE ROLE scram_probe LOGIN PASSWORD " + admin.Literal(*verifier)).ok());
  EXPECT_EQ(Scalar(admin, "SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_probe'"),
            *verifier);
  auto as = [&](const std::string& password) {
    return pg::Connection::Connect((*pg)->UrlAs("scram_probe", password, "postgres"));
  };
  auto good = as("s3cret-Pass.word");
  EXPECT_TRUE(good.ok()) << good.message();
  auto bad = as("s3cret-Pass.worD");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("password authentication failed"), std::string::npos)
      << bad.message();
  EXPECT_FALSE(pg::ScramSha256Verifier("caf\xc3\xa9").ok()) << "non-ASCII is refused";
}

}  // namespace
}  // namespace pdv::testing
