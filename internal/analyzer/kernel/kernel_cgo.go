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
*/
import "C"

import "unsafe"

func init() { impl, cgoKernels = cImpl, true }

var cImpl = kernels{luma: lumaC, grey601: grey601C, laplacian: laplacianC, resizeRow: resizeRowC}

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
