//go:build linux

// Command memfile serves a file's bytes from memory as volume.raw through
// the same FUSE layer as cbimg mount (package mount, same go-fuse settings).
// It is the ceiling bench/mount.sh measures cbimg mount against: whatever
// memfile reads slower than the raw file is the cost of FUSE itself, and
// whatever cbimg mount reads slower than memfile is the cost of the image.
//
//	memfile [--direct-io] FILE MOUNTPOINT
//
// It maps FILE into memory (shared, populated and locked: the page cache's
// own pages, so a large file costs no second copy of memory), mounts, prints "ready"
// and serves until SIGINT/SIGTERM or fusermount3 -u.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cbimg/cbimg/mount"
	"golang.org/x/sys/unix"
)

func main() {
	directIO := flag.Bool("direct-io", false, "bypass the page cache (FOPEN_DIRECT_IO)")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: memfile [--direct-io] FILE MOUNTPOINT")
		os.Exit(2)
	}
	data, err := mapFile(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "memfile:", err)
		os.Exit(1)
	}
	m, err := mount.Mount(flag.Arg(1), bytes.NewReader(data), &mount.Options{FsName: "memfile", DirectIO: *directIO})
	if err != nil {
		fmt.Fprintln(os.Stderr, "memfile:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		_ = m.Unmount()
	}()
	fmt.Println("ready")
	m.Wait()
}

// mapFile maps name read-only with every page faulted in and, where the
// limits allow, locked in memory.
func mapFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	// Locked, so that the reads being measured never wait for the disk.
	data, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE|unix.MAP_LOCKED)
	if err != nil {
		data, err = unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE)
	}
	return data, err
}
