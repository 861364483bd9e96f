package sim

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// palette gives each policy a colour, in Contenders order.
var palette = []string{"#d62728", "#7f7f7f", "#2ca02c", "#1f77b4", "#9467bd", "#ff7f0e", "#17becf", "#000000", "#e377c2", "#bcbd22"}

// WriteSVG draws one panel per trace: worker-seconds (x) against p99 wait
// (y, log scale), one colour per policy.
func WriteSVG(w io.Writer, rs []Result) error {
	groups := ByTrace(rs)
	var policies []string
	seen := map[string]bool{}
	for _, r := range rs {
		if !seen[r.Policy] {
			seen[r.Policy] = true
			policies = append(policies, r.Policy)
		}
	}
	colour := map[string]string{}
	for i, p := range policies {
		colour[p] = palette[i%len(palette)]
	}
	const pw, ph, margin, cols = 360, 260, 50, 3
	rows := (len(groups) + cols - 1) / cols
	width, height := cols*pw, rows*ph+40
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	for gi, g := range groups {
		ox, oy := (gi%cols)*pw, (gi/cols)*ph
		x0, y0, x1, y1 := float64(ox+margin), float64(oy+ph-margin), float64(ox+pw-15), float64(oy+25)
		maxWS := 0.0
		for _, r := range g {
			maxWS = math.Max(maxWS, r.WorkerSeconds)
		}
		const minWait, maxWait = 0.01, 10000.0
		ly := func(v float64) float64 {
			v = math.Min(math.Max(v, minWait), maxWait)
			f := (math.Log10(v) - math.Log10(minWait)) / (math.Log10(maxWait) - math.Log10(minWait))
			return y0 - f*(y0-y1)
		}
		lx := func(v float64) float64 { return x0 + v/(maxWS*1.05)*(x1-x0) }
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", ox+margin, oy+15, html.EscapeString(g[0].Trace))
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", x0, y1, x1-x0, y0-y1)
		for _, v := range []float64{0.01, 0.1, 1, 10, 100, 1000, 10000} {
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="end">%gs</text><line x1="%.0f" x2="%.0f" y1="%.0f" y2="%.0f" stroke="#eee"/>`+"\n", x0-4, ly(v)+4, v, x0, x1, ly(v), ly(v))
		}
		for i := 0; i <= 4; i++ {
			v := maxWS * 1.05 * float64(i) / 4
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">%.0f</text>`+"\n", lx(v), y0+14, v)
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">worker-seconds</text>`+"\n", (x0+x1)/2, y0+28)
		for _, r := range g {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="5" fill="%s" fill-opacity="0.8"><title>%s: p99 %.2fs, %.0f worker-s</title></circle>`+"\n",
				lx(r.WorkerSeconds), ly(r.P99), colour[r.Policy], html.EscapeString(r.Policy), r.P99, r.WorkerSeconds)
		}
	}
	for i, p := range policies {
		x, y := 10+i*110, rows*ph+20
		fmt.Fprintf(&b, `<circle cx="%d" cy="%d" r="5" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", x, y, colour[p], x+8, y+4, html.EscapeString(p))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">y: p99 queue wait (log)</text>`+"\n", width-160, rows*ph+24)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
