//go:build cgo && amd64

package kernel

/*
#cgo CFLAGS: -O3
#include <stdint.h>
#include <immintrin.h>

#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

CLONES void glimpse_luma(uint8_t *dst, const uint8_t *src, int n) {
	for (int i = 0; i < n; i++) {
		const uint8_t *p = src + 4 * i;
		dst[i] = (uint8_t)(((54u * p[0] + 183u * p[1] + 19u * p[2] + 128u) >> 8) + 255u - p[3]);
	}
}

CLONES void glimpse_grey601(uint8_t *dst, const uint8_t *src, int n) {
	for (int i = 0; i < n; i++) {
		const uint8_t *p = src + 4 * i;
		dst[i] = (uint8_t)((19595u * p[0] + 38470u * p[1] + 7471u * p[2] + (1u << 15)) >> 16);
	}
}

// A pixel's Laplacian is within ±1020 and its square within 32 bits.
CLONES void glimpse_laplacian(const uint8_t *g, int w, int h, int64_t *sum, int64_t *sum2) {
	int64_t s = 0, s2 = 0;
	for (int y = 1; y < h - 1; y++) {
		const uint8_t *up = g + (size_t)(y - 1) * w, *row = g + (size_t)y * w, *down = g + (size_t)(y + 1) * w;
		int64_t rs = 0, rs2 = 0;
		for (int x = 1; x < w - 1; x++) {
			int32_t l = (int32_t)up[x] + down[x] + row[x - 1] + row[x + 1] - 4 * (int32_t)row[x];
			rs += l;
			rs2 += (int64_t)(l * l);
		}
		s += rs;
		s2 += rs2;
	}
	*sum = s;
	*sum2 = s2;
}

// glimpse_resize_vert: the vertical pass of a ResizeRow, into tmp.
CLONES void glimpse_resize_vert(const uint8_t *r0, const uint8_t *r1, const uint8_t *r2, int n,
		uint32_t w0, uint32_t w1, uint32_t w2, uint16_t *tmp) {
	for (int i = 0; i < n; i++) {
		tmp[i] = (uint16_t)(w0 * r0[i] + w1 * r1[i] + w2 * r2[i]);
	}
}

// glimpse_resize_horiz: the horizontal pass of a ResizeRow from output
// pixel x0 on, one pixel at a time.
CLONES void glimpse_resize_horiz(const uint16_t *tmp, const int32_t *idx, const uint32_t *wt, int x0, int w, uint8_t *out) {
	// A pixel's four channels in one vector.
	typedef uint16_t v4h __attribute__((vector_size(8)));
	typedef uint32_t v4u __attribute__((vector_size(16)));
	typedef uint8_t v4b __attribute__((vector_size(4)));
	for (int x = x0; x < w; x++) {
		v4h h0, h1, h2;
		__builtin_memcpy(&h0, tmp + 4 * idx[3 * x], 8);
		__builtin_memcpy(&h1, tmp + 4 * idx[3 * x + 1], 8);
		__builtin_memcpy(&h2, tmp + 4 * idx[3 * x + 2], 8);
		v4u s = __builtin_convertvector(h0, v4u) * wt[3 * x] + __builtin_convertvector(h1, v4u) * wt[3 * x + 1] +
			__builtin_convertvector(h2, v4u) * wt[3 * x + 2] + (1u << 22);
		v4b o = __builtin_convertvector(s >> 23, v4b);
		__builtin_memcpy(out + 4 * x, &o, 4);
	}
}

// glimpse_resize_horiz_gray: glimpse_resize_horiz on grey pixels.
CLONES void glimpse_resize_horiz_gray(const uint16_t *tmp, const int32_t *idx, const uint32_t *wt, int w, uint8_t *out) {
	for (int x = 0; x < w; x++) {
		uint32_t s = wt[3 * x] * tmp[idx[3 * x]] + wt[3 * x + 1] * tmp[idx[3 * x + 1]] +
			wt[3 * x + 2] * tmp[idx[3 * x + 2]] + (1u << 22);
		out[x] = (uint8_t)(s >> 23);
	}
}

// glimpse_resize_horiz16 is glimpse_resize_horiz four output pixels (16
// channels) at a time, for processors with AVX-512BW. The taps of output
// pixels 4b..4b+3 all lie in the 16 source pixels from bases[b] on (the
// caller checked), whose 64 channels two registers hold; each tap's
// channels are picked out of them by one permute into the low halves of
// 32-bit lanes, where they are weighted and summed as the scalar pass
// does (a sum stays below 2³²: 255·256 · 2¹⁵ + 2²²). It returns the
// first output pixel it left to the scalar pass. tmp must be readable 64
// values past 4·bases[b].
__attribute__((target("avx512f,avx512bw")))
int glimpse_resize_horiz16(const uint16_t *tmp, const int32_t *idx, const uint32_t *wt, const int32_t *bases, int w, uint8_t *out) {
	const __m512i spread = _mm512_setr_epi32(0, 0, 0, 0, 3, 3, 3, 3, 6, 6, 6, 6, 9, 9, 9, 9);
	const __m512i chan = _mm512_setr_epi32(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3);
	const __m512i round = _mm512_set1_epi32(1 << 22);
	int x = 0;
	for (; x + 4 <= w; x += 4) {
		int32_t base = bases[x / 4];
		const uint16_t *t = tmp + 4 * (size_t)base;
		__m512i lo = _mm512_loadu_si512(t), hi = _mm512_loadu_si512(t + 32);
		__m512i iv = _mm512_maskz_loadu_epi32(0x0fff, idx + 3 * x);
		__m512i wv = _mm512_maskz_loadu_epi32(0x0fff, wt + 3 * x);
		iv = _mm512_slli_epi32(_mm512_sub_epi32(iv, _mm512_set1_epi32(base)), 2);
		__m512i acc = round;
		for (int k = 0; k < 3; k++) {
			__m512i sel = _mm512_add_epi32(spread, _mm512_set1_epi32(k));
			__m512i lane = _mm512_add_epi32(_mm512_permutexvar_epi32(sel, iv), chan);
			__m512i v = _mm512_maskz_permutex2var_epi16(0x55555555, lo, lane, hi);
			acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(v, _mm512_permutexvar_epi32(sel, wv)));
		}
		_mm_storeu_si128((__m128i *)(out + 4 * x), _mm512_cvtepi32_epi8(_mm512_srli_epi32(acc, 23)));
	}
	return x;
}

static int glimpse_has_avx512bw(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}

// glimpse_block_stats: sum, min and max of n 8×8 blocks side by side,
// eight at a time with each byte lane following one column.
CLONES void glimpse_block_stats(const uint8_t *pix, int w, int yoff, int n, int32_t *sum, uint8_t *lo, uint8_t *hi) {
	const uint8_t *top = pix + (size_t)yoff * w;
	int b = 0;
	for (; b + 8 <= n; b += 8) {
		uint8_t mn[64], mx[64];
		uint16_t sm[64];
		const uint8_t *p = top + 8 * b;
		for (int i = 0; i < 64; i++) {
			mn[i] = mx[i] = p[i];
			sm[i] = p[i];
		}
		for (int y = 1; y < 8; y++) {
			const uint8_t *q = p + (size_t)y * w;
			for (int i = 0; i < 64; i++) {
				uint8_t v = q[i];
				mn[i] = v < mn[i] ? v : mn[i];
				mx[i] = v > mx[i] ? v : mx[i];
				sm[i] += v;
			}
		}
		for (int k = 0; k < 8; k++) {
			int32_t s = 0;
			uint8_t l = 255, h = 0;
			for (int i = 8 * k; i < 8 * k + 8; i++) {
				s += sm[i];
				l = mn[i] < l ? mn[i] : l;
				h = mx[i] > h ? mx[i] : h;
			}
			sum[b + k] = s;
			lo[b + k] = l;
			hi[b + k] = h;
		}
	}
	for (; b < n; b++) {
		int32_t s = 0;
		uint8_t l = 255, h = 0;
		for (int y = 0; y < 8; y++) {
			const uint8_t *q = top + (size_t)y * w + 8 * b;
			for (int i = 0; i < 8; i++) {
				s += q[i];
				l = q[i] < l ? q[i] : l;
				h = q[i] > h ? q[i] : h;
			}
		}
		sum[b] = s;
		lo[b] = l;
		hi[b] = h;
	}
}

// glimpse_threshold: 32 pixels per word.
CLONES void glimpse_threshold(uint32_t *bits, const uint8_t *pix, const uint8_t *t, int n) {
	int x = 0;
	for (; x + 32 <= n; x += 32) {
		uint32_t m = 0;
		for (int i = 0; i < 32; i++) {
			m |= (uint32_t)(pix[x + i] <= t[x + i]) << i;
		}
		bits[x >> 5] = m;
	}
	if (x < n) {
		uint32_t m = 0;
		for (int i = 0; x + i < n; i++) {
			m |= (uint32_t)(pix[x + i] <= t[x + i]) << i;
		}
		bits[x >> 5] = m;
	}
}
// sum_rows adds the first n bytes of k rows (stride apart, from r) into
// acc, for the box reductions. Inlined into each clone, it is vectorised
// with that clone's instructions.
static inline __attribute__((always_inline)) void sum_rows(uint32_t *acc, const uint8_t *r, int stride, int n, int k) {
	for (int i = 0; i < n; i++) acc[i] = r[i];
	for (int dy = 1; dy < k; dy++) {
		r += stride;
		for (int i = 0; i < n; i++) acc[i] += r[i];
	}
}

// glimpse_box_reduce: the k source rows of an output row added into acc
// (4·w·k sums), then each block's k columns, divided by k² exactly with a
// multiplication by ceil(2^48 / k²) (sums stay below 2^25).
CLONES void glimpse_box_reduce(uint8_t *dst, int dstStride, const uint8_t *src, int srcStride, int w, int h, int k, uint32_t *acc) {
	int used = 4 * w * k;
	uint64_t n = (uint64_t)k * k, m = ((1ull << 48) + n - 1) / n;
	uint32_t half = (uint32_t)(n / 2);
	for (int y = 0; y < h; y++) {
		sum_rows(acc, src + (size_t)y * k * srcStride, srcStride, used, k);
		uint8_t *o = dst + (size_t)y * dstStride;
		for (int x = 0; x < w; x++) {
			uint32_t s0 = half, s1 = half, s2 = half, s3 = half;
			const uint32_t *a = acc + 4 * x * k;
			for (int j = 0; j < k; j++) {
				s0 += a[4 * j];
				s1 += a[4 * j + 1];
				s2 += a[4 * j + 2];
				s3 += a[4 * j + 3];
			}
			o[4 * x] = (uint8_t)((s0 * m) >> 48);
			o[4 * x + 1] = (uint8_t)((s1 * m) >> 48);
			o[4 * x + 2] = (uint8_t)((s2 * m) >> 48);
			o[4 * x + 3] = (uint8_t)((s3 * m) >> 48);
		}
	}
}

// glimpse_box_gray: grey glimpse_box_reduce; sums stay below 2^32 for
// k ≤ 4096, and the division is a plain one (one per output pixel).
CLONES void glimpse_box_gray(uint8_t *dst, int dstStride, const uint8_t *src, int srcStride, int w, int h, int k, uint32_t *acc) {
	int used = w * k;
	uint32_t n = (uint32_t)k * k, half = n / 2;
	for (int y = 0; y < h; y++) {
		sum_rows(acc, src + (size_t)y * k * srcStride, srcStride, used, k);
		uint8_t *o = dst + (size_t)y * dstStride;
		for (int x = 0; x < w; x++) {
			uint32_t s = half;
			for (int j = 0; j < k; j++) s += acc[x * k + j];
			o[x] = (uint8_t)(s / n);
		}
	}
}

*/
import "C"

import "unsafe"

func init() { impl, cgoKernels = cImpl, true }

var cImpl = kernels{boxReduce: boxReduceC, boxGray: boxGrayC, blockStats: blockStatsC, threshold: thresholdC, luma: lumaC, grey601: grey601C, laplacian: laplacianC, resizeRow: resizeRowC}

func u8(b []uint8) *C.uint8_t { return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b))) }

func lumaC(dst, row []uint8) {
	if len(dst) > 0 {
		C.glimpse_luma(u8(dst), u8(row), C.int(len(dst)))
	}
}

func grey601C(dst, row []uint8) {
	if len(dst) > 0 {
		C.glimpse_grey601(u8(dst), u8(row), C.int(len(dst)))
	}
}

func laplacianC(g []uint8, w, h int) (sum, sum2 int64) {
	var s, s2 C.int64_t
	C.glimpse_laplacian(u8(g), C.int(w), C.int(h), &s, &s2)
	return int64(s), int64(s2)
}

// avx512bw reports whether glimpse_resize_horiz16 runs here.
var avx512bw = C.glimpse_has_avx512bw() != 0

func resizeRowC(r *ResizeRow) {
	w := len(r.Out) / 4
	if r.Gray {
		w = len(r.Out)
	}
	if w == 0 {
		return
	}
	tmp := (*C.uint16_t)(unsafe.Pointer(unsafe.SliceData(r.tmp)))
	idx := (*C.int32_t)(unsafe.Pointer(unsafe.SliceData(r.Idx)))
	wt := (*C.uint32_t)(unsafe.Pointer(unsafe.SliceData(r.Wt)))
	C.glimpse_resize_vert(u8(r.Rows[0]), u8(r.Rows[1]), u8(r.Rows[2]), C.int(len(r.Rows[0])),
		C.uint32_t(r.W[0]), C.uint32_t(r.W[1]), C.uint32_t(r.W[2]), tmp)
	if r.Gray {
		C.glimpse_resize_horiz_gray(tmp, idx, wt, C.int(w), u8(r.Out))
		return
	}
	x := C.int(0)
	if avx512bw && r.bases != nil {
		x = C.glimpse_resize_horiz16(tmp, idx, wt, (*C.int32_t)(unsafe.Pointer(unsafe.SliceData(r.bases))), C.int(w), u8(r.Out))
	}
	C.glimpse_resize_horiz(tmp, idx, wt, x, C.int(w), u8(r.Out))
}

func blockStatsC(pix []uint8, w, yoff, n int, sum []int32, lo, hi []uint8) {
	if n > 0 {
		C.glimpse_block_stats(u8(pix), C.int(w), C.int(yoff), C.int(n),
			(*C.int32_t)(unsafe.Pointer(unsafe.SliceData(sum))), u8(lo), u8(hi))
	}
}

func thresholdC(bits []uint32, pix, t []uint8) {
	if len(pix) > 0 {
		C.glimpse_threshold((*C.uint32_t)(unsafe.Pointer(unsafe.SliceData(bits))), u8(pix), u8(t), C.int(len(pix)))
	}
}

func boxReduceC(dst []uint8, dstStride int, src []uint8, srcStride, w, h, k int) {
	acc := make([]uint32, 4*w*k)
	C.glimpse_box_reduce(u8(dst), C.int(dstStride), u8(src), C.int(srcStride), C.int(w), C.int(h), C.int(k),
		(*C.uint32_t)(unsafe.Pointer(unsafe.SliceData(acc))))
}

func boxGrayC(dst []uint8, dstStride int, src []uint8, srcStride, w, h, k int) {
	acc := make([]uint32, w*k)
	C.glimpse_box_gray(u8(dst), C.int(dstStride), u8(src), C.int(srcStride), C.int(w), C.int(h), C.int(k),
		(*C.uint32_t)(unsafe.Pointer(unsafe.SliceData(acc))))
}
