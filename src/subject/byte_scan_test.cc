// The byte scan on files made here: every encoding of a value is found, also across the
// scanner's chunk boundary, in the file where it is and nowhere else; what can't be read
// is listed with the reason.

#include "subject/byte_scan.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>

namespace pdv::subject {
namespace {
namespace fs = std::filesystem;

class ByteScanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("pdv-byte-scan-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "base" / "16384");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const fs::path& rel, const std::string& bytes) {
    std::ofstream(dir_ / rel, std::ios::binary) << bytes;
  }
  IdentifyingValues person_{.cpf = "52998224725",
                            .cpf_hash = std::string(62, 'a') + "0f",
                            .cliente_id = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
                            .email = "maria.souza@exemplo.com.br",
                            .nome_completo = "Maria Souza"};
  fs::path dir_;
};

TEST_F(ByteScanTest, EveryEncodingIsFoundWhereItIsAndTheRestIsListed) {
  auto needles = NeedlesFor(person_);
  auto bytes_of = [&](const std::string& label) {
    for (const auto& n : needles)
      if (n.label == label) return n.bytes;
    return std::string();
  };
  ASSERT_EQ(bytes_of("cpf (formatted)"), "529.982.247-25");
  ASSERT_EQ(bytes_of("cliente_id (16 bytes)").size(), 16u);
  ASSERT_EQ(bytes_of("cliente_id (16 bytes)")[0], '\x0f');
  ASSERT_EQ(bytes_of("cpf_hash (bytes)"), std::string(12, '\xaa'));
  // A heap page with the uuid's bytes; a WAL segment with the e-mail across the 8 MiB
  // chunk boundary; an AOF with the formatted CPF; a clean file.
  Write("base/16384/16390", std::string(100, '\0') + bytes_of("cliente_id (16 bytes)") + "x");
  std::string wal(8 << 20, 'w');
  wal.replace(wal.size() - 5, 0, person_.email);
  Write("000000010000000000000001", wal);
  Write("appendonly.aof.1.incr.aof", "*3\r\n$4\r\nHSET\r\n$14\r\n529.982.247-25\r\n");
  Write("clean", std::string(1000, 'c'));
  Write("dump.rdb", "REDIS0011" + std::string(10, '\0'));
  fs::create_symlink("/etc/passwd", dir_ / "link");
  ASSERT_EQ(::mkfifo((dir_ / "fifo").c_str(), 0600), 0);

  auto r = ScanFiles(dir_, needles, {}, {});
  ASSERT_TRUE(r.ok()) << r.message();
  std::map<std::string, std::string> found;  // file name -> label
  for (const auto& f : r->found) found[fs::path(f.file).filename().string()] += f.label + ";";
  EXPECT_EQ(found["16390"], "cliente_id (16 bytes);");
  EXPECT_EQ(found["000000010000000000000001"], "email;");
  EXPECT_EQ(found["appendonly.aof.1.incr.aof"], "cpf (formatted);");
  EXPECT_EQ(found.count("clean"), 0u);
  EXPECT_EQ(r->found.size(), 3u);
  for (const auto& f : r->found) {
    if (f.label == "email") {
      EXPECT_EQ(f.offset, (8u << 20) - 5);
    }
  }
  std::map<std::string, std::string> skipped;
  for (const auto& s : r->not_scanned) skipped[fs::path(s.file).filename().string()] = s.reason;
  EXPECT_NE(skipped["link"].find("symbolic link"), std::string::npos);
  EXPECT_NE(skipped["fifo"].find("not a regular file"), std::string::npos);
  EXPECT_NE(skipped["dump.rdb"].find("LZF"), std::string::npos);
  EXPECT_EQ(r->files, 5u);
  // A Redis known to write uncompressed RDB: its RDB counts as scanned.
  r = ScanFiles(dir_, needles, {.rdb_uncompressed = true}, {});
  ASSERT_TRUE(r.ok());
  for (const auto& s : r->not_scanned) {
    EXPECT_NE(fs::path(s.file).filename(), "dump.rdb");
  }
  // A directory that can't be listed is an error.
  EXPECT_FALSE(ScanFiles(dir_ / "missing", needles, {}, {}).ok());
}

}  // namespace
}  // namespace pdv::subject
