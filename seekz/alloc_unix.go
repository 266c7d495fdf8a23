//go:build unix

package seekz

import (
	"os"
	"syscall"
)

// allocated is the disk space a file takes (sparse files take less).
func allocated(st os.FileInfo) int64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return int64(s.Blocks) * 512
	}
	return st.Size()
}
