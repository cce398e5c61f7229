#pragma once

// The byte-level half of an erasure's proof: every file under a directory (a `pdv up`
// data directory, or one an operator names) searched for a person's identifying values
// in the encodings PostgreSQL and Redis store them in, and the list of what could not be
// read, with why. Knows nothing of databases: it reads files.
//
// What the encodings cover: PostgreSQL keeps text inline and as it is (a varlena header,
// then the bytes) unless a row passes ~2 kB (TOAST compression; the platform's rows are
// far smaller) and uuid as its 16 bytes; Redis keeps strings as they are in the AOF (RESP)
// and in an RDB written with `rdbcompression no` (what `pdv up` configures). A compressed
// RDB's strings over 20 bytes may be LZF-compressed: such a file is listed as not fully
// scanned.

#include <cstdint>
#include <filesystem>
#include <stop_token>
#include <string>
#include <vector>

#include "common/status.h"

namespace pdv::subject {

// One value to look for, in one encoding ("email", "cpf (digits)", "cliente_id (16
// bytes)", ...).
struct Needle {
  std::string label;
  std::string bytes;
};

// The values of one person, as Export gives them; any may be empty (unknown).
struct IdentifyingValues {
  std::string cpf;         // 11 digits
  std::string cpf_hash;    // 64 lowercase hex digits
  std::string cliente_id;  // a UUID, text form
  std::string email, nome_completo, telefone;
};

// Every encoding of each known value: text as it is; the CPF also formatted
// (123.456.789-09); the hash also as its raw bytes (the cache's bucket field); the UUID
// also as its 16 bytes (PostgreSQL's uuid, the cache's id index).
std::vector<Needle> NeedlesFor(const IdentifyingValues& person);

struct ByteScanFinding {
  std::string file;
  std::string label;
  uint64_t offset = 0;
};

struct ByteScanSkip {
  std::string file;
  std::string reason;
};

struct ByteScanResult {
  uint64_t files = 0;  // read to the end
  uint64_t bytes = 0;
  std::vector<ByteScanFinding> found;     // the first occurrence of each needle in each file
  std::vector<ByteScanSkip> not_scanned;  // unreadable, not a regular file, or compressed
};

struct ByteScanOptions {
  // The Redis whose files these are writes its RDB (and AOF base) with rdbcompression
  // no, as `pdv up` configures it: an RDB file is then scanned in full, not listed.
  bool rdb_uncompressed = false;
};

// Reads every file under `root` (symbolic links are listed, not followed). An error only
// when `root` itself can't be listed; stopped early, the result says so in not_scanned.
Result<ByteScanResult> ScanFiles(const std::filesystem::path& root,
                                 const std::vector<Needle>& needles, const ByteScanOptions& options,
                                 std::stop_token stop);

// The same for the files named (a relation's segments): one that does not exist is
// skipped (a relation has as many segments as its size needs), one that can't be read is
// listed in not_scanned.
ByteScanResult ScanFileList(const std::vector<std::filesystem::path>& files,
                            const std::vector<Needle>& needles, std::stop_token stop);

}  // namespace pdv::subject
