//go:build linux

package restorecore

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/cbimg/cbimg/disk"
)

// writebackEvery is how many bytes make one window of the target.
const writebackEvery = 64 << 20

// writeback streams the target to disk while the restore goes on instead of
// leaving it all to the final fsync: each window of written bytes is handed
// to the disk at once (SYNC_FILE_RANGE_WRITE), and the window two back is
// waited for and dropped from the page cache. The disk then works while the
// CPU copies, the final fsync has little left to wait for, and a large
// restore does not flood the page cache (with a full one, 3.4 GiB took 2.9 s
// instead of 4.4 s). Durability is unchanged: the restore still syncs before
// it writes the boot records.
type writeback struct {
	tgt     *disk.Section
	pending int64
	lo, hi  int64       // byte range of the current window (lo < 0: empty)
	prev    [2][2]int64 // the last two windows
	n       int
	off     bool // the target does not take the hints
}

func newWriteback(tgt *disk.Section) *writeback { return &writeback{tgt: tgt, lo: -1} }

// wrote records n bytes written at partition offset off.
func (w *writeback) wrote(off, n int64) error {
	if w.off || n <= 0 {
		return nil
	}
	off += w.tgt.Start()
	if w.lo < 0 || off < w.lo {
		w.lo = off
	}
	w.hi = max(w.hi, off+n)
	if w.pending += n; w.pending < writebackEvery {
		return nil
	}
	w.pending = 0
	cur := [2]int64{w.lo, w.hi}
	old := w.prev[w.n%2]
	w.prev[w.n%2] = cur
	w.n++
	w.lo, w.hi = -1, 0
	rc, err := w.tgt.File().SyscallConn()
	if err != nil {
		w.off = true
		return nil
	}
	var werr error
	rc.Control(func(fd uintptr) {
		if unix.SyncFileRange(int(fd), cur[0], cur[1]-cur[0], unix.SYNC_FILE_RANGE_WRITE) != nil {
			w.off = true // not supported here: leave it to the final fsync
			return
		}
		if w.n <= 2 || old[1] <= old[0] {
			return
		}
		// Waiting consumes a write error, which the final fsync would then
		// not see again: it must fail the restore here.
		const wait = unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
		if err := unix.SyncFileRange(int(fd), old[0], old[1]-old[0], wait); err != nil {
			werr = fmt.Errorf("write out bytes %d-%d of the target: %w", old[0], old[1], err)
			return
		}
		unix.Fadvise(int(fd), old[0], old[1]-old[0], unix.FADV_DONTNEED)
	})
	return werr
}
