// Tests of the control thread's event loop: a wait ends when a watched descriptor is ready
// (and only that source's handler runs), sources that change their descriptors between waits
// are followed, a timeout runs nothing, and a signal sent to the process (even while another
// thread runs) wakes the wait and reaches the callback once per delivery.
#include "daemon/event_loop.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <thread>
#include <vector>

namespace ecmplb::daemon {
namespace {

struct Pipe {
  int fd[2];
  Pipe() { EXPECT_EQ(::pipe(fd), 0); }
  ~Pipe() {
    ::close(fd[0]);
    ::close(fd[1]);
  }
  void Put() { ASSERT_EQ(::write(fd[1], "x", 1), 1); }
  void Take() {
    char c;
    ASSERT_EQ(::read(fd[0], &c, 1), 1);
  }
};

TEST(EventLoopTest, RunsOnlyTheReadySourcesHandler) {
  EventLoop loop;
  Pipe a, b;
  int ran_a = 0, ran_b = 0;
  loop.Watch(
      [&](std::vector<pollfd>* f) {
        f->push_back({a.fd[0], POLLIN, 0});
      },
      [&] {
        ++ran_a;
        a.Take();
      });
  loop.Watch([&](std::vector<pollfd>* f) { f->push_back({b.fd[0], POLLIN, 0}); }, [&] { ++ran_b; });
  EXPECT_EQ(loop.Wait(0), 0u);  // nothing ready
  a.Put();
  EXPECT_EQ(loop.Wait(1000), 1u);
  EXPECT_EQ(ran_a, 1);
  EXPECT_EQ(ran_b, 0);
  EXPECT_EQ(loop.Wait(20), 0u);  // a was drained: the wait times out
}

TEST(EventLoopTest, FollowsDescriptorsThatComeAndGo) {
  EventLoop loop;
  Pipe a;
  bool watch = false;
  int ran = 0;
  loop.Watch(
      [&](std::vector<pollfd>* f) {
        if (watch) f->push_back({a.fd[0], POLLIN, 0});
      },
      [&] { ++ran; });
  a.Put();
  EXPECT_EQ(loop.Wait(10), 0u);  // not watched yet
  watch = true;
  EXPECT_EQ(loop.Wait(1000), 1u);
  EXPECT_EQ(ran, 1);
}

TEST(EventLoopTest, SignalWakesTheWaitOncePerDelivery) {
  EventLoop loop;
  std::vector<int> got;
  ASSERT_TRUE(loop.CatchSignals({SIGUSR1, SIGUSR2}, [&](int s) { got.push_back(s); }).ok());
  EventLoop second;
  EXPECT_FALSE(second.CatchSignals({SIGUSR1}, [](int) {}).ok());
  // From another thread while this one waits (as SIGTERM may land on a worker thread).
  std::thread t([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ::kill(::getpid(), SIGUSR1);
  });
  size_t ran = 0;
  for (int i = 0; i < 100 && ran == 0; ++i) ran = loop.Wait(100);
  t.join();
  EXPECT_EQ(ran, 1u);
  ::kill(::getpid(), SIGUSR2);
  loop.Wait(100);
  EXPECT_EQ(got, (std::vector<int>{SIGUSR1, SIGUSR2}));
}

}  // namespace
}  // namespace ecmplb::daemon
