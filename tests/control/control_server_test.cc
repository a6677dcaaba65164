// Tests of the control socket server: request/reply over a real Unix socket, mode 0600 and
// folder creation, pipelined requests, a silent or half-written client never blocking others,
// oversized requests refused and the connection closed, the client limit, idle clients
// dropped, stale socket files replaced and a live one refused.
#include "control/control_server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

#include "control/protocol.h"
#include "tests/support/temp_dir.h"

namespace ecmplb::control {
namespace {

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = test_support::TempDir::Create("ecmplb_srv_");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(std::move(*dir));
    path_ = dir_->File("sub/dir/ctl.sock");
  }

  std::unique_ptr<ControlServer> Start(ControlServer::Options o = {}) {
    auto s = ControlServer::Listen(
        path_,
        [this](absl::string_view r) {
          ++handled_;
          return std::string("echo:") + std::string(r);
        },
        o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }
  int Connect() {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", path_.c_str());
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    return fd;
  }
  static void SendAll(int fd, const std::string& s) {
    ASSERT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
  }
  // Polls the server until `fd` has `lines` reply lines or the peer closed; returns them.
  std::string ReadLines(ControlServer& server, int fd, int lines) {
    std::string got;
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
    for (int i = 0; i < 20000; ++i) {
      server.Poll();
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n == 0) break;
      if (n > 0) got.append(buf, static_cast<size_t>(n));
      if (std::count(got.begin(), got.end(), '\n') >= lines) break;
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    return got;
  }
  // True if the server closed `fd` (recv returns 0) within a few polls.
  bool Closed(ControlServer& server, int fd) {
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
    for (int i = 0; i < 2000; ++i) {
      server.Poll();
      char buf[65536];
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n == 0) return true;
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    return false;
  }

  std::optional<test_support::TempDir> dir_;  // removed with the fixture
  std::string path_;
  int handled_ = 0;
};

TEST_F(ServerTest, AnswersRequestsOnA0600Socket) {
  auto server = Start();
  ASSERT_NE(server, nullptr);
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  int fd = Connect();
  SendAll(fd, "one\ntwo\r\n\nthr");
  std::string got = ReadLines(*server, fd, 2);
  EXPECT_EQ(got, "echo:one\necho:two\n");
  SendAll(fd, "ee\n");
  EXPECT_EQ(ReadLines(*server, fd, 1), "echo:three\n");
  EXPECT_EQ(handled_, 3);
  ::close(fd);
  server.reset();
  EXPECT_NE(::access(path_.c_str(), F_OK), 0);  // removed on shutdown
}

TEST_F(ServerTest, SilentAndPartialClientsDoNotBlockOthers) {
  auto server = Start();
  int silent = Connect();
  int partial = Connect();
  SendAll(partial, R"({"cmd": "sh)");  // never finished
  int good = Connect();
  SendAll(good, "ping\n");
  EXPECT_EQ(ReadLines(*server, good, 1), "echo:ping\n");
  EXPECT_EQ(server->clients(), 3u);
  ::close(silent);
  ::close(partial);
  ::close(good);
}

TEST_F(ServerTest, OversizedRequestGetsAnErrorAndIsClosed) {
  ControlServer::Options o;
  o.max_request = 1024;
  auto server = Start(o);
  int fd = Connect();
  SendAll(fd, std::string(2000, 'x'));
  std::string got = ReadLines(*server, fd, 1);
  auto decoded = DecodeReply(got.substr(0, got.find('\n')));
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument) << got;
  EXPECT_TRUE(Closed(*server, fd));
  EXPECT_EQ(handled_, 0);
  ::close(fd);
}

TEST_F(ServerTest, ClientLimitAndIdleTimeout) {
  ControlServer::Options o;
  o.max_clients = 2;
  o.idle_timeout_ms = 50;
  auto server = Start(o);
  int a = Connect(), b = Connect();
  server->Poll();
  int c = Connect();
  std::string got = ReadLines(*server, c, 1);
  EXPECT_EQ(DecodeReply(got.substr(0, got.find('\n'))).status().code(),
            absl::StatusCode::kResourceExhausted);
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  EXPECT_TRUE(Closed(*server, a));
  EXPECT_TRUE(Closed(*server, b));
  EXPECT_EQ(server->clients(), 0u);
  ::close(a);
  ::close(b);
  ::close(c);
}

TEST_F(ServerTest, ReplacesAStaleSocketAndRefusesALiveOne) {
  auto first = Start();
  ASSERT_NE(first, nullptr);
  auto second = ControlServer::Listen(path_, [](absl::string_view) { return std::string(); });
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  // A stale socket file (nobody listening) is replaced.
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::string stale = dir_->File("stale.sock");
  std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", stale.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ::close(fd);
  auto third = ControlServer::Listen(stale, [](absl::string_view) { return std::string(); });
  EXPECT_TRUE(third.ok()) << third.status();
  // A regular file is not a socket: refused, left alone.
  std::string plain = dir_->File("plain");
  ::close(::open(plain.c_str(), O_CREAT | O_WRONLY, 0600));
  EXPECT_EQ(
      ControlServer::Listen(plain, [](absl::string_view) { return std::string(); }).status().code(),
      absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(
      ControlServer::Listen("", [](absl::string_view) { return std::string(); }).status().code(),
      absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ecmplb::control
