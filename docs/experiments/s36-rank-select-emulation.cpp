// Session 36 (no GPU): a CPU emulation of rank_top_k's index math (kernels/src/top_k_select.cuh) -- its threads a
// candidate, segments, float4 reads, lane sums and block slots -- against a brute-force oracle (stable sort by order key,
// lower candidate first), 200,000 random cases with ties, +-0, -inf and garbage past C. Build: g++ -O2 FILE && ./a.out
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>
static uint32_t order_key(float f) { uint32_t b; memcpy(&b, &f, 4); return (b & 0x80000000u) ? ~b : b | 0x80000000u; }
int main() {
  const int NT = 512; std::mt19937 rng(1); long checks = 0;
  for (int trial = 0; trial < 200000; ++trial) {
    const int C = 1 + rng() % NT; const int K = 1 + rng() % 64; int64_t kk = (int64_t)(rng() % (K + 1));
    if (rng() % 4 == 0) kk = std::min<int64_t>(kk, 3);
    std::vector<float> sc(C + 8, NAN);  // garbage past C
    const int distinct = 1 + rng() % 6;
    for (int c = 0; c < C; ++c) {
      int r = rng() % 10;
      if (r == 0) sc[c] = -INFINITY; else if (r == 1) sc[c] = 0.0f; else if (r == 2) sc[c] = -0.0f;
      else sc[c] = (rng() % 2 ? float(rng() % distinct) : std::ldexp(float(rng() % 1000) - 500, -(int)(rng()%20)));
    }
    // emulation
    int S = 1; while (S < 32 && 2 * S * C <= NT) S *= 2;
    const int span = ((C + S - 1) / S + 3) / 4 * 4;
    std::vector<int> above(NT, 0); std::vector<int> take(NT, 0);
    for (int tid = 0; tid < NT; ++tid) {
      const int c = tid / S, part = tid % S;
      const uint32_t key = c < C ? order_key(sc[c]) : 0u; int a = 0;
      if (c < C) { const int begin = part * span, end = std::min(begin + span, C);
        for (int b = begin; b < end; b += 4) { if (b % 4) return 1; if (b + 3 >= C + 8) { printf("overread\n"); return 1; }
          for (int i = 0; i < 4; ++i) { const uint32_t o_k = order_key(sc[b + i]); const int o = b + i;
            a += int(o < end && (o_k > key || (o_k == key && o < c))); } } }
      above[tid] = a; }
    std::vector<int> sum(NT);
    for (int tid = 0; tid < NT; ++tid) { int s = 0; int g = tid / S * S; for (int j = 0; j < S; ++j) s += above[g + j]; sum[tid] = s; }
    std::vector<int> out(K, -7); int taken = 0;
    for (int tid = 0; tid < NT; ++tid) { const int c = tid / S, part = tid % S;
      take[tid] = part == 0 && c < C && sc[c] != -INFINITY && sum[tid] < kk; taken += take[tid]; }
    int before = 0;
    for (int tid = 0; tid < NT; ++tid) { if (take[tid]) { if (before < K) out[before] = tid / S; ++before; } }
    for (int j = taken; j < K; ++j) out[j] = -1;
    // oracle
    std::vector<int> idx; for (int c = 0; c < C; ++c) if (sc[c] != -INFINITY) idx.push_back(c);
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return order_key(sc[a]) > order_key(sc[b]); });
    idx.resize(std::min<size_t>(idx.size(), (size_t)kk)); std::sort(idx.begin(), idx.end());
    std::vector<int> want(K, -1); for (size_t i = 0; i < idx.size(); ++i) want[i] = idx[i];
    if (out != want) { printf("mismatch C=%d K=%d kk=%ld S=%d\n", C, K, (long)kk, S); return 1; }
    ++checks;
  }
  printf("ok %ld\n", checks);
}
