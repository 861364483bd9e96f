package kernel

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// withGo runs f with the Go implementations in use.
func withGo(f func()) {
	was := impl
	impl = goImpl
	defer func() { impl = was }()
	f()
}

// randomRGBA returns w×h premultiplied RGBA pixels, a quarter of them
// translucent.
func randomRGBA(r *rand.Rand, w, h int) []uint8 {
	pix := make([]uint8, 4*w*h)
	for i := 0; i < len(pix); i += 4 {
		a := uint8(255)
		if r.IntN(4) == 0 {
			a = uint8(r.IntN(256))
		}
		for c := range 3 {
			pix[i+c] = uint8(r.IntN(int(a) + 1))
		}
		pix[i+3] = a
	}
	return pix
}

var sizes = [][2]int{{1, 1}, {2, 3}, {3, 3}, {7, 5}, {64, 2}, {101, 37}, {1155, 866}}

// TestMatchesGo checks that the kernels in use give exactly what the Go
// code gives, on random pixels at sizes that exercise every vector tail.
// Without cgo on amd64 the kernels in use are the Go code, and it says so.
func TestMatchesGo(t *testing.T) {
	if !cgoKernels {
		t.Log("this build runs the Go kernels: compared with themselves")
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, sz := range sizes {
		w, h := sz[0], sz[1]
		pix := randomRGBA(r, w, h)
		for name, f := range map[string]func(dst, row []uint8){"Luma": Luma, "Grey601": Grey601} {
			got, want := make([]uint8, w*h), make([]uint8, w*h)
			f(got, pix)
			withGo(func() { f(want, pix) })
			if !slices.Equal(got, want) {
				t.Errorf("%s on %dx%d differs from the Go code", name, w, h)
			}
		}
		g := make([]uint8, w*h)
		for i := range g {
			g[i] = uint8(r.IntN(256))
		}
		if w >= 8 && h >= 8 {
			n := w / 8
			for yoff := range h - 7 {
				var got, want [3][]uint8
				gs, ws := make([]int32, n), make([]int32, n)
				for k := range got {
					got[k], want[k] = make([]uint8, n), make([]uint8, n)
				}
				BlockStats(g, w, yoff, n, gs, got[0], got[1])
				withGo(func() { BlockStats(g, w, yoff, n, ws, want[0], want[1]) })
				if !slices.Equal(gs, ws) || !slices.Equal(got[0], want[0]) || !slices.Equal(got[1], want[1]) {
					t.Fatalf("BlockStats on %dx%d at row %d differs from the Go code", w, h, yoff)
				}
			}
		}
		for _, k := range []int{2, 3, 5, 6, 16, 17, 40} {
			bw, bh := w/k, h/k
			if bw == 0 || bh == 0 {
				continue
			}
			got, want := make([]uint8, 4*bw*bh), make([]uint8, 4*bw*bh)
			BoxReduce(got, 4*bw, pix, 4*w, bw, bh, k)
			withGo(func() { BoxReduce(want, 4*bw, pix, 4*w, bw, bh, k) })
			if !slices.Equal(got, want) {
				t.Errorf("BoxReduce of %dx%d by %d differs from the Go code", w, h, k)
			}
		}
		for _, k := range []int{2, 3, 9, 17, 40} {
			bw, bh := w/k, h/k
			if bw == 0 || bh == 0 {
				continue
			}
			got, want := make([]uint8, bw*bh), make([]uint8, bw*bh)
			BoxReduceGray(got, bw, g, w, bw, bh, k)
			withGo(func() { BoxReduceGray(want, bw, g, w, bw, bh, k) })
			if !slices.Equal(got, want) {
				t.Errorf("BoxReduceGray of %dx%d by %d differs from the Go code", w, h, k)
			}
		}
		th := make([]uint8, w)
		for i := range th {
			th[i] = uint8(r.IntN(256))
		}
		gotBits, wantBits := make([]uint32, (w+31)/32), make([]uint32, (w+31)/32)
		for i := range gotBits {
			gotBits[i], wantBits[i] = 0xdeadbeef, 0xdeadbeef
		}
		Threshold(gotBits, g[:w], th)
		withGo(func() { Threshold(wantBits, g[:w], th) })
		if !slices.Equal(gotBits, wantBits) {
			t.Errorf("Threshold on %d pixels = %x; Go = %x", w, gotBits, wantBits)
		}
		s, s2 := Laplacian(g, w, h)
		var ws, ws2 int64
		withGo(func() { ws, ws2 = Laplacian(g, w, h) })
		if s != ws || s2 != ws2 {
			t.Errorf("Laplacian on %dx%d = %d, %d; Go = %d, %d", w, h, s, s2, ws, ws2)
		}
		// A row of a resize to 2/3 of the width (taps of one to three
		// pixels), with weights summing as the kernel wants.
		ow := max(1, 2*w/3)
		row := ResizeRow{W: [3]uint32{85, 86, 85}, Idx: make([]int32, 3*ow), Wt: make([]uint32, 3*ow), Out: make([]uint8, 4*ow)}
		for k := range row.Rows {
			row.Rows[k] = randomRGBA(r, w, 1)
		}
		for x := range ow {
			first := min(x*w/ow, w-1)
			n := min(3, w-first)
			var left uint32 = 1 << 15
			for k := range 3 {
				row.Idx[3*x+k] = int32(first)
				if k < n {
					row.Idx[3*x+k] += int32(k)
					wt := uint32(r.IntN(int(left) + 1))
					if k == n-1 {
						wt = left
					}
					row.Wt[3*x+k], left = wt, left-wt
				}
			}
		}
		row.Filter()
		got := slices.Clone(row.Out)
		withGo(row.Filter)
		if !slices.Equal(got, row.Out) {
			t.Errorf("ResizeRow on a row of %d → %d differs from the Go code", w, ow)
		}
		// The same taps on grey rows.
		gray := ResizeRow{W: row.W, Idx: row.Idx, Wt: row.Wt, Out: make([]uint8, ow), Gray: true}
		for k := range gray.Rows {
			gray.Rows[k] = row.Rows[k][:w]
		}
		gray.Filter()
		got = slices.Clone(gray.Out)
		withGo(gray.Filter)
		if !slices.Equal(got, gray.Out) {
			t.Errorf("ResizeRow on a grey row of %d → %d differs from the Go code", w, ow)
		}
		// Taps anywhere in the row: four output pixels' taps then span
		// more than the four-pixel C kernel takes, which must leave them
		// to the one-pixel code.
		wide := ResizeRow{Rows: row.Rows, W: row.W, Idx: make([]int32, 3*ow), Wt: row.Wt, Out: make([]uint8, 4*ow)}
		for i := range wide.Idx {
			wide.Idx[i] = int32(r.IntN(w))
		}
		wide.Filter()
		got = slices.Clone(wide.Out)
		withGo(wide.Filter)
		if !slices.Equal(got, wide.Out) {
			t.Errorf("ResizeRow with taps spread over a row of %d differs from the Go code", w)
		}
	}
}

func TestLuma(t *testing.T) {
	row := []uint8{0, 0, 0, 255, 255, 255, 255, 255, 100, 40, 200, 255, 0, 0, 0, 0, 50, 50, 50, 128}
	want := []uint8{0, 255, (54*100 + 183*40 + 19*200 + 128) / 256, 255, (54*50+183*50+19*50+128)/256 + 255 - 128}
	got := make([]uint8, len(want))
	Luma(got, row)
	if !slices.Equal(got, want) {
		t.Errorf("Luma = %v; want %v", got, want)
	}
}

func TestLaplacian(t *testing.T) {
	// One bright pixel in the middle of 3×3: the only interior pixel has
	// Laplacian -4·200.
	g := []uint8{0, 0, 0, 0, 200, 0, 0, 0, 0}
	if s, s2 := Laplacian(g, 3, 3); s != -800 || s2 != 640000 {
		t.Errorf("Laplacian = %d, %d; want -800, 640000", s, s2)
	}
	if s, s2 := Laplacian(g[:6], 3, 2); s != 0 || s2 != 0 {
		t.Errorf("Laplacian of 3×2 = %d, %d; want 0, 0", s, s2)
	}
}

// TestResizeRowReuse checks that a ResizeRow used again with the same taps
// but a wider output, or as grey then RGBA, checks its taps again and
// computes what the Go code computes, rather than trusting what it worked
// out for the first use (stale four-pixel bases would read past them).
func TestResizeRowReuse(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const w, ow = 64, 32
	row := ResizeRow{W: [3]uint32{256, 0, 0}, Idx: make([]int32, 3*ow), Wt: make([]uint32, 3*ow)}
	for k := range row.Rows {
		row.Rows[k] = randomRGBA(r, w, 1)
	}
	for x := range ow {
		row.Idx[3*x], row.Idx[3*x+1], row.Idx[3*x+2] = int32(2*x), int32(2*x+1), int32(2*x+1)
		row.Wt[3*x], row.Wt[3*x+1] = 1<<14, 1<<14
	}
	for _, n := range []int{4, ow} {
		row.Out = make([]uint8, 4*n)
		row.Filter()
		got := slices.Clone(row.Out)
		withGo(row.Filter)
		if !slices.Equal(got, row.Out) {
			t.Errorf("ResizeRow reused for %d output pixels differs from the Go code", n)
		}
	}

	// Taps fine for a grey row of 4·w pixels lie outside an RGBA row of w.
	gray := ResizeRow{W: row.W, Idx: slices.Clone(row.Idx), Wt: row.Wt, Out: make([]uint8, ow), Gray: true}
	for k := range gray.Rows {
		gray.Rows[k] = row.Rows[k]
	}
	for i := range gray.Idx {
		gray.Idx[i] += 3 * w
	}
	gray.Filter()
	gray.Gray, gray.Out = false, make([]uint8, 4*ow)
	defer func() {
		if recover() == nil {
			t.Error("ResizeRow reused as RGBA with taps past the row did not panic")
		}
	}()
	gray.Filter()
}

// TestResizeRowPartialPixel checks that a tap on a partial last RGBA pixel
// (a row length that is not a multiple of four) is refused.
func TestResizeRowPartialPixel(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a tap on a partial pixel did not panic")
		}
	}()
	row := ResizeRow{W: [3]uint32{256, 0, 0}, Idx: []int32{1, 1, 1}, Wt: []uint32{1 << 15, 0, 0}, Out: make([]uint8, 4)}
	for k := range row.Rows {
		row.Rows[k] = make([]uint8, 6)
	}
	row.Filter()
}
