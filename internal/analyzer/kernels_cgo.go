//go:build cgo && amd64

package analyzer

/*
#cgo CFLAGS: -O3
#include <stdint.h>

// Each kernel is compiled three times, for x86-64-v4 (AVX-512), v3 (AVX2)
// and the baseline,
// and the loader picks the one the processor runs (target_clones). The
// arithmetic is the Go code's, integer for integer, so every version
// gives the same bytes.

// glimpse_luma is rgbaLumaGo: (54R + 183G + 19B + 128) / 256 + 255 - A.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
void glimpse_luma(uint8_t *dst, const uint8_t *src, int n) {
	for (int i = 0; i < n; i++) {
		const uint8_t *p = src + 4 * i;
		dst[i] = (uint8_t)(((54u * p[0] + 183u * p[1] + 19u * p[2] + 128u) >> 8) + 255u - p[3]);
	}
}

// glimpse_resize_row is resizeRowGo: rows r0..r2 (sw RGBA pixels) weighted
// w0..w2 (summing to 256) into tmp, then each of the w output pixels the
// taps idx[3x..3x+2] weighted wt[3x..3x+2] (summing to 2^15), rounded.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
void glimpse_resize_row(const uint8_t *r0, const uint8_t *r1, const uint8_t *r2, int sw,
		uint32_t w0, uint32_t w1, uint32_t w2, uint16_t *tmp,
		const int32_t *idx, const uint32_t *wt, int w, uint8_t *out) {
	int n = 4 * sw;
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

func init() { kernels = cKernels }

var cKernels = pixelKernels{luma: lumaC, resizeRow: resizeRowC}

func lumaC(dst, row []uint8) {
	if len(dst) == 0 {
		return
	}
	_ = row[4*len(dst)-1]
	C.glimpse_luma((*C.uint8_t)(unsafe.Pointer(&dst[0])), (*C.uint8_t)(unsafe.Pointer(&row[0])), C.int(len(dst)))
}

func resizeRowC(rs *resizeRows, oy int) {
	src, sw, w := rs.src, rs.src.Bounds().Dx(), len(rs.hx)
	if len(rs.cidx) != 3*w {
		rs.cidx = make([]int32, 3*w)
		rs.cwt = make([]uint32, 3*w)
		for x, tp := range rs.hx {
			for k := range 3 {
				rs.cidx[3*x+k] = tp.i[k]
				rs.cwt[3*x+k] = uint32(tp.wt[k])
			}
		}
		rs.ctmp = make([]uint16, 4*sw)
	}
	var rows [3]*C.uint8_t
	for k, j := range rs.rows {
		r := src.Pix[j*src.Stride : j*src.Stride+4*sw]
		rows[k] = (*C.uint8_t)(unsafe.Pointer(&r[0]))
	}
	out := rs.dst.Pix[oy*rs.dst.Stride : oy*rs.dst.Stride+4*w]
	C.glimpse_resize_row(rows[0], rows[1], rows[2], C.int(sw),
		C.uint32_t(rs.wy[0]), C.uint32_t(rs.wy[1]), C.uint32_t(rs.wy[2]),
		(*C.uint16_t)(unsafe.Pointer(&rs.ctmp[0])),
		(*C.int32_t)(unsafe.Pointer(&rs.cidx[0])), (*C.uint32_t)(unsafe.Pointer(&rs.cwt[0])), C.int(w),
		(*C.uint8_t)(unsafe.Pointer(&out[0])))
}
