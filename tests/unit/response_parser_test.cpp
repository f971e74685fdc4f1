// Unit tests for uvget::ResponseParser: heads, bodies, framing, limits and errors, fed in pieces.
#include <gtest/gtest.h>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "http/response_parser.hpp"

namespace uvget {
namespace {

using Status = ResponseParser::Status;

constexpr std::size_t kMaxHeaderBytes = 8 * 1024;
constexpr std::size_t kMaxHeaderCount = 100;

// Records what the parser reports; the head is copied because the parser owns it.
struct Recorder final : ResponseParser::Handler {
  std::vector<Response> heads;
  std::string body;
  int body_calls = 0;

  void on_response_head(Response& head) override { heads.push_back(head); }
  void on_response_body(std::span<const std::byte> bytes) override {
    ++body_calls;
    body.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
};

struct Fixture {
  Recorder rec;
  ResponseParser parser;

  explicit Fixture(std::size_t max_bytes = kMaxHeaderBytes, std::size_t max_count = kMaxHeaderCount)
      : parser(rec, max_bytes, max_count) {}

  ResponseParser::Progress feed(std::string_view s) { return parser.feed(s.data(), s.size()); }
};

using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view kChunked =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Transfer-Encoding: chunked\r\n"
    "X-Long-Header-Name: some value, with; punctuation\r\n"
    "\r\n"
    "5;name=value\r\n"
    "hello\r\n"
    "1;quoted=\"a b\";flag\r\n"
    " \r\n"
    "A\r\n"
    "0123456789\r\n"
    "0\r\n"
    "Trailer-One: t1\r\n"
    "Trailer-Two: t2\r\n"
    "\r\n";
constexpr std::string_view kChunkedBody = "hello 0123456789";

Headers chunked_headers() {
  return {{"Content-Type", "text/plain"},
          {"Transfer-Encoding", "chunked"},
          {"X-Long-Header-Name", "some value, with; punctuation"}};
}

// --- Framing --------------------------------------------------------------------------------

TEST(ResponseParser, ContentLengthBodyCompletesInOneFeed) {
  Fixture f;
  f.parser.start(false);
  std::string_view in = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello";
  auto p = f.feed(in);
  EXPECT_EQ(p.status, Status::complete);
  EXPECT_EQ(p.consumed, in.size());
  ASSERT_EQ(f.rec.heads.size(), 1u);
  const Response& h = f.rec.heads[0];
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.reason, "OK");
  EXPECT_EQ(h.http_minor, 1);
  EXPECT_EQ(h.headers, (Headers{{"Content-Length", "5"}, {"X-A", "b"}}));
  EXPECT_EQ(h.content_length(), 5u);
  EXPECT_EQ(f.rec.body, "hello");
  EXPECT_EQ(f.parser.body_bytes(), 5u);
  EXPECT_TRUE(f.parser.started());
  EXPECT_TRUE(f.parser.head_done());
  EXPECT_TRUE(f.parser.keep_alive());
  EXPECT_FALSE(f.parser.error());
  EXPECT_EQ(f.parser.finish_on_eof(), Status::complete);  // EOF after a complete response: fine
}

TEST(ResponseParser, ZeroContentLengthCompletesAtEndOfHead) {
  Fixture f;
  f.parser.start(false);
  std::string_view in = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  auto p = f.feed(in);
  EXPECT_EQ(p.status, Status::complete);
  EXPECT_EQ(p.consumed, in.size());
  EXPECT_EQ(f.rec.body, "");
  EXPECT_EQ(f.rec.heads.size(), 1u);
}

TEST(ResponseParser, PartialHeadNeedsMore) {
  Fixture f;
  f.parser.start(false);
  auto p = f.feed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n");
  EXPECT_EQ(p.status, Status::need_more);
  EXPECT_EQ(p.consumed, 36u);
  EXPECT_TRUE(f.parser.started());
  EXPECT_FALSE(f.parser.head_done());
  EXPECT_TRUE(f.rec.heads.empty());
}

TEST(ResponseParser, EmptyFeedConsumesNothing) {
  Fixture f;
  f.parser.start(false);
  auto p = f.parser.feed("", 0);
  EXPECT_EQ(p.status, Status::need_more);
  EXPECT_EQ(p.consumed, 0u);
  EXPECT_FALSE(f.parser.started());
}

TEST(ResponseParser, OneByteAtATimeGivesSameHeadAndBody) {
  std::string_view in =
      "HTTP/1.1 206 Partial Content\r\nContent-Length: 11\r\nETag: \"abc\"\r\n"
      "Content-Range: bytes 0-10/100\r\n\r\nhello world";
  Fixture f;
  f.parser.start(false);
  for (std::size_t i = 0; i < in.size(); ++i) {
    auto p = f.feed(in.substr(i, 1));
    ASSERT_EQ(p.consumed, 1u) << "at byte " << i;
    ASSERT_EQ(p.status, i + 1 == in.size() ? Status::complete : Status::need_more) << "byte " << i;
  }
  ASSERT_EQ(f.rec.heads.size(), 1u);
  EXPECT_EQ(f.rec.heads[0].status, 206);
  EXPECT_EQ(f.rec.heads[0].reason, "Partial Content");
  EXPECT_EQ(f.rec.heads[0].headers, (Headers{{"Content-Length", "11"},
                                             {"ETag", "\"abc\""},
                                             {"Content-Range", "bytes 0-10/100"}}));
  EXPECT_EQ(f.rec.body, "hello world");
  EXPECT_EQ(f.parser.body_bytes(), 11u);
}

TEST(ResponseParser, HeaderNamesAndValuesSplitAcrossFeedsReassembled) {
  Fixture f;
  f.parser.start(false);
  for (std::string_view piece : {"HTTP/1.1 200 O", "K\r\nCont", "ent-Len", "gth: 1", "0\r\nX-A: b",
                                 "c\r", "\nX-", "B:", " d\r\n\r", "\n01234", "56789"}) {
    auto p = f.feed(piece);
    EXPECT_EQ(p.consumed, piece.size()) << piece;
    EXPECT_EQ(p.status, piece == "56789" ? Status::complete : Status::need_more) << piece;
  }
  ASSERT_EQ(f.rec.heads.size(), 1u);
  EXPECT_EQ(f.rec.heads[0].reason, "OK");
  EXPECT_EQ(f.rec.heads[0].headers,
            (Headers{{"Content-Length", "10"}, {"X-A", "bc"}, {"X-B", "d"}}));
  EXPECT_EQ(f.rec.body, "0123456789");
}

TEST(ResponseParser, EmptyHeaderValueDoesNotMergeWithNextHeader) {
  Fixture f;
  f.parser.start(false);
  std::string_view in = "HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Blank:   \r\nContent-Length: 2\r\n\r\nok";
  auto p = f.feed(in);
  EXPECT_EQ(p.status, Status::complete);
  ASSERT_EQ(f.rec.heads.size(), 1u);
  const Headers& h = f.rec.heads[0].headers;
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[0].first, "X-Empty");
  EXPECT_EQ(h[0].second, "");
  EXPECT_EQ(h[1].first, "X-Blank");
  EXPECT_EQ(h[2], (std::pair<std::string, std::string>{"Content-Length", "2"}));
  EXPECT_EQ(f.rec.body, "ok");
}

TEST(ResponseParser, HeaderValueTrailingWhitespaceTrimmed) {
  Fixture f;
  f.parser.start(false);
  auto p = f.feed("HTTP/1.1 200 OK\r\nX: v \t\r\nContent-Length: 5 \r\n\r\nhello");
  ASSERT_EQ(p.status, Status::complete);
  ASSERT_EQ(f.rec.heads.size(), 1u);
  EXPECT_EQ(f.rec.heads[0].header("X"), "v");
  EXPECT_EQ(f.rec.heads[0].content_length(), 5u);
  EXPECT_EQ(f.rec.body, "hello");
}

TEST(ResponseParser, HeaderValueLeadingWhitespaceDropped) {
  Fixture f;
  f.parser.start(false);
  auto p = f.feed("HTTP/1.1 200 OK\r\nX: \t  v w\r\nContent-Length:2\r\n\r\nok");
  ASSERT_EQ(p.status, Status::complete);
  ASSERT_EQ(f.rec.heads.size(), 1u);
  EXPECT_EQ(f.rec.heads[0].header("x"), "v w");
  EXPECT_EQ(f.rec.heads[0].content_length(), 2u);
}

TEST(ResponseParser, ChunkedBodyWithExtensionsAndTrailers) {
  Fixture f;
  f.parser.start(false);
  auto p = f.feed(kChunked);
  EXPECT_EQ(p.status, Status::complete);
  EXPECT_EQ(p.consumed, kChunked.size());
  ASSERT_EQ(f.rec.heads.size(), 1u);
  EXPECT_EQ(f.rec.heads[0].status, 200);
  EXPECT_EQ(f.rec.heads[0].headers, chunked_headers());
  EXPECT_FALSE(f.rec.heads[0].content_length());
  EXPECT_EQ(f.rec.body, kChunkedBody);
  EXPECT_EQ(f.parser.body_bytes(), kChunkedBody.size());
  EXPECT_TRUE(f.parser.keep_alive());
}

TEST(ResponseParser, EveryTwoWaySplitOfChunkedResponseGivesSameResult) {
  for (std::size_t cut = 0; cut <= kChunked.size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    Fixture f;
    f.parser.start(false);
    auto a = f.feed(kChunked.substr(0, cut));
    ASSERT_EQ(a.consumed, cut);
    if (cut < kChunked.size()) {
      ASSERT_EQ(a.status, Status::need_more);
      auto b = f.feed(kChunked.substr(cut));
      ASSERT_EQ(b.status, Status::complete);
      ASSERT_EQ(b.consumed, kChunked.size() - cut);
    } else {
      ASSERT_EQ(a.status, Status::complete);
    }
    ASSERT_EQ(f.rec.heads.size(), 1u);
    EXPECT_EQ(f.rec.heads[0].status, 200);
    EXPECT_EQ(f.rec.heads[0].reason, "OK");
    EXPECT_EQ(f.rec.heads[0].headers, chunked_headers());
    EXPECT_EQ(f.rec.body, kChunkedBody);
    EXPECT_TRUE(f.parser.keep_alive());
  }
}

TEST(ResponseParser, ChunkedFedOneByteAtATime) {
  Fixture f;
  f.parser.start(false);
  Status last = Status::need_more;
  for (std::size_t i = 0; i < kChunked.size(); ++i) {
    ASSERT_EQ(last, Status::need_more) << "completed early, at byte " << i;
    last = f.feed(kChunked.substr(i, 1)).status;
  }
  EXPECT_EQ(last, Status::complete);
  ASSERT_EQ(f.rec.heads.size(), 1u);
  EXPECT_EQ(f.rec.heads[0].headers, chunked_headers());
  EXPECT_EQ(f.rec.body, kChunkedBody);
}

TEST(ResponseParser, CloseDelimitedBodyIsCompleteBeforeEof) {
  Fixture f;
  f.parser.start(false);
  auto p = f.feed("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabc");
  EXPECT_EQ(p.status, Status::need_more);
  auto q = f.feed("def");
  EXPECT_EQ(q.status, Status::need_more);
  EXPECT_EQ(f.rec.body, "abcdef");
  EXPECT_EQ(f.parser.body_bytes(), 6u);
}

TEST(ResponseParser, CloseDelimitedBodyCompletedByFinishOnEof) {
  Fixture f;
  f.parser.start(false);
  EXPECT_EQ(f.feed("HTTP/1.1 200 OK\r\n\r\nabc").status, Status::need_more);
  EXPECT_EQ(f.feed("def").status, Status::need_more);
  EXPECT_EQ(f.parser.finish_on_eof(), Status::complete) << f.parser.error().message();
  EXPECT_EQ(f.rec.body, "abcdef");
  EXPECT_FALSE(f.parser.keep_alive());
  EXPECT_FALSE(f.parser.error());
}

TEST(ResponseParser, EmptyCloseDelimitedBodyCompletedByFinishOnEof) {
  Fixture f;
  f.parser.start(false);
  EXPECT_EQ(f.feed("HTTP/1.0 200 OK\r\n\r\n").status, Status::need_more);
  EXPECT_EQ(f.parser.finish_on_eof(), Status::complete) << f.parser.error().message();
  EXPECT_EQ(f.rec.body, "");
}

TEST(ResponseParser, TruncatedContentLengthBodyFailsAsConnectionClosed) {
  Fixture f;
  f.parser.start(false);
  EXPECT_EQ(f.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc").status, Status::need_more);
  EXPECT_EQ(f.parser.finish_on_eof(), Status::failed);
  EXPECT_EQ(f.parser.error().code, make_error_code(Errc::connection_closed))
      << f.parser.error().message();
  EXPECT_EQ(f.rec.body, "abc");
}

// Same cause: a head cut short fails as http_parse, not "connection closed in the response head".
TEST(ResponseParser, TruncatedHeadFailsAsConnectionClosed) {
  Fixture f;
  f.parser.start(false);
  EXPECT_EQ(f.feed("HTTP/1.1 200 OK\r\nContent-Le").status, Status::need_more);
  EXPECT_EQ(f.parser.finish_on_eof(), Status::failed);
  EXPECT_EQ(f.parser.error().code, make_error_code(Errc::connection_closed))
      << f.parser.error().message();
}

TEST(ResponseParser, TruncatedContentLengthBodyFailsOnEof) {
  Fixture f;
  f.parser.start(false);
  EXPECT_EQ(f.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc").status, Status::need_more);
  EXPECT_EQ(f.parser.finish_on_eof(), Status::failed);
  EXPECT_TRUE(f.parser.error());
  EXPECT_EQ(f.rec.body, "abc");
  EXPECT_EQ(f.parser.finish_on_eof(), Status::failed);  // stays failed
}

TEST(ResponseParser, TruncatedChunkedBodyFailsOnEof) {
  Fixture f;
  f.parser.start(false);
  f.feed(kChunked.substr(0, kChunked.size() - 3));
  EXPECT_EQ(f.parser.finish_on_eof(), Status::failed);
  EXPECT_TRUE(f.parser.error());
}

TEST(ResponseParser, TruncatedHeadFailsOnEof) {
  Fixture f;
  f.parser.start(false);
  EXPECT_EQ(f.feed("HTTP/1.1 200 OK\r\nContent-Le").status, Status::need_more);
  EXPECT_EQ(f.parser.finish_on_eof(), Status::failed);
  EXPECT_TRUE(f.parser.error());
  EXPECT_TRUE(f.rec.heads.empty());
}

TEST(ResponseParser, EofBeforeAnyByteFailsAsConnectionClosed) {
  Fixture f;
  f.parser.start(false);
  EXPECT_EQ(f.parser.finish_on_eof(), Status::failed);
  EXPECT_EQ(f.parser.error().code, make_error_code(Errc::connection_closed));
  EXPECT_FALSE(f.parser.started());
}

TEST(ResponseParser, EofAfterInterimResponseFailsAsConnectionClosed) {
  Fixture f;
  f.parser.start(false);
  EXPECT_EQ(f.feed("HTTP/1.1 100 Continue\r\n\r\n").status, Status::need_more);
  EXPECT_EQ(f.parser.finish_on_eof(), Status::failed);
  EXPECT_EQ(f.parser.error().code, make_error_code(Errc::connection_closed));
  EXPECT_TRUE(f.rec.heads.empty());
}

// --- Status codes without a final body ------------------------------------------------------

TEST(ResponseParser, ContinueAndEarlyHintsSkippedBeforeFinalResponse) {
  Fixture f;
  f.parser.start(false);
  std::string_view in =
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  auto p = f.feed(in);
  EXPECT_EQ(p.status, Status::complete);
  EXPECT_EQ(p.consumed, in.size());
  ASSERT_EQ(f.rec.heads.size(), 1u);
  EXPECT_EQ(f.rec.heads[0].status, 200);
  EXPECT_EQ(f.rec.heads[0].reason, "OK");
  EXPECT_EQ(f.rec.heads[0].headers, (Headers{{"Content-Length", "2"}}));
  EXPECT_EQ(f.rec.body, "ok");
}

TEST(ResponseParser, InterimResponsesSkippedWhenFedByteByByte) {
  Fixture f;
  f.parser.start(false);
  std::string in =
      "HTTP/1.1 100 Continue\r\nX-I: 1\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\n"
      "HTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nx";
  Status last = Status::need_more;
  for (char c : in) last = f.parser.feed(&c, 1).status;
  EXPECT_EQ(last, Status::complete);
  ASSERT_EQ(f.rec.heads.size(), 1u);
  EXPECT_EQ(f.rec.heads[0].status, 404);
  EXPECT_EQ(f.rec.heads[0].reason, "Not Found");
  EXPECT_EQ(f.rec.heads[0].headers, (Headers{{"Content-Length", "1"}}));
}

TEST(ResponseParser, SwitchingProtocolsRefused) {
  Fixture f;
  f.parser.start(false);
  auto p = f.feed(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\n\r\n");
  EXPECT_EQ(p.status, Status::failed);
  EXPECT_EQ(f.parser.error().code, make_error_code(Errc::http_parse));
  EXPECT_NE(f.parser.error().message().find("101"), std::string::npos);
  EXPECT_TRUE(f.rec.heads.empty());
}

TEST(ResponseParser, HeadResponseWithContentLengthHasNoBody) {
  Fixture f;
  f.parser.start(true);
  std::string_view in = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
  auto p = f.feed(in);
  EXPECT_EQ(p.status, Status::complete);
  EXPECT_EQ(p.consumed, in.size());
  ASSERT_EQ(f.rec.heads.size(), 1u);
  EXPECT_EQ(f.rec.heads[0].content_length(), 1000u);
  EXPECT_EQ(f.rec.body_calls, 0);
  EXPECT_EQ(f.parser.body_bytes(), 0u);
  EXPECT_TRUE(f.parser.keep_alive());
}

TEST(ResponseParser, HeadResponseLeavesFollowingBytesUnconsumed) {
  Fixture f;
  f.parser.start(true);
  std::string_view head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::string in = std::string(head) + "HTTP/1.1 204 No Content\r\n\r\n";
  auto p = f.feed(in);
  EXPECT_EQ(p.status, Status::complete);
  EXPECT_EQ(p.consumed, head.size());
  EXPECT_EQ(f.rec.body_calls, 0);
}

TEST(ResponseParser, NoContentHasNoBody) {
  Fixture f;
  f.parser.start(false);
  std::string_view in = "HTTP/1.1 204 No Content\r\n\r\n";
  auto p = f.feed(in);
  EXPECT_EQ(p.status, Status::complete);
  EXPECT_EQ(p.consumed, in.size());
  ASSERT_EQ(f.rec.heads.size(), 1u);
  EXPECT_EQ(f.rec.heads[0].status, 204);
  EXPECT_EQ(f.rec.body_calls, 0);
  EXPECT_TRUE(f.parser.keep_alive());
}

TEST(ResponseParser, NotModifiedHasNoBody) {
  Fixture f;
  f.parser.start(false);
  std::string_view in = "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n";
  auto p = f.feed(in);
  EXPECT_EQ(p.status, Status::complete);
  EXPECT_EQ(p.consumed, in.size());
  ASSERT_EQ(f.rec.heads.size(), 1u);
  EXPECT_EQ(f.rec.heads[0].status, 304);
  EXPECT_EQ(f.rec.body_calls, 0);
  EXPECT_TRUE(f.parser.keep_alive());
}

TEST(ResponseParser, NoContentAndNotModifiedHaveNoBodyEvenWithContentLength) {
  for (std::string_view in : {"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n",
                              "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"}) {
    Fixture f;
    f.parser.start(false);
    auto p = f.feed(in);
    EXPECT_EQ(p.status, Status::complete) << in;
    EXPECT_EQ(p.consumed, in.size()) << in;
    EXPECT_EQ(f.rec.body_calls, 0) << in;
  }
}

// --- Limits ---------------------------------------------------------------------------------

TEST(ResponseParser, HeaderBlockOverByteLimitRefused) {
  Fixture f(256, kMaxHeaderCount);
  f.parser.start(false);
  std::string in = "HTTP/1.1 200 OK\r\nX-Big: " + std::string(300, 'v') + "\r\n\r\n";
  auto p = f.feed(in);
  EXPECT_EQ(p.status, Status::failed);
  EXPECT_EQ(f.parser.error().code, make_error_code(Errc::header_too_large))
      << f.parser.error().message();
  EXPECT_TRUE(f.rec.heads.empty());
}

TEST(ResponseParser, ManySmallHeadersOverByteLimitRefusedWhenFedInPieces) {
  Fixture f(1024, 1000);
  f.parser.start(false);
  EXPECT_EQ(f.feed("HTTP/1.1 200 OK\r\n").status, Status::need_more);
  Status last = Status::need_more;
  for (int i = 0; i < 200 && last == Status::need_more; ++i)
    last = f.feed("X-H" + std::to_string(i) + ": value\r\n").status;
  EXPECT_EQ(last, Status::failed);
  EXPECT_EQ(f.parser.error().code, make_error_code(Errc::header_too_large));
}

TEST(ResponseParser, HeadUnderByteLimitAccepted) {
  Fixture f(256, kMaxHeaderCount);
  f.parser.start(false);
  std::string in =
      "HTTP/1.1 200 OK\r\nX-Big: " + std::string(150, 'v') + "\r\nContent-Length: 1\r\n\r\nx";
  EXPECT_EQ(f.feed(in).status, Status::complete) << f.parser.error().message();
}

TEST(ResponseParser, ByteLimitCountsEachResponseAfterInterimOnes) {
  // Each head alone fits; the limit is per head, not per exchange.
  Fixture f(100, kMaxHeaderCount);
  f.parser.start(false);
  std::string hints = "HTTP/1.1 103 Early Hints\r\nLink: " + std::string(60, 'l') + "\r\n\r\n";
  std::string in =
      hints + "HTTP/1.1 200 OK\r\nX: " + std::string(60, 'v') + "\r\nContent-Length: 0\r\n\r\n";
  EXPECT_EQ(f.feed(in).status, Status::complete) << f.parser.error().message();
}

TEST(ResponseParser, MoreHeadersThanMaxCountRefused) {
  Fixture f(kMaxHeaderBytes, 3);
  f.parser.start(false);
  auto p = f.feed("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(p.status, Status::failed);
  EXPECT_EQ(f.parser.error().code, make_error_code(Errc::header_too_large))
      << f.parser.error().message();
  EXPECT_TRUE(f.rec.heads.empty());
}

TEST(ResponseParser, ExactlyMaxCountHeadersAccepted) {
  Fixture f(kMaxHeaderBytes, 3);
  f.parser.start(false);
  auto p = f.feed("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(p.status, Status::complete) << f.parser.error().message();
  ASSERT_EQ(f.rec.heads.size(), 1u);
  EXPECT_EQ(f.rec.heads[0].headers.size(), 3u);
}

// --- Invalid responses ----------------------------------------------------------------------

void expect_parse_error(std::string_view in, const char* what) {
  Fixture f;
  f.parser.start(false);
  auto p = f.feed(in);
  EXPECT_EQ(p.status, Status::failed) << what;
  EXPECT_EQ(f.parser.error().code, make_error_code(Errc::http_parse))
      << what << ": " << f.parser.error().message();
  EXPECT_FALSE(f.parser.error().message().empty());
  // Once failed, more bytes and EOF do not change the verdict.
  EXPECT_EQ(f.feed("HTTP/1.1 200 OK\r\n\r\n").status, Status::failed) << what;
  EXPECT_EQ(f.parser.finish_on_eof(), Status::failed) << what;
  EXPECT_EQ(f.parser.error().code, make_error_code(Errc::http_parse)) << what;
}

TEST(ResponseParser, InvalidChunkSizeRefused) {
  expect_parse_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n",
                     "non-hex chunk size");
  expect_parse_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n",
                     "negative chunk size");
}

TEST(ResponseParser, ChunkSizeOverflowing64BitsRefused) {
  expect_parse_error(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "10000000000000000\r\nx\r\n",
      "17 hex digits");
  expect_parse_error(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "ffffffffffffffffff\r\nx\r\n",
      "18 hex digits");
}

TEST(ResponseParser, ContentLengthWithTransferEncodingRefused) {
  expect_parse_error(
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\n",
      "CL then TE");
  expect_parse_error(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\n",
      "TE then CL");
}

TEST(ResponseParser, ConflictingDuplicateContentLengthRefused) {
  expect_parse_error("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
                     "two lengths");
  expect_parse_error("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!", "list of lengths");
}

TEST(ResponseParser, InvalidContentLengthRefused) {
  expect_parse_error("HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello", "non-digit");
  expect_parse_error("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "negative");
  expect_parse_error("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
                     "over 64 bits");
}

TEST(ResponseParser, GarbageStatusLineRefused) {
  expect_parse_error("garbage\r\n\r\n", "garbage");
  expect_parse_error("HTPT/1.1 200 OK\r\n\r\n", "misspelt protocol");
  expect_parse_error("HTTP/1.1 2000 OK\r\n\r\n", "four-digit status");
  expect_parse_error("HTTP/1.1 OK\r\n\r\n", "no status");
  expect_parse_error("HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", "header without colon");
  expect_parse_error("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "space in header name");
}

TEST(ResponseParser, Http09BareBodyRefused) {
  expect_parse_error("<html><body>hello</body></html>\n", "HTTP/0.9 body");
}

// --- Connection reuse -----------------------------------------------------------------------

TEST(ResponseParser, ConnectionCloseMeansNoKeepAlive) {
  Fixture f;
  f.parser.start(false);
  auto p = f.feed("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
  ASSERT_EQ(p.status, Status::complete);
  EXPECT_FALSE(f.parser.keep_alive());
}

TEST(ResponseParser, Http10WithoutKeepAliveMeansNoKeepAlive) {
  Fixture f;
  f.parser.start(false);
  auto p = f.feed("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
  ASSERT_EQ(p.status, Status::complete);
  EXPECT_FALSE(f.parser.keep_alive());
  ASSERT_EQ(f.rec.heads.size(), 1u);
  EXPECT_EQ(f.rec.heads[0].http_minor, 0);
}

TEST(ResponseParser, Http10WithKeepAliveKeepsConnection) {
  Fixture f;
  f.parser.start(false);
  auto p = f.feed("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok");
  ASSERT_EQ(p.status, Status::complete);
  EXPECT_TRUE(f.parser.keep_alive());
}

TEST(ResponseParser, Http11DefaultsToKeepAlive) {
  Fixture f;
  f.parser.start(false);
  auto p = f.feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  ASSERT_EQ(p.status, Status::complete);
  EXPECT_TRUE(f.parser.keep_alive());
}

TEST(ResponseParser, BytesAfterCompleteResponseNotConsumed) {
  Fixture f;
  f.parser.start(false);
  std::string_view first = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
  std::string in = std::string(first) + "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
  auto p = f.feed(in);
  EXPECT_EQ(p.status, Status::complete);
  EXPECT_EQ(p.consumed, first.size());
  EXPECT_LT(p.consumed, in.size());
  EXPECT_EQ(f.rec.body, "abc");  // no byte of the next response leaks into this body
  EXPECT_EQ(f.rec.heads.size(), 1u);
}

TEST(ResponseParser, ChunkedResponseFollowedByBytesNotConsumed) {
  Fixture f;
  f.parser.start(false);
  std::string in = std::string(kChunked) + "HTTP/1.1";
  auto p = f.feed(in);
  EXPECT_EQ(p.status, Status::complete);
  EXPECT_EQ(p.consumed, kChunked.size());
}

TEST(ResponseParser, StartReusesParserForSecondResponse) {
  Fixture f;
  std::string_view first = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-First: 1\r\n\r\nabc";
  std::string_view second =
      "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
      "2\r\nno\r\n0\r\n\r\n";
  std::string in = std::string(first) + std::string(second);

  f.parser.start(false);
  auto p = f.feed(in);
  ASSERT_EQ(p.status, Status::complete);
  ASSERT_EQ(p.consumed, first.size());

  f.parser.start(false);
  EXPECT_FALSE(f.parser.started());
  EXPECT_FALSE(f.parser.head_done());
  EXPECT_EQ(f.parser.body_bytes(), 0u);
  auto q = f.feed(std::string_view(in).substr(p.consumed));
  ASSERT_EQ(q.status, Status::complete) << f.parser.error().message();
  EXPECT_EQ(q.consumed, second.size());

  ASSERT_EQ(f.rec.heads.size(), 2u);
  EXPECT_EQ(f.rec.heads[0].status, 200);
  EXPECT_EQ(f.rec.heads[1].status, 404);
  EXPECT_EQ(f.rec.heads[1].reason, "Not Found");
  // The second head does not inherit the first one's headers.
  EXPECT_EQ(f.rec.heads[1].headers, (Headers{{"Transfer-Encoding", "chunked"}}));
  EXPECT_EQ(f.rec.body, "abcno");
  EXPECT_EQ(f.parser.body_bytes(), 2u);
}

TEST(ResponseParser, StartClearsAnEarlierFailure) {
  Fixture f;
  f.parser.start(false);
  ASSERT_EQ(f.feed("garbage\r\n\r\n").status, Status::failed);
  f.parser.start(false);
  EXPECT_FALSE(f.parser.error());
  auto p = f.feed("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx");
  EXPECT_EQ(p.status, Status::complete) << f.parser.error().message();
}

TEST(ResponseParser, StartSwitchesBetweenHeadAndGet) {
  Fixture f;
  std::string_view in = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n";
  f.parser.start(true);
  ASSERT_EQ(f.feed(in).status, Status::complete);
  f.parser.start(false);
  EXPECT_EQ(f.feed(in).status, Status::need_more);
  EXPECT_EQ(f.feed("body").status, Status::complete);
  EXPECT_EQ(f.rec.body, "body");
}

}  // namespace
}  // namespace uvget

namespace uvget {
namespace {

// Found by the response fuzzer: llhttp takes a status of fewer than three digits.
TEST(ResponseParser, AStatusCodeOfFewerThanThreeDigitsIsAnError) {
  Fixture f;
  auto p = f.feed("HTTP/1.1 21 204 No Content\r\n\r\n");
  EXPECT_EQ(p.status, Status::failed);
  EXPECT_EQ(f.parser.error().code, Errc::http_parse);
  EXPECT_TRUE(f.rec.heads.empty());
}

}  // namespace
}  // namespace uvget

namespace uvget {
namespace {

// Found by the response fuzzer: an interim response's claimed body reached the handler before
// any final head.
TEST(ResponseParser, AnInterimResponseHasNoBodyWhateverItsContentLength) {
  Fixture f;
  auto p = f.feed(
      "HTTP/1.1 199 OK\r\nContent-Length: 6\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(p.status, Status::complete);
  ASSERT_EQ(f.rec.heads.size(), 1u);
  EXPECT_EQ(f.rec.heads[0].status, 200);
  EXPECT_EQ(f.rec.body, "hello");
}

}  // namespace
}  // namespace uvget

namespace uvget {
namespace {

TEST(ResponseParser, AnEndlessChunkExtensionIsRefused) {
  Fixture f;
  std::string r =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=" + std::string(5000, 'x') +
      "\r\nhello\r\n0\r\n\r\n";
  auto p = f.feed(r);
  EXPECT_EQ(p.status, Status::failed);
  EXPECT_EQ(f.parser.error().code, Errc::http_parse);
  EXPECT_NE(f.parser.error().message().find("chunk-size line longer than 4096"), std::string::npos)
      << f.parser.error().message();
}

TEST(ResponseParser, ChunkExtensionsWithinTheLimitAreSkippedOnEveryChunk) {
  Fixture f;
  std::string ext = ";e=" + std::string(3000, 'x');  // 3 KB per line, 6 KB in all: fine
  auto p = f.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2" + ext + "\r\nab\r\n1" +
                  ext + "\r\nc\r\n0\r\n\r\n");
  EXPECT_EQ(p.status, Status::complete) << f.parser.error().message();
  EXPECT_EQ(f.rec.body, "abc");
}

}  // namespace
}  // namespace uvget
