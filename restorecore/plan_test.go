package restorecore

import (
	"reflect"
	"testing"

	"github.com/cbimg/cbimg/image"
)

// TestAround checks the extents a restore zeros around an in-place image's
// own (protected) extents.
func TestAround(t *testing.T) {
	skip := []image.Extent{{Offset: 100, Length: 50}, {Offset: 200, Length: 10}}
	for _, c := range []struct {
		off, n int64
		want   [][2]int64
	}{
		{0, 100, [][2]int64{{0, 100}}},                       // ends where the first starts
		{0, 300, [][2]int64{{0, 100}, {150, 50}, {210, 90}}}, // spans both
		{120, 10, nil},                    // inside one
		{90, 20, [][2]int64{{90, 10}}},    // runs into one
		{140, 70, [][2]int64{{150, 50}}},  // from one into the next
		{150, 50, [][2]int64{{150, 50}}},  // exactly between
		{300, 5, [][2]int64{{300, 5}}},    // after both
		{100, 110, [][2]int64{{150, 50}}}, // both, and the gap between
	} {
		var got [][2]int64
		err := around(skip, c.off, c.n, func(off, n int64) error {
			got = append(got, [2]int64{off, n})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("around(%d, %d) = %v, want %v", c.off, c.n, got, c.want)
		}
	}
}
