// The int4 tiles of the AVX2 exact path (qgemm_avx2.cpp: the header comment there states the
// activation layout, the nibble order, the overflow bounds and each tile's reduction). Included
// once, by qgemm_avx2.cpp, inside its anonymous namespace after Ctx, load, finish_bl and
// copy_tails, which these tiles use (with qgemm_exact.h's store_y and finish_channel_inline):
// they are that file's second half, kept apart
// so each file stays a few hundred lines. Not a standalone header.
// Tiles: tile_i4 (R rows x T tokens from a scratch row, per channel or block 32),
// tile_i4b_rows4 (decode, 4 rows' block sums reduced together), tile_i4b_tok4 (prefill, 4
// tokens of one row; M >= kI4PanelMinM takes the int16 panels of qgemm_avx2_panel.cpp).
#ifndef HS_KERNELS_QGEMM_AVX2_I4_INL_H_
#define HS_KERNELS_QGEMM_AVX2_I4_INL_H_

// The four sign-extended nibble vectors of 32 int4 weight bytes (j: k = 4i + j of word i).
HS_AVX2_FN inline void unpack_i4(__m256i wb, __m256i* wj) {
  wj[0] = _mm256_srai_epi16(_mm256_slli_epi16(wb, 12), 12);
  wj[1] = _mm256_srai_epi16(_mm256_slli_epi16(wb, 8), 12);
  wj[2] = _mm256_srai_epi16(_mm256_slli_epi16(wb, 4), 12);
  wj[3] = _mm256_srai_epi16(wb, 12);
}

// Per 128-bit half, the four lane sums of four group vectors: [v0, v1, v2, v3 totals] (what
// two levels of vphaddd give, in single-uop unpacks and adds).
HS_AVX2_FN inline __m256i block_sums(__m256i v0, __m256i v1, __m256i v2, __m256i v3) {
  const __m256i ab = _mm256_add_epi32(_mm256_unpacklo_epi32(v0, v1), _mm256_unpackhi_epi32(v0, v1));
  const __m256i cd = _mm256_add_epi32(_mm256_unpacklo_epi32(v2, v3), _mm256_unpackhi_epi32(v2, v3));
  return _mm256_add_epi32(_mm256_unpacklo_epi64(ab, cd), _mm256_unpackhi_epi64(ab, cd));
}

// int4, per channel (kBlocks false) or blocks of 32 (comb: [R*T][G*8] scratch).
template <size_t R, size_t T, bool kCorr, bool kBlocks>
HS_AVX2_FN void tile_i4(const Ctx& x, size_t n0, size_t m0, int32_t* comb) {
  const MatmulCall& c = *x.c;
  const uint8_t* w = x.q->data + n0 * x.row_bytes;
  alignas(32) uint8_t tail[R][32];
  copy_tails<R>(x, w, tail);
  const size_t G = x.groups;
  if constexpr (kBlocks) {
    // The R rows' scales (R * nb floats), needed by the epilogue: a cache miss otherwise.
    const char* sc = reinterpret_cast<const char*>(x.q->scales + n0 * x.q->blocks);
    for (size_t i = 0; i < R * x.q->blocks * 4; i += 64) _mm_prefetch(sc + i, _MM_HINT_T0);
  }
  const int16_t* a[T];
  for (size_t t = 0; t < T; ++t) a[t] = x.act + (m0 + t) * G * 64;
  const __m256i ones = _mm256_set1_epi16(1), shift = _mm256_set1_epi32(x.shift);
  __m256i acc[R][T], accw[R];
  for (size_t r = 0; r < R; ++r) {
    accw[r] = _mm256_setzero_si256();
    for (size_t t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_si256();
  }
  // One group g of the R rows at src[r]: in place (g < full) or the tail copies.
  const bool to_l2 = R * x.row_bytes > kL1Tile;
  auto group = [&](size_t g, const uint8_t* const(&src)[R]) HS_AVX2_FN {
    const uint8_t* next = w + R * x.row_bytes + R * g * 32;
    prefetch_tile_line(next, to_l2);  // the next tile, as in tile_i8
    if constexpr (R > 2) prefetch_tile_line(next + 64, to_l2);
    for (size_t r = 0; r < R; ++r) {
      __m256i wj[4];
      unpack_i4(load(src[r]), wj);
      __m256i cw = _mm256_setzero_si256();
      if constexpr (kCorr) {
        const __m256i ws = _mm256_add_epi16(_mm256_add_epi16(wj[0], wj[1]),
                                            _mm256_add_epi16(wj[2], wj[3]));
        if constexpr (kBlocks) {
          cw = _mm256_mullo_epi32(_mm256_madd_epi16(ws, ones), shift);
        } else {
          accw[r] = _mm256_add_epi32(accw[r], _mm256_madd_epi16(ws, ones));
        }
      }
      for (size_t t = 0; t < T; ++t) {
        const int16_t* at = a[t] + g * 64;
        const __m256i s01 = _mm256_add_epi32(_mm256_madd_epi16(wj[0], load(at)),
                                             _mm256_madd_epi16(wj[1], load(at + 16)));
        const __m256i s23 = _mm256_add_epi32(_mm256_madd_epi16(wj[2], load(at + 32)),
                                             _mm256_madd_epi16(wj[3], load(at + 48)));
        if constexpr (kBlocks) {
          __m256i s = _mm256_add_epi32(s01, s23);
          if constexpr (kCorr) s = _mm256_add_epi32(s, cw);
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(comb + ((r * T + t) * G + g) * 8), s);
        } else {
          acc[r][t] = _mm256_add_epi32(acc[r][t], _mm256_add_epi32(s01, s23));
        }
      }
    }
  };
  const uint8_t* src[R];
  for (size_t r = 0; r < R; ++r) src[r] = w + r * x.row_bytes;
  for (size_t g = 0; g < x.full; ++g) {
    group(g, src);
    for (size_t r = 0; r < R; ++r) src[r] += 32;
  }
  if (x.full < G) {
    for (size_t r = 0; r < R; ++r) src[r] = tail[r];
    group(x.full, src);
  }
  const __m256i even_odd = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (size_t r = 0; r < R; ++r) {
    const size_t n = n0 + r;
    const float bias = c.bias != nullptr ? c.bias[n] : 0.f;
    if constexpr (kBlocks) {
      const size_t nb = x.q->blocks;
      const float* sc = x.q->scales + n * nb;
      __m256d acc_e[T], acc_o[T];  // acc[0, 2, 4, 6] and acc[1, 3, 5, 7] of each token
      for (size_t t = 0; t < T; ++t) acc_e[t] = acc_o[t] = _mm256_setzero_pd();
      for (size_t g0 = 0; g0 < G; g0 += 4) {
        const size_t b0 = 2 * g0, here = std::min<size_t>(8, nb - b0);
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(here)), lane);
        const __m256 s = _mm256_permutevar8x32_ps(_mm256_maskload_ps(sc + b0, mask), even_odd);
        const __m256d se = _mm256_cvtps_pd(_mm256_castps256_ps128(s));
        const __m256d so = _mm256_cvtps_pd(_mm256_extractf128_ps(s, 1));
        for (size_t t = 0; t < T; ++t) {
          const int32_t* cb = comb + ((r * T + t) * G + g0) * 8;
          __m256i v[4];
          for (size_t i = 0; i < 4; ++i) {
            v[i] = g0 + i < G ? load(cb + i * 8) : _mm256_setzero_si256();
          }
          // [blocks b0 + 0, 2, 4, 6 | b0 + 1, 3, 5, 7]. The products are exact in double (a
          // 24-bit scale times |D| < 2^24), so a contracted multiply-add gives the same bits.
          const __m256i h = block_sums(v[0], v[1], v[2], v[3]);
          acc_e[t] = _mm256_add_pd(
              acc_e[t], _mm256_mul_pd(_mm256_cvtepi32_pd(_mm256_castsi256_si128(h)), se));
          acc_o[t] = _mm256_add_pd(
              acc_o[t], _mm256_mul_pd(_mm256_cvtepi32_pd(_mm256_extracti128_si256(h, 1)), so));
        }
      }
      for (size_t t = 0; t < T; ++t) {
        store_y(c, m0 + t, n, finish_bl(acc_e[t], acc_o[t], x.s_a, bias));
      }
    } else {
      const int64_t sw = kCorr ? hsum64(accw[r]) : 0;
      for (size_t t = 0; t < T; ++t) {
        const int64_t d = hsum64(acc[r][t]) + int64_t{x.shift} * sw;
        store_y(c, m0 + t, n, finish_channel_inline(d, x.q->scales[n], x.s_a, bias));
      }
    }
  }
}

// The sum of the eight 32-bit lanes of one int4 group (64 k) for one row (per 128-bit half:
// block 2g, block 2g + 1), the shift correction s * sum w included.
template <bool kCorr>
HS_AVX2_FN __attribute__((always_inline)) inline __m256i group_i4(__m256i wb, const __m256i (&av)[4],
                                                                  __m256i shift) {
  __m256i wj[4];
  unpack_i4(wb, wj);
  __m256i s = _mm256_add_epi32(
      _mm256_add_epi32(_mm256_madd_epi16(wj[0], av[0]), _mm256_madd_epi16(wj[1], av[1])),
      _mm256_add_epi32(_mm256_madd_epi16(wj[2], av[2]), _mm256_madd_epi16(wj[3], av[3])));
  if constexpr (kCorr) {
    const __m256i ws =
        _mm256_add_epi16(_mm256_add_epi16(wj[0], wj[1]), _mm256_add_epi16(wj[2], wj[3]));
    s = _mm256_add_epi32(s, _mm256_mullo_epi32(_mm256_madd_epi16(ws, _mm256_set1_epi16(1)), shift));
  }
  return s;
}

// One group g of 4 rows' weights at src[r] against x's activations a (decode): d = [rows 0..3
// of block 2g | of block 2g + 1]; the next tile's weights (at next) are prefetched meanwhile,
// into L2 when the tile is longer than kL1Tile (to_l2; see tile_i8).
template <bool kCorr>
HS_AVX2_FN __attribute__((always_inline)) inline __m256i rows4_group(
    const int16_t* a, const uint8_t* next, bool to_l2, size_t g, const uint8_t* const (&src)[4],
    __m256i shift) {
  prefetch_tile_line(next + 4 * g * 32, to_l2);
  prefetch_tile_line(next + 4 * g * 32 + 64, to_l2);
  const int16_t* ag = a + g * 64;
  const __m256i av[4] = {load(ag), load(ag + 16), load(ag + 32), load(ag + 48)};
  return block_sums(group_i4<kCorr>(load(src[0]), av, shift), group_i4<kCorr>(load(src[1]), av, shift),
                    group_i4<kCorr>(load(src[2]), av, shift), group_i4<kCorr>(load(src[3]), av, shift));
}

// acc[2j + e] (a __m256d of 4 rows, e = 0: block b0 + 2j, low half of d; e = 1: b0 + 2j + 1,
// high half) += double(scale) * double(D) for the four groups d[j] of blocks b0 .. b0 + 7;
// rs[r] = row r's scales of those blocks, transposed here to t[i] = [rows 0..3 of block
// b0 + i | rows 0..3 of block b0 + 4 + i]. The products are exact in double (a 24-bit scale
// times |D| < 2^24), so a contracted FMA gives the same bits as finish_blocks' formula.
HS_AVX2_FN __attribute__((always_inline)) inline void add_blocks8(const __m256i (&d)[4],
                                                                  const __m256 (&rs)[4],
                                                                  __m256d (&acc)[8]) {
  const __m256 u0 = _mm256_unpacklo_ps(rs[0], rs[1]), u1 = _mm256_unpackhi_ps(rs[0], rs[1]);
  const __m256 u2 = _mm256_unpacklo_ps(rs[2], rs[3]), u3 = _mm256_unpackhi_ps(rs[2], rs[3]);
  const __m256 t[4] = {_mm256_shuffle_ps(u0, u2, 0x44), _mm256_shuffle_ps(u0, u2, 0xEE),
                       _mm256_shuffle_ps(u1, u3, 0x44), _mm256_shuffle_ps(u1, u3, 0xEE)};
  for (size_t j = 0; j < 4; ++j) {
    const size_t be = 2 * j, bo = 2 * j + 1;
    const __m128 se = be < 4 ? _mm256_castps256_ps128(t[be]) : _mm256_extractf128_ps(t[be - 4], 1);
    const __m128 so = bo < 4 ? _mm256_castps256_ps128(t[bo]) : _mm256_extractf128_ps(t[bo - 4], 1);
    acc[be] = _mm256_fmadd_pd(_mm256_cvtepi32_pd(_mm256_castsi256_si128(d[j])),
                              _mm256_cvtps_pd(se), acc[be]);
    acc[bo] = _mm256_fmadd_pd(_mm256_cvtepi32_pd(_mm256_extracti128_si256(d[j], 1)),
                              _mm256_cvtps_pd(so), acc[bo]);
  }
}

// Decode, int4 block 32: 4 rows from n0 x token m0 with the rows in lanes. Per group g the four
// rows' lane vectors are reduced (block_sums) to d = [rows 0..3 of block 2g | of block 2g + 1];
// per 4 groups (8 blocks) add_blocks8 accumulates acc[b mod 8] in increasing b. Chunks of 4
// groups read in place run without branches; the last 1..4 groups (and the tail copies) follow.
template <bool kCorr>
HS_AVX2_FN void tile_i4b_rows4(const Ctx& x, size_t n0, size_t m0) {
  const MatmulCall& c = *x.c;
  const size_t rb = x.row_bytes, G = x.groups, nb = x.q->blocks, full = x.full;
  const uint8_t* w = x.q->data + n0 * rb;
  const uint8_t* const wr[4] = {w, w + rb, w + 2 * rb, w + 3 * rb};
  const float* sc = x.q->scales + n0 * nb;
  const float* const sr[4] = {sc, sc + nb, sc + 2 * nb, sc + 3 * nb};
  for (size_t i = 0; i < 4 * nb * 4; i += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(sc) + i, _MM_HINT_T0);
  }
  const uint8_t* next = w + 4 * rb;  // the next tile, prefetched as this one is read (tile_i8)
  const int16_t* a = x.act + m0 * G * 64;
  const __m256i shift = _mm256_set1_epi32(x.shift);
  __m256d acc[8];
  for (auto& v : acc) v = _mm256_setzero_pd();
  const bool to_l2 = 4 * rb > kL1Tile;
  auto group = [&](size_t g, const uint8_t* const (&src)[4]) HS_AVX2_FN {
    return rows4_group<kCorr>(a, next, to_l2, g, src, shift);
  };
  size_t g0 = 0;
  for (; g0 + 4 <= full; g0 += 4) {
    __m256i d[4];
    for (size_t j = 0; j < 4; ++j) {
      const size_t o = (g0 + j) * 32;
      d[j] = group(g0 + j, {wr[0] + o, wr[1] + o, wr[2] + o, wr[3] + o});
    }
    const size_t b0 = 2 * g0;
    const __m256 rs[4] = {_mm256_loadu_ps(sr[0] + b0), _mm256_loadu_ps(sr[1] + b0),
                          _mm256_loadu_ps(sr[2] + b0), _mm256_loadu_ps(sr[3] + b0)};
    add_blocks8(d, rs, acc);
    // acc to memory between chunks (its address escapes here): the 8 registers it would hold
    // are free for the 4 groups, which then spill less (callgrind: 5% fewer instructions).
    __asm__ volatile("" : : "r"(acc) : "memory");
  }
  // The last 1..4 groups (up to 3 in place and the tail copy) one by one (g0 is a multiple of
  // 4: blocks 2j and 2j + 1 mod 8), their scales gathered per block; a block past the last one
  // (odd count) is skipped (D = 0 there).
  if (g0 < G) {
    alignas(32) uint8_t tail[4][32];
    copy_tails<4>(x, w, tail);
#pragma GCC unroll 4
    for (size_t j = 0; j < 4; ++j) {
      const size_t g = g0 + j, o = g * 32, be = 2 * g, bo = be + 1;
      if (g >= G) break;
      const __m256i d = g < full ? group(g, {wr[0] + o, wr[1] + o, wr[2] + o, wr[3] + o})
                                 : group(g, {tail[0], tail[1], tail[2], tail[3]});
      acc[2 * j] = _mm256_fmadd_pd(
          _mm256_cvtepi32_pd(_mm256_castsi256_si128(d)),
          _mm256_cvtps_pd(_mm_setr_ps(sr[0][be], sr[1][be], sr[2][be], sr[3][be])), acc[2 * j]);
      if (bo < nb) {
        acc[2 * j + 1] = _mm256_fmadd_pd(
            _mm256_cvtepi32_pd(_mm256_extracti128_si256(d, 1)),
            _mm256_cvtps_pd(_mm_setr_ps(sr[0][bo], sr[1][bo], sr[2][bo], sr[3][bo])),
            acc[2 * j + 1]);
      }
    }
  }
  // finish_blocks per lane: ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)), * s_a, + bias
  // (not contracted: the asm keeps the product rounded on its own).
  __m256d tot = _mm256_add_pd(
      _mm256_add_pd(_mm256_add_pd(acc[0], acc[1]), _mm256_add_pd(acc[2], acc[3])),
      _mm256_add_pd(_mm256_add_pd(acc[4], acc[5]), _mm256_add_pd(acc[6], acc[7])));
  tot = _mm256_mul_pd(tot, _mm256_set1_pd(x.s_a));
  __asm__("" : "+x"(tot));
  const __m128 bias = c.bias != nullptr ? _mm_loadu_ps(c.bias + n0) : _mm_setzero_ps();
  alignas(16) float y[4];
  _mm_store_ps(y, _mm256_cvtpd_ps(_mm256_add_pd(tot, _mm256_cvtps_pd(bias))));
  for (size_t r = 0; r < 4; ++r) store_y(c, m0, n0 + r, y[r]);
}

// Decode, int4 block 32 with LPBQ factors (qgemm.h: scales = c_n * m_b, m_b in 1..16): the
// groups of tile_i4b_rows4, but per 4 groups (8 blocks) the block sums d[j] = [rows 0..3 of
// block 2j | of block 2j + 1] are weighted by their multipliers in int32 (|m * D| < 2^28, four
// of them < 2^30) and added to a double per lane (exact integers), so per row
// D = sum_b m_b * D_b exactly and y = finish_channel(D, c_n): the per-block formula's bits
// (QuantizedWeights::lpbq_*). The float scales are not read: 1 byte per block instead of 4.
// The multipliers of rows 0..3 x blocks b0..b0+7 (4 x 8 bytes) are transposed to block-major
// [block][row] with one dword permute and one byte shuffle.
template <bool kCorr>
HS_AVX2_FN void tile_i4lpbq_rows4(const Ctx& x, size_t n0, size_t m0) {
  const size_t rb = x.row_bytes, G = x.groups, nb = x.q->blocks, full = x.full;
  const uint8_t* w = x.q->data + n0 * rb;
  const uint8_t* const wr[4] = {w, w + rb, w + 2 * rb, w + 3 * rb};
  const uint8_t* mb = x.q->lpbq_mult + n0 * nb;
  const uint8_t* const mr[4] = {mb, mb + nb, mb + 2 * nb, mb + 3 * nb};
  for (size_t i = 0; i < 4 * nb; i += 64) _mm_prefetch(reinterpret_cast<const char*>(mb) + i, _MM_HINT_T0);
  const uint8_t* next = w + 4 * rb;  // the next tile, prefetched as this one is read (tile_i8)
  const int16_t* a = x.act + m0 * G * 64;
  const __m256i shift = _mm256_set1_epi32(x.shift);
  const __m256i to_rows = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  const __m256i to_blocks = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
                                             0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();  // rows 0..3: even / odd blocks
  const bool to_l2 = 4 * rb > kL1Tile;
  auto group = [&](size_t g, const uint8_t* const (&src)[4]) HS_AVX2_FN {
    return rows4_group<kCorr>(a, next, to_l2, g, src, shift);
  };
  auto flush = [&](__m256i s) HS_AVX2_FN {
    lo = _mm256_add_pd(lo, _mm256_cvtepi32_pd(_mm256_castsi256_si128(s)));
    hi = _mm256_add_pd(hi, _mm256_cvtepi32_pd(_mm256_extracti128_si256(s, 1)));
  };
  size_t g0 = 0;
  for (; g0 + 4 <= full; g0 += 4) {
    const size_t b0 = 2 * g0;
    uint64_t m8[4];
    for (size_t r = 0; r < 4; ++r) std::memcpy(&m8[r], mr[r] + b0, 8);
    const __m256i mt = _mm256_shuffle_epi8(
        _mm256_permutevar8x32_epi32(_mm256_setr_epi64x(static_cast<int64_t>(m8[0]), static_cast<int64_t>(m8[1]),
                                                       static_cast<int64_t>(m8[2]), static_cast<int64_t>(m8[3])),
                                    to_rows),
        to_blocks);
    const __m128i ml = _mm256_castsi256_si128(mt), mh = _mm256_extracti128_si256(mt, 1);
    const __m256i m[4] = {_mm256_cvtepu8_epi32(ml), _mm256_cvtepu8_epi32(_mm_unpackhi_epi64(ml, ml)),
                          _mm256_cvtepu8_epi32(mh), _mm256_cvtepu8_epi32(_mm_unpackhi_epi64(mh, mh))};
    __m256i s = _mm256_setzero_si256();
    for (size_t j = 0; j < 4; ++j) {
      const size_t o = (g0 + j) * 32;
      const __m256i d = group(g0 + j, {wr[0] + o, wr[1] + o, wr[2] + o, wr[3] + o});
      s = _mm256_add_epi32(s, _mm256_mullo_epi32(d, m[j]));
    }
    flush(s);
  }
  // The last 1..4 groups (up to 3 in place and the tail copy) one by one; a block past the last
  // one (odd count) has D = 0 and multiplier 0.
  if (g0 < G) {
    alignas(32) uint8_t tail[4][32];
    copy_tails<4>(x, w, tail);
    __m256i s = _mm256_setzero_si256();
    for (size_t g = g0; g < G; ++g) {
      const size_t o = g * 32, be = 2 * g, bo = be + 1;
      const __m256i d = g < full ? group(g, {wr[0] + o, wr[1] + o, wr[2] + o, wr[3] + o})
                                 : group(g, {tail[0], tail[1], tail[2], tail[3]});
      auto mo = [&](size_t r) { return bo < nb ? int32_t{mr[r][bo]} : 0; };
      const __m256i m = _mm256_setr_epi32(mr[0][be], mr[1][be], mr[2][be], mr[3][be], mo(0),
                                          mo(1), mo(2), mo(3));
      s = _mm256_add_epi32(s, _mm256_mullo_epi32(d, m));
    }
    flush(s);
  }
  alignas(32) double dl[4], dh[4];
  _mm256_store_pd(dl, lo);
  _mm256_store_pd(dh, hi);
  const MatmulCall& c = *x.c;
  for (size_t r = 0; r < 4; ++r) {
    const size_t n = n0 + r;
    const int64_t d = static_cast<int64_t>(dl[r]) + static_cast<int64_t>(dh[r]);
    store_y(c, m0, n, finish_channel_inline(d, x.q->lpbq_scales[n], x.s_a, c.bias != nullptr ? c.bias[n] : 0.f));
  }
}

// Prefill, int4 block 32: R rows from n0 x 4 tokens from m0 with the tokens in lanes. Per
// group g and row r the four tokens' lane vectors are reduced (block_sums) to d = [tokens 0..3
// of block 2g | of block 2g + 1], and acc[r][b mod 8] (a __m256d of the 4 tokens, on the stack)
// += double(s_b) * double(D) in increasing b: no scratch round trip, one scale per row and
// block for the 4 tokens (the products are exact in double: a contracted FMA is the same).
template <size_t R, bool kCorr>
HS_AVX2_FN void tile_i4b_tok4(const Ctx& x, size_t n0, size_t m0) {
  const MatmulCall& c = *x.c;
  const size_t rb = x.row_bytes, G = x.groups, nb = x.q->blocks;
  const uint8_t* w = x.q->data + n0 * rb;
  const float* sc = x.q->scales + n0 * nb;
  for (size_t i = 0; i < R * nb * 4; i += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(sc) + i, _MM_HINT_T0);
  }
  alignas(32) uint8_t tail[R][32];
  copy_tails<R>(x, w, tail);
  const int16_t* a[4];
  for (size_t t = 0; t < 4; ++t) a[t] = x.act + (m0 + t) * G * 64;
  const __m256i shift = _mm256_set1_epi32(x.shift);
  __m256d acc[R][8];
  for (size_t r = 0; r < R; ++r) {
    for (auto& v : acc[r]) v = _mm256_setzero_pd();
  }
  // One group g of the R rows at src[r] (in place, or the tail copies).
  auto group = [&](size_t g, const uint8_t* const (&src)[R]) HS_AVX2_FN {
    const char* next = reinterpret_cast<const char*>(w + R * rb + R * g * 32);
    _mm_prefetch(next, _MM_HINT_T0);  // the next tile, as in tile_i8
    if constexpr (R > 2) _mm_prefetch(next + 64, _MM_HINT_T0);
    const size_t be = 2 * g, bo = 2 * g + 1;
    for (size_t r = 0; r < R; ++r) {
      __m256i wj[4];
      unpack_i4(load(src[r]), wj);
      __m256i cw = _mm256_setzero_si256();
      if constexpr (kCorr) {
        const __m256i ws = _mm256_add_epi16(_mm256_add_epi16(wj[0], wj[1]),
                                            _mm256_add_epi16(wj[2], wj[3]));
        cw = _mm256_mullo_epi32(_mm256_madd_epi16(ws, _mm256_set1_epi16(1)), shift);
      }
      __m256i st[4];
      for (size_t t = 0; t < 4; ++t) {
        const int16_t* at = a[t] + g * 64;
        st[t] = _mm256_add_epi32(
            _mm256_add_epi32(_mm256_madd_epi16(wj[0], load(at)), _mm256_madd_epi16(wj[1], load(at + 16))),
            _mm256_add_epi32(_mm256_madd_epi16(wj[2], load(at + 32)),
                             _mm256_madd_epi16(wj[3], load(at + 48))));
        if constexpr (kCorr) st[t] = _mm256_add_epi32(st[t], cw);
      }
      const __m256i d = block_sums(st[0], st[1], st[2], st[3]);
      const float* sr = sc + r * nb;
      acc[r][be % 8] = _mm256_fmadd_pd(_mm256_cvtepi32_pd(_mm256_castsi256_si128(d)),
                                       _mm256_set1_pd(static_cast<double>(sr[be])), acc[r][be % 8]);
      if (bo < nb) {  // block 2g + 1 exists (else its D is 0: zero-padded weights)
        acc[r][bo % 8] =
            _mm256_fmadd_pd(_mm256_cvtepi32_pd(_mm256_extracti128_si256(d, 1)),
                            _mm256_set1_pd(static_cast<double>(sr[bo])), acc[r][bo % 8]);
      }
    }
  };
  const uint8_t* src[R];
  for (size_t r = 0; r < R; ++r) src[r] = w + r * rb;
  for (size_t g = 0; g < x.full; ++g) {
    group(g, src);
    for (size_t r = 0; r < R; ++r) src[r] += 32;
  }
  if (x.full < G) {
    for (size_t r = 0; r < R; ++r) src[r] = tail[r];
    group(x.full, src);
  }
  for (size_t r = 0; r < R; ++r) {
    const __m256d* ac = acc[r];
    // finish_blocks per lane (token), not contracted (see tile_i4b_rows4).
    __m256d tot = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(ac[0], ac[1]), _mm256_add_pd(ac[2], ac[3])),
                                _mm256_add_pd(_mm256_add_pd(ac[4], ac[5]), _mm256_add_pd(ac[6], ac[7])));
    tot = _mm256_mul_pd(tot, _mm256_set1_pd(x.s_a));
    __asm__("" : "+x"(tot));
    const double bias = c.bias != nullptr ? static_cast<double>(c.bias[n0 + r]) : 0.0;
    alignas(16) float y[4];
    _mm_store_ps(y, _mm256_cvtpd_ps(_mm256_add_pd(tot, _mm256_set1_pd(bias))));
    for (size_t t = 0; t < 4; ++t) store_y(c, m0 + t, n0 + r, y[t]);
  }
}

#endif  // HS_KERNELS_QGEMM_AVX2_I4_INL_H_
