package main

import (
	"bytes"
	"fmt"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// ratioChart draws, per workload, one bar per measured target other than
// direct: its median throughput divided by direct's, with a line at 1.
// A missing ratio draws no bar. It returns the chart as SVG.
func ratioChart(r *results) ([]byte, error) {
	p, err := ratioPlot(r)
	if err != nil {
		return nil, err
	}
	wt, err := p.WriterTo(10*vg.Inch, 4.5*vg.Inch, "svg")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("write svg: %w", err)
	}
	return buf.Bytes(), nil
}

// ratioPlot builds the plot that ratioChart draws.
func ratioPlot(r *results) (*plot.Plot, error) {
	var workloads []string
	for _, w := range r.Workloads {
		workloads = append(workloads, w.ID)
	}
	var names []string
	for _, t := range r.Targets {
		if t.Unavailable == "" && t.Name != "direct" {
			names = append(names, t.Name)
		}
	}
	p := plot.New()
	p.Title.Text = "Throughput relative to MinIO direct (median; 1 = as fast as no proxy)"
	if r.Short {
		p.Title.Text += " — short run"
	}
	p.Y.Label.Text = "× direct"
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = false
	p.NominalX(workloads...)

	const groupWidth = 0.8 // of the 1.0 between workloads, in data units
	barWidth := vg.Points(10)
	if len(names) > 0 {
		// Sized for a 10 in wide chart.
		barWidth = vg.Inch * 8.6 / vg.Length(len(workloads)) * groupWidth / vg.Length(len(names))
	}
	top := 1.2
	for i, name := range names {
		vals := make(plotter.Values, len(workloads))
		for j, w := range workloads {
			for _, row := range r.Summary {
				if row.Workload == w && row.Target == name && row.Ratio.ok() {
					vals[j] = float64(row.Ratio)
					top = max(top, vals[j]*1.1)
				}
			}
		}
		bars, err := plotter.NewBarChart(vals, barWidth)
		if err != nil {
			return nil, err
		}
		bars.LineStyle.Width = 0
		bars.Color = plotutil.Color(i)
		bars.Offset = barWidth * vg.Length(float64(i)-float64(len(names)-1)/2)
		p.Add(bars)
		p.Legend.Add(name, bars)
	}
	one, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 1}, {X: float64(len(workloads)) - 0.5, Y: 1}})
	if err != nil {
		return nil, err
	}
	one.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(one)
	p.Y.Max = top / 0.72 // headroom for the legend above the bars
	p.Add(plotter.NewGrid())
	return p, nil
}
