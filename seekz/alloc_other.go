//go:build !unix

package seekz

import "os"

// allocated is the disk space a file takes; without block counts, its size.
func allocated(st os.FileInfo) int64 { return st.Size() }
