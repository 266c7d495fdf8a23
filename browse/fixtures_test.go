//go:build linux

package browse

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cbimg/cbimg/backupcore"
	"github.com/cbimg/cbimg/image"
)

var (
	imgDir   string
	imgMu    sync.Mutex
	imgCache = map[string]string{}
)

func TestMain(m *testing.M) {
	var err error
	if imgDir, err = os.MkdirTemp("", "cbimg-browse-test"); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(imgDir)
	os.Exit(code)
}

// backup makes (once per test binary) an image of vol with the default
// exclusions. The image is shared: do not modify it.
func backup(t testing.TB, vol string) string {
	t.Helper()
	imgMu.Lock()
	defer imgMu.Unlock()
	if img, ok := imgCache[vol]; ok {
		return img
	}
	img := filepath.Join(imgDir, fmt.Sprintf("%d.cbi", len(imgCache)))
	if _, err := backupcore.Backup(context.Background(), backupcore.Options{Source: vol, Image: img, Level: 1}); err != nil {
		t.Fatalf("backup %s: %v", vol, err)
	}
	imgCache[vol] = img
	return img
}

// openImage opens the tree of an image.
func openImage(t testing.TB, img string) (*FS, *image.Reader) {
	t.Helper()
	r, err := image.Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	f, err := New(r, r.Header)
	if err != nil {
		t.Fatalf("browse.New: %v", err)
	}
	return f, r
}
