//go:build cgo && amd64

package kernel

/*
#cgo CFLAGS: -O3
#include <stdint.h>

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

CLONES void glimpse_resize_row(const uint8_t *r0, const uint8_t *r1, const uint8_t *r2, int n,
		uint32_t w0, uint32_t w1, uint32_t w2, uint16_t *tmp,
		const int32_t *idx, const uint32_t *wt, int w, uint8_t *out) {
	for (int i = 0; i < n; i++) {
		tmp[i] = (uint16_t)(w0 * r0[i] + w1 * r1[i] + w2 * r2[i]);
	}
	for (int x = 0; x < w; x++) {
		const uint16_t *p0 = tmp + 4 * idx[3 * x], *p1 = tmp + 4 * idx[3 * x + 1], *p2 = tmp + 4 * idx[3 * x + 2];
		uint32_t a = wt[3 * x], b = wt[3 * x + 1], c = wt[3 * x + 2];
		for (int ch = 0; ch < 4; ch++) {
			out[4 * x + ch] = (uint8_t)((a * p0[ch] + b * p1[ch] + c * p2[ch] + (1u << 22)) >> 23);
		}
	}
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
*/
import "C"

import "unsafe"

func init() { impl, cgoKernels = cImpl, true }

var cImpl = kernels{blockStats: blockStatsC, threshold: thresholdC, luma: lumaC, grey601: grey601C, laplacian: laplacianC, resizeRow: resizeRowC}

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

func resizeRowC(r *ResizeRow) {
	w := len(r.Out) / 4
	if w == 0 {
		return
	}
	C.glimpse_resize_row(u8(r.Rows[0]), u8(r.Rows[1]), u8(r.Rows[2]), C.int(len(r.Rows[0])),
		C.uint32_t(r.W[0]), C.uint32_t(r.W[1]), C.uint32_t(r.W[2]),
		(*C.uint16_t)(unsafe.Pointer(unsafe.SliceData(r.tmp))),
		(*C.int32_t)(unsafe.Pointer(unsafe.SliceData(r.Idx))), (*C.uint32_t)(unsafe.Pointer(unsafe.SliceData(r.Wt))), C.int(w),
		u8(r.Out))
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
