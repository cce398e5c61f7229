#include "generate/customer_generator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <regex>
#include <set>

#include "common/cpf_hasher.h"

namespace pdv::generate {
namespace {

constexpr int64_t kAsOf = 1'764'000'000'000'000;  // 2025-11-24, fixed for determinism
constexpr char kKey[] = "test-key-0123456789";

class GeneratorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto loaded = ReferenceData::Load();
    ASSERT_TRUE(loaded.ok()) << loaded.message();
    data_ = new ReferenceData(std::move(*loaded));
  }
  static void TearDownTestSuite() { delete data_; }
  static std::vector<Customer> Make(uint64_t seed, uint64_t from, uint64_t n) {
    CustomerGenerator gen(*data_, seed, kKey);
    std::vector<Customer> out;
    for (uint64_t s = from; out.size() < n; ++s) {
      if (auto c = gen.Make(s, kAsOf, false)) out.push_back(std::move(*c));
    }
    return out;
  }
  static ReferenceData* data_;
};
ReferenceData* GeneratorTest::data_ = nullptr;

TEST_F(GeneratorTest, ReferenceDataIsConsistent) {
  EXPECT_GE(data_->female_names.size(), 50u);
  EXPECT_GE(data_->male_names.size(), 50u);
  EXPECT_GE(data_->surnames.size(), 50u);
  std::set<std::string> ufs;
  for (const auto& c : data_->cities) ufs.insert(c.uf);
  EXPECT_EQ(ufs.size(), 27u);  // every state and the Federal District
  // São Paulo city is in SP, area code 11, CEPs 01000-000..19999-999.
  auto sp = std::find_if(data_->cities.begin(), data_->cities.end(),
                         [](const City& c) { return c.name == "São Paulo"; });
  ASSERT_NE(sp, data_->cities.end());
  EXPECT_EQ(sp->uf, "SP");
  EXPECT_EQ(sp->ddd, 11);
  EXPECT_EQ(sp->cep_min, 1000000);
  EXPECT_EQ(sp->cep_max, 19999999);
}

TEST_F(GeneratorTest, EveryCpfValidAndUniqueEveryEmailUnique) {
  auto customers = Make(7, 1, 50'000);
  std::set<std::string> cpfs, hashes, emails, ids;
  CpfHasher hasher(kKey);
  for (const auto& c : customers) {
    ASSERT_TRUE(Cpf::Parse(c.cpf.digits()).ok()) << c.cpf.digits();
    EXPECT_EQ(c.cpf_hash, hasher.Hash(c.cpf));
    cpfs.insert(c.cpf.digits());
    hashes.insert(c.cpf_hash);
    emails.insert(c.email);
    ids.insert(UuidText(c.cliente_id));
  }
  EXPECT_EQ(cpfs.size(), customers.size());
  EXPECT_EQ(hashes.size(), customers.size());
  EXPECT_EQ(emails.size(), customers.size());
  EXPECT_EQ(ids.size(), customers.size());
}

TEST_F(GeneratorTest, CpfsNeverRepeatAcrossSeedsOrFarApartSerials) {
  std::set<std::string> cpfs;
  for (uint64_t s : {1ull, 10'000ull, 123'456'789ull, 500'000'000ull, 999'990'000ull}) {
    for (uint64_t i = 0; i < 1000; ++i) {
      if (auto cpf = CustomerGenerator::CpfFor(s + i)) cpfs.insert(cpf->digits());
    }
  }
  EXPECT_GE(cpfs.size(), 4990u);  // only all-same-digit bases are skipped
}

TEST_F(GeneratorTest, PlacesPhonesAndCepsAgree) {
  std::map<std::string, const City*> by_name;
  for (const auto& c : data_->cities) by_name[c.name + "/" + c.uf] = &c;
  std::regex phone(R"(\((\d\d)\) 9\d{4}-\d{4})");
  std::regex cep(R"((\d{5})-(\d{3}))");
  for (const auto& c : Make(3, 1, 20'000)) {
    auto city = by_name.find(c.cidade + "/" + c.estado);
    ASSERT_NE(city, by_name.end()) << c.cidade << "/" << c.estado;
    std::smatch m;
    ASSERT_TRUE(std::regex_match(c.telefone, m, phone)) << c.telefone;
    EXPECT_EQ(std::stoi(m[1]), city->second->ddd) << c.cidade;
    ASSERT_TRUE(std::regex_match(c.cep, m, cep)) << c.cep;
    int number = std::stoi(m[1].str() + m[2].str());
    EXPECT_GE(number, city->second->cep_min) << c.cep << " " << c.estado;
    EXPECT_LE(number, city->second->cep_max) << c.cep << " " << c.estado;
  }
}

TEST_F(GeneratorTest, NamesSexAndEmailsFitTogether) {
  std::set<std::string> female(data_->female_names.begin(), data_->female_names.end());
  std::set<std::string> male(data_->male_names.begin(), data_->male_names.end());
  std::regex email(R"([a-z]+[._]?[a-z]+\d+@[a-z.]+\.(com|com\.br))");
  for (const auto& c : Make(5, 1, 5'000)) {
    ASSERT_TRUE(c.sexo == "F" || c.sexo == "M");
    EXPECT_TRUE((c.sexo == "F" ? female : male).count(c.primeiro_nome)) << c.nome_completo;
    EXPECT_EQ(c.nome_completo.rfind(c.primeiro_nome + " ", 0), 0u);
    EXPECT_TRUE(std::regex_match(c.email, email)) << c.email << " " << c.nome_completo;
    EXPECT_NE(c.email.find(std::to_string(c.serial) + "@"), std::string::npos);
  }
  EXPECT_EQ(AsciiLower("Antônia Conceição"), "antoniaconceicao");
  EXPECT_EQ(AsciiLower("JÚLIO"), "julio");
}

TEST_F(GeneratorTest, DistributionsWithinStatedBounds) {
  auto customers = Make(11, 1, 40'000);
  using namespace std::chrono;
  year_month_day as_of{sys_days{days{kAsOf / 86'400'000'000}}};
  std::vector<int64_t> tickets;
  int ativo = 0, opt_in = 0, female = 0;
  std::map<std::string, int> canal, origem;
  for (const auto& c : customers) {
    year_month_day birth{sys_days{days{c.data_nascimento}}};
    int age = static_cast<int>(as_of.year()) - static_cast<int>(birth.year());
    if (year_month_day{as_of.year(), birth.month(), birth.day()} > as_of) --age;
    EXPECT_GE(age, 18) << DateText(c.data_nascimento);
    EXPECT_LE(age, 80) << DateText(c.data_nascimento);
    EXPECT_GE(c.ticket_medio_centavos, 2000);
    EXPECT_LE(c.ticket_medio_centavos, 30000);
    tickets.push_back(c.ticket_medio_centavos);
    EXPECT_LE(c.data_cadastro_us, kAsOf);
    EXPECT_GE(c.data_cadastro_us, kAsOf - int64_t{3} * 366 * 86'400'000'000);
    EXPECT_GE(c.ultima_atualizacao_us, c.data_cadastro_us);
    EXPECT_LE(c.ultima_atualizacao_us, kAsOf);
    ativo += c.status_clube == "ATIVO";
    EXPECT_TRUE(c.status_clube == "ATIVO" || c.status_clube == "INATIVO");
    opt_in += c.opt_in_marketing;
    female += c.sexo == "F";
    canal[c.canal_cadastro]++;
    origem[c.origem_campanha]++;
  }
  double n = static_cast<double>(customers.size());
  EXPECT_NEAR(ativo / n, 0.85, 0.02);
  EXPECT_NEAR(opt_in / n, 0.70, 0.02);
  EXPECT_NEAR(female / n, 0.51, 0.02);
  EXPECT_EQ(canal.size(), 3u);
  EXPECT_NEAR(canal["loja"] / n, 0.50, 0.02);
  EXPECT_NEAR(canal["app"] / n, 0.35, 0.02);
  EXPECT_NEAR(canal["site"] / n, 0.15, 0.02);
  EXPECT_EQ(origem.size(), 8u);
  // Right-skewed: the mean above the median, the median near R$ 75.
  std::sort(tickets.begin(), tickets.end());
  double median = tickets[tickets.size() / 2] / 100.0;
  double mean = 0;
  for (auto t : tickets) mean += t / 100.0;
  mean /= n;
  EXPECT_NEAR(median, 75.0, 5.0);
  EXPECT_GT(mean, median + 2.0);
}

TEST_F(GeneratorTest, SameSeedSameDataOtherSeedOtherData) {
  auto a = Make(42, 1, 500), b = Make(42, 1, 500), c = Make(43, 1, 500);
  int differing_names = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].cliente_id, b[i].cliente_id);
    EXPECT_EQ(a[i].nome_completo, b[i].nome_completo);
    EXPECT_EQ(a[i].email, b[i].email);
    EXPECT_EQ(a[i].telefone, b[i].telefone);
    EXPECT_EQ(a[i].cep, b[i].cep);
    EXPECT_EQ(a[i].ticket_medio_centavos, b[i].ticket_medio_centavos);
    EXPECT_EQ(a[i].data_cadastro_us, b[i].data_cadastro_us);
    EXPECT_NE(a[i].cliente_id, c[i].cliente_id);
    differing_names += a[i].nome_completo != c[i].nome_completo;
  }
  EXPECT_GT(differing_names, 400);
}

TEST(CustomerTextTest, Formats) {
  EXPECT_EQ(CentsText(12345), "123.45");
  EXPECT_EQ(CentsText(2000), "20.00");
  EXPECT_EQ(DateText(0), "1970-01-01");
  EXPECT_EQ(DateText(19'723), "2024-01-01");
  EXPECT_EQ(TimestampText(1'704'067'200'000'001), "2024-01-01 00:00:00.000001");
  std::array<uint8_t, 16> id{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef,
                             0x80, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07};
  EXPECT_EQ(UuidText(id), "12345678-9abc-4def-8001-020304050607");
}

}  // namespace
}  // namespace pdv::generate
