// A host application that owns its libuv loop and runs a timer of its own, embedding a uvget
// Client to download the URLs on its command line into memory. Build: see examples/meson.build.
#include <uv.h>

#include <cstdio>
#include <string>
#include <vector>

#include <uvget/uvget.hpp>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: embed URL...\n");
    return 2;
  }
  uv_loop_t loop;
  uv_loop_init(&loop);

  // The host's own work: a 1 ms heartbeat that must keep ticking while downloads run.
  struct Host {
    uv_timer_t tick{};
    std::uint64_t ticks = 0;
  } host;
  uv_timer_init(&loop, &host.tick);
  host.tick.data = &host;
  uv_timer_start(
      &host.tick, [](uv_timer_t* t) { ++static_cast<Host*>(t->data)->ticks; }, 1, 1);

  auto client = uvget::Client::create(&loop);
  if (!client) {
    std::fprintf(stderr, "embed: %s\n", client.error().message().c_str());
    return 1;
  }
  std::vector<std::string> bodies(static_cast<std::size_t>(argc - 1));
  int pending = argc - 1, ok = 0, failed = 0;
  for (int i = 1; i < argc; ++i) {
    uvget::Request req;
    req.url = argv[i];
    req.sink = uvget::make_memory_sink(&bodies[static_cast<std::size_t>(i - 1)], 64 << 20);
    uvget::Callbacks cbs;
    cbs.on_done = [&](const uvget::TransferResult& r) {
      if (r.ok()) {
        ++ok;
        std::printf("%s: %llu bytes, HTTP %d\n", r.url.c_str(),
                    static_cast<unsigned long long>(r.bytes), r.status);
      } else {
        ++failed;
        std::printf("error: %s\n", r.error.message().c_str());
      }
      if (--pending == 0) {
        // All done: stop the host's timer and close the client; the loop then runs dry.
        uv_close(reinterpret_cast<uv_handle_t*>(&host.tick), nullptr);
        (*client)->close([] { std::printf("client closed\n"); });
      }
    };
    if (auto id = (*client)->get(std::move(req), std::move(cbs)); !id) {
      std::printf("error: %s\n", id.error().message().c_str());
      ++failed;
      --pending;
    }
  }
  if (pending == 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&host.tick), nullptr);
    (*client)->close(nullptr);
  }
  uv_run(&loop, UV_RUN_DEFAULT);  // the host runs its loop; uvget never does
  client->reset();
  uv_run(&loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&loop);
  std::printf("%d ok, %d failed, host timer ticked %llu times\n", ok, failed,
              static_cast<unsigned long long>(host.ticks));
  std::printf(rc == 0 ? "loop closed cleanly\n" : "loop NOT closed: %d\n", rc);
  return (failed == 0 && rc == 0) ? 0 : 1;
}
