#include "api/request.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace pdv::api {
namespace {

TEST(RouteTest, RoutesAndMethods) {
  EXPECT_EQ(RouteRequest("GET", "/v1/clientes/52998224725").route, Route::kCustomer);
  EXPECT_EQ(RouteRequest("GET", "/v1/clientes/52998224725").arg, "52998224725");
  EXPECT_EQ(RouteRequest("GET", "/v1/clientes/529.982.247-25?x=1").arg, "529.982.247-25");
  EXPECT_EQ(RouteRequest("POST", "/v1/clientes/52998224725").route, Route::kMethodNotAllowed);
  EXPECT_EQ(RouteRequest("GET", "/v1/clientes/").route, Route::kNotFound);
  EXPECT_EQ(RouteRequest("GET", "/v1/clientes/1/2").route, Route::kNotFound);
  auto legacy = RouteRequest("GET", "/cliente/abc/status");
  EXPECT_EQ(legacy.route, Route::kLegacyStatus);
  EXPECT_EQ(legacy.arg, "abc");
  EXPECT_EQ(RouteRequest("GET", "/cliente//status").route, Route::kNotFound);
  EXPECT_EQ(RouteRequest("GET", "/health").route, Route::kHealth);
  EXPECT_EQ(RouteRequest("DELETE", "/metrics").route, Route::kMethodNotAllowed);
  EXPECT_EQ(RouteRequest("GET", "/").route, Route::kNotFound);
}

TEST(EligibilityTest, RuleAndMotivo) {
  cache::CustomerRecord r{.ativo = true, .opt_in_marketing = true, .elegivel_a_partir_de = 1000};
  EXPECT_TRUE(Evaluate(r, 1000).eligible);
  EXPECT_EQ(Evaluate(r, 999).motivo, "EM_CARENCIA");
  r.opt_in_marketing = false;
  EXPECT_EQ(Evaluate(r, 2000).motivo, "SEM_OPT_IN");
  r.ativo = false;
  EXPECT_EQ(Evaluate(r, 2000).motivo, "INATIVO");
  r = {.ativo = true, .opt_in_marketing = true};
  EXPECT_EQ(Evaluate(r, 2000).motivo, "EM_CARENCIA") << "no eligibility start: not eligible";
}

TEST(JsonTest, ShapesAndRfc3339) {
  EXPECT_EQ(Rfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(Rfc3339(1709210096), "2024-02-29T12:34:56Z");  // a leap day
  EXPECT_EQ(Rfc3339(1798761599), "2026-12-31T23:59:59Z");
  EXPECT_EQ(Rfc3339(-1), "1969-12-31T23:59:59Z");  // before the epoch: floor, not truncation
  EXPECT_EQ(Rfc3339(-631152000), "1950-01-01T00:00:00Z");
  cache::CustomerRecord r{.ativo = true,
                          .opt_in_marketing = true,
                          .elegivel_a_partir_de = 10,
                          .atualizado_em = 5,
                          .ticket_centavos = 1050,
                          .origem_campanha = "verao",
                          .primeiro_nome = "Zoë \"Z\""};
  auto j = nlohmann::json::parse(CustomerJson(r, 20));
  EXPECT_EQ(j["primeiro_nome"], "Zoë \"Z\"");
  EXPECT_EQ(j["ticket_medio_estimado"], 10.5);
  EXPECT_EQ(j["elegivel_a_partir_de"], "1970-01-01T00:00:10Z");
  auto missing = nlohmann::json::parse(LegacyJson("x", nullptr, 0, 0.1));
  EXPECT_EQ(missing["status"], "CADASTRO INEXISTENTE");
  EXPECT_EQ(nlohmann::json::parse(ErrorJson("A", "b"))["erro"], "A");
}

// api.fields: data minimisation drops the optional fields from answers, nothing else.
TEST(JsonTest, AnswerFieldsLeaveOutWhatTheOperatorDrops) {
  cache::CustomerRecord r{.ativo = true, .origem_campanha = "verao", .primeiro_nome = "Ana"};
  auto none = ParseAnswerFields("none");
  ASSERT_TRUE(none.ok());
  auto j = nlohmann::json::parse(CustomerJson(r, 20, *none));
  EXPECT_FALSE(j.contains("primeiro_nome") || j.contains("ticket_medio_estimado") ||
               j.contains("origem_campanha"))
      << j.dump();
  EXPECT_EQ(j["status_clube"], "ATIVO");
  EXPECT_TRUE(j.contains("elegivel_promocao") && j.contains("cliente_id"));
  auto some = ParseAnswerFields("origem_campanha, ticket_medio_estimado");
  ASSERT_TRUE(some.ok());
  j = nlohmann::json::parse(CustomerJson(r, 20, *some));
  EXPECT_FALSE(j.contains("primeiro_nome"));
  EXPECT_EQ(j["origem_campanha"], "verao");
  EXPECT_TRUE(j.contains("ticket_medio_estimado"));
  auto bad = ParseAnswerFields("primeiro_nome,email");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("unknown field 'email'"), std::string::npos) << bad.message();
  auto all = ParseAnswerFields("primeiro_nome,ticket_medio_estimado,origem_campanha");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(CustomerJson(r, 20, *all), CustomerJson(r, 20));
}

TEST(RequestTest, OnlyChunkedAloneIsATransferEncodingTheApiDecodes) {
  for (const char* ok : {"chunked", "Chunked", " chunked ", "chunked,", ", chunked", "CHUNKED"}) {
    EXPECT_TRUE(IsChunkedOnly(ok)) << ok;
  }
  for (const char* bad : {"", "gzip, chunked", "chunked, chunked", "identity", "gzip",
                          "chunked;q=1", "chunkedx", "chunked, gzip", ","}) {
    EXPECT_FALSE(IsChunkedOnly(bad)) << bad;
  }
}

}  // namespace
}  // namespace pdv::api
