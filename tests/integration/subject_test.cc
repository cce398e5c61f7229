// Issue 14 (LGPD): a member's rights against a running pipeline (cdc, transform watch and
// cache watch on real PostgreSQL and Redis): export finds exactly one person in every
// layer; forget, while that very customer keeps changing at the source, erases them from
// every layer (table files and every Redis key included) and keeps them out; verify
// proves it.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "localsvc/local_postgres.h"
#include "localsvc/local_redis.h"
#include "localsvc/scratch_dir.h"
#include "redis/client.h"
#include "test_support.h"

namespace pdv::testing {
namespace {

using namespace std::chrono_literals;

class SubjectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pg = localsvc::LocalPostgres::Start({});
    ASSERT_TRUE(pg.ok()) << pg.message();
    pg_ = std::move(*pg);
    ASSERT_TRUE(pg_->EnsureDatabase("source_db").ok());
    ASSERT_TRUE(pg_->EnsureDatabase("warehouse").ok());
    auto redis = localsvc::LocalRedis::Start({});
    ASSERT_TRUE(redis.ok()) << redis.message();
    redis_ = std::move(*redis);
    auto dir = localsvc::ScratchDir::Create("pdv-test-subject");
    ASSERT_TRUE(dir.ok());
    dir_.emplace(std::move(*dir));
    std::ofstream(Path("pdv.yaml")) << fmt::format(
        "oltp_url: {}\nwarehouse_url: {}\nredis_url: {}\ncpf_key: subject-test-cpf-key-0123\n"
        "erasure_key: subject-test-erasure-key-0123\ncdc:\n  metrics_listen: \"\"\n",
        pg_->Url("source_db"), pg_->Url("warehouse"), redis_->Url());
  }
  void TearDown() override {
    for (auto& p : stages_) {
      if (p->Running()) {
        p->Signal(SIGTERM);
        p->Wait(20s);
      }
    }
  }
  std::filesystem::path Path(const std::string& name) const { return dir_->path() / name; }
  std::vector<std::string> WithConfig(std::vector<std::string> args) const {
    args.insert(args.begin(), {"--config", Path("pdv.yaml").string()});
    return args;
  }
  CommandResult Pdv(std::vector<std::string> args) { return RunPdv(WithConfig(std::move(args))); }
  void StartPipeline() {
    for (auto args : std::vector<std::vector<std::string>>{
             {"cdc"}, {"transform", "watch", "--platform"}, {"cache", "watch"}}) {
      stages_.push_back(std::make_unique<PdvProcess>(
          WithConfig(args), Path(args[0] + std::to_string(stages_.size()) + ".log")));
    }
  }
  // Until every layer is the OLTP's state (reconcile clean).
  void CaughtUp() {
    auto r = Pdv({"reconcile", "--wait", "120"});
    ASSERT_EQ(r.exit_code, 0) << r.output << stages_[0]->Output() << stages_[1]->Output()
                              << stages_[2]->Output();
  }
  nlohmann::json Json(const CommandResult& r) {
    auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')), nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.output;
    return j;
  }
  std::string Data(pg::Connection& conn, const std::string& table) {
    std::string dir = Scalar(conn, "SHOW data_directory");
    return dir + "/" + Scalar(conn, "SELECT pg_relation_filepath('" + table + "')");
  }
  // Every file of the table and its indexes, read after a checkpoint.
  std::string TableFiles(pg::Connection& conn, const std::string& table) {
    (void)conn.Exec("CHECKPOINT");
    std::string bytes;
    auto r = conn.Exec("SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = '" +
                       table + "'::regclass");
    std::vector<std::string> relations = {table};
    for (int i = 0; r.ok() && i < r->rows(); ++i) relations.push_back(r->str(i, 0));
    for (const auto& rel : relations) {
      std::string base = Data(conn, rel);
      bytes += ReadFile(base);
      for (int segment = 1; std::filesystem::exists(base + "." + std::to_string(segment));
           ++segment) {
        bytes += ReadFile(base + "." + std::to_string(segment));
      }
    }
    return bytes;
  }
  // Every Redis key's name and contents (hashes field by field, strings whole).
  std::string RedisBytes() {
    auto c = redis::Client::Connect(redis_->Url());
    EXPECT_TRUE(c.ok());
    std::string out;
    std::string cursor = "0";
    do {
      auto page = c->Command({"SCAN", cursor, "COUNT", "1000"});
      EXPECT_TRUE(page.ok());
      cursor = std::string(page->element(0)->str, page->element(0)->len);
      for (size_t i = 0; i < page->element(1)->elements; ++i) {
        std::string key(page->element(1)->element[i]->str, page->element(1)->element[i]->len);
        out += key + "\n";
        auto type = c->Command({"TYPE", key});
        std::string t(type->str());
        auto v = t == "hash"     ? c->Command({"HGETALL", key})
                 : t == "string" ? c->Command({"GET", key})
                                 : c->Command({"DUMP", key});
        if (!v.ok()) continue;
        if (v->type() == REDIS_REPLY_ARRAY) {
          for (size_t k = 0; k < v->elements(); ++k) {
            out += std::string(v->element(k)->str, v->element(k)->len) + "\n";
          }
        } else if (v->type() == REDIS_REPLY_STRING) {
          out += std::string(v->str()) + "\n";
        }
      }
    } while (cursor != "0");
    return out;
  }
  static std::string UuidBytes(const std::string& text) {
    std::string hex, out;
    for (char ch : text) {
      if (ch != '-') hex += ch;
    }
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
      out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    }
    return out;
  }
  static std::string HexBytes(const std::string& hex) { return UuidBytes(hex); }

  std::unique_ptr<localsvc::LocalPostgres> pg_;
  std::unique_ptr<localsvc::LocalRedis> redis_;
  std::optional<localsvc::ScratchDir> dir_;
  std::vector<std::unique_ptr<PdvProcess>> stages_;
};

TEST_F(SubjectTest, ExportFindsOnePersonInEveryLayerAndNoOneElse) {
  auto load = Pdv({"generate", "--initial", "300", "--cpf-out", Path("cpfs").string()});
  ASSERT_EQ(load.exit_code, 0) << load.output;
  StartPipeline();
  // A few versions of everyone in RAW.
  ASSERT_EQ(Pdv({"generate", "--rate", "300", "--duration", "2", "--delete-share", "0"}).exit_code,
            0);
  ASSERT_NO_FATAL_FAILURE(CaughtUp());
  std::vector<std::string> cpfs = Lines(ReadFile(Path("cpfs")));
  auto r = Pdv({"subject", "export", "--cpf", cpfs[7]});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto doc = Json(r);
  ASSERT_EQ(doc["subject"]["cliente_ids"].size(), 1u) << doc.dump(2);
  std::string id = doc["subject"]["cliente_ids"][0];
  auto oltp = Connect(pg_->Url("source_db"));
  auto wh = Connect(pg_->Url("warehouse"));
  EXPECT_EQ(doc["oltp"].size(), 1u);
  EXPECT_EQ(
      static_cast<int64_t>(doc["raw"].size()),
      ScalarInt(wh, "SELECT count(*) FROM raw.clientes_clube WHERE cliente_id = '" + id + "'"));
  EXPECT_GE(doc["raw"].size(), 1u);
  EXPECT_EQ(doc["staging"].size(), 1u);
  EXPECT_EQ(doc["dimension"].size(), 1u);
  ASSERT_EQ(doc["redis"].size(), 1u) << doc.dump(2);
  EXPECT_EQ(doc["redis"][0]["cliente_id"], id);
  EXPECT_EQ(doc["oltp"][0]["email"],
            Scalar(oltp, "SELECT email FROM clientes_clube WHERE cliente_id = '" + id + "'"));
  // Every RAW version has its timestamps.
  for (const auto& v : doc["raw"]) {
    EXPECT_TRUE(v.contains("_cdc_lsn") && v.contains("_cdc_committed_at") &&
                v.contains("_loaded_at"))
        << v.dump();
  }
  // Nothing about anyone else: every row is this customer's, and no other customer's id or
  // e-mail appears anywhere in the document.
  for (const char* layer : {"oltp", "raw", "staging", "dimension", "redis"}) {
    for (const auto& row : doc[layer]) EXPECT_EQ(row["cliente_id"], id) << layer;
  }
  std::string text = doc.dump();
  auto others = oltp.Exec(
      "SELECT cliente_id::text, email FROM clientes_clube WHERE cliente_id <> '" + id + "'");
  ASSERT_TRUE(others.ok());
  int leaked = 0;
  for (int i = 0; i < others->rows(); ++i) {
    if (text.find(others->str(i, 0)) != std::string::npos ||
        text.find(others->str(i, 1)) != std::string::npos)
      ++leaked;
  }
  EXPECT_EQ(leaked, 0);
  // By cliente_id, the same person; an unknown one is a clear error.
  auto by_id = Pdv({"subject", "export", "--cliente-id", id});
  ASSERT_EQ(by_id.exit_code, 0) << by_id.output;
  EXPECT_EQ(Json(by_id)["oltp"], doc["oltp"]);
  auto unknown = Pdv({"subject", "export", "--cliente-id", "00000000-0000-4000-8000-000000000000"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.output.find("no customer with this cliente_id in any layer"), std::string::npos)
      << unknown.output;
}

// Issue 30 item 7: `--cpf -` reads the CPF from standard input (one line, surrounding
// whitespace ignored, formatted or bare), so it never shows in `ps` or the shell's
// history; empty or bad input is a clear error.
TEST_F(SubjectTest, CpfFromStandardInputForExportAndForget) {
  auto load = Pdv({"generate", "--initial", "50", "--cpf-out", Path("cpfs").string()});
  ASSERT_EQ(load.exit_code, 0) << load.output;
  StartPipeline();
  ASSERT_NO_FATAL_FAILURE(CaughtUp());
  std::vector<std::string> cpfs = Lines(ReadFile(Path("cpfs")));
  ASSERT_GE(cpfs.size(), 4u);
  auto Stdin = [&](std::vector<std::string> args, const std::string& input) {
    return RunPdvWithInput(WithConfig(std::move(args)), input);
  };
  auto bare = [](const std::string& cpf) {
    std::string digits;
    for (char c : cpf) {
      if (c >= '0' && c <= '9') digits += c;
    }
    return digits;
  };
  auto by_flag = Pdv({"subject", "export", "--cpf", cpfs[1]});
  ASSERT_EQ(by_flag.exit_code, 0) << by_flag.output;
  auto expected = Json(by_flag)["subject"]["cliente_ids"];
  ASSERT_EQ(expected.size(), 1u);
  for (const std::string& input :
       {"  " + cpfs[1] + " \n", bare(cpfs[1]), "\t" + bare(cpfs[1]) + "\r\n\n"}) {
    auto r = Stdin({"subject", "export", "--cpf", "-"}, input);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(Json(r)["subject"]["cliente_ids"], expected) << input;
  }
  for (const auto& [input, error] : std::vector<std::pair<std::string, std::string>>{
           {"", "pdv subject: --cpf -: standard input is empty"},
           {" \n\t\n", "pdv subject: --cpf -: standard input is empty"},
           {"123.456.789-00\n", "pdv subject: --cpf -: standard input: invalid CPF"},
           {cpfs[1] + "\n" + cpfs[2] + "\n", "standard input has more than one line"}}) {
    auto r = Stdin({"subject", "export", "--cpf", "-"}, input);
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find(error), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("\"subject\""), std::string::npos) << r.output;
  }
  auto forgot = Stdin({"subject", "forget", "--cpf", "-"}, cpfs[3] + "\n");
  ASSERT_EQ(forgot.exit_code, 0) << forgot.output;
  std::string request = Json(forgot)["request_id"];
  auto proof = Pdv({"subject", "verify", request});
  EXPECT_EQ(proof.exit_code, 0) << proof.output;
  // The help says it is the way to pass one.
  for (const char* sub : {"export", "forget"}) {
    auto help = RunPdv({"subject", sub, "--help"});
    EXPECT_NE(help.output.find("--cpf -"), std::string::npos) << help.output;
  }
}

// Forget while that customer keeps changing at the source (and the generator's workload
// runs): one subject at the source with --rewrite (no byte left in any table file), one
// kept at the source (its later changes never reach RAW).
TEST_F(SubjectTest, ForgetWhileTheCustomerChangesLeavesNothingInAnyLayerAndVerifyProvesIt) {
  auto load = Pdv({"generate", "--initial", "500", "--cpf-out", Path("cpfs").string()});
  ASSERT_EQ(load.exit_code, 0) << load.output;
  StartPipeline();
  ASSERT_NO_FATAL_FAILURE(CaughtUp());
  // The history snapshot holds everyone too.
  auto snapshot = Pdv({"transform", "snapshot", "--platform"});
  ASSERT_EQ(snapshot.exit_code, 0) << snapshot.output;
  std::vector<std::string> cpfs = Lines(ReadFile(Path("cpfs")));
  auto oltp = Connect(pg_->Url("source_db"));
  auto wh = Connect(pg_->Url("warehouse"));
  ASSERT_EQ(ScalarInt(wh, "SELECT count(*) FROM snapshots.snap_clientes_clube"), 500);
  struct Person {
    std::string cpf, id, cpf_hash, email;
  };
  auto person = [&](const std::string& cpf) {
    auto doc = Json(Pdv({"subject", "export", "--cpf", cpf}));
    return Person{cpf, doc["subject"]["cliente_ids"][0], doc["oltp"][0]["cpf_hash"],
                  doc["oltp"][0]["email"]};
  };
  Person gone = person(cpfs[11]), kept = person(cpfs[12]);
  // A POS's view: the API with its near-cache, which holds the customer after a lookup.
  int api_port = 0;
  for (api_port = 18000 + static_cast<int>(::getpid() % 20000);
       !localsvc::LoopbackPortFree(api_port); ++api_port) {
  }
  auto key = Pdv({"apikey", "create", "caixa-subject"});
  ASSERT_EQ(key.exit_code, 0) << key.output;
  std::string api_key = Lines(key.output)[0];
  stages_.push_back(std::make_unique<PdvProcess>(
      WithConfig(
          // Lookups without pause from one address: no per-address limit.
          {"serve", "--listen", fmt::format("127.0.0.1:{}", api_port), "--near-cache", "on",
           "--rate-per-ip", "0"}),
      Path("serve.log")));
  auto lookup = [&](const Person& p) {
    return HttpStatus(GetWithKey(api_port, "/v1/clientes/" + p.cpf, api_key));
  };
  ASSERT_TRUE(WaitFor(30s, [&] { return lookup(gone) == 200; })) << stages_.back()->Output();
  ASSERT_EQ(lookup(gone), 200);  // now in the near-cache

  // The two customers change all along, and so does everyone else.
  std::atomic<bool> done{false};
  std::atomic<int> updates{0};
  std::thread updater([&] {
    auto conn = Connect(pg_->Url("source_db"));
    while (!done) {
      for (const Person* p : {&gone, &kept}) {
        auto r = conn.Exec(
            "UPDATE clientes_clube SET ticket_medio_estimado = round((random() * 500)::numeric, "
            "2), ultima_atualizacao = now() WHERE cliente_id = '" +
            p->id + "'");
        if (r.ok()) ++updates;
      }
      std::this_thread::sleep_for(5ms);
    }
  });
  PdvProcess workload(WithConfig({"generate", "--rate", "100", "--delete-share", "0"}),
                      Path("workload.log"));
  ASSERT_TRUE(WaitFor(30s, [&] { return updates > 100; }));

  auto forgot = Pdv({"subject", "forget", "--cpf", gone.cpf, "--at-source", "--rewrite"});
  ASSERT_EQ(forgot.exit_code, 0) << forgot.output;
  auto receipt = Json(forgot);
  // The very next lookup, near-cache and all, no longer finds them.
  EXPECT_EQ(lookup(gone), 404);
  auto forgot_kept = Pdv({"subject", "forget", "--cliente-id", kept.id});
  ASSERT_EQ(forgot_kept.exit_code, 0) << forgot_kept.output;
  auto receipt_kept = Json(forgot_kept);
  // Changes keep coming for both (the kept one still changes at the source).
  int at_forget = updates;
  ASSERT_TRUE(WaitFor(30s, [&] { return updates > at_forget + 200; }));
  done = true;
  updater.join();
  workload.Signal(SIGTERM);
  ASSERT_EQ(workload.Wait(30s), 0);
  ASSERT_NO_FATAL_FAILURE(CaughtUp());

  // The receipt: request id, HMACs (no identifier of the person), each layer's time and
  // count.
  std::string request = receipt["request_id"];
  EXPECT_EQ(receipt["layers"]["oltp"]["rows"], 1);
  EXPECT_GE(receipt["layers"]["raw"]["rows"].get<int>(), 1);
  EXPECT_EQ(receipt["layers"]["staging"]["rows"], 1);
  EXPECT_EQ(receipt["layers"]["dimension"]["rows"], 1);
  EXPECT_EQ(receipt["layers"]["history"]["rows"], 1);
  EXPECT_EQ(receipt["layers"]["redis"]["records"], 1);
  EXPECT_EQ(receipt["layers"]["redis"]["id_entries"], 1);
  for (const std::string& s : {gone.id, gone.cpf_hash, gone.email, gone.cpf}) {
    EXPECT_EQ(forgot.output.find(s), std::string::npos) << "the receipt names the person";
  }
  // Again: idempotent, the same request.
  auto again = Pdv({"subject", "forget", "--cpf", gone.cpf, "--at-source"});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(Json(again)["request_id"], request);

  // Proof of absence, for both.
  auto proof = Pdv({"subject", "verify", request});
  EXPECT_EQ(proof.exit_code, 0) << proof.output;
  EXPECT_TRUE(Json(proof)["clean"].get<bool>()) << proof.output;
  auto proof_kept = Pdv({"subject", "verify", receipt_kept["request_id"]});
  EXPECT_EQ(proof_kept.exit_code, 0) << proof_kept.output;
  EXPECT_EQ(Json(proof_kept)["layers"]["oltp"]["found"], 1) << "kept at the source, as asked";

  EXPECT_EQ(lookup(kept), 404);
  // Verify fails when something is left: a RAW row of the person, put back by hand.
  ASSERT_TRUE(wh.Exec("CREATE TEMP TABLE leak AS SELECT * FROM raw.clientes_clube LIMIT 1; "
                      "UPDATE leak SET cliente_id = '" +
                      gone.id + "', cpf_hash = '" + gone.cpf_hash + "', email = '" + gone.email +
                      "', _cdc_seq = 999999; INSERT INTO raw.clientes_clube SELECT * FROM leak")
                  .ok());
  auto leaked = Pdv({"subject", "verify", request});
  EXPECT_EQ(leaked.exit_code, 1) << leaked.output;
  EXPECT_EQ(Json(leaked)["layers"]["raw"]["found"], 1) << leaked.output;
  EXPECT_FALSE(Json(leaked)["clean"].get<bool>());
  // The remedy: forget by cliente_id again; the same request, and it is gone.
  auto forgot_again =
      Pdv({"subject", "forget", "--cliente-id", gone.id, "--at-source", "--rewrite"});
  ASSERT_EQ(forgot_again.exit_code, 0) << forgot_again.output;
  EXPECT_EQ(Json(forgot_again)["request_id"], request);
  EXPECT_EQ(Json(forgot_again)["layers"]["raw"]["rows"], 1);
  EXPECT_EQ(Pdv({"subject", "verify", request}).exit_code, 0);
  // Every layer, by SQL: nothing of either (the kept one only at the source).
  for (const Person* p : {&gone, &kept}) {
    for (const char* table :
         {"raw.clientes_clube", "staging.stg_clientes_clube", "marts.dim_clientes_clube"}) {
      EXPECT_EQ(ScalarInt(wh, fmt::format("SELECT count(*) FROM {} t WHERE cliente_id = '{}' OR "
                                          "to_jsonb(t)->>'cpf_hash' = '{}' OR "
                                          "to_jsonb(t)->>'email' = '{}'",
                                          table, p->id, p->cpf_hash, p->email)),
                0)
          << table;
    }
  }
  EXPECT_EQ(
      ScalarInt(oltp, "SELECT count(*) FROM clientes_clube WHERE cliente_id = '" + gone.id + "'"),
      0);
  EXPECT_EQ(
      ScalarInt(oltp, "SELECT count(*) FROM clientes_clube WHERE cliente_id = '" + kept.id + "'"),
      1);
  // The table files (rewritten: --rewrite) and every Redis key: no byte of the person.
  for (const char* table :
       {"raw.clientes_clube", "staging.stg_clientes_clube", "marts.dim_clientes_clube"}) {
    std::string files = TableFiles(wh, table);
    ASSERT_FALSE(files.empty()) << table;
    EXPECT_EQ(files.find(gone.email), std::string::npos) << table;
    EXPECT_EQ(files.find(gone.cpf_hash), std::string::npos) << table;
    EXPECT_EQ(files.find(UuidBytes(gone.id)), std::string::npos) << table;
  }
  std::string redis = RedisBytes();
  ASSERT_FALSE(redis.empty());
  for (const Person* p : {&gone, &kept}) {
    EXPECT_EQ(redis.find(UuidBytes(p->id)), std::string::npos);
    EXPECT_EQ(redis.find(HexBytes(p->cpf_hash).substr(0, 12)), std::string::npos);
    EXPECT_EQ(redis.find(p->email), std::string::npos);
  }
  // No stage logged anything of the person, and neither did the commands.
  for (const auto& stage : stages_) {
    for (const std::string& s : {gone.email, gone.cpf_hash, gone.cpf}) {
      EXPECT_EQ(stage->Output().find(s), std::string::npos) << stage->Output();
    }
  }
  // The register holds no PII.
  std::string reg = Scalar(wh,
                           "SELECT string_agg(r::text, ' ') FROM (SELECT * FROM "
                           "platform.erasure_register) r") +
                    Scalar(wh, "SELECT string_agg(q::text, ' ') FROM platform.erasure_requests q");
  for (const Person* p : {&gone, &kept}) {
    for (const std::string& s : {p->id, p->cpf_hash, p->email, p->cpf}) {
      EXPECT_EQ(reg.find(s), std::string::npos);
    }
  }
  // Issue 33: the platform's own contract holds after an erasure (the erased tombstone's
  // NULL cpf_hash is what the dimension's tests allow): its tests, a build and its tests.
  for (const char* command : {"test", "build", "test"}) {
    auto r = Pdv({"transform", command, "--platform"});
    EXPECT_EQ(r.exit_code, 0) << command << ": " << r.output;
  }
}

// Issue 33 item 4: a restore of a warehouse backup taken before an erasure brings the
// person back, and the register's file (outside the warehouse, which the restore cannot
// roll back) takes them out again: `pdv subject reapply` erases them from every layer,
// twice without harm; a register file it cannot read whole stops it (and forget) before
// anything changes.
TEST_F(SubjectTest, RestoreOfABackupTakenBeforeTheForgetBringsNobodyBackAfterReapply) {
  const std::filesystem::path register_file = Path("erasure-register");
  std::ofstream(Path("pdv.yaml"), std::ios::app)
      << "erasure_register: " << register_file.string() << "\n";
  auto load = Pdv({"generate", "--initial", "300", "--cpf-out", Path("cpfs").string()});
  ASSERT_EQ(load.exit_code, 0) << load.output;
  StartPipeline();
  ASSERT_NO_FATAL_FAILURE(CaughtUp());
  ASSERT_EQ(Pdv({"transform", "snapshot", "--platform"}).exit_code, 0);
  auto key = Pdv({"apikey", "create", "caixa-restore"});
  ASSERT_EQ(key.exit_code, 0) << key.output;
  const std::string api_key = Lines(key.output)[0];
  std::vector<std::string> cpfs = Lines(ReadFile(Path("cpfs")));
  struct Person {
    std::string cpf, id, cpf_hash, email;
  };
  auto person = [&](const std::string& cpf) {
    auto doc = Json(Pdv({"subject", "export", "--cpf", cpf}));
    return Person{cpf, doc["subject"]["cliente_ids"][0], doc["oltp"][0]["cpf_hash"],
                  doc["oltp"][0]["email"]};
  };
  // One erased at the source too, one whose source system keeps the row (so cdc sees
  // them again at every snapshot), one who stays.
  Person at_source = person(cpfs[5]), kept = person(cpfs[6]), other = person(cpfs[7]);
  auto wh = Connect(pg_->Url("warehouse"));
  auto admin = Connect(pg_->Url("postgres"));
  auto in_layers = [&](const Person& p) {
    int64_t n = 0;
    for (const char* table : {"raw.clientes_clube", "staging.stg_clientes_clube",
                              "marts.dim_clientes_clube", "snapshots.snap_clientes_clube"}) {
      n += ScalarInt(wh, fmt::format("SELECT count(*) FROM {} t WHERE cliente_id = '{}' OR "
                                     "to_jsonb(t)->>'cpf_hash' = '{}' OR to_jsonb(t)->>'email' = "
                                     "'{}'",
                                     table, p.id, p.cpf_hash, p.email));
    }
    return n;
  };
  ASSERT_GT(in_layers(at_source), 0);

  // The backup, then the erasures.
  const std::string dump = Path("warehouse.dump").string();
  std::string dumped = RunCommandOutput(
      {"sh", "-c",
       fmt::format("/usr/lib/postgresql/15/bin/pg_dump -Fc -f '{}' '{}' && echo DUMP_OK", dump,
                   pg_->Url("warehouse"))});
  ASSERT_NE(dumped.find("DUMP_OK"), std::string::npos) << dumped;
  auto forgot = Pdv({"subject", "forget", "--cpf", at_source.cpf, "--at-source"});
  ASSERT_EQ(forgot.exit_code, 0) << forgot.output;
  auto forgot_kept = Pdv({"subject", "forget", "--cpf", kept.cpf});
  ASSERT_EQ(forgot_kept.exit_code, 0) << forgot_kept.output;
  const std::string request = Json(forgot)["request_id"],
                    request_kept = Json(forgot_kept)["request_id"];
  EXPECT_NE(Json(forgot)["not_covered"]["backups"].get<std::string>().find("pdv subject reapply"),
            std::string::npos);
  // The file: mode 0600, two requests, HMACs only.
  std::string register_text = ReadFile(register_file);
  EXPECT_EQ(std::filesystem::status(register_file).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_NE(register_text.find(request), std::string::npos);
  EXPECT_NE(register_text.find(request_kept), std::string::npos);
  for (const Person* p : {&at_source, &kept}) {
    for (const std::string& s : {p->id, p->cpf_hash, p->email, p->cpf}) {
      EXPECT_EQ(register_text.find(s), std::string::npos) << "the register file names the person";
    }
  }
  ASSERT_NO_FATAL_FAILURE(CaughtUp());
  EXPECT_EQ(in_layers(at_source), 0);

  // The restore, with the stages stopped: the whole warehouse as the dump had it.
  for (auto& stage : stages_) {
    stage->Signal(SIGTERM);
    ASSERT_EQ(stage->Wait(30s), 0) << stage->Output();
  }
  stages_.clear();
  ASSERT_TRUE(admin.Exec("DROP DATABASE warehouse WITH (FORCE)").ok());
  ASSERT_TRUE(admin.Exec("CREATE DATABASE warehouse").ok());
  std::string restored = RunCommandOutput(
      {"sh", "-c",
       fmt::format("/usr/lib/postgresql/15/bin/pg_restore -d '{}' '{}' && echo RESTORE_OK",
                   pg_->Url("warehouse"), dump)});
  ASSERT_NE(restored.find("RESTORE_OK"), std::string::npos) << restored;
  wh = Connect(pg_->Url("warehouse"));
  // They are back, and the warehouse's register forgot them.
  ASSERT_GT(in_layers(at_source), 0);
  ASSERT_GT(in_layers(kept), 0);
  ASSERT_EQ(ScalarInt(wh, "SELECT count(*) FROM platform.erasure_register"), 0);
  auto lost = Pdv({"subject", "verify", request});
  EXPECT_EQ(lost.exit_code, 1) << lost.output;

  // A register file that cannot be read whole: reapply and forget stop before changing
  // anything, naming the file and line.
  const std::string raw_rows = "SELECT count(*) FROM raw.clientes_clube";
  const int64_t rows_restored = ScalarInt(wh, raw_rows);
  {
    std::ofstream(register_file, std::ios::app) << "{\"request_id\": \"not-a-uuid\"}\n";
    const int bad_line = static_cast<int>(Lines(ReadFile(register_file)).size());
    for (auto args : std::vector<std::vector<std::string>>{
             {"subject", "reapply"}, {"subject", "forget", "--cpf", other.cpf}}) {
      auto r = Pdv(args);
      EXPECT_EQ(r.exit_code, 1) << r.output;
      EXPECT_NE(r.output.find(fmt::format("erasure register {}:{}: \"request_id\" is not a "
                                          "lowercase UUID",
                                          register_file.string(), bad_line)),
                std::string::npos)
          << r.output;
    }
    EXPECT_EQ(ScalarInt(wh, raw_rows), rows_restored);
    EXPECT_GT(in_layers(other), 0);
    EXPECT_EQ(ScalarInt(wh, "SELECT count(*) FROM platform.erasure_register"), 0);
    // Not a file at all.
    std::filesystem::rename(register_file, Path("register.saved"));
    std::filesystem::create_directory(register_file);
    auto r = Pdv({"subject", "reapply"});
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("erasure register " + register_file.string() +
                            ": cannot read: not a regular file"),
              std::string::npos)
        << r.output;
    EXPECT_EQ(ScalarInt(wh, raw_rows), rows_restored);
    std::filesystem::remove(register_file);
    std::ofstream(register_file) << register_text;
    std::filesystem::permissions(
        register_file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }

  // Before any reapply, cdc reads the file: a new snapshot of the source (which keeps
  // one of them) leaves their row out of RAW although the restored warehouse's register
  // is empty. (The resync still marks them deleted, as every key RAW holds and the
  // snapshot lacks: a version with the cliente_id only, which reapply removes below.)
  const std::string kept_raw = "SELECT count(*) FROM raw.clientes_clube WHERE cliente_id = '" +
                               kept.id + "' AND _cdc_op <> 'd'";
  const int64_t kept_versions = ScalarInt(wh, kept_raw);
  auto resync = Pdv({"cdc", "--resync", "--once"});
  ASSERT_EQ(resync.exit_code, 0) << resync.output;
  EXPECT_NE(resync.output.find("erased_left_out=1"), std::string::npos) << resync.output;
  EXPECT_EQ(ScalarInt(wh, kept_raw), kept_versions);

  // Reapply, twice: the second finds no one and changes nothing.
  auto reapplied = Pdv({"subject", "reapply"});
  ASSERT_EQ(reapplied.exit_code, 0) << reapplied.output;
  auto report = Json(reapplied);
  EXPECT_EQ(report["requests"], 2) << report.dump(2);
  EXPECT_EQ(report["customers_found"], 2) << report.dump(2);
  EXPECT_GT(report["warehouse_register_restored"].get<int>(), 0) << report.dump(2);
  EXPECT_GE(report["layers"]["raw"]["rows"].get<int>(), 2) << report.dump(2);
  EXPECT_EQ(report["layers"]["dimension"]["rows"], 2) << report.dump(2);
  for (const Person* p : {&at_source, &kept}) {
    for (const std::string& s : {p->id, p->cpf_hash, p->email, p->cpf}) {
      EXPECT_EQ(reapplied.output.find(s), std::string::npos) << "the report names the person";
    }
  }
  auto again = Pdv({"subject", "reapply"});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(Json(again)["customers_found"], 0) << again.output;
  EXPECT_EQ(Json(again)["warehouse_register_restored"], 0) << again.output;
  EXPECT_FALSE(Json(again).contains("layers")) << again.output;
  EXPECT_EQ(ReadFile(register_file), register_text) << "reapply appended to a file in step";

  // The stages again (cdc with the restored, older checkpoint), a lookup through the API.
  StartPipeline();
  int api_port = 0;
  for (api_port = 19000 + static_cast<int>(::getpid() % 20000);
       !localsvc::LoopbackPortFree(api_port); ++api_port) {
  }
  stages_.push_back(std::make_unique<PdvProcess>(
      WithConfig(
          {"serve", "--listen", fmt::format("127.0.0.1:{}", api_port), "--rate-per-ip", "0"}),
      Path("serve.log")));
  auto lookup = [&](const Person& p) {
    return HttpStatus(GetWithKey(api_port, "/v1/clientes/" + p.cpf, api_key));
  };
  ASSERT_TRUE(WaitFor(30s, [&] { return lookup(other) == 200; })) << stages_.back()->Output();
  // A change of the kept one at the source (its row is still there) stays out of RAW.
  auto oltp = Connect(pg_->Url("source_db"));
  ASSERT_TRUE(
      oltp.Exec("UPDATE clientes_clube SET ultima_atualizacao = now() WHERE cliente_id = '" +
                kept.id + "'")
          .ok());
  ASSERT_NO_FATAL_FAILURE(CaughtUp());
  for (const Person* p : {&at_source, &kept}) {
    EXPECT_EQ(in_layers(*p), 0) << p->id;
    EXPECT_EQ(lookup(*p), 404);
  }
  std::string redis = RedisBytes();
  ASSERT_FALSE(redis.empty());
  for (const Person* p : {&at_source, &kept}) {
    EXPECT_EQ(redis.find(UuidBytes(p->id)), std::string::npos);
    EXPECT_EQ(redis.find(HexBytes(p->cpf_hash).substr(0, 10)), std::string::npos);
  }
  for (const std::string& r : {request, request_kept}) {
    auto proof = Pdv({"subject", "verify", r});
    EXPECT_EQ(proof.exit_code, 0) << proof.output;
    EXPECT_TRUE(Json(proof)["register_file"]["holds_request"].get<bool>()) << proof.output;
  }
  EXPECT_EQ(Json(Pdv({"subject", "verify", request_kept}))["layers"]["oltp"]["found"], 1);
  EXPECT_EQ(lookup(other), 200);
}

// raw.retention_days: superseded versions older than that go, in batches, while cdc
// streams; the latest state of every customer stays, and reconcile stays clean. The
// versions' age is set back in the test (time cannot be made to pass).
TEST_F(SubjectTest, RetentionRemovesOldSupersededVersionsAndKeepsEveryLatestState) {
  auto load = Pdv({"generate", "--initial", "400"});
  ASSERT_EQ(load.exit_code, 0) << load.output;
  StartPipeline();
  ASSERT_EQ(
      Pdv({"generate", "--rate", "300", "--duration", "2", "--delete-share", "0.1"}).exit_code, 0);
  ASSERT_NO_FATAL_FAILURE(CaughtUp());
  auto wh = Connect(pg_->Url("warehouse"));
  const std::string superseded =
      "SELECT count(*) FROM raw.clientes_clube o WHERE _cdc_committed_at < now() - interval "
      "'5 days' AND EXISTS (SELECT 1 FROM raw.clientes_clube n WHERE n.cliente_id = o.cliente_id "
      "AND (n._cdc_lsn, n._cdc_seq) > (o._cdc_lsn, o._cdc_seq))";
  // The snapshot's versions become ten days old.
  ASSERT_TRUE(wh.Exec("UPDATE raw.clientes_clube SET _cdc_committed_at = now() - interval '10 "
                      "days' WHERE _cdc_op = 'r'")
                  .ok());
  int64_t old_superseded = ScalarInt(wh, superseded);
  ASSERT_GT(old_superseded, 0);
  int64_t aged = ScalarInt(wh, "SELECT count(*) FROM raw.clientes_clube WHERE _cdc_op = 'r'");
  auto status_before = Pdv({"status"});
  EXPECT_NE(status_before.output.find("RAW's oldest version: 10.0 days old"), std::string::npos)
      << status_before.output;

  // cdc again, with a retention of 5 days, under a workload.
  stages_[0]->Signal(SIGTERM);
  ASSERT_EQ(stages_[0]->Wait(30s), 0);
  std::ofstream(Path("pdv.yaml"), std::ios::app) << "raw:\n  retention_days: 5\n";
  stages_[0] = std::make_unique<PdvProcess>(WithConfig({"cdc"}), Path("cdc-retention.log"));
  PdvProcess workload(WithConfig({"generate", "--rate", "100", "--delete-share", "0"}),
                      Path("workload.log"));
  // Until its main() runs, a SIGTERM would end it by default (exit 143): the stop below
  // waits for it to be running (a CI run on a loaded machine pruned faster than it started).
  ASSERT_TRUE(WaitFor(60s, [&] {
    return workload.Output().find("event=oltp_schema_ready") != std::string::npos;
  })) << workload.Output();
  ASSERT_TRUE(WaitFor(60s, [&] { return ScalarInt(wh, superseded) == 0; })) << stages_[0]->Output();
  // cdc logs the total after its last batch has committed (and one more has found nothing),
  // so the line follows the rows' going: wait for it.
  const std::string retention_line =
      fmt::format("event=cdc_retention removed_versions={}", old_superseded);
  EXPECT_TRUE(WaitFor(30s, [&] {
    return stages_[0]->Output().find(retention_line) != std::string::npos;
  })) << stages_[0]->Output();
  workload.Signal(SIGTERM);
  ASSERT_EQ(workload.Wait(30s), 0);
  ASSERT_NO_FATAL_FAILURE(CaughtUp());
  // What stays of the old versions: latest states only.
  EXPECT_LE(ScalarInt(wh, "SELECT count(*) FROM raw.clientes_clube WHERE _cdc_op = 'r'"),
            aged - old_superseded);
  // Every customer's latest state is OLTP's.
  ExpectRawEqualsOltp(pg_->Url("source_db"), pg_->Url("warehouse"));
}

// Data minimisation: reconcile names a difference by cliente_id and column, never by value,
// unless asked with --show-values.
TEST_F(SubjectTest, ReconcileNamesDifferencesByIdAndColumnNotByValue) {
  auto load = Pdv({"generate", "--initial", "200"});
  ASSERT_EQ(load.exit_code, 0) << load.output;
  StartPipeline();
  ASSERT_NO_FATAL_FAILURE(CaughtUp());
  auto oltp = Connect(pg_->Url("source_db"));
  auto wh = Connect(pg_->Url("warehouse"));
  std::string id =
      Scalar(oltp, "SELECT cliente_id FROM clientes_clube ORDER BY cliente_id LIMIT 1");
  std::string email =
      Scalar(oltp, "SELECT email FROM clientes_clube WHERE cliente_id = '" + id + "'");
  // RAW's latest version of one customer altered behind the pipeline's back.
  ASSERT_TRUE(wh.Exec("UPDATE raw.clientes_clube SET email = 'altered@example.invalid' WHERE "
                      "cliente_id = '" +
                      id + "'")
                  .ok());
  auto r = Pdv({"reconcile", "--wait", "30"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("different " + id + ": email"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(email), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("altered@example.invalid"), std::string::npos) << r.output;
  auto shown = Pdv({"reconcile", "--wait", "30", "--show-values"});
  EXPECT_NE(shown.output.find("altered@example.invalid"), std::string::npos) << shown.output;
}

}  // namespace
}  // namespace pdv::testing
