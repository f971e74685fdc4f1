// ContentDecoder: every coding round-trips through any split of its input and any output size,
// memory stays within the caller's buffer, and truncated, corrupt or trailing input is caught.
#include "http/content_decoder.hpp"

#include <gtest/gtest.h>

#include <random>

#include "support/compress.hpp"

namespace uvget {
namespace {

std::string sample(std::size_t n, unsigned seed = 7) {
  // Half text that compresses, half random bytes that do not.
  std::mt19937 rng(seed);
  std::string s;
  s.reserve(n);
  while (s.size() < n) {
    if ((s.size() / 4096) % 2 == 0)
      s += "line " + std::to_string(s.size()) + " of a body that compresses well\n";
    else
      s.push_back(static_cast<char>(rng()));
  }
  s.resize(n);
  return s;
}

struct Outcome {
  std::string out;
  Error error;
  bool finished = false;
  std::size_t largest_step = 0;
};

// Feeds `encoded` in pieces of `in_step` and pulls with a buffer of `out_size`, as the client
// does: while a pull fills the buffer, pull again before feeding more.
Outcome run(std::string_view coding, std::string_view encoded, std::size_t in_step,
            std::size_t out_size) {
  Outcome o;
  auto d = make_content_decoder(coding);
  if (!d) {
    o.error = d.error();
    return o;
  }
  std::vector<std::byte> buf(out_size);
  auto bytes = std::as_bytes(std::span(encoded.data(), encoded.size()));
  for (std::size_t at = 0; at < bytes.size() || at == 0;) {
    std::size_t n = std::min(in_step, bytes.size() - at);
    std::span<const std::byte> in = bytes.subspan(at, n);
    at += n;
    for (;;) {
      auto got = (*d)->decode(in, buf);
      if (!got) {
        o.error = got.error();
        return o;
      }
      o.largest_step = std::max(o.largest_step, *got);
      o.out.append(reinterpret_cast<const char*>(buf.data()), *got);
      if (in.empty() && *got < buf.size()) break;
    }
    if (bytes.empty()) break;
  }
  o.finished = (*d)->finished();
  return o;
}

class EachCoding : public testing::TestWithParam<const char*> {};

TEST_P(EachCoding, RoundTripsThroughAnySplit) {
  std::string body = sample(200'000);
  std::string enc = test::encode(GetParam(), body);
  for (auto [in_step, out_size] : {std::pair<std::size_t, std::size_t>{1, 1},
                                   {7, 3},
                                   {1000, 64 * 1024},
                                   {enc.size(), 16 * 1024},
                                   {16 * 1024, 1}}) {
    if (in_step == 1 && out_size == 1 && std::string_view(GetParam()) == "br") in_step = 3;
    Outcome o = run(GetParam(), enc, in_step, out_size);
    ASSERT_FALSE(o.error) << o.error.message();
    EXPECT_TRUE(o.finished) << in_step << "/" << out_size;
    ASSERT_EQ(o.out.size(), body.size()) << in_step << "/" << out_size;
    EXPECT_EQ(o.out, body);
    EXPECT_LE(o.largest_step, out_size);
  }
}

TEST_P(EachCoding, AnEmptyBodyDecodesToNothing) {
  std::string enc = test::encode(GetParam(), "");
  Outcome o = run(GetParam(), enc, 100, 100);
  ASSERT_FALSE(o.error) << o.error.message();
  EXPECT_TRUE(o.finished);
  EXPECT_EQ(o.out, "");
}

TEST_P(EachCoding, ATruncatedBodyIsNotFinished) {
  std::string body = sample(50'000);
  std::string enc = test::encode(GetParam(), body);
  for (std::size_t cut : {enc.size() - 1, enc.size() / 2, std::size_t{1}}) {
    Outcome o = run(GetParam(), enc.substr(0, cut), 4096, 16 * 1024);
    EXPECT_FALSE(o.finished) << "cut at " << cut;
    EXPECT_LE(o.out.size(), body.size());  // a cut trailer may follow every data byte
  }
}

TEST_P(EachCoding, BytesAfterTheEndAreAnError) {
  std::string enc = test::encode(GetParam(), sample(10'000)) + "garbage";
  Outcome o = run(GetParam(), enc, 4096, 16 * 1024);
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error.code, Errc::bad_encoding);
  EXPECT_NE(o.error.message().find(GetParam()), std::string::npos) << o.error.message();
}

TEST_P(EachCoding, CorruptInputIsAnErrorNotACrash) {
  std::string body = sample(100'000);
  std::string enc = test::encode(GetParam(), body);
  int errors = 0;
  for (std::size_t at = 0; at < enc.size(); at += enc.size() / 17 + 1) {
    std::string bad = enc;
    bad[at] = static_cast<char>(bad[at] ^ 0x5a);
    Outcome o = run(GetParam(), bad, 4096, 16 * 1024);
    if (o.error) {
      ++errors;
      EXPECT_EQ(o.error.code, Errc::bad_encoding);
    } else if (std::string_view(GetParam()) == "gzip" && o.finished) {
      // gzip's CRC-32: a flip it lets through is in a header field (time, OS), not the data.
      EXPECT_EQ(o.out, body) << "flip at " << at;
    }
  }
  EXPECT_GT(errors, 0);
}

INSTANTIATE_TEST_SUITE_P(Codings, EachCoding, testing::Values("gzip", "deflate", "br", "zstd"));

TEST(ContentDecoder, AHugeExpansionComesOutOneBufferAtATime) {
  std::string zeros(64 << 20, '\0');  // 64 MiB of zeros: a small gzip, zstd or br body
  for (const char* coding : {"gzip", "br", "zstd"}) {
    std::string enc = test::encode(coding, zeros);
    ASSERT_LT(enc.size(), std::size_t{1} << 20) << coding;
    auto d = make_content_decoder(coding);
    ASSERT_TRUE(d);
    std::vector<std::byte> buf(64 * 1024);
    auto in = std::as_bytes(std::span(enc.data(), enc.size()));
    std::uint64_t total = 0;
    int pulls = 0;
    for (;;) {
      auto got = (*d)->decode(in, buf);
      ASSERT_TRUE(got) << got.error().message();
      ASSERT_LE(*got, buf.size());
      total += *got;
      ++pulls;
      if (in.empty() && *got < buf.size()) break;
    }
    EXPECT_EQ(total, zeros.size()) << coding;
    EXPECT_GE(pulls, static_cast<int>(zeros.size() / buf.size())) << coding;
    EXPECT_TRUE((*d)->finished()) << coding;
  }
}

TEST(ContentDecoder, GzipMembersOneAfterAnotherAreOneBody) {
  std::string enc = test::gzip("first part, ") + test::gzip("second part");
  Outcome o = run("gzip", enc, 5, 4);
  ASSERT_FALSE(o.error) << o.error.message();
  EXPECT_TRUE(o.finished);
  EXPECT_EQ(o.out, "first part, second part");
}

TEST(ContentDecoder, ZstdFramesOneAfterAnotherAreOneBody) {
  std::string enc = test::zstd("first, ") + test::zstd("second");
  Outcome o = run("zstd", enc, 3, 4);
  ASSERT_FALSE(o.error) << o.error.message();
  EXPECT_TRUE(o.finished);
  EXPECT_EQ(o.out, "first, second");
}

TEST(ContentDecoder, DeflateIsReadInEitherOfItsForms) {
  std::string body = sample(30'000);
  for (bool raw : {false, true}) {
    for (std::size_t step : {std::size_t{1}, std::size_t{4096}}) {
      Outcome o = run("deflate", test::deflate(body, raw), step, 1000);
      ASSERT_FALSE(o.error) << o.error.message();
      EXPECT_TRUE(o.finished);
      EXPECT_EQ(o.out, body) << (raw ? "raw" : "zlib") << " step " << step;
    }
  }
}

TEST(ContentDecoder, AListOfCodingsIsUndoneInReverse) {
  std::string body = sample(100'000);
  // Content-Encoding: gzip, br — gzip applied first, then br.
  std::string enc = test::brotli(test::gzip(body));
  for (auto [in_step, out_size] :
       {std::pair<std::size_t, std::size_t>{1, 1}, {4096, 64 * 1024}, {enc.size(), 5}}) {
    Outcome o = run("gzip, br", enc, in_step, out_size);
    ASSERT_FALSE(o.error) << o.error.message();
    EXPECT_TRUE(o.finished);
    EXPECT_EQ(o.out, body);
  }
  // Cut short: not finished.
  Outcome cut = run("gzip, br", enc.substr(0, enc.size() - 3), 4096, 4096);
  EXPECT_FALSE(cut.finished);
}

TEST(ContentDecoder, NamesAndIdentity) {
  for (const char* none : {"", "identity", " Identity ", "identity, identity"}) {
    auto d = make_content_decoder(none);
    ASSERT_TRUE(d) << none;
    EXPECT_EQ(*d, nullptr) << none;
  }
  for (const char* one : {"gzip", "x-gzip", "GZIP", "deflate", "br", "zstd", "identity, gzip"}) {
    auto d = make_content_decoder(one);
    ASSERT_TRUE(d) << one;
    EXPECT_NE(*d, nullptr) << one;
  }
  auto unknown = make_content_decoder("compress");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Errc::bad_encoding);
  EXPECT_NE(unknown.error().message().find("'compress'"), std::string::npos);
  auto many = make_content_decoder("gzip, gzip, gzip, gzip");
  ASSERT_FALSE(many);
  EXPECT_EQ(many.error().code, Errc::bad_encoding);
  EXPECT_EQ(accepted_encodings(), "gzip, deflate, br, zstd");
}

}  // namespace
}  // namespace uvget
