// The wire format: base64 both ways and strict, every bound of docs/sync.md
// answered with InvalidArgument (400) or OutOfSpace (413), and responses
// encoded as the document says.
#include <catch2/catch.hpp>

#include <string>

#include "keepstate/server/auth.h"
#include "keepstate/server/protocol.h"

namespace keepstate::server {
namespace {

TEST_CASE("protocol: base64 round-trips and rejects what is not canonical", "[server]") {
  for (const std::string& s : {std::string(), std::string("f"), std::string("fo"), std::string("foo"),
                              std::string("\xff\x00\x01\xfe", 4)}) {
    Result<std::string> back = Base64Decode(Base64Encode(s));
    REQUIRE(back.ok());
    CHECK(*back == s);
  }
  CHECK(Base64Encode("foob") == "Zm9vYg==");
  for (const char* bad : {"Zm9", "Zm9vY===", "Zm9vYh==", "Zm9v*g==", "=m9v", "Zg=a"}) {
    INFO(bad);
    CHECK(Base64Decode(bad).status().code() == Code::kInvalidArgument);
  }
}

TEST_CASE("protocol: a push decodes, and every bound is checked", "[server]") {
  Result<PushRequest> p = DecodePush(R"({"client":"abcdefgh","mutations":[{"id":7,"name":"t","args":"AAE="},)"
                                     R"({"id":8,"name":"u","args":""}]})");
  REQUIRE(p.ok());
  CHECK(p->client == "abcdefgh");
  REQUIRE(p->mutations.size() == 2);
  CHECK(p->mutations[0].id == 7);
  CHECK(p->mutations[0].args == std::string("\x00\x01", 2));
  auto code = [](std::string_view body, const Limits& limits = {}) { return DecodePush(body, limits).status().code(); };
  CHECK(code("") == Code::kInvalidArgument);
  CHECK(code("[]") == Code::kInvalidArgument);
  CHECK(code(R"({"client":"abcdefgh","mutations":[{"id":1,"name":"t","args":""}])") == Code::kInvalidArgument);
  CHECK(code(R"({"client":"short","mutations":[]})") == Code::kInvalidArgument);
  CHECK(code(R"({"client":"abcdefgh!","mutations":[]})") == Code::kInvalidArgument);
  CHECK(code(R"({"client":"abcdefgh","mutations":{}})") == Code::kInvalidArgument);
  CHECK(code(R"({"client":"abcdefgh","mutations":[{"id":0,"name":"t","args":""}]})") == Code::kInvalidArgument);
  CHECK(code(R"({"client":"abcdefgh","mutations":[{"id":-1,"name":"t","args":""}]})") == Code::kInvalidArgument);
  CHECK(code(R"({"client":"abcdefgh","mutations":[{"id":1.5,"name":"t","args":""}]})") == Code::kInvalidArgument);
  CHECK(code(R"({"client":"abcdefgh","mutations":[{"id":1,"name":"","args":""}]})") == Code::kInvalidArgument);
  CHECK(code(R"({"client":"abcdefgh","mutations":[{"id":1,"name":"t","args":"!!!!"}]})") == Code::kInvalidArgument);
  CHECK(code(R"({"client":"abcdefgh","mutations":[{"id":1,"name":"t","args":""},{"id":3,"name":"t","args":""}]})") ==
        Code::kInvalidArgument);  // not gap-free
  CHECK(code(std::string(100, '[')) == Code::kInvalidArgument);  // too deep
  Limits small;
  small.max_mutations = 1;
  small.max_name_bytes = 2;
  small.max_args_bytes = 3;
  small.max_body = 200;
  CHECK(code(R"({"client":"abcdefgh","mutations":[{"id":1,"name":"t","args":""},{"id":2,"name":"t","args":""}]})",
             small) == Code::kOutOfSpace);
  CHECK(code(R"({"client":"abcdefgh","mutations":[{"id":1,"name":"abc","args":""}]})", small) == Code::kOutOfSpace);
  CHECK(code(R"({"client":"abcdefgh","mutations":[{"id":1,"name":"ab","args":"AAAAAA=="}]})", small) ==
        Code::kOutOfSpace);
  CHECK(code(R"({"client":"abcdefgh","mutations":[{"id":1,"name":"ab","args":"AAAA"}]})", small) == Code::kOk);
  CHECK(code(std::string(201, ' '), small) == Code::kOutOfSpace);
}

TEST_CASE("protocol: a pull decodes, and its keys are bounded", "[server]") {
  Result<PullRequest> p = DecodePull(R"({"client":"abcdefgh","since":40,"keys":["a2V5"]})");
  REQUIRE(p.ok());
  CHECK(p->since == 40);
  CHECK(p->keys == std::vector<std::string>{"key"});
  CHECK(DecodePull(R"({"client":"abcdefgh","since":0})").ok());
  CHECK(DecodePull(R"({"client":"abcdefgh"})").status().code() == Code::kInvalidArgument);
  CHECK(DecodePull(R"({"client":"abcdefgh","since":"1"})").status().code() == Code::kInvalidArgument);
  CHECK(DecodePull(R"({"client":"abcdefgh","since":1,"keys":[""]})").status().code() == Code::kInvalidArgument);
  Limits small;
  small.max_keys = 1;
  small.max_key_bytes = 2;
  CHECK(DecodePull(R"({"client":"abcdefgh","since":1,"keys":["YQ==","Yg=="]})", small).status().code() ==
        Code::kOutOfSpace);
  CHECK(DecodePull(R"({"client":"abcdefgh","since":1,"keys":["YWJj"]})", small).status().code() == Code::kOutOfSpace);
  CHECK(DecodePokeHello(R"({"token":"t"})").ok());
  CHECK(*DecodePokeHello(R"({"token":"t"})") == "t");
  CHECK_FALSE(DecodePokeHello(R"({"token":1})").ok());
}

TEST_CASE("protocol: responses are encoded as docs/sync.md shows", "[server]") {
  PushResponse push{9, 42, {Failure{"c", 8, "invalid-argument", "no"}}};
  CHECK(EncodePush(push) ==
        R"({"lastMutationId":9,"version":42,"failed":[{"id":8,"code":"invalid-argument","message":"no"}]})");
  PullResponse pull;
  pull.version = 42;
  pull.last_mutation_id = 9;
  pull.entries = {{"a", std::string("b")}, {"c", std::nullopt}};
  CHECK(EncodePull(pull) == R"({"version":42,"lastMutationId":9,"failed":[],"entries":[["YQ==","Yg=="],["Yw==",null]]})");
  pull.full = true;
  CHECK(EncodePull(pull) == R"({"version":42,"lastMutationId":9,"failed":[],"full":true})");
  CHECK(EncodePoke(3) == R"({"version":3})");
  PokePatch patch{2, {{"a", std::string("b")}, {"c", std::nullopt}}};
  CHECK(EncodePoke(3, &patch) == R"({"version":3,"from":2,"entries":[["YQ==","Yg=="],["Yw==",null]]})");
}

TEST_CASE("protocol: names of spaces and clients", "[server]") {
  CHECK(ValidSpace("a.b-c_9"));
  CHECK_FALSE(ValidSpace(""));
  CHECK_FALSE(ValidSpace("a/b"));
  CHECK_FALSE(ValidSpace(std::string(129, 'a')));
  CHECK(ValidClient("abcdefgh"));
  CHECK_FALSE(ValidClient("abcdefg"));
  CHECK_FALSE(ValidClient("abcdefg."));
  CHECK_FALSE(ValidClient(std::string(65, 'a')));
}

TEST_CASE("auth: the token file grants spaces to tokens, with comments", "[server]") {
  Result<TokenFile> file = TokenFile::Parse("# tokens\n* master\n\nnotes   t-notes # the notes app\n");
  REQUIRE(file.ok());
  CHECK(file->Check("anything", "master").ok());
  CHECK(file->Check("notes", "t-notes").ok());
  CHECK_FALSE(file->Check("other", "t-notes").ok());
  CHECK_FALSE(file->Check("notes", "t-note").ok());
  CHECK_FALSE(file->Check("notes", "").ok());
  CHECK(*file->Check("notes", "t-notes") != *file->Check("notes", "master"));
  CHECK(*file->Check("notes", "master") == *file->Check("x", "master"));
  CHECK(TokenFile::Parse("one two three\n").status().code() == Code::kInvalidArgument);
  CHECK(TokenFile::Load("/nonexistent/tokens").status().code() == Code::kNotFound);
}

}  // namespace
}  // namespace keepstate::server
