package representation

import (
	"io"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgpdf"
	"gonum.org/v1/plot/vg/vgsvg"
)

// writeVector draws the panels stacked on one SVG or PDF page.
func writeVector(path, ext string, panels []*plot.Plot, width, panelH vg.Length) error {
	height := vg.Length(len(panels)) * panelH
	var c interface {
		vg.CanvasSizer
		io.WriterTo
	}
	if ext == "svg" {
		c = vgsvg.New(width, height)
	} else {
		c = vgpdf.New(width, height)
	}
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadX: vg.Millimeter, PadY: 2 * vg.Millimeter}
	canvases := plot.Align(columns(panels), tiles, dc)
	for i, p := range panels {
		p.Draw(canvases[i][0])
	}
	return save(path, c.WriteTo)
}

// save writes through a temporary file renamed into place, so a failed
// draw leaves no half chart behind.
func save(path string, write func(io.Writer) (int64, error)) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".chart-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
