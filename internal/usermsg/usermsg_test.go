package usermsg

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

func TestText(t *testing.T) {
	_, statErr := os.Stat("/nonexistent/x.img")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{errors.New("restorecore: the target is smaller than the file system"), "the target is smaller than the file system"},
		{fmt.Errorf("open source: %w", statErr), "source /nonexistent/x.img: no such file or directory"},
		{fmt.Errorf("x.cbi: %w", errors.New("image: not a valid cbimg image")), "x.cbi: not a valid cbimg image"},
		{errors.New("volume: browse: damaged entry"), "damaged entry"},
		{errors.New("partclone: block 7: CRC mismatch"), "partclone: block 7: CRC mismatch"}, // a format's name stays
	} {
		if got := Text(tc.err); got != tc.want {
			t.Errorf("Text(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
