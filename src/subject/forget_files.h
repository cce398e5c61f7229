#pragma once

// Forget's last step on a `pdv up` data directory, whose servers and files are the
// platform's own: after the rows are gone from every layer and the relations that still
// held them rewritten (erase_layers.h), the other bytes too (the WAL written before
// removed, Redis's AOF rewritten, the person's line of cpfs.txt), then every file of the
// directory read back for the person's values (byte_scan.h). Internal to the subject
// component.

#include <filesystem>
#include <nlohmann/json.hpp>
#include <stop_token>
#include <string>
#include <vector>

#include "common/status.h"
#include "pg/connection.h"
#include "subject/byte_scan.h"
#include "subject/subject.h"

namespace pdv::subject {

// The person's identifying values from an export (every layer's rows), before erasure.
std::vector<IdentifyingValues> ValuesOf(const nlohmann::json& exported, const std::string& cpf);

// The CPF (11 digits) of the lines of `cpf_list` whose hash under `cpf_key` is one of
// `cpf_hashes`: a subject named by cliente_id has its CPF found there. Empty: none.
std::vector<std::string> CpfsInList(const std::filesystem::path& cpf_list,
                                    const std::string& cpf_key,
                                    const std::vector<std::string>& cpf_hashes);

// Needles for every value of `people` and of `cpfs`, deduplicated.
std::vector<Needle> NeedlesOf(const std::vector<IdentifyingValues>& people,
                              const std::vector<std::string>& cpfs);

// The byte scan of `data_dir` as the receipt and the proof show it: {files, bytes,
// seconds, found: [{file, value}], not_scanned: [{file, reason}], source_system: [{file,
// value}] (values in the OLTP's files, not erased without --at-source), clean}.
nlohmann::json ScanDataDirectory(const std::filesystem::path& data_dir,
                                 const std::vector<Needle>& needles, bool at_source,
                                 std::stop_token stop);

// The files step: WAL of the warehouse (and of the OLTP with at_source), the AOF, the CPF
// list, then the scan. {"wal": ..., "oltp_wal": ..., "aof": ..., "cpf_list": ..., "scan":
// ...}; an error when a step fails (the rows are erased already; a rerun of forget
// repeats the files step). `source_wal` false: the OLTP's WAL is not waited for (cdc,
// whose slot keeps it, is not running), and "oltp_wal" says so.
Result<nlohmann::json> ForgetFiles(const Sources& sources, pg::Connection& oltp,
                                   pg::Connection& warehouse, const ForgetOptions& options,
                                   const std::vector<Needle>& needles,
                                   const std::vector<std::string>& cpfs, std::stop_token stop,
                                   bool source_wal = true);

}  // namespace pdv::subject
