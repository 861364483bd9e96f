package kernel

import "encoding/binary"

// lumaGo is Luma, two pixels at a time, each channel in a 16-bit lane of a
// 64-bit word (a weighted sum stays below 256·255).
func lumaGo(dst, row []uint8) {
	const (
		bytes = 0x00ff00ff00ff00ff
		lanes = 0x0000ffff0000ffff // lanes 0 and 2: one per pixel
		half  = 0x0000008000000080
		white = 0x000000ff000000ff
	)
	x := 0
	for ; x+2 <= len(dst); x += 2 {
		v := binary.LittleEndian.Uint64(row[4*x:])
		e, o := v&bytes, v>>8&bytes // red, blue, red, blue; green, alpha, green, alpha
		sum := 54*(e&lanes) + 183*(o&lanes) + 19*(e>>16&lanes) + half
		l := sum>>8&lanes + white - o>>16&lanes
		dst[x], dst[x+1] = byte(l), byte(l>>32)
	}
	if x < len(dst) {
		p := row[4*x : 4*x+4 : 4*x+4]
		dst[x] = byte((54*uint(p[0])+183*uint(p[1])+19*uint(p[2])+128)>>8 + 255 - uint(p[3]))
	}
}

func grey601Go(dst, row []uint8) {
	for x := range dst {
		p := row[4*x : 4*x+3 : 4*x+3]
		// 19595 + 38470 + 7471 = 65536: the weights 0.299, 0.587, 0.114.
		dst[x] = uint8((19595*uint32(p[0]) + 38470*uint32(p[1]) + 7471*uint32(p[2]) + 1<<15) >> 16)
	}
}

func laplacianGo(g []uint8, w, h int) (sum, sum2 int64) {
	for y := 1; y < h-1; y++ {
		up, row, down := g[(y-1)*w:y*w], g[y*w:(y+1)*w], g[(y+1)*w:(y+2)*w]
		var s, s2 int64
		for x := 1; x < w-1; x++ {
			l := int64(up[x]) + int64(down[x]) + int64(row[x-1]) + int64(row[x+1]) - 4*int64(row[x])
			s += l
			s2 += l * l
		}
		sum += s
		sum2 += s2
	}
	return sum, sum2
}

// resizeRowGo is ResizeRow.Filter. Both passes work on several channels in
// one 64-bit integer: the vertical one on four 16-bit lanes (8-bit weights
// summing to 256, so a lane holds at most 255·256), the horizontal one on
// two 32-bit lanes (red and blue, green and alpha; 15-bit weights on those
// 16-bit values, so a lane stays below 2³¹).
func resizeRowGo(r *ResizeRow) {
	if r.Gray {
		resizeGrayGo(r)
		return
	}
	const bytes = 0x00ff00ff00ff00ff
	r0, r1, r2 := r.Rows[0], r.Rows[1], r.Rows[2]
	w0, w1, w2 := uint64(r.W[0]), uint64(r.W[1]), uint64(r.W[2])
	sw := len(r0) / 4
	// tmp as 64-bit words: per source pixel, red and blue (value·256) in
	// the low and high halves of one word, green and alpha in the next.
	tmp := make([]uint64, 2*sw)
	x := 0
	for ; x+2 <= sw; x += 2 {
		v0 := binary.LittleEndian.Uint64(r0[4*x:])
		v1 := binary.LittleEndian.Uint64(r1[4*x:])
		v2 := binary.LittleEndian.Uint64(r2[4*x:])
		e := w0*(v0&bytes) + w1*(v1&bytes) + w2*(v2&bytes)
		o := w0*(v0>>8&bytes) + w1*(v1>>8&bytes) + w2*(v2>>8&bytes)
		t := tmp[2*x : 2*x+4 : 2*x+4]
		t[0] = e&0xffff | (e&0xffff0000)<<16
		t[1] = o&0xffff | (o&0xffff0000)<<16
		t[2] = (e>>32)&0xffff | (e>>48)<<32
		t[3] = (o>>32)&0xffff | (o>>48)<<32
	}
	if x < sw {
		var p [4]uint64
		for c := range 4 {
			i := 4*x + c
			p[c] = w0*uint64(r0[i]) + w1*uint64(r1[i]) + w2*uint64(r2[i])
		}
		tmp[2*x], tmp[2*x+1] = p[0]|p[2]<<32, p[1]|p[3]<<32
	}
	const round = 1<<22 | 1<<54
	for x := range len(r.Out) / 4 {
		i, wt := r.Idx[3*x:3*x+3:3*x+3], r.Wt[3*x:3*x+3:3*x+3]
		p0 := tmp[2*i[0] : 2*i[0]+2 : 2*i[0]+2]
		p1 := tmp[2*i[1] : 2*i[1]+2 : 2*i[1]+2]
		p2 := tmp[2*i[2] : 2*i[2]+2 : 2*i[2]+2]
		a, b, c := uint64(wt[0]), uint64(wt[1]), uint64(wt[2])
		rb := a*p0[0] + b*p1[0] + c*p2[0] + round
		ga := a*p0[1] + b*p1[1] + c*p2[1] + round
		o := r.Out[4*x : 4*x+4 : 4*x+4]
		o[0], o[1], o[2], o[3] = uint8(rb>>23), uint8(ga>>23), uint8(rb>>55), uint8(ga>>55)
	}
}

func blockStatsGo(pix []uint8, w, yoff, n int, sum []int32, lo, hi []uint8) {
	for b := range n {
		s, l, h := int32(0), uint8(255), uint8(0)
		for y := yoff; y < yoff+8; y++ {
			for _, v := range pix[y*w+8*b : y*w+8*b+8] {
				s += int32(v)
				l, h = min(l, v), max(h, v)
			}
		}
		sum[b], lo[b], hi[b] = s, l, h
	}
}

func thresholdGo(bits []uint32, pix, t []uint8) {
	clear(bits[:(len(pix)+31)/32])
	for x, v := range pix {
		if v <= t[x] {
			bits[x>>5] |= 1 << (x & 31)
		}
	}
}

// boxReduceGo is BoxReduce. It adds the block's rows first, eight bytes at
// a time as four 16-bit lanes of even bytes and four of odd ones (k·255
// fits for k up to 257), then each block's columns. For k up to 16 those
// add a pixel's red and blue (green and alpha) as two 16-bit lanes of one
// word (k²·255 fits) and divide by k² with a multiplication by a 33-bit
// reciprocal, exact for sums below 2¹⁷; for larger k, one channel at a
// time.
func boxReduceGo(dst []uint8, dstStride int, src []uint8, srcStride, w, h, k int) {
	n := uint64(k * k)
	inv := (uint64(1)<<33 + n - 1) / n
	used := 4 * w * k                  // bytes of a source row that fill blocks
	even := make([]uint64, (used+7)/8) // per 8 bytes: lanes of bytes 0, 2, 4, 6
	odd := make([]uint64, len(even))   // and of bytes 1, 3, 5, 7
	const bytes = 0x00ff00ff00ff00ff
	for y := range h {
		clear(even)
		clear(odd)
		for dy := range k {
			row := src[(y*k+dy)*srcStride:][:used]
			j := 0
			for ; 8*j+8 <= used; j++ {
				v := binary.LittleEndian.Uint64(row[8*j:])
				even[j] += v & bytes
				odd[j] += v >> 8 & bytes
			}
			if 8*j < used { // an odd number of pixels: the last one alone
				v := uint64(binary.LittleEndian.Uint32(row[8*j:]))
				even[j] += v & bytes
				odd[j] += v >> 8 & bytes
			}
		}
		out := dst[y*dstStride : y*dstStride+4*w]
		p := 0 // source pixel
		for x := range w {
			o := out[4*x : 4*x+4 : 4*x+4]
			if k > 16 {
				var r, g, b, a uint64
				for range k {
					sh := 32 * uint(p&1)
					e, od := even[p>>1]>>sh, odd[p>>1]>>sh
					r, b = r+e&0xffff, b+e>>16&0xffff
					g, a = g+od&0xffff, a+od>>16&0xffff
					p++
				}
				o[0], o[1], o[2], o[3] = uint8((r+n/2)/n), uint8((g+n/2)/n), uint8((b+n/2)/n), uint8((a+n/2)/n)
				continue
			}
			var rb, ga uint64 // red | blue<<16, green | alpha<<16
			if k%2 == 0 {
				// The block starts at an even pixel: add whole words, then
				// their two halves (a lane then holds at most k²·255).
				var e, od uint64
				for _, v := range even[p>>1 : (p+k)>>1] {
					e += v
				}
				for _, v := range odd[p>>1 : (p+k)>>1] {
					od += v
				}
				rb, ga = e&0xffffffff+e>>32, od&0xffffffff+od>>32
				p += k
			} else {
				for range k {
					sh := 32 * uint(p&1)
					rb += even[p>>1] >> sh & 0xffffffff
					ga += odd[p>>1] >> sh & 0xffffffff
					p++
				}
			}
			o[0] = uint8(((rb & 0xffff) + n/2) * inv >> 33)
			o[1] = uint8(((ga & 0xffff) + n/2) * inv >> 33)
			o[2] = uint8(((rb >> 16) + n/2) * inv >> 33)
			o[3] = uint8(((ga >> 16) + n/2) * inv >> 33)
		}
	}
}

func boxGrayGo(dst []uint8, dstStride int, src []uint8, srcStride, w, h, k int) {
	sums := make([]uint32, w)
	n := uint32(k * k)
	for oy := range h {
		clear(sums)
		for dy := range k {
			row := src[(oy*k+dy)*srcStride:][:w*k]
			for ox := range sums {
				var s uint32
				for _, v := range row[ox*k : ox*k+k] {
					s += uint32(v)
				}
				sums[ox] += s
			}
		}
		out := dst[oy*dstStride : oy*dstStride+w]
		for ox, s := range sums {
			out[ox] = uint8((s + n/2) / n)
		}
	}
}

// resizeGrayGo is ResizeRow.Filter on grey rows.
func resizeGrayGo(r *ResizeRow) {
	r0, r1, r2 := r.Rows[0], r.Rows[1], r.Rows[2]
	tmp := make([]uint32, len(r0))
	for i := range tmp {
		tmp[i] = r.W[0]*uint32(r0[i]) + r.W[1]*uint32(r1[i]) + r.W[2]*uint32(r2[i])
	}
	for x := range r.Out {
		i, wt := r.Idx[3*x:3*x+3:3*x+3], r.Wt[3*x:3*x+3:3*x+3]
		r.Out[x] = uint8((wt[0]*tmp[i[0]] + wt[1]*tmp[i[1]] + wt[2]*tmp[i[2]] + 1<<22) >> 23)
	}
}
