#pragma once

// The warehouse as the runner sees it, along dbt's adapter seam: the connection, the
// relation cache, quoting, type mapping and the SQL of each materialization. The runner,
// the materializations and the templates' `adapter` object call only this interface;
// PostgreSQL (postgres_adapter.h) is its one implementation, so another engine is a new
// class, not a change to the runner.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "transform/context.h"
#include "transform/materialization.h"
#include "transform/seed_file.h"
#include "transform/snapshot.h"

namespace pdv::transform {

// One statement's outcome, with what dbt shows of it.
struct StatementResult {
  bool ok = true;
  std::string command_status;  // "SELECT 10", "INSERT 0 3"
  std::string error;           // the server's primary message (+ detail)
  int position = 0;            // 1-based character position of the error, 0 if none
  bool connection_lost = false;
  int64_t rows = -1;
  std::vector<std::string> first_row;  // the first row's cells as text, when there are rows
  std::string first_value() const { return first_row.empty() ? "" : first_row[0]; }
};

// A relation as docs generate's catalog.json shows it.
struct CatalogColumn {
  int index = 0;  // from 1
  std::string name, type;
  std::optional<std::string> comment;
};
struct CatalogRelation {
  std::string schema, name;
  std::string type;  // "BASE TABLE", "VIEW", "MATERIALIZED VIEW"
  std::string owner;
  std::optional<std::string> comment;
  std::vector<CatalogColumn> columns;
};

// Not thread-safe: one thread uses an adapter at a time (a worker thread gets its own
// through Clone()). Failures are values: a StatementResult that is not ok, or a Status.
class Adapter {
 public:
  virtual ~Adapter() = default;

  // dbt's adapter type ("postgres"): the prefix adapter.dispatch tries first.
  virtual std::string Type() const = 0;
  // Another adapter on a new connection to the same warehouse, for a worker thread. It
  // shares this one's relation cache.
  virtual Result<std::unique_ptr<Adapter>> Clone() = 0;

  // --- the connection
  virtual StatementResult Execute(const std::string& sql) = 0;
  // The statement's rows as dbt's agate table (run_query, adapter.execute).
  virtual Result<QueryResult> Query(const std::string& sql) = 0;
  // The statement's rows as text cells, as the warehouse prints them (nullopt: NULL).
  using TextRows = std::vector<std::vector<std::optional<std::string>>>;
  virtual Result<TextRows> QueryText(const std::string& sql) = 0;
  // Rows in CSV (empty unquoted fields NULL) into `columns` of `relation`.
  virtual Status LoadCsv(const RelationRef& relation, const std::vector<std::string>& columns,
                         std::string_view csv) = 0;
  // A transaction: `begin_sql` ("" for the engine's plain begin, else statements run
  // right after it); Commit's `commit_sql` ends with the commit ("" for a plain one).
  // Use AdapterTransaction, which rolls back unless committed.
  virtual Status BeginTransaction(const std::string& begin_sql) = 0;
  virtual Status CommitTransaction(const std::string& commit_sql) = 0;
  virtual void RollbackTransaction() = 0;
  // Whether a failure `status` of this adapter means the connection itself was lost.
  virtual bool ConnectionLost(const Status& status) const = 0;

  // --- the relation cache
  // What `schema.name` is: answered from the cache once CacheSchemas listed its schema
  // (or a materialization recorded it), else from the catalog.
  virtual RelationKind ExistingKind(const std::string& schema, const std::string& name) = 0;
  // What `schema.name` is, from the catalog (the cache is refreshed with it): what
  // templates' get_relation / load_relation read, since a hook may have just made it.
  virtual Result<RelationKind> LookUpRelation(const std::string& schema,
                                              const std::string& name) = 0;
  // Lists every relation of `schemas` into the cache with one catalog query.
  virtual Status CacheSchemas(const std::vector<std::string>& schemas) = 0;
  // What a committed materialization made (kNone: dropped).
  virtual void CacheRelation(const std::string& schema, const std::string& name,
                             RelationKind kind) = 0;
  // The views that a `drop ... cascade` of `relation` would take with it (views on views
  // included): what the cache forgets once a rebuild that drops the relation commits.
  virtual Result<std::vector<RelationRef>> DependentViews(const RelationRef& relation) = 0;
  // Every relation of `schemas` with its columns, in one catalog read (docs generate).
  virtual Result<std::vector<CatalogRelation>> Catalog(const std::vector<std::string>& schemas) = 0;
  // A relation's columns in order, from the catalog (never cached: they change within a
  // transaction); schema "": this session's temporary tables. Empty: no such relation.
  virtual Result<std::vector<TypedColumn>> ColumnsOf(const std::string& schema,
                                                     const std::string& name) = 0;

  // --- quoting and types
  virtual std::string Quote(std::string_view identifier) const = 0;
  virtual std::string SeedType(SeedColumnType type) const = 0;

  // --- the SQL of each materialization (materialization.h, snapshot.h, for PostgreSQL)
  virtual std::string CreateSchemaSql(const std::string& schema) const = 0;
  virtual std::string TruncateTableSql(const RelationRef& relation) const = 0;
  virtual std::vector<std::string> ReplaceRelationSql(const RelationRef& relation,
                                                      const std::string& sql, RelationKind build,
                                                      RelationKind existing,
                                                      const nlohmann::json& indexes) const = 0;
  virtual std::vector<std::string> IncrementalSql(const RelationRef& relation,
                                                  const std::string& sql,
                                                  const std::string& strategy,
                                                  const std::vector<std::string>& unique_key,
                                                  const std::vector<std::string>& columns,
                                                  std::string* error) const = 0;
  // A seed: its table made empty under a temporary name, and the statements that swap it
  // into place once loaded.
  virtual std::string CreateTableSql(const RelationRef& relation,
                                     const std::vector<TypedColumn>& columns) const = 0;
  virtual std::vector<std::string> SwapInSql(const RelationRef& loaded, const RelationRef& target,
                                             RelationKind existing) const = 0;
  virtual std::string TestQuerySql(const std::string& compiled, const std::string& fail_calc,
                                   const std::string& warn_if,
                                   const std::string& error_if) const = 0;
  virtual std::string NowSql() const = 0;  // the time a snapshot run records, as one value
  virtual std::vector<std::string> SnapshotCreateSql(const RelationRef& relation,
                                                     const std::string& sql,
                                                     const SnapshotConfig& config,
                                                     const std::string& now_sql) const = 0;
  virtual std::string SnapshotStageSql(const std::string& sql) const = 0;
  virtual std::vector<std::string> SnapshotMergeSql(const RelationRef& relation,
                                                    const SnapshotConfig& config,
                                                    const std::vector<std::string>& columns,
                                                    const std::string& now_sql) const = 0;
};

// The transaction guard: rolls back in its destructor unless Commit() succeeded. Borrows
// the adapter, which must outlive it.
class AdapterTransaction {
 public:
  static Result<AdapterTransaction> Begin(Adapter& adapter, const std::string& begin_sql = "") {
    if (Status s = adapter.BeginTransaction(begin_sql); !s.ok()) return s;
    return AdapterTransaction(&adapter);
  }
  AdapterTransaction(AdapterTransaction&& other) noexcept : adapter_(other.adapter_) {
    other.adapter_ = nullptr;
  }
  AdapterTransaction& operator=(AdapterTransaction&&) = delete;
  ~AdapterTransaction() {
    if (adapter_) adapter_->RollbackTransaction();
  }
  Status Commit(const std::string& commit_sql = "") {
    Adapter* adapter = adapter_;
    adapter_ = nullptr;  // a failed commit has ended the transaction too
    return adapter->CommitTransaction(commit_sql);
  }

 private:
  explicit AdapterTransaction(Adapter* adapter) : adapter_(adapter) {}
  Adapter* adapter_;
};

}  // namespace pdv::transform
