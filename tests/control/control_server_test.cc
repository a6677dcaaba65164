// Tests of the control socket server: request/reply over a real Unix socket, mode 0600 and
// folder creation, pipelined requests, a silent or half-written client never blocking others,
// oversized requests refused and the connection closed, the client limit, idle clients
// dropped, stale socket files replaced and a live one refused; and access over a real
// connection from another uid: a child process that drops to nobody (65534) with chosen
// supplementary groups is refused, reads with the read-only group, changes with the admin
// group, is kept out by the socket file's mode, and is disconnected when it has no right.
#include "control/control_server.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/wait.h>
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

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
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
        [this](const PeerCredentials&, absl::string_view r) {
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
  auto second = ControlServer::Listen(path_, [](const PeerCredentials&, absl::string_view) { return std::string(); });
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  // A stale socket file (nobody listening) is replaced.
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::string stale = dir_->File("stale.sock");
  std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", stale.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ::close(fd);
  auto third = ControlServer::Listen(stale, [](const PeerCredentials&, absl::string_view) { return std::string(); });
  EXPECT_TRUE(third.ok()) << third.status();
  // A regular file is not a socket: refused, left alone.
  std::string plain = dir_->File("plain");
  ::close(::open(plain.c_str(), O_CREAT | O_WRONLY, 0600));
  EXPECT_EQ(
      ControlServer::Listen(plain, [](const PeerCredentials&, absl::string_view) { return std::string(); }).status().code(),
      absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(
      ControlServer::Listen("", [](const PeerCredentials&, absl::string_view) { return std::string(); }).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST_F(ServerTest, SocketFileGroupAndModeFollowTheAccessPolicy) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: only root gives a file to any group";
  ControlServer::Options o;
  o.access.admin = NamedGroup{"ecmplb-test", 4242};
  auto server = Start(o);
  ASSERT_NE(server, nullptr);
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(st.st_uid, ::geteuid());
  EXPECT_EQ(st.st_gid, 4242u);
  server.reset();
  o.access.read_only = NamedGroup{"ecmplb-ro-test", 4343};
  server = Start(o);
  ASSERT_NE(server, nullptr);
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0666u);
  EXPECT_EQ(st.st_gid, 4242u);
}

constexpr char kPlaneConfig[] = R"({
  "host": {"address": "10.0.0.11", "prefix_length": 24},
  "services": [{"vip": "10.100.0.1", "port": 80, "protocol": "tcp",
                "backends": [{"id": 1, "address": "10.0.0.21"}]}]})";
constexpr char kShow[] = R"({"cmd": "show"})";
constexpr char kDrainBackend[] =
    R"({"cmd": "backend set", "service": "10.100.0.1:80/tcp", "backend": "10.0.0.21", "weight": 0})";
constexpr uid_t kNobody = 65534;
constexpr gid_t kAdminGid = 4242;
constexpr gid_t kReadersGid = 4343;

// The daemon's composition (HandleRequest with the policy and the peer's credentials) behind
// a real socket, and clients in child processes running as nobody.
class PeerAccessTest : public ServerTest {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: the test drops a child to uid 65534";
    ServerTest::SetUp();
    ASSERT_EQ(::chmod(dir_->path().c_str(), 0755), 0);  // nobody must reach the socket
    auto cp = ControlPlane::Create(
        *ParseConfig(kPlaneConfig), dataplane::MacAddr{},
        [this](std::unique_ptr<const dataplane::Snapshot> s) { snap_ = std::move(s); },
        ControlPlane::Options{});
    ASSERT_TRUE(cp.ok()) << cp.status();
    plane_ = std::move(*cp);
  }

  std::unique_ptr<ControlServer> StartWith(AccessPolicy policy,
                                           uint64_t unauthorized_timeout_ms = 1000) {
    policy_ = policy;
    ControlServer::Options o;
    o.access = policy;
    o.unauthorized_timeout_ms = unauthorized_timeout_ms;
    auto s = ControlServer::Listen(
        path_,
        [this](const PeerCredentials& peer, absl::string_view r) {
          return HandleRequest(*plane_, r, policy_, peer,
                               [this](const std::string& m) { log_.push_back(m); });
        },
        o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

  // What the child saw, one line each: "connect: ERRNO" if connect failed, else each reply
  // line, then "closed" if the server closed the connection (only waited for when
  // `wait_for_close`).
  struct Child {
    pid_t pid = -1;
    std::vector<std::string> lines;
  };

  // Forks a child that takes uid and gid 65534 and the supplementary `groups`, connects,
  // sends each request and reads its reply; polls `server` until the child exits.
  Child RunAsNobody(ControlServer& server, std::vector<gid_t> groups,
                    std::vector<std::string> requests, bool wait_for_close) {
    int p[2];
    EXPECT_EQ(::pipe(p), 0);
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(p[0]);
      ChildMain(p[1], groups, requests, wait_for_close);  // never returns
    }
    ::close(p[1]);
    ::fcntl(p[0], F_SETFL, O_NONBLOCK);
    std::string out;
    int status = -1;
    for (int i = 0; i < 30000; ++i) {  // at most ~30 s
      server.Poll();
      char buf[4096];
      ssize_t n;
      while ((n = ::read(p[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
      if (::waitpid(pid, &status, WNOHANG) == pid) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    char buf[4096];
    for (ssize_t n; (n = ::read(p[0], buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
    ::close(p[0]);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
    Child c;
    c.pid = pid;
    for (absl::string_view l : absl::StrSplit(out, '\n', absl::SkipEmpty())) c.lines.emplace_back(l);
    return c;
  }

  [[noreturn]] void ChildMain(int out_fd, const std::vector<gid_t>& groups,
                              const std::vector<std::string>& requests, bool wait_for_close) {
    if (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(kNobody) != 0 ||
        ::setuid(kNobody) != 0) {
      ::_exit(3);
    }
    std::string out;
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", path_.c_str());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      out = absl::StrCat("connect: ", errno, "\n");
    } else {
      timeval tv{10, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      for (const std::string& r : requests) {
        std::string line = r + "\n";
        if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()))
          break;
        std::string reply;
        char ch;
        while (::recv(fd, &ch, 1, 0) == 1 && ch != '\n') reply += ch;
        out += reply + "\n";
      }
      if (wait_for_close) {
        char ch;
        ssize_t n = ::recv(fd, &ch, 1, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) out += "closed\n";
      }
    }
    ::write(out_fd, out.data(), out.size());
    ::_exit(0);
  }

  // The log holds `lines` lines, the last one starting with `prefix`.
  void ExpectLogged(size_t lines, const std::string& prefix) {
    ASSERT_EQ(log_.size(), lines);
    EXPECT_EQ(log_.back().rfind(prefix, 0), 0u) << log_.back();
  }

  std::unique_ptr<const dataplane::Snapshot> snap_;
  std::unique_ptr<ControlPlane> plane_;
  AccessPolicy policy_;
  std::vector<std::string> log_;
};

// Both groups configured: the socket is 0666 and the daemon's check is the gate.
TEST_F(PeerAccessTest, NobodyIsRefusedReadersReadAdminsChange) {
  auto server = StartWith(
      AccessPolicy{NamedGroup{"ecmplb-test", kAdminGid}, NamedGroup{"ecmplb-ro-test", kReadersGid}});
  ASSERT_NE(server, nullptr);

  // No group: refused with who may, logged with its pid, then disconnected.
  Child c = RunAsNobody(*server, {}, {kShow}, /*wait_for_close=*/true);
  ASSERT_EQ(c.lines.size(), 2u) << absl::StrJoin(c.lines, "|");
  auto reply = DecodeReply(c.lines[0]);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kPermissionDenied) << c.lines[0];
  EXPECT_EQ(reply.status().message(),
            "permission denied: uid 65534 (gid 65534) may not run 'show'; only root, group "
            "'ecmplb-test' or read-only group 'ecmplb-ro-test' may read state");
  EXPECT_EQ(c.lines[1], "closed");
  ExpectLogged(1, absl::StrCat("control socket: refused 'show' to pid ", c.pid,
                               " uid 65534 gid 65534: permission denied"));

  // The read-only group (supplementary): reads; a change is refused and logged; still connected.
  c = RunAsNobody(*server, {kReadersGid}, {kShow, kDrainBackend, kShow}, false);
  ASSERT_EQ(c.lines.size(), 3u) << absl::StrJoin(c.lines, "|");
  EXPECT_TRUE(DecodeReply(c.lines[0]).ok()) << c.lines[0];
  reply = DecodeReply(c.lines[1]);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kPermissionDenied) << c.lines[1];
  EXPECT_NE(reply.status().message().find("(read-only group 'ecmplb-ro-test' may only read)"),
            absl::string_view::npos);
  EXPECT_TRUE(DecodeReply(c.lines[2]).ok()) << c.lines[2];
  ExpectLogged(2, absl::StrCat("control socket: refused 'backend set' to pid ", c.pid,
                               " uid 65534 gid 65534 groups 4343: "));
  EXPECT_EQ(plane_->config().services[0].backends[0].weight, 1u);

  // The admin group (supplementary): changes.
  c = RunAsNobody(*server, {kAdminGid}, {kDrainBackend}, false);
  ASSERT_EQ(c.lines.size(), 1u) << absl::StrJoin(c.lines, "|");
  EXPECT_TRUE(DecodeReply(c.lines[0]).ok()) << c.lines[0];
  EXPECT_EQ(plane_->config().services[0].backends[0].weight, 0u);
  EXPECT_EQ(log_.size(), 2u);
}

// One group configured: the socket is root:group 0660, so the kernel keeps others out.
TEST_F(PeerAccessTest, SocketModeKeepsOthersOut) {
  auto server = StartWith(AccessPolicy{std::nullopt, NamedGroup{"ecmplb-ro-test", kReadersGid}});
  ASSERT_NE(server, nullptr);
  Child c = RunAsNobody(*server, {}, {kShow}, false);
  ASSERT_EQ(c.lines.size(), 1u) << absl::StrJoin(c.lines, "|");
  EXPECT_EQ(c.lines[0], absl::StrCat("connect: ", EACCES));
  c = RunAsNobody(*server, {kReadersGid}, {kShow, kDrainBackend}, false);
  ASSERT_EQ(c.lines.size(), 2u) << absl::StrJoin(c.lines, "|");
  EXPECT_TRUE(DecodeReply(c.lines[0]).ok()) << c.lines[0];
  EXPECT_EQ(DecodeReply(c.lines[1]).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(DecodeReply(c.lines[1]).status().message(),
            "permission denied: uid 65534 (gid 65534) may not run 'backend set'; only root may "
            "change state (read-only group 'ecmplb-ro-test' may only read)");
}

// A peer without any right that sends nothing is dropped after unauthorized_timeout_ms; a
// root client connected meanwhile stays.
TEST_F(PeerAccessTest, SilentStrangerIsDisconnected) {
  auto server = StartWith(
      AccessPolicy{NamedGroup{"ecmplb-test", kAdminGid}, NamedGroup{"ecmplb-ro-test", kReadersGid}},
      /*unauthorized_timeout_ms=*/50);
  ASSERT_NE(server, nullptr);
  int root = Connect();
  Child c = RunAsNobody(*server, {}, {}, /*wait_for_close=*/true);
  ASSERT_EQ(c.lines.size(), 1u) << absl::StrJoin(c.lines, "|");
  EXPECT_EQ(c.lines[0], "closed");
  EXPECT_EQ(server->clients(), 1u);  // the root client
  SendAll(root, std::string(kShow) + "\n");
  EXPECT_TRUE(DecodeReply(ReadLines(*server, root, 1)).ok());
  ::close(root);
}

}  // namespace
}  // namespace ecmplb::control
