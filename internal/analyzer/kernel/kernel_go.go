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
