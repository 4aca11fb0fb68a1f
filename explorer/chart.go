package explorer

import (
	"fmt"
	"html/template"
	"math"
	"strings"
)

// Series is one line or one set of bars in a chart.
type Series struct {
	Name   string
	Points []Point
}

// Point is one value; X is a height, an epoch or a UID.
type Point struct {
	X, Y float64
}

// Chart is an SVG chart drawn on the server: no script, no library, no
// network. Charts are for the eye only; the numbers are in the table and
// the JSON twin, so float rounding here never misstates a chain value.
type Chart struct {
	Title          string
	XLabel, YLabel string
	Series         []Series
	Bars           bool // draw the first series as bars (e.g. per UID) instead of lines
	// YMax fixes the top of the axis (e.g. the supply cap); 0 fits the data.
	YMax float64
	// Format renders axis values; nil prints them compactly.
	Format func(float64) string
}

const (
	chartW, chartH = 640, 240
	padL, padR     = 64, 16
	padT, padB     = 28, 36
)

// palette is colour-blind safe (Okabe–Ito).
var palette = []string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"}

// SVG renders the chart. It is safe to put in a page: every label is
// escaped.
func (c Chart) SVG() template.HTML {
	var minX, maxX, maxY = math.Inf(1), math.Inf(-1), c.YMax
	n := 0
	for _, s := range c.Series {
		for _, p := range s.Points {
			minX, maxX = math.Min(minX, p.X), math.Max(maxX, p.X)
			if c.YMax == 0 {
				maxY = math.Max(maxY, p.Y)
			}
			n++
		}
	}
	esc := template.HTMLEscapeString
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`, chartW, chartH, esc(c.Title))
	fmt.Fprintf(&b, `<text class="chart-title" x="%d" y="18">%s</text>`, padL, esc(c.Title))
	if n == 0 {
		fmt.Fprintf(&b, `<text class="chart-empty" x="%d" y="%d">no data yet</text></svg>`, chartW/2, chartH/2)
		return template.HTML(b.String())
	}
	if maxY <= 0 {
		maxY = 1
	}
	if maxX == minX {
		maxX = minX + 1
	}
	axisMin, axisMax := minX, maxX
	if c.Bars {
		// Half a slot of room at each end, so the first and last bars are
		// drawn whole rather than cut by the plot's edges.
		slot := (maxX - minX) / float64(max(1, len(c.Series[0].Points)-1))
		minX, maxX = minX-slot/2, maxX+slot/2
	}
	format := c.Format
	if format == nil {
		format = compact
	}
	plotW, plotH := float64(chartW-padL-padR), float64(chartH-padT-padB)
	x := func(v float64) float64 { return padL + (v-minX)/(maxX-minX)*plotW }
	y := func(v float64) float64 { return padT + plotH - v/maxY*plotH }
	// Axes and four horizontal grid lines with their values.
	for i := 0; i <= 4; i++ {
		v := maxY * float64(i) / 4
		fmt.Fprintf(&b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, padL, chartW-padR, y(v), y(v))
		fmt.Fprintf(&b, `<text class="axis" x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-6, y(v)+4, esc(format(v)))
	}
	fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%d" text-anchor="middle">%s</text>`, x(axisMin), chartH-8, esc(compact(axisMin)))
	fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%d" text-anchor="middle">%s</text>`, x(axisMax), chartH-8, esc(compact(axisMax)))
	if c.XLabel != "" {
		fmt.Fprintf(&b, `<text class="axis" x="%d" y="%d" text-anchor="middle">%s</text>`, padL+int(plotW/2), chartH-8, esc(c.XLabel))
	}
	for i, s := range c.Series {
		color := palette[i%len(palette)]
		if c.Bars && i == 0 {
			w := math.Max(1, (x(axisMin+1)-x(axisMin))*0.8)
			if len(s.Points) > 1 {
				w = math.Max(1, plotW/float64(len(s.Points))*0.8)
			}
			for _, p := range s.Points {
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`,
					x(p.X)-w/2, y(p.Y), w, y(0)-y(p.Y), color, esc(s.Name), esc(compact(p.X)), esc(format(p.Y)))
			}
			continue
		}
		var pts []string
		for _, p := range s.Points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.X), y(p.Y)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, color, strings.Join(pts, " "))
	}
	// Legend, when there is more than one series.
	if len(c.Series) > 1 {
		for i, s := range c.Series {
			lx := padL + 8 + i*120
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text class="legend" x="%d" y="%d">%s</text>`,
				lx, padT, palette[i%len(palette)], lx+14, padT+9, esc(s.Name))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// compact prints 1234567 as 1.23M.
func compact(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return fmt.Sprintf("%.3gG", v/1e9)
	case a >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.3gk", v/1e3)
	case a == math.Trunc(a):
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.3g", v)
}
