//go:build !linux

package restorecore

import "github.com/cbimg/cbimg/disk"

// writeback streams the target to disk during the restore; Linux only.
type writeback struct{}

func newWriteback(*disk.Section) *writeback { return &writeback{} }

func (*writeback) wrote(int64, int64) error { return nil }
