package histories

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteHTML(t *testing.T) {
	tests := []struct {
		name string
		h    *History
	}{
		{"stale read", history(w(1, 0, 0, 10, 1), w(1<<40, 0, 20, 30, 2), r(2, 0, 40, 50, 1), unknown(r(3, 0, 1, 0)))},
		{"never written", history(r(1, 5, 0, 10, 8))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Check(tt.h, time.Second)
			if len(res) != 1 || res[0].Ok {
				t.Fatalf("want a failing result, got %v", res)
			}
			path := filepath.Join(t.TempDir(), "out.html")
			if err := WriteHTML(res[0], path); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(data) == 0 || !strings.Contains(string(data), "<html") || !strings.Contains(string(data), `"Description":"b`) {
				t.Errorf("visualisation looks wrong (%d bytes)", len(data))
			}
		})
	}
}

func TestWriteHTMLNoInfo(t *testing.T) {
	res := Check(history(w(1, 0, 0, 10, 1), r(2, 0, 20, 30, 1)), time.Second)
	if len(res) != 1 || !res[0].Ok {
		t.Fatalf("want an ok result, got %v", res)
	}
	path := filepath.Join(t.TempDir(), "out.html")
	if err := WriteHTML(res[0], path); !errors.Is(err, ErrNoInfo) {
		t.Errorf("WriteHTML(ok result) = %v, want ErrNoInfo", err)
	}
	if err := Visualize(res[0], &bytes.Buffer{}); !errors.Is(err, ErrNoInfo) {
		t.Errorf("Visualize(ok result) = %v, want ErrNoInfo", err)
	}
	bad := Check(history(r(1, 0, 0, 10, 3)), time.Second)[0]
	if err := WriteHTML(bad, filepath.Join(t.TempDir(), "missing", "out.html")); err == nil {
		t.Error("WriteHTML into a missing directory succeeded")
	}
}
