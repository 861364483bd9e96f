package analyzer

// kernels are the inner loops over pixels that the analyzers share. Builds
// with cgo on amd64 run them as C compiled for the processor's vector
// instructions (kernels_cgo.go); elsewhere they are the Go functions they
// are tested against, which give the same bytes.
var kernels = goKernels

// pixelKernels is a set of implementations of the shared pixel loops.
type pixelKernels struct {
	// luma writes the luma of the RGBA pixels of row into dst, one per
	// byte of dst, as rgbaLumaGo does.
	luma func(dst, row []uint8)
	// resizeRow filters one output row of areaResize, as resizeRowGo does.
	resizeRow func(rs *resizeRows, oy int)
}

var goKernels = pixelKernels{luma: rgbaLumaGo, resizeRow: resizeRowGo}
