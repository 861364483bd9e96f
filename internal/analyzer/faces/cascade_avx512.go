//go:build cgo && amd64

package faces

/*
#cgo CFLAGS: -O3
#include <stdint.h>
#include <immintrin.h>

#ifndef S
#define S 4
#endif

// glimpse_faces_avx512 reports whether the processor runs the AVX-512
// kernel below (foundation and byte/word instructions).
static int glimpse_faces_avx512(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}

// offsets returns the offsets from a window's centre of 16 nodes' pixels,
// nodes j..j+15 of a tree whose codes pl holds as planes of 64 rows then
// 64 columns: ((r·size) >> 8)·dim + ((c·size) >> 8), arithmetic shifts.
__attribute__((target("avx512f,avx512bw")))
static inline __m512i offsets(const int8_t *pl, int j, __m512i size, __m512i dim) {
	__m512i r = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(pl + j)));
	__m512i c = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(pl + 64 + j)));
	r = _mm512_srai_epi32(_mm512_mullo_epi32(r, size), 8);
	c = _mm512_srai_epi32(_mm512_mullo_epi32(c, size), 8);
	return _mm512_add_epi32(_mm512_mullo_epi32(r, dim), c);
}

// leafScore is each lane's leaf score: idx is a node index after six
// levels (64..127); p0..p3 hold the tree's 64 leaf scores.
__attribute__((target("avx512f,avx512bw")))
static inline __m512 leafScore(__m512i idx, __m512 p0, __m512 p1, __m512 p2, __m512 p3) {
	__m512i leaf = _mm512_and_si512(idx, _mm512_set1_epi32(63));
	__m512i l5 = _mm512_and_si512(leaf, _mm512_set1_epi32(31));
	__m512 lo = _mm512_permutex2var_ps(p0, l5, p1);
	__m512 hi = _mm512_permutex2var_ps(p2, l5, p3);
	__mmask16 upper = _mm512_test_epi32_mask(leaf, _mm512_set1_epi32(32));
	return _mm512_mask_blend_ps(upper, lo, hi);
}

// glimpse_faces_scan_size runs the cascade over every window of one size,
// finding exactly what scanRow finds row by row in Go (the same windows, in
// the same order, with the same float additions), sixteen windows at a
// time:
//
//   - the windows of all rows go through each tree together, so that even
//     the deep trees, which few windows reach, get full vectors (row by
//     row, most trees would see a lane or two and wait on one chain of
//     dependent loads);
//   - a tree's node offsets are looked up with a permute across registers
//     holding the tree's 64-entry table (a level's index never spans more
//     than 32 entries), and its two pixels with gathers;
//   - the leaf score, again with a permute;
//   - the windows a tree keeps are packed to the front with a compress,
//     which keeps their order.
//
// pix is the grey image (stride dim), readable for 3 bytes past its end
// (a gather reads 4 bytes). planes holds, per tree, the signed 1/256
// offsets of its nodes 0..63 as four planes of 64: r1, c1, r2, c2 (see
// classifier.planes); a tree's offsets for this size are computed in registers
// when its turn comes, which costs less than a table. centres and scores
// are scratch for every window of the size. Detections go to out_centre and
// out_q (cap entries); the function returns how many, or -1 when they do
// not fit.
__attribute__((target("avx512f,avx512bw")))
static int glimpse_faces_scan_size(const uint8_t *pix, int dim, int h, int size, int step,
		int first, int last, int half,
		const int8_t *planes, const float *pred, const float *thr, int trees,
		int32_t *centres, float *scores,
		int32_t *out_centre, float *out_q, int cap) {
	if (last < first) return 0;
	int n = 0;
	for (int row = half; row <= h - half; row += step) {
		for (int c = first; c <= last; c += step) {
			centres[n] = row * dim + c;
			scores[n] = 0;
			n++;
		}
	}
	const __m512i one = _mm512_set1_epi32(1);
	const __m512i lo8 = _mm512_set1_epi32(0xff);
	const __m512i low5 = _mm512_set1_epi32(31);
	const __m512i sz = _mm512_set1_epi32(size), dm = _mm512_set1_epi32(dim);
	for (int t = 0; t < trees && n > 0; t++) {
		// The tree's offsets for this size, 16 nodes per register:
		// ((code·size) >> 8)·dim + ((code·size) >> 8), as prepare does.
		const int8_t *pl = planes + (size_t)t * 4 * 64;
		__m512i a0 = offsets(pl, 0, sz, dm), a1 = offsets(pl, 16, sz, dm);
		__m512i a2 = offsets(pl, 32, sz, dm), a3 = offsets(pl, 48, sz, dm);
		__m512i b0 = offsets(pl + 128, 0, sz, dm), b1 = offsets(pl + 128, 16, sz, dm);
		__m512i b2 = offsets(pl + 128, 32, sz, dm), b3 = offsets(pl + 128, 48, sz, dm);
		const float *tp = pred + (size_t)t * 64;
		__m512 p0 = _mm512_loadu_ps(tp), p1 = _mm512_loadu_ps(tp + 16);
		__m512 p2 = _mm512_loadu_ps(tp + 32), p3 = _mm512_loadu_ps(tp + 48);
		__m512 th = _mm512_set1_ps(thr[t]);
		int kept = 0;
		// S vectors per step: their chains of dependent loads overlap.
		for (int i = 0; i < n; i += 16 * S) {
			__mmask16 m[S];
			__m512i c[S], x[S];
			__m512 q[S];
			for (int v = 0; v < S; v++) {
				int r = n - i - 16 * v;
				m[v] = r >= 16 ? (__mmask16)0xffff : r > 0 ? (__mmask16)((1u << r) - 1) : 0;
				c[v] = _mm512_maskz_loadu_epi32(m[v], centres + i + 16 * v);
				q[v] = _mm512_maskz_loadu_ps(m[v], scores + i + 16 * v);
				x[v] = one;
			}
			for (int d = 0; d < 6; d++) {
				for (int v = 0; v < S; v++) {
					__m512i oa, ob;
					if (d < 5) { // idx < 32
						oa = _mm512_permutex2var_epi32(a0, x[v], a1);
						ob = _mm512_permutex2var_epi32(b0, x[v], b1);
					} else { // 32 <= idx < 64
						__m512i j = _mm512_and_si512(x[v], low5);
						oa = _mm512_permutex2var_epi32(a2, j, a3);
						ob = _mm512_permutex2var_epi32(b2, j, b3);
					}
					__m512i va = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m[v], _mm512_add_epi32(c[v], oa), pix, 1);
					__m512i vb = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m[v], _mm512_add_epi32(c[v], ob), pix, 1);
					__m512i diff = _mm512_sub_epi32(_mm512_and_si512(vb, lo8), _mm512_and_si512(va, lo8));
					// 2·idx + 1 when the second pixel is not darker, else 2·idx.
					x[v] = _mm512_add_epi32(_mm512_add_epi32(_mm512_slli_epi32(x[v], 1), one), _mm512_srai_epi32(diff, 31));
				}
			}
			for (int v = 0; v < S; v++) {
				q[v] = _mm512_add_ps(q[v], leafScore(x[v], p0, p1, p2, p3));
				__mmask16 k = _mm512_mask_cmp_ps_mask(m[v], q[v], th, _CMP_GT_OQ);
				_mm512_mask_compressstoreu_epi32(centres + kept, k, c[v]);
				_mm512_mask_compressstoreu_ps(scores + kept, k, q[v]);
				kept += __builtin_popcount((unsigned)k);
			}
		}
		n = kept;
	}
	int ndet = 0;
	float last_thr = thr[trees - 1];
	for (int i = 0; i < n; i++) {
		float q = scores[i] - last_thr;
		if (q > 0) {
			if (ndet == cap) return -1;
			out_centre[ndet] = centres[i];
			out_q[ndet] = q;
			ndet++;
		}
	}
	return ndet;
}
*/
import "C"

import (
	"unsafe"

	pigo "github.com/esimov/pigo/core"
)

// avx512 reports whether this processor runs the AVX-512 kernel; where it
// does not, the scan runs in Go (scanRow).
var avx512 = C.glimpse_faces_avx512() != 0

// simdScan is the state of the vector kernel for one scan: the offset
// tables and scratch it reuses from one window size to the next.
type simdScan struct {
	centres   []int32
	scores    []float32
	outC      []int32
	outQ      []float32
	planes    []int8
	pred, thr []float32
	trees     int
	padded    []uint8
	dim, h    int
}

// newSIMDScan prepares the kernel for c over pix (w×h, stride w), or
// returns nil when the processor cannot run it.
func (c *classifier) newSIMDScan(pix []uint8, w, h int) *simdScan {
	if !avx512 || !useSIMD {
		return nil
	}
	// The gathers read four bytes at each pixel: give them three more.
	padded := make([]uint8, len(pix)+4)
	copy(padded, pix)
	return &simdScan{
		outC: make([]int32, 1024), outQ: make([]float32, 1024),
		planes: c.planes, pred: c.pred, thr: c.thr, trees: c.trees,
		padded: padded, dim: w, h: h,
	}
}

// fork returns a kernel state for another goroutine: the same image and
// codes, scratch of its own. It is nil for a nil s.
func (s *simdScan) fork() *simdScan {
	if s == nil {
		return nil
	}
	return &simdScan{
		outC: make([]int32, 1024), outQ: make([]float32, 1024),
		planes: s.planes, pred: s.pred, thr: s.thr, trees: s.trees,
		padded: s.padded, dim: s.dim, h: s.h,
	}
}

// size appends to dets the detections of windows of one size, as scan's
// rows of scanRow would.
func (s *simdScan) size(size, step, first, last, half int, dets []pigo.Detection) []pigo.Detection {
	if last < first || s.h-half < half {
		return dets
	}
	n := ((s.h-2*half)/step + 1) * ((last-first)/step + 1)
	if cap(s.centres) < n {
		s.centres = make([]int32, n)
		s.scores = make([]float32, n)
	}
	for {
		got := C.glimpse_faces_scan_size(
			(*C.uint8_t)(unsafe.Pointer(&s.padded[0])), C.int(s.dim), C.int(s.h), C.int(size), C.int(step),
			C.int(first), C.int(last), C.int(half),
			(*C.int8_t)(unsafe.Pointer(&s.planes[0])), (*C.float)(unsafe.Pointer(&s.pred[0])), (*C.float)(unsafe.Pointer(&s.thr[0])), C.int(s.trees),
			(*C.int32_t)(unsafe.Pointer(&s.centres[0])), (*C.float)(unsafe.Pointer(&s.scores[0])),
			(*C.int32_t)(unsafe.Pointer(&s.outC[0])), (*C.float)(unsafe.Pointer(&s.outQ[0])), C.int(len(s.outC)))
		if got < 0 {
			// More detections than room: grow and scan the size again.
			s.outC = make([]int32, 4*len(s.outC))
			s.outQ = make([]float32, len(s.outC))
			continue
		}
		for i := range int(got) {
			c := int(s.outC[i])
			dets = append(dets, pigo.Detection{Row: c / s.dim, Col: c % s.dim, Scale: size, Q: s.outQ[i]})
		}
		return dets
	}
}
