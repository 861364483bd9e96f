//go:build !cgo || !amd64

package faces

import pigo "github.com/esimov/pigo/core"

// avx512 is false without cgo or off amd64: the scan runs in Go.
const avx512 = false

// simdScan stands in for the vector kernel of cascade_avx512.go.
type simdScan struct{}

// newSIMDScan returns nil: there is no vector kernel in this build.
func (c *classifier) newSIMDScan(pix []uint8, w, h int) *simdScan { return nil }

func (s *simdScan) fork() *simdScan { return nil }

func (s *simdScan) size(size, step, first, last, half int, dets []pigo.Detection) []pigo.Detection {
	panic("faces: no vector kernel in this build")
}
