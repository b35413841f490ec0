// Session 36 (no GPU): a CPU emulation of head_top_k's two-bit and four-bit searches (kernels/src/top_k_select.cuh:
// the warps' byte counts, the 16-bit head sums, the early stop, the take with ties) against a brute-force oracle, 20,000
// random heads of 128 or 512 threads, 1-2 keys a thread, kk from 0 past C; prints the mean rounds of each. Build: g++ -O2
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>
static uint32_t order_key(float f) { uint32_t b; memcpy(&b, &f, 4); return (b & 0x80000000u) ? ~b : b | 0x80000000u; }
static uint32_t byte_perm(uint32_t x, uint32_t y, uint32_t s) {
  uint64_t v = (uint64_t(y) << 32) | x; uint32_t r = 0;
  for (int i = 0; i < 4; ++i) { int n = (s >> (4 * i)) & 7; r |= uint32_t((v >> (8 * n)) & 255) << (8 * i); }
  return r;
}
// keys[t][r] per thread t of TH threads (W warps).
static uint32_t search(const std::vector<std::vector<uint32_t>>& keys, int P, int64_t kk, int bits, int& rounds) {
  const int TH = keys.size(), W = TH / 32; uint32_t threshold = 0; rounds = 0;
  if (bits == 2) {
    for (int bit = 30; bit >= 0; bit -= 2) { ++rounds;
      uint32_t t1 = threshold | (1u << bit), t2 = threshold | (2u << bit), t3 = threshold | (3u << bit);
      int64_t c1 = 0, c2 = 0, c3 = 0;
      for (auto& k : keys) for (int r = 0; r < P; ++r) { c1 += k[r] >= t1; c2 += k[r] >= t2; c3 += k[r] >= t3; }
      int64_t count = c3 >= kk ? c3 : c2 >= kk ? c2 : c1 >= kk ? c1 : -1;
      threshold = c3 >= kk ? t3 : c2 >= kk ? t2 : c1 >= kk ? t1 : threshold;
      if (count == kk) { threshold -= 1; break; }
    }
    return threshold;
  }
  const int want = kk < 0 ? -1 : kk > 4096 ? 4096 : int(kk);
  for (int bit = 28; bit >= 0; bit -= 4) { ++rounds;
    const uint32_t high_mask = bit == 28 ? 0u : ~0u << (bit + 4);
    std::vector<uint32_t> warp_words(W * 4, 0);
    for (int w = 0; w < W; ++w) {
      for (int lane = 0; lane < 32; ++lane) {
        const auto& k = keys[w * 32 + lane];
        for (int r = 0; r < P; ++r) {
          uint32_t high = k[r] & high_mask;
          int v = k[r] == 0u || high < threshold ? 0 : high > threshold ? 15 : int((k[r] >> bit) & 15u);
          for (int j = 0; j < 4; ++j) { int m = std::min(std::max(v - 4 * j, 0), 4);
            warp_words[w * 4 + j] += byte_perm(0x01010101u, 0u, (0x4444u << (4 * m)) & 0xffffffffu); }
        }
      }
      for (int j = 0; j < 4; ++j) for (int b = 0; b < 4; ++b) if (((warp_words[w*4+j] >> (8*b)) & 255) > 32u * P) { printf("byte overflow\n"); exit(1); }
    }
    int digit = 0; bool exact = false;
    for (int j = 0; j < 4; ++j) {
      uint32_t even = 0, odd = 0;
      for (int w = 0; w < W; ++w) { even += warp_words[w*4+j] & 0x00ff00ffu; odd += (warp_words[w*4+j] >> 8) & 0x00ff00ffu; }
      int64_t counts[4] = {even & 0xffffu, odd & 0xffffu, even >> 16, odd >> 16};
      for (int q = 0; q < 4; ++q) { if (4*j+q+1 > 15) continue; digit += counts[q] >= want; exact = exact || counts[q] == want; }
    }
    threshold |= uint32_t(digit) << bit;
    if (exact) { threshold -= 1; break; }
  }
  return threshold;
}
static std::vector<int> take(const std::vector<std::vector<uint32_t>>& keys, int P, int64_t kk, uint32_t thr) {
  const int TH = keys.size(); std::vector<int> out; int64_t above = 0;
  for (int r = 0; r < P; ++r) for (int t = 0; t < TH; ++t) above += keys[t][r] > thr;
  int64_t ties_left = kk - above;
  for (int r = 0; r < P; ++r) for (int t = 0; t < TH; ++t) { uint32_t k = keys[t][r];
    if (k > thr) out.push_back(t + r * TH); else if (k == thr && k != 0 && ties_left > 0) { out.push_back(t + r * TH); --ties_left; } }
  std::sort(out.begin(), out.end()); return out;
}
int main() {
  std::mt19937 rng(5); long n = 0; long r2 = 0, r4 = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    const int TH = (rng() % 2) ? 512 : 128, P = 1 + rng() % 2; const int C = 1 + rng() % std::min(P * TH, 2047);
    int64_t kk = rng() % (C + 3); if (rng() % 3 == 0) kk = 1 + rng() % 40; if (rng() % 50 == 0) kk = 5000 + rng() % 10; if (rng() % 50 == 0) kk = 0;
    std::vector<std::vector<uint32_t>> keys(TH, std::vector<uint32_t>(P, 0));
    const int mode = rng() % 4;
    for (int r = 0; r < P; ++r) for (int t = 0; t < TH; ++t) { int c = t + r * TH; if (c >= C) continue;
      float f; int x = rng() % 20;
      if (x == 0) continue;  // absent
      if (mode == 0) f = float(int(rng() % 7) - 3);
      else if (mode == 1) f = std::ldexp(float(rng() % 100000) - 50000, -(int)(rng() % 30));
      else if (mode == 2) f = (x == 1 ? 0.0f : x == 2 ? -0.0f : 1.0f + float(rng() % 1000) * 1e-7f);
      else { std::normal_distribution<float> nd(0.f, 3.f); f = nd(rng); }
      keys[t][r] = order_key(f); }
    // brute force: chosen set = kk best, ties by lower candidate index
    std::vector<int> idx; for (int c = 0; c < C; ++c) { uint32_t k = keys[c % TH][c / TH]; if (k) idx.push_back(c); }
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return keys[a % TH][a / TH] > keys[b % TH][b / TH]; });
    if ((int64_t)idx.size() > kk) idx.resize(kk); std::sort(idx.begin(), idx.end());
    int ra, rb;
    uint32_t t2 = search(keys, P, kk, 2, ra), t4 = search(keys, P, kk, 4, rb); r2 += ra; r4 += rb;
    auto a = take(keys, P, kk, t2), b = take(keys, P, kk, t4);
    if (a != idx || b != idx) { printf("mismatch trial %d TH %d P %d C %d kk %ld mode %d: 2-bit %s 4-bit %s (thr %08x %08x)\n", trial, TH, P, C, (long)kk, mode, a == idx ? "ok" : "BAD", b == idx ? "ok" : "BAD", t2, t4); return 1; }
    ++n;
  }
  printf("ok %ld, mean rounds 2-bit %.2f, 4-bit %.2f\n", n, double(r2) / n, double(r4) / n);
}
