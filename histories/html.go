package histories

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/anishathalye/porcupine"
)

// ErrNoInfo is wrapped by the error of Visualize and WriteHTML for a result
// that carries no linearization info (it is Ok, or its ops are malformed).
var ErrNoInfo = errors.New("histories: result has no linearization info")

// Visualize writes Porcupine's HTML visualisation of a failing result's bad
// block partition to w.
func Visualize(r Result, w io.Writer) error {
	if len(r.Info.PartialLinearizations()) == 0 {
		return fmt.Errorf("visualize volume %d: %w", r.Volume, ErrNoInfo)
	}
	if err := porcupine.Visualize(blockModel(), r.Info, w); err != nil {
		return fmt.Errorf("visualize volume %d block %d: %w", r.Volume, r.BadBlock, err)
	}
	return nil
}

// WriteHTML writes Porcupine's HTML visualisation of a failing result's bad
// block partition to the file at path, creating or truncating it.
func WriteHTML(r Result, path string) (err error) {
	if len(r.Info.PartialLinearizations()) == 0 {
		return fmt.Errorf("write %s: volume %d: %w", path, r.Volume, ErrNoInfo)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write visualisation: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("write visualisation: %w", cerr)
		}
	}()
	bw := bufio.NewWriter(f)
	if err := Visualize(r, bw); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
