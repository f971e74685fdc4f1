// One binary for every micro benchmark.
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
