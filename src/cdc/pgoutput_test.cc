#include "cdc/pgoutput.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>

namespace pdv::cdc {
namespace {

struct Captured {
  std::string lsn;
  std::string bytes;
};

// Messages captured from a real PostgreSQL 15 by tests/golden/pgoutput/capture.sh.
std::vector<Captured> Golden(const std::string& name) {
  std::ifstream in(std::string(PDV_GOLDEN_DIR) + "/pgoutput/" + name);
  EXPECT_TRUE(in.good()) << name;
  std::vector<Captured> out;
  for (std::string lsn, hex; in >> lsn >> hex;) {
    std::string bytes;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
      bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    out.push_back({lsn, bytes});
  }
  return out;
}

std::vector<Message> DecodeAll(const std::vector<Captured>& captured) {
  PgOutputDecoder decoder;
  std::vector<Message> out;
  for (const auto& c : captured) {
    auto m = decoder.Decode(c.bytes);
    EXPECT_TRUE(m.ok()) << c.lsn << ": " << m.message();
    if (m.ok()) out.push_back(std::move(*m));
  }
  return out;
}

template <typename T>
std::vector<T> All(const std::vector<Message>& messages) {
  std::vector<T> out;
  for (const auto& m : messages) {
    if (auto* t = std::get_if<T>(&m)) out.push_back(*t);
  }
  return out;
}

std::string Text(const ColumnValue& v) {
  switch (v.kind) {
    case ColumnValue::Kind::kNull:
      return "NULL";
    case ColumnValue::Kind::kUnchangedToast:
      return "UNCHANGED";
    default:
      return v.data;
  }
}

TEST(PgOutputGoldenTest, BasicProtocolOneMessages) {
  auto messages = DecodeAll(Golden("basic.hex"));
  ASSERT_EQ(messages.size(), 48u);
  EXPECT_EQ(All<BeginMessage>(messages).size(), 13u);
  EXPECT_EQ(All<CommitMessage>(messages).size(), 13u);

  auto types = All<TypeMessage>(messages);
  ASSERT_FALSE(types.empty());
  EXPECT_EQ(types[0].ns, "public");
  EXPECT_EQ(types[0].name, "humor");

  auto relations = All<RelationMessage>(messages);
  ASSERT_EQ(relations.size(), 4u);
  const auto& t = relations[0];
  EXPECT_EQ(t.ns, "public");
  EXPECT_EQ(t.name, "t");
  EXPECT_EQ(t.replica_identity, 'd');
  ASSERT_EQ(t.columns.size(), 6u);
  EXPECT_TRUE(t.columns[0].key);
  EXPECT_EQ(t.columns[0].name, "id");
  EXPECT_EQ(t.columns[0].type_oid, 23u);  // int4
  EXPECT_FALSE(t.columns[1].key);
  EXPECT_EQ(t.columns[1].type_oid, 25u);    // text
  EXPECT_EQ(t.columns[3].type_oid, 1700u);  // numeric(10,2)
  EXPECT_EQ(t.columns[3].type_modifier, (10 << 16 | 2) + 4);
  EXPECT_EQ(t.columns[5].type_oid, types[0].type_oid);
  // The column added later comes with a new Relation message.
  EXPECT_EQ(relations.back().columns.size(), 7u);
  EXPECT_EQ(relations.back().columns.back().name, "extra");
  auto full = std::find_if(relations.begin(), relations.end(),
                           [](const RelationMessage& r) { return r.name == "full_t"; });
  ASSERT_NE(full, relations.end());
  EXPECT_EQ(full->replica_identity, 'f');

  auto inserts = All<InsertMessage>(messages);
  ASSERT_EQ(inserts.size(), 6u);
  std::vector<std::string> first;
  for (const auto& v : inserts[0].new_tuple) first.push_back(Text(v));
  EXPECT_EQ(first, (std::vector<std::string>{"1", "ana", "NULL", "12.50", "t", "feliz"}));
  EXPECT_EQ(inserts[1].new_tuple[1].data, "com\ttab e acentuação");
  EXPECT_GT(inserts[1].new_tuple[2].data.size(), 6000u);  // the TOASTed value, in full
  EXPECT_EQ(Text(inserts.back().new_tuple[0]), "5");

  auto updates = All<UpdateMessage>(messages);
  ASSERT_EQ(updates.size(), 4u);
  EXPECT_EQ(updates[0].old_kind, 0);  // default replica identity: no old tuple
  EXPECT_EQ(Text(updates[0].new_tuple[1]), "ana maria");
  // An update that leaves a TOASTed column alone does not send it.
  EXPECT_EQ(Text(updates[1].new_tuple[2]), "UNCHANGED");
  EXPECT_EQ(Text(updates[1].new_tuple[3]), "99.99");
  // A key change sends the old key.
  EXPECT_EQ(updates[2].old_kind, 'K');
  EXPECT_EQ(Text(updates[2].old_tuple[0]), "1");
  EXPECT_EQ(Text(updates[2].old_tuple[1]), "NULL");
  EXPECT_EQ(Text(updates[2].new_tuple[0]), "10");
  // REPLICA IDENTITY FULL sends the whole old row.
  EXPECT_EQ(updates[3].old_kind, 'O');
  EXPECT_EQ(Text(updates[3].old_tuple[1]), "x");
  EXPECT_EQ(Text(updates[3].new_tuple[1]), "y");

  auto deletes = All<DeleteMessage>(messages);
  ASSERT_EQ(deletes.size(), 2u);
  EXPECT_EQ(deletes[0].old_kind, 'K');
  EXPECT_EQ(Text(deletes[0].old_tuple[0]), "10");
  EXPECT_EQ(deletes[1].old_kind, 'O');

  auto truncates = All<TruncateMessage>(messages);
  ASSERT_EQ(truncates.size(), 1u);
  EXPECT_EQ(truncates[0].relation_ids, std::vector<uint32_t>{t.relation_id});

  auto logical = All<LogicalMessage>(messages);
  ASSERT_EQ(logical.size(), 1u);
  EXPECT_TRUE(logical[0].transactional);
  EXPECT_EQ(logical[0].prefix, "pdv");
  EXPECT_EQ(logical[0].content, "hello");

  auto origins = All<OriginMessage>(messages);
  ASSERT_EQ(origins.size(), 1u);
  EXPECT_EQ(origins[0].name, "upstream");
  EXPECT_EQ(origins[0].commit_lsn, 0xABCDEFu);

  // Commit LSNs increase, each Commit closes its Begin.
  auto begins = All<BeginMessage>(messages);
  auto commits = All<CommitMessage>(messages);
  for (size_t i = 0; i < commits.size(); ++i) {
    EXPECT_EQ(commits[i].commit_lsn, begins[i].final_lsn);
    EXPECT_GT(commits[i].end_lsn, commits[i].commit_lsn);
    if (i > 0) {
      EXPECT_GT(commits[i].commit_lsn, commits[i - 1].commit_lsn);
    }
  }
}

TEST(PgOutputGoldenTest, StreamedProtocolTwoTransactions) {
  auto messages = DecodeAll(Golden("streamed.hex"));
  auto starts = All<StreamStartMessage>(messages);
  auto stops = All<StreamStopMessage>(messages);
  ASSERT_GE(starts.size(), 2u);
  EXPECT_EQ(starts.size(), stops.size());
  EXPECT_TRUE(starts[0].first_segment);
  uint32_t big = starts[0].xid;

  auto commits = All<StreamCommitMessage>(messages);
  ASSERT_EQ(commits.size(), 1u);
  EXPECT_EQ(commits[0].xid, big);
  auto aborts = All<StreamAbortMessage>(messages);
  ASSERT_EQ(aborts.size(), 2u);
  EXPECT_EQ(aborts[0].xid, big);
  EXPECT_NE(aborts[0].subxid, big) << "the rolled-back savepoint";
  EXPECT_EQ(aborts[1].xid, aborts[1].subxid) << "the whole aborted transaction";

  // Changes inside streamed blocks carry the id of their (sub)transaction; the block's
  // Stream Start names the top-level one.
  std::map<uint32_t, int> inserts_by_block, inserts_by_xid;
  std::set<uint32_t> subxids;
  uint32_t block = 0;
  for (const auto& m : messages) {
    if (auto* s = std::get_if<StreamStartMessage>(&m)) block = s->xid;
    if (std::holds_alternative<StreamStopMessage>(m)) block = 0;
    if (auto* i = std::get_if<InsertMessage>(&m)) {
      inserts_by_block[block]++;
      if (block == big) subxids.insert(i->xid);
      inserts_by_xid[i->xid]++;
    }
  }
  // The kept half in full; of the rolled-back half, what was streamed before the abort.
  EXPECT_EQ(inserts_by_xid[big], 1001);
  EXPECT_GT(inserts_by_xid[aborts[0].subxid], 0);
  EXPECT_EQ(inserts_by_block[big], 1001 + inserts_by_xid[aborts[0].subxid]);
  EXPECT_EQ(inserts_by_block[0], 1);  // the small transaction, not streamed
  EXPECT_EQ(subxids.size(), 2u);      // the top level and the savepoint
  EXPECT_TRUE(subxids.count(aborts[0].subxid));
  auto updates = All<UpdateMessage>(messages);
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_NE(updates[0].xid, 0u);
}

TEST(PgOutputErrorTest, EveryTruncationIsAnErrorNamingMessageAndOffset) {
  for (const auto& c : Golden("basic.hex")) {
    for (size_t len = 1; len < c.bytes.size(); ++len) {
      PgOutputDecoder decoder;
      auto m = decoder.Decode(std::string_view(c.bytes).substr(0, len));
      if (m.ok()) continue;  // e.g. a CString cut right after its NUL in a valid shorter form
      EXPECT_EQ(m.message().rfind("pgoutput: ", 0), 0u) << m.message();
      EXPECT_NE(m.message().find(" at offset "), std::string::npos) << m.message();
      EXPECT_NE(m.message().find(MessageName(c.bytes[0])), std::string::npos) << m.message();
    }
  }
  PgOutputDecoder decoder;
  // An Insert cut inside its tuple: 'I', relid, 'N', 2 columns, 't', len 5, "ab".
  std::string insert(
      "I\0\0\x40\x05N\0\x02t\0\0\0\x05"
      "ab",
      15);
  EXPECT_EQ(decoder.Decode(insert).message(),
            "pgoutput: truncated Insert message at offset 13: bytes needs 5 bytes, 2 left");
  EXPECT_EQ(decoder.Decode(std::string("Z", 1)).message(),
            "pgoutput: unknown message type 0x5a at offset 0");
  EXPECT_EQ(decoder.Decode("").message(), "pgoutput: empty message at offset 0");
  std::string bad_kind("I\0\0\x40\x05N\0\x01x", 9);
  EXPECT_EQ(decoder.Decode(bad_kind).message(),
            "pgoutput: malformed Insert message at offset 9 of 9: column 1 has unknown kind 0x78");
  EXPECT_EQ(decoder.Decode(std::string("E", 1)).message(),
            "pgoutput: malformed Stream Stop message at offset 1 of 1: Stream Stop outside a "
            "streamed block");
  std::string trailing("C\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x02\0\0\0\0\0\0\0\x03!", 27);
  EXPECT_NE(decoder.Decode(trailing).message().find("trailing bytes"), std::string::npos);
}

TEST(PgOutputHandmadeTest, BinaryNullAndUnchangedValues) {
  PgOutputDecoder decoder;
  // Insert into relation 7: three columns, binary int4 42, NULL, unchanged TOAST.
  std::string insert(
      "I\0\0\0\x07N\0\x03"
      "b\0\0\0\x04\0\0\0\x2a"
      "n"
      "u",
      19);
  auto m = decoder.Decode(insert);
  ASSERT_TRUE(m.ok()) << m.message();
  const auto& tuple = std::get<InsertMessage>(*m).new_tuple;
  ASSERT_EQ(tuple.size(), 3u);
  EXPECT_EQ(tuple[0].kind, ColumnValue::Kind::kBinary);
  EXPECT_EQ(tuple[0].data, std::string("\0\0\0\x2a", 4));
  EXPECT_EQ(tuple[1].kind, ColumnValue::Kind::kNull);
  EXPECT_EQ(tuple[2].kind, ColumnValue::Kind::kUnchangedToast);
  // Inside a streamed block the same message starts with a transaction id.
  ASSERT_TRUE(decoder.Decode(std::string("S\0\0\x01\0\x01", 6)).ok());
  EXPECT_TRUE(decoder.in_stream());
  std::string streamed = std::string("I\0\0\x01\0", 5) + insert.substr(1);
  auto s = decoder.Decode(streamed);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(std::get<InsertMessage>(*s).xid, 0x100u);
  EXPECT_EQ(std::get<InsertMessage>(*s).relation_id, 7u);
  EXPECT_FALSE(decoder.Decode(std::string("S\0\0\x01\0\x01", 6)).ok()) << "nested Stream Start";
  ASSERT_TRUE(decoder.Decode("E").ok());
  EXPECT_FALSE(decoder.in_stream());
}

TEST(ReplicationEnvelopeTest, XLogDataKeepaliveAndStatus) {
  std::string w(
      "w\0\0\0\0\0\0\0\x10\0\0\0\0\0\0\0\x20\0\0\0\0\0\0\0\x30"
      "BODY",
      29);
  auto m = DecodeCopyData(w);
  ASSERT_TRUE(m.ok()) << m.message();
  auto& x = std::get<XLogData>(*m);
  EXPECT_EQ(x.wal_start, 0x10u);
  EXPECT_EQ(x.wal_end, 0x20u);
  EXPECT_EQ(x.payload, "BODY");
  std::string k("k\0\0\0\x01\0\0\0\x02\0\0\0\0\0\0\0\x03\x01", 18);
  auto ka = DecodeCopyData(k);
  ASSERT_TRUE(ka.ok()) << ka.message();
  EXPECT_EQ(std::get<PrimaryKeepalive>(*ka).wal_end, 0x100000002u);
  EXPECT_TRUE(std::get<PrimaryKeepalive>(*ka).reply_requested);
  EXPECT_FALSE(DecodeCopyData(k.substr(0, 10)).ok());
  EXPECT_FALSE(DecodeCopyData("x").ok());

  std::string r = EncodeStandbyStatus(1, 2, 3, 4, false);
  ASSERT_EQ(r.size(), 34u);
  EXPECT_EQ(r[0], 'r');
  EXPECT_EQ(r[16], 2);
  EXPECT_EQ(r[33], 0);
}

TEST(LsnTest, TextRoundTrip) {
  EXPECT_EQ(LsnText(0x16B374D848ull), "16/B374D848");
  EXPECT_EQ(ParseLsn("16/B374D848"), 0x16B374D848ull);
  EXPECT_EQ(ParseLsn("0/0"), 0u);
  EXPECT_FALSE(ParseLsn("16B374D848").has_value());
  EXPECT_FALSE(ParseLsn("1/G").has_value());
  EXPECT_FALSE(ParseLsn("/1").has_value());
}

}  // namespace
}  // namespace pdv::cdc
