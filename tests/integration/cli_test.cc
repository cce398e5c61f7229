// The command line: help, usage errors and configuration errors, from the real binary.

#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <regex>

#include "localsvc/scratch_dir.h"
#include "test_support.h"

namespace pdv::testing {
namespace {

TEST(CliTest, HelpListsEverySubcommandAndOption) {
  auto r = RunPdv({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("generate"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--config"), std::string::npos);
  auto g = RunPdv({"generate", "--help"});
  EXPECT_EQ(g.exit_code, 0);
  for (const char* opt : {"--oltp-url", "--seed", "--initial", "--rate", "--duration",
                          "--delete-share", "--retry-timeout", "--cpf-out", "--as-of"}) {
    EXPECT_NE(g.output.find(opt), std::string::npos) << opt << "\n" << g.output;
  }
  EXPECT_NE(g.output.find("PDV_GENERATE_RATE"), std::string::npos) << g.output;
}

TEST(CliTest, UsageErrorsExitTwoWithOneLine) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {}, {"generate", "--no-such-option"}, {"frobnicate"}, {"generate", "--rate"}}) {
    auto r = RunPdv(args);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_EQ(Lines(r.output).size(), 1u) << r.output;
    EXPECT_EQ(r.output.rfind("pdv", 0), 0u) << r.output;
  }
  auto r = RunPdv({"generate", "--no-such-option"});
  EXPECT_NE(r.output.find("--no-such-option"), std::string::npos) << r.output;
}

TEST(CliTest, ConfigurationErrorsNameKeyAndSource) {
  ::unsetenv("PDV_CPF_KEY");
  auto missing = RunPdv({"generate"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.output,
            "pdv generate: config: cpf_key is not set (set it in pdv.yaml, with PDV_CPF_KEY or "
            "with its flag)\n");

  auto bad_flag = RunPdv({"generate", "--rate", "fast"});
  EXPECT_EQ(bad_flag.exit_code, 2);
  EXPECT_EQ(bad_flag.output,
            "pdv: config: generate.rate from flag --rate: expected a number from 0 to 1000000, "
            "got 'fast'\n");

  auto dir = localsvc::ScratchDir::Create("pdv-test-cli");
  ASSERT_TRUE(dir.ok());
  auto yaml = dir->path() / "pdv.yaml";
  std::ofstream(yaml) << "oltp_url: postgresql://127.0.0.1/x\ngenerate:\n  sed: 3\n";
  auto unknown = RunPdv({"--config", yaml.string(), "generate"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_EQ(unknown.output, "pdv: config: " + yaml.string() + ":3: unknown key 'generate.sed'\n");

  ::setenv("PDV_CPF_KEY", "tiny", 1);
  auto short_key = RunPdv({"generate"});
  ::unsetenv("PDV_CPF_KEY");
  EXPECT_EQ(short_key.exit_code, 2);
  EXPECT_EQ(short_key.output,
            "pdv: config: cpf_key from environment PDV_CPF_KEY: expected at least 16 characters, "
            "got 4 (value hidden)\n");

  ::setenv("PDV_CPF_KEY", "a-long-enough-test-key", 1);
  auto as_of = RunPdv({"generate", "--as-of", "yesterday"});
  ::unsetenv("PDV_CPF_KEY");
  EXPECT_EQ(as_of.exit_code, 2);
  EXPECT_EQ(as_of.output,
            "pdv generate: --as-of: expected YYYY-MM-DDTHH:MM:SSZ, got 'yesterday'\n");
}

TEST(CliTest, GlobalOptionsAreTakenBeforeOrAfterTheSubcommand) {
  auto dir = localsvc::ScratchDir::Create("pdv-test-cli");
  ASSERT_TRUE(dir.ok());
  std::string missing = (dir->path() / "missing.yaml").string();
  std::string expected = "pdv: config: file " + missing + " does not exist\n";
  std::string in_dir =
      "pdv: config: file " + (dir->path() / "nowhere" / "pdv.yaml").string() + " does not exist\n";
  std::string nowhere = (dir->path() / "nowhere").string();
  for (const auto& sub : std::vector<std::vector<std::string>>{{"generate"},
                                                               {"cdc"},
                                                               {"transform", "run"},
                                                               {"cache", "sync"},
                                                               {"serve"},
                                                               {"apikey", "create", "k"},
                                                               {"apikey", "list"},
                                                               {"status"},
                                                               {"monitor", "--api-key-file", "k"},
                                                               {"down"},
                                                               {"reconcile"}}) {
    std::string name = sub[0];
    std::vector<std::string> after = sub, before = {"--config", missing};
    after.insert(after.end(),
                 {"--config", missing, "--log-level", "debug", "--log-format", "json"});
    before.insert(before.end(), sub.begin(), sub.end());
    for (const auto& args : {after, before}) {
      auto r = RunPdv(args);
      EXPECT_EQ(r.exit_code, 2) << name << ": " << r.output;
      EXPECT_EQ(r.output, expected) << name;
    }
    std::vector<std::string> dir_after = sub, dir_before = {"--data-dir", nowhere};
    dir_after.insert(dir_after.end(), {"--data-dir", nowhere});
    dir_before.insert(dir_before.end(), sub.begin(), sub.end());
    for (const auto& args : {dir_after, dir_before}) {
      auto r = RunPdv(args);
      EXPECT_EQ(r.exit_code, 2) << name << ": " << r.output;
      EXPECT_EQ(r.output, in_dir) << name;
    }
  }
}

// A pdv process holds secrets in memory: it dumps no core (issue 11).
TEST(CliTest, ProcessesDumpNoCore) {
  auto dir = localsvc::ScratchDir::Create("pdv-test-cli");
  ASSERT_TRUE(dir.ok());
  ::setenv("PDV_CPF_KEY", "a-long-enough-test-key", 1);
  // The API runs with Redis away: alive long enough to look at.
  auto port = localsvc::FreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  PdvProcess p({"serve", "--listen", "127.0.0.1:" + std::to_string(*port), "--redis-url",
                "redis://127.0.0.1:1/0"},
               dir->path() / "out.log");
  ::unsetenv("PDV_CPF_KEY");
  ASSERT_TRUE(WaitFor(std::chrono::seconds(20), [&] {
    return ReadFile(dir->path() / "out.log").find("serve_listening") != std::string::npos;
  })) << ReadFile(dir->path() / "out.log");
  std::string limits = ReadFile("/proc/" + std::to_string(p.pid()) + "/limits");
  EXPECT_TRUE(std::regex_search(limits, std::regex("Max core file size +0 +0 "))) << limits;
  p.Signal(SIGKILL);
  p.Wait(std::chrono::seconds(10));
}

}  // namespace
}  // namespace pdv::testing
