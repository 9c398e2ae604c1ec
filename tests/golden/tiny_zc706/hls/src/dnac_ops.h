// dnac HLS library: the fixed parts of every generated project (never templated).
//
// The layer descriptor shared by all engines, the integer output stage (requantization,
// activation clamp, saturation) and the element-wise engines for pools and residual adds.
// The arithmetic here is exactly that of dnac's integer reference model
// (dnac/compiler/refmodel.py); the C-simulation testbench checks the two agree bit for bit.
#ifndef DNAC_OPS_H
#define DNAC_OPS_H

#include <ap_int.h>

// Loop dimensions, in dnac's order.  C is counted per group (1 for a depthwise layer).
enum { DNAC_N = 0, DNAC_K = 1, DNAC_C = 2, DNAC_R = 3, DNAC_S = 4, DNAC_P = 5, DNAC_Q = 6, DNAC_DIMS = 7 };

// Layer kinds.
enum { DNAC_OP_CONV = 0, DNAC_OP_MAXPOOL = 1, DNAC_OP_AVGPOOL = 2, DNAC_OP_ADD = 3 };

// Most operand tensors of one layer (residual adds).
#define DNAC_MAX_INPUTS 4

// One layer as its engine runs it: shape, the IR's loop nest, where its tensors live in DRAM
// and its output stage.  Offsets count elements of the port they index.
struct layer_cfg_t {
  int op;                      // DNAC_OP_*
  int N, K, C, R, S, P, Q;     // loop bounds; C is the total input channels
  int H, W;                    // input rows and columns (before padding)
  int groups;                  // K and C are split in `groups` groups (depthwise: groups == C == K)
  int sr, sc;                  // stride (rows, columns)
  int pr, pc;                  // zero padding (rows, columns), both sides
  int f_dram[DNAC_DIMS];       // temporal factors of the DRAM level (tiles)
  int f_gb[DNAC_DIMS];         // temporal factors of the global buffer level
  int sp[DNAC_DIMS];           // spatial factors over the PE array
  int f_rf[DNAC_DIMS];         // temporal factors of the register-file level (per PE)
  long long w_off;             // first weight, layout [K][C / groups][R][S]
  long long b_off;             // first bias (accumulator units), -1 for none
  int n_in;                    // operand tensors
  long long in_off[DNAC_MAX_INPUTS];   // first element of each operand's slot 0, layout NCHW
  int in_slots[DNAC_MAX_INPUTS];       // frames buffered for the operand (pipeline style)
  long long in_size[DNAC_MAX_INPUTS];  // elements of one slot
  long long out_off;           // first element of the output's slot 0
  int out_slots;
  long long out_size;
  long long ps_off;            // partial-sum spill area of the layer's chunk
  long long q_off;             // first of K (mult, shift) pairs on the biases port, -1 for none
  int lo, hi;                  // output clamp: activation and saturation in one
};

// Where frame `frame`'s copy of a tensor starts.
inline long long dnac_slot(long long off, int slots, long long size, int frame) {
  return off + (long long)(frame % slots) * size;
}

inline long long dnac_clamp(long long v, int lo, int hi) {
  return v < lo ? (long long)lo : (v > hi ? (long long)hi : v);
}

// (acc * mult + 2^(shift-1)) >> shift, then the clamp; refmodel.Requant.apply.  (mult, shift) is
// output channel k's pair: `params` (the biases port) holds them at q_off + 2k and q_off + 2k + 1.
// The reference model checks |acc * mult| < 2^62, so the product fits 64 bits; the shift is
// ap_int's (arithmetic), so a negative multiplier rounds like a positive one.
template <typename acc_T>
inline long long dnac_requant(long long acc, const layer_cfg_t &L, const acc_T *params, int k) {
#pragma HLS INLINE
  const long long mult = (long long)params[L.q_off + 2 * (long long)k];
  const int shift = (int)params[L.q_off + 2 * (long long)k + 1];
  long long prod = acc * mult;
  if (shift > 0) {
    ap_int<64> v = prod + (1LL << (shift - 1));
    v >>= shift;
    prod = (long long)v;
  }
  return dnac_clamp(prod, L.lo, L.hi);
}

// floor(a / b) for b > 0 (C++ division truncates toward zero).
inline long long dnac_floor_div(long long a, long long b) {
  long long q = a / b;
  if ((a % b != 0) && (a < 0)) {
    q -= 1;
  }
  return q;
}

// Two signed MACs of at most 8 bits that share the operand x, in one 25 x 18 multiply (a DSP48E1:
// Xilinx WP486's packing, at a 16-bit offset for the 25-bit A port): (w1 * 2^16 + w0) * x equals
// w1 x * 2^16 + w0 x, and |w0 x| <= 2^14 < 2^15, so the low 16 bits read as signed are w0 x and
// the rest is w1 x.  Exact for every pair of 8-bit operands (tests/test_hls_buffers.py).
template <typename acc_T>
inline void dnac_mac2(ap_int<8> w0, ap_int<8> w1, ap_int<8> x, acc_T &s0, acc_T &s1) {
#pragma HLS INLINE
  const ap_int<25> packed = ((ap_int<25>)w1 << 16) + (ap_int<25>)w0;
  const ap_int<33> p = packed * x;
  const ap_int<16> lo = p(15, 0);
  const ap_int<17> hi = (p - lo) >> 16;
  s0 += lo;
  s1 += hi;
}

// Block-cyclic banking (see dnac/compiler/cost/fpga_buffers.py): index x lies in bank
// (x / block) % cycle at address (x / (block * cycle)) * block + x % block.  A dim of a GB tile,
// x = (g * sp + s) * rf + r, is banked by its PE lane s with block rf and cycle sp; input rows
// (columns) with block rf_P * stride or rf_R (rf_Q * stride or rf_S), cycle sp_P or sp_R.
inline int dnac_bank(int x, int block, int cycle) {
#pragma HLS INLINE
  return (x / block) % cycle;
}

inline int dnac_addr(int x, int block, int cycle) {
#pragma HLS INLINE
  return (x / (block * cycle)) * block + x % block;
}

// Rows (or columns) 0..extent-1 banked with (block, cycle): addresses the fullest bank needs.
inline int dnac_block_extent(int extent, int block, int cycle) {
  const int q = (extent - 1) / (block * cycle), rem = (extent - 1) % (block * cycle);
  return q * block + (rem + 1 < block ? rem + 1 : block);
}

// Banking of the input rows / columns: which loop the PE array unrolls along that axis.
enum { DNAC_AXIS_NONE = 0, DNAC_AXIS_OUT = 1, DNAC_AXIS_RED = 2 };

// A layer's GB tile on its engine: extents, bank geometry and addresses per bank.  Runtime data
// (the banks are fixed by the chunk; a tile is placed in them, never sized by them).
struct dnac_geom_t {
  int t[DNAC_DIMS];  // tile extent per dim: f_gb * sp * f_rf
  int a[DNAC_DIMS];  // addresses per dim in one bank: f_gb * f_rf (N: its whole extent)
  int ch_dim;        // the dim that indexes input channels (C, or K for a depthwise layer)
  int ih, iw;        // input tile rows and columns, halo included
  int hb, hc;        // input row banking: block and cycle
  int wb, wc;        // input column banking
  int ah, aw;        // input row / column addresses in one bank
};

inline dnac_geom_t dnac_geometry(const layer_cfg_t &L, int rows, int cols, bool depthwise) {
  dnac_geom_t G;
  for (int d = 0; d < DNAC_DIMS; ++d) {
    G.t[d] = L.f_gb[d] * L.sp[d] * L.f_rf[d];
    G.a[d] = d == DNAC_N ? G.t[d] : L.f_gb[d] * L.f_rf[d];
  }
  G.ch_dim = depthwise ? DNAC_K : DNAC_C;
  G.ih = (G.t[DNAC_P] - 1) * L.sr + G.t[DNAC_R];
  G.iw = (G.t[DNAC_Q] - 1) * L.sc + G.t[DNAC_S];
  G.hb = rows == DNAC_AXIS_OUT ? L.f_rf[DNAC_P] * L.sr : (rows == DNAC_AXIS_RED ? L.f_rf[DNAC_R] : 1);
  G.hc = rows == DNAC_AXIS_OUT ? L.sp[DNAC_P] : (rows == DNAC_AXIS_RED ? L.sp[DNAC_R] : 1);
  G.wb = cols == DNAC_AXIS_OUT ? L.f_rf[DNAC_Q] * L.sc : (cols == DNAC_AXIS_RED ? L.f_rf[DNAC_S] : 1);
  G.wc = cols == DNAC_AXIS_OUT ? L.sp[DNAC_Q] : (cols == DNAC_AXIS_RED ? L.sp[DNAC_S] : 1);
  G.ah = dnac_block_extent(G.ih, G.hb, G.hc);
  G.aw = dnac_block_extent(G.iw, G.wb, G.wc);
  return G;
}

// Max or average pooling, element-wise after the producer's engine.  TC holds the largest trip
// count of each loop over the project's pools (dnac_layers.h: dnac_aux_tc), for LOOP_TRIPCOUNT.
template <class TC, typename fmap_T>
void dnac_pool(const layer_cfg_t &L, int frame, fmap_T *fmaps) {
  const long long in = dnac_slot(L.in_off[0], L.in_slots[0], L.in_size[0], frame);
  const long long out = dnac_slot(L.out_off, L.out_slots, L.out_size, frame);
  const int window = L.R * L.S;
  for (int n = 0; n < L.N; ++n) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=TC::n
    for (int k = 0; k < L.K; ++k) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=TC::k
      for (int p = 0; p < L.P; ++p) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=TC::p
        for (int q = 0; q < L.Q; ++q) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=TC::q
          long long best = 0;
          long long sum = 0;
          bool seen = false;
          for (int r = 0; r < L.R; ++r) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=TC::r
            for (int s = 0; s < L.S; ++s) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=TC::s
#pragma HLS PIPELINE II=1
              const int h = p * L.sr + r - L.pr;
              const int w = q * L.sc + s - L.pc;
              if (h >= 0 && h < L.H && w >= 0 && w < L.W) {
                const long long v = fmaps[in + (((long long)n * L.C + k) * L.H + h) * L.W + w];
                best = (!seen || v > best) ? v : best;
                sum += v;
                seen = true;
              }
            }
          }
          const long long y = (L.op == DNAC_OP_MAXPOOL) ? best : dnac_floor_div(2 * sum + window, 2 * (long long)window);
          fmaps[out + (((long long)n * L.K + k) * L.P + p) * L.Q + q] = dnac_clamp(y, L.lo, L.hi);
        }
      }
    }
  }
}

// Residual add of up to DNAC_MAX_INPUTS tensors, requantized like a convolution's accumulator.
template <class TC, typename fmap_T, typename acc_T>
void dnac_add(const layer_cfg_t &L, int frame, fmap_T *fmaps, const acc_T *params) {
  long long base[DNAC_MAX_INPUTS];
  for (int i = 0; i < DNAC_MAX_INPUTS; ++i) {
    base[i] = i < L.n_in ? dnac_slot(L.in_off[i], L.in_slots[i], L.in_size[i], frame) : 0;
  }
  const long long out = dnac_slot(L.out_off, L.out_slots, L.out_size, frame);
  const long long count = (long long)L.N * L.K * L.P * L.Q;
  for (long long e = 0; e < count; ++e) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=TC::elements
#pragma HLS PIPELINE II=1
    long long acc = 0;
    for (int i = 0; i < DNAC_MAX_INPUTS; ++i) {
      if (i < L.n_in) {
        acc += (long long)fmaps[base[i] + e];
      }
    }
    fmaps[out + e] = dnac_requant(acc, L, params, (int)((e / ((long long)L.P * L.Q)) % L.K));
  }
}

#endif  // DNAC_OPS_H
