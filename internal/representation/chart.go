package representation

import (
	"fmt"
	"image/color"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// WriteChart draws, for every output and field, the share of each value
// in raw and in clean events as paired bars (flagged values marked with
// "!"), one panel per field, stacked, into path: SVG, PNG or PDF by its
// extension.
func (r *Report) WriteChart(path string) error {
	ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(path), "."))
	switch ext {
	case "svg", "png", "pdf":
	default:
		return fmt.Errorf("chart %s: want a .svg, .png or .pdf file", path)
	}
	var panels []*plot.Plot
	for _, o := range r.Outputs {
		for _, f := range o.Fields {
			p, err := fieldPlot(o.Name, f)
			if err != nil {
				return fmt.Errorf("chart %s: %w", path, err)
			}
			panels = append(panels, p)
		}
	}
	if len(panels) == 0 {
		return fmt.Errorf("chart %s: no segment counts to draw", path)
	}
	const panelH = 3 * vg.Inch
	width := 9 * vg.Inch
	if ext == "svg" || ext == "pdf" {
		return writeVector(path, ext, panels, width, panelH)
	}
	img := vgimg.New(width, vg.Length(len(panels))*panelH)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadX: vg.Millimeter, PadY: 2 * vg.Millimeter}
	canvases := plot.Align(columns(panels), tiles, dc)
	for i, p := range panels {
		p.Draw(canvases[i][0])
	}
	png := vgimg.PngCanvas{Canvas: img}
	return save(path, png.WriteTo)
}

func columns(panels []*plot.Plot) [][]*plot.Plot {
	out := make([][]*plot.Plot, len(panels))
	for i, p := range panels {
		out[i] = []*plot.Plot{p}
	}
	return out
}

func fieldPlot(output string, f Field) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s / %s: share of events, raw vs clean", output, f.Name)
	p.Y.Label.Text = "share of events (%)"
	p.Legend.Top = true
	raw := make(plotter.Values, len(f.Rows))
	clean := make(plotter.Values, len(f.Rows))
	names := make([]string, len(f.Rows))
	for i, row := range f.Rows {
		raw[i] = 100 * row.RawShare
		clean[i] = 100 * row.CleanShare
		names[i] = clip(row.Value, 14)
		if row.Flag != "" {
			names[i] = "!" + names[i]
		}
	}
	w := vg.Points(10)
	rb, err := plotter.NewBarChart(raw, w)
	if err != nil {
		return nil, err
	}
	rb.Color = color.RGBA{R: 120, G: 120, B: 120, A: 255}
	rb.LineStyle.Width = 0
	rb.Offset = -w / 2
	cb, err := plotter.NewBarChart(clean, w)
	if err != nil {
		return nil, err
	}
	cb.Color = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	cb.LineStyle.Width = 0
	cb.Offset = w / 2
	p.Add(rb, cb)
	p.Legend.Add("raw (decided)", rb)
	p.Legend.Add("clean (written)", cb)
	p.NominalX(names...)
	return p, nil
}
