// Loader: discovery of the project's files: macros, models, seeds, snapshots and singular
// tests.

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "common/conninfo.h"
#include "common/random_secret.h"
#include "transform/builtin_macros.h"
#include "transform/context.h"
#include "transform/datetime_module.h"
#include "transform/freshness.h"
#include "transform/global_project.h"
#include "transform/jinja_ast.h"
#include "transform/packages.h"
#include "transform/project_loader.h"

namespace pdv::transform::project_internal {

void Loader::LoadMacros(const PackageDir& u) {
  for (const auto& dir : PathList(u.yml, "macro-paths", "macros")) {
    for (const auto& f : FilesUnder(u.dir / dir, ".sql")) AddMacroFile(f, u.name);
  }
  for (const auto& dir : PathList(u.yml, "test-paths", "tests")) {
    for (const auto& f : FilesUnder(u.dir / dir / "generic", ".sql")) AddMacroFile(f, u.name);
  }
}

void Loader::LoadResources(const PackageDir& u) {
  for (const auto& dir : PathList(u.yml, "model-paths", "models")) {
    for (const auto& f : FilesUnder(u.dir / dir, ".sql")) AddModel(f, u.dir / dir, u);
  }
  std::vector<std::string> seed_dirs = PathList(u.yml, "seed-paths", "seeds");
  for (const auto& dir : seed_dirs) {
    for (const auto& f : FilesUnder(u.dir / dir, ".csv")) AddSeed(f, u.dir / dir, u);
  }
  for (const auto& dir : PathList(u.yml, "model-paths", "models")) {
    for (const auto& f : FilesUnder(u.dir / dir, ".yml")) LoadSchemaFile(f, u.name);
    for (const auto& f : FilesUnder(u.dir / dir, ".yaml")) LoadSchemaFile(f, u.name);
  }
  for (const auto& dir : seed_dirs) {
    for (const auto& f : FilesUnder(u.dir / dir, ".yml")) LoadSchemaFile(f, u.name);
  }
  for (const auto& dir : PathList(u.yml, "snapshot-paths", "snapshots")) {
    for (const auto& f : FilesUnder(u.dir / dir, ".sql")) AddSnapshotFile(f, u.dir / dir, u);
    for (const auto& f : FilesUnder(u.dir / dir, ".yml")) LoadSchemaFile(f, u.name);
  }
}

void Loader::AddSnapshotFile(const fs::path& f, const fs::path& root, const PackageDir& u) {
  std::string rel = Rel(f, dir_);
  std::string code = ReadFile(f);
  auto tmpl = jinja::Template::Parse(code, rel);
  if (!tmpl.ok()) throw LoadError{tmpl.message()};
  std::vector<const jinja::Node*> blocks;
  for (const auto& n : (*tmpl)->nodes()) {
    if (n->kind == jinja::Node::Kind::kSnapshot) blocks.push_back(n.get());
  }
  if (blocks.empty()) return;  // a file of macros only
  if (blocks.size() > 1) {
    throw LoadError{
        fmt::format("{}:{}: one {{% snapshot %}} per file, please", rel, blocks[1]->line)};
  }
  AddSnapshot(blocks[0]->text, rel, Rel(f, root), code, *tmpl, u);
}

void Loader::AddSnapshot(const std::string& name, const std::string& file, const std::string& path,
                         const std::string& code, std::shared_ptr<const jinja::Template> tmpl,
                         const PackageDir& u) {
  Node n;
  n.resource_type = NodeType::kSnapshot;
  n.name = name;
  n.package_name = u.name;
  n.unique_id = fmt::format("snapshot.{}.{}", u.name, name);
  if (p_.nodes.count(n.unique_id)) {
    throw LoadError{fmt::format("{}: a second snapshot named '{}'", file, name)};
  }
  n.original_file_path = file;
  n.path = path;
  n.fqn.push_back(u.name);
  for (const auto& part : fs::path(path).parent_path()) n.fqn.push_back(part.string());
  n.fqn.push_back(name);
  n.raw_code = code;
  n.tmpl = std::move(tmpl);
  n.config =
      ResourceConfig(u, "snapshots", std::vector<std::string>(n.fqn.begin() + 1, n.fqn.end()));
  n.config["materialized"] = "snapshot";
  p_.nodes[n.unique_id] = std::move(n);
}

void Loader::AddMacroText(const std::string& text, const std::string& name,
                          const std::string& package) {
  auto tmpl = jinja::Template::Parse(text, name);
  if (!tmpl.ok()) throw LoadError{tmpl.message()};
  p_.env->AddMacros(*tmpl, package);
}

void Loader::AddMacroFile(const fs::path& f, const std::string& package) {
  AddMacroText(ReadFile(f), Rel(f, dir_), package);
  p_.macro_files.push_back(Rel(f, dir_));
}

void Loader::AddModel(const fs::path& f, const fs::path& root, const PackageDir& u) {
  Node n;
  n.resource_type = NodeType::kModel;
  n.name = f.stem().string();
  n.package_name = u.name;
  n.unique_id = fmt::format("model.{}.{}", u.name, n.name);
  if (p_.nodes.count(n.unique_id)) {
    throw LoadError{fmt::format("{}: a second model named '{}' (model names must be unique)",
                                Rel(f, dir_), n.name)};
  }
  SetPathAndFqn(n, f, root, u);
  n.raw_code = ReadFile(f);
  auto tmpl = jinja::Template::Parse(n.raw_code, n.original_file_path);
  if (!tmpl.ok()) throw LoadError{tmpl.message()};
  n.tmpl = *tmpl;
  n.config = ResourceConfig(u, "models", std::vector<std::string>(n.fqn.begin() + 1, n.fqn.end()));
  if (!n.config.contains("materialized")) n.config["materialized"] = "view";
  p_.nodes[n.unique_id] = std::move(n);
}

void Loader::SetPathAndFqn(Node& n, const fs::path& f, const fs::path& root, const PackageDir& u) {
  n.original_file_path = Rel(f, dir_);
  n.path = Rel(f, root);
  n.fqn.push_back(u.name);
  for (const auto& part : fs::path(n.path).parent_path()) n.fqn.push_back(part.string());
  n.fqn.push_back(n.name);
}

void Loader::AddSeed(const fs::path& f, const fs::path& root, const PackageDir& u) {
  Node n;
  n.resource_type = NodeType::kSeed;
  n.name = f.stem().string();
  n.package_name = u.name;
  n.unique_id = fmt::format("seed.{}.{}", u.name, n.name);
  SetPathAndFqn(n, f, root, u);
  n.config = ResourceConfig(u, "seeds", std::vector<std::string>(n.fqn.begin() + 1, n.fqn.end()));
  n.config["materialized"] = "seed";
  p_.nodes[n.unique_id] = std::move(n);
}

void Loader::AddSingularTests(const PackageDir& u) {
  for (const auto& test_dir : PathList(u.yml, "test-paths", "tests")) {
    for (const auto& f : FilesUnder(u.dir / test_dir, ".sql"))
      AddSingularTest(f, u.dir / test_dir, u);
  }
}

void Loader::AddSingularTest(const fs::path& f, const fs::path& dir, const PackageDir& u) {
  {
    std::string rel = Rel(f, dir);
    // Generic test definitions (macros) and unit-test fixtures are not singular tests.
    if (rel.starts_with("generic/") || rel.starts_with("fixtures/")) return;
    Node n;
    n.resource_type = NodeType::kTest;
    n.name = f.stem().string();
    n.package_name = u.name;
    n.unique_id = fmt::format("test.{}.{}", u.name, n.name);
    n.original_file_path = Rel(f, dir_);
    n.path = rel;
    n.fqn = {u.name, n.name};
    n.raw_code = ReadFile(f);
    auto tmpl = jinja::Template::Parse(n.raw_code, n.original_file_path);
    if (!tmpl.ok()) throw LoadError{tmpl.message()};
    n.tmpl = *tmpl;
    n.config = ResourceConfig(u, u.yml["data_tests"] ? "data_tests" : "tests", {n.name});
    n.config["materialized"] = "test";
    n.schema = p_.target.schema;
    n.alias = n.name;
    ParseRender(n);
    if (n.enabled()) p_.nodes[n.unique_id] = std::move(n);
  }
}

}  // namespace pdv::transform::project_internal
