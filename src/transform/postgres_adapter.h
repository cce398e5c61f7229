#pragma once

// The Adapter for PostgreSQL: one libpq connection (pg::Connection), the catalog queries,
// and dbt-postgres's materialization SQL (materialization.h, snapshot.h).

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "pg/connection.h"
#include "transform/adapter.h"

namespace pdv::transform {

class PostgresAdapter final : public Adapter {
 public:
  // Borrows `conn`, which must outlive the adapter and is not used by anyone else meanwhile.
  // `conninfo` is what Clone() connects to.
  PostgresAdapter(pg::Connection& conn, std::string conninfo);
  PostgresAdapter(const PostgresAdapter&) = delete;
  PostgresAdapter& operator=(const PostgresAdapter&) = delete;

  std::string Type() const override { return "postgres"; }
  Result<std::unique_ptr<Adapter>> Clone() override;

  StatementResult Execute(const std::string& sql) override;
  Result<QueryResult> Query(const std::string& sql) override;
  Result<TextRows> QueryText(const std::string& sql) override;
  Status LoadCsv(const RelationRef& relation, const std::vector<std::string>& columns,
                 std::string_view csv) override;
  Status BeginTransaction(const std::string& begin_sql) override;
  Status CommitTransaction(const std::string& commit_sql) override;
  void RollbackTransaction() override { transaction_.reset(); }
  bool ConnectionLost(const Status& status) const override { return pg::IsConnectionLost(status); }

  RelationKind ExistingKind(const std::string& schema, const std::string& name) override;
  Result<RelationKind> LookUpRelation(const std::string& schema, const std::string& name) override;
  Status CacheSchemas(const std::vector<std::string>& schemas) override;
  Result<std::vector<RelationRef>> DependentViews(const RelationRef& relation) override;
  void CacheRelation(const std::string& schema, const std::string& name,
                     RelationKind kind) override;
  Result<std::vector<CatalogRelation>> Catalog(const std::vector<std::string>& schemas) override;
  Result<std::vector<TypedColumn>> ColumnsOf(const std::string& schema,
                                             const std::string& name) override;

  std::string Quote(std::string_view identifier) const override {
    return pg::QuoteIdentifier(identifier);
  }
  std::string SeedType(SeedColumnType type) const override;

  std::string CreateSchemaSql(const std::string& schema) const override;
  std::vector<std::string> ReplaceRelationSql(const RelationRef& relation, const std::string& sql,
                                              RelationKind build, RelationKind existing,
                                              const nlohmann::json& indexes) const override;
  std::vector<std::string> IncrementalSql(const RelationRef& relation, const std::string& sql,
                                          const std::string& strategy,
                                          const std::vector<std::string>& unique_key,
                                          const std::vector<std::string>& columns,
                                          std::string* error) const override;
  std::string CreateTableSql(const RelationRef& relation,
                             const std::vector<TypedColumn>& columns) const override;
  std::string TruncateTableSql(const RelationRef& relation) const override;
  std::vector<std::string> SwapInSql(const RelationRef& loaded, const RelationRef& target,
                                     RelationKind existing) const override;
  std::string TestQuerySql(const std::string& compiled, const std::string& fail_calc,
                           const std::string& warn_if, const std::string& error_if) const override;
  std::string NowSql() const override { return "select now()::timestamp::text"; }
  std::vector<std::string> SnapshotCreateSql(const RelationRef& relation, const std::string& sql,
                                             const SnapshotConfig& config,
                                             const std::string& now_sql) const override;
  std::string SnapshotStageSql(const std::string& sql) const override;
  std::vector<std::string> SnapshotMergeSql(const RelationRef& relation,
                                            const SnapshotConfig& config,
                                            const std::vector<std::string>& columns,
                                            const std::string& now_sql) const override;

 private:
  // Shared by an adapter and its clones (hence shared_ptr): every worker of a run sees
  // what any of them built. Guarded by its mutex.
  struct RelationCache {
    std::mutex mu;
    std::set<std::string> listed_schemas;
    std::map<std::pair<std::string, std::string>, RelationKind> kinds;
  };
  PostgresAdapter(std::unique_ptr<pg::Connection> owned, std::string conninfo,
                  std::shared_ptr<RelationCache> cache);

  std::unique_ptr<pg::Connection> owned_;  // set for a clone
  pg::Connection* conn_;
  std::string conninfo_;
  std::shared_ptr<RelationCache> cache_;
  std::optional<pg::Transaction> transaction_;
};

}  // namespace pdv::transform
