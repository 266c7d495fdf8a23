//go:build windows

package backupcore

// The image inside the volume it backs up, the Windows way: the file is
// created through Windows at the image's upper bound, flushed and closed;
// the driver says where its clusters are (FSCTL_GET_RETRIEVAL_POINTERS);
// then the volume is locked and dismounted through the very handle the
// backup reads it with (a locked volume answers no other handle), our own
// reader finds the file in the raw metadata, the two cluster lists must
// agree, and the image goes into those clusters through the handle. The
// lock keeps every other writer out until the image is complete; the
// dismount makes Windows read the file system afresh afterwards.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cbimg/cbimg/disk"
	"github.com/cbimg/cbimg/internal/devguard"
	"github.com/cbimg/cbimg/internal/sysdev"
	"github.com/cbimg/cbimg/locate"
	"github.com/cbimg/cbimg/volume"
)

// findInPlace recognizes an image path on the volume being backed up and
// plans its file (inPlace.plan); nothing is written yet. It returns nil
// for an image stored elsewhere.
func findInPlace(ctx context.Context, opts *Options, src *disk.Section, mounts []devguard.Mount, warn func(string, ...any)) (*inPlace, error) {
	if opts.Image == "" || opts.Image == "-" {
		return nil, nil
	}
	if _, _, ok := locate.Split(opts.Image); ok {
		return nil, fmt.Errorf("%w: %s: on Windows an image inside the volume is named by its path, e.g. C:\\Backups\\c.cbi", ErrInPlaceUnsafe, opts.Image)
	}
	abs, err := filepath.Abs(opts.Image)
	if err != nil {
		return nil, err
	}
	abs = strings.TrimPrefix(abs, `\\?\`)
	if !devguard.OnDriveVolume(opts.Source, abs) {
		if sameVolumeByName(opts.Source, src, abs) {
			return nil, fmt.Errorf("%w: %s lies on the volume %s: name the source by its drive letter to store the image inside it, or write the image to another volume", ErrInPlaceUnsafe, opts.Image, opts.Source)
		}
		return nil, nil
	}
	drive := strings.ToUpper(abs[:2])
	volPath, ok := devguard.DrivePath(abs)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not a file path on %s", ErrInPlaceUnsafe, opts.Image, drive)
	}
	switch {
	case opts.Split > 0:
		return nil, fmt.Errorf("%w: an image inside its own volume cannot be split", ErrInPlaceUnsafe)
	case opts.SectorBySector:
		return nil, fmt.Errorf("%w: a sector-by-sector image cannot be stored inside the volume it copies", ErrInPlaceUnsafe)
	case opts.Rescue:
		return nil, fmt.Errorf("%w: --rescue cannot be combined with an image inside the source", ErrInPlaceUnsafe)
	}
	dev, ok := sysdev.DeviceOf(src.File())
	if !ok || dev.Path.Kind != sysdev.WinVolume {
		return nil, fmt.Errorf("%w: %s is not opened as a volume", ErrInPlaceUnsafe, opts.Source)
	}
	ip := &inPlace{warn: warn, devSpec: opts.Source, volPath: volPath, winPath: abs}
	vol, err := volume.Open(src, src.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opts.Source, err)
	}
	// Windows' view first: the metadata on the disk may lag its cache.
	if st, err := os.Stat(filepath.Dir(abs)); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%w: there is no directory %s", ErrInPlaceUnsafe, filepath.Dir(abs))
	}
	if _, err := os.Lstat(abs); err == nil || fileExists(vol, volPath) {
		return nil, fmt.Errorf("%w: %s already exists: delete it or choose another name", ErrInPlaceUnsafe, abs)
	}
	if err := ip.plan(ctx, vol, src, opts); err != nil {
		return nil, err
	}
	return ip, nil
}

// make places the planned file through Windows, locks the volume and finds
// the file in the raw metadata; on failure nothing of it is left.
func (ip *inPlace) make(ctx context.Context, src *disk.Section) error {
	dev, _ := sysdev.DeviceOf(src.File()) // findInPlace checked it
	placed, err := sysdev.PlaceFile(ip.winPath, ip.size)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInPlaceUnsafe, err)
	}
	ip.zeroPad = placed.ValidData
	if err := ip.take(dev, src, strings.ToUpper(ip.winPath[:2]), placed, ip.warn); err != nil {
		dev.Unlock()
		ip.remove()
		return err
	}
	return nil
}

// take locks the volume through src's handle, finds the file in the raw
// metadata and checks it against the driver's cluster list.
func (ip *inPlace) take(dev *sysdev.Device, src *disk.Section, drive string, placed *sysdev.Placed, warn func(string, ...any)) error {
	if err := dev.ReopenWrite(); err != nil {
		return fmt.Errorf("%w: writing the image into its clusters needs %s opened for writing: %w", ErrInPlaceUnsafe, drive, err)
	}
	// The volume's metadata to the disk, also where locking is missing.
	if err := dev.File.Sync(); err != nil {
		warn("flushing %s before reading it raw: %v", drive, err)
	}
	switch err := dev.LockVolume(); {
	case errors.Is(err, sysdev.ErrLockUnsupported):
		warn("%s cannot be locked (%v): nothing keeps other programs from writing to it while the image is made; a change to its metadata is still detected afterwards and discards the image", drive, err)
	case err != nil:
		return fmt.Errorf("%w: %v: close the programs and Explorer windows using %s and try again. The volume Windows runs from, or one holding a page file, can never be locked: write the image to another volume, or back %s up from WinPE", ErrInPlaceUnsafe, err, drive, drive)
	}
	vol, err := volume.Open(src, src.Size())
	if err != nil {
		return fmt.Errorf("reopen %s after creating the image file: %w", drive, err)
	}
	ip.dev = src
	if err := ip.found(vol, src); err != nil {
		return err
	}
	ours := make([]sysdev.ClusterRun, 0, len(ip.runs))
	var vcn int64
	for _, r := range ip.runs {
		ours = append(ours, sysdev.ClusterRun{VCN: vcn, LCN: int64(r.Start), Count: int64(r.Count)})
		vcn += int64(r.Count)
	}
	cs := int64(vol.Info.ClusterSize)
	switch {
	case errors.Is(placed.RunsErr, sysdev.ErrNoRetrieval):
		warn("%v: the image file's clusters are taken from the file system metadata alone", placed.RunsErr)
	case placed.RunsErr != nil:
		return fmt.Errorf("%w: Windows could not say where %s lies: %v", ErrInPlaceUnsafe, ip.winPath, placed.RunsErr)
	default:
		if err := sysdev.CompareRuns(placed.Runs, ours, clustersFor(ip.size, cs)); err != nil {
			return fmt.Errorf("%w: Windows and the raw file system disagree about the clusters of %s: %v", ErrInPlaceUnsafe, ip.winPath, err)
		}
	}
	return nil
}

// remove deletes the image file (after a failure) through Windows; the
// volume must not be locked.
func (ip *inPlace) remove() {
	if err := os.Remove(ip.winPath); err != nil && !errors.Is(err, os.ErrNotExist) && ip.warn != nil {
		ip.warn("could not delete the unfinished image file %s (%v): it holds no image; delete it", ip.winPath, err)
	}
}

// abort undoes an unfinished in-place backup. Safe after commit.
func (ip *inPlace) abort() {
	if ip == nil || ip.done {
		return
	}
	ip.done = true
	ip.invalidate()
	ip.unlock()
	ip.remove()
}

// close ends the lock after a successful commit; Windows mounts the
// volume afresh on its next use.
func (ip *inPlace) close() { ip.unlock() }

func (ip *inPlace) unlock() {
	if ip == nil || ip.dev == nil {
		return
	}
	if dev, ok := sysdev.DeviceOf(ip.dev.File()); ok {
		if err := dev.Unlock(); err != nil && ip.warn != nil {
			ip.warn("%v", err)
		}
	}
}

// dropFileCache: the dismount already dropped every cached byte.
func (ip *inPlace) dropFileCache() {}

// sameVolumeByName reports whether a source named other than by a drive
// letter (\\?\Volume{GUID}, or a partition of \\.\PhysicalDriveN) is the
// volume that holds imageAbs.
func sameVolumeByName(source string, src *disk.Section, imageAbs string) bool {
	if len(imageAbs) < 3 || imageAbs[1] != ':' {
		return false
	}
	root := imageAbs[:2] + `\`
	if src.Partition.Number > 0 {
		wp, err := sysdev.ParseWinPath(src.Path)
		return err == nil && wp.Kind == sysdev.WinDisk && sysdev.VolumeOnDisk(root, wp.Disk, src.Start(), src.Size())
	}
	wp, err := sysdev.ParseWinPath(source)
	if err != nil || wp.Kind != sysdev.WinVolume {
		return false
	}
	name, err := sysdev.VolumeName(root)
	return err == nil && name != "" && strings.EqualFold(name, wp.Open)
}
